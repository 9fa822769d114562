// A real OpenSSH server for the delivery tests: sshd on 127.0.0.1 at a free port, as the current
// user, with a host key and client keys made by ssh-keygen in a temporary folder. It serves SFTP
// with internal-sftp, so the test can look at the "remote" folder directly on disk.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const SSHD = process.env.SSHD_PATH ?? '/usr/sbin/sshd';

/** Why sshd tests cannot run here, or undefined when they can. */
export function sshdMissing(): string | undefined {
  if (!existsSync(SSHD)) return `${SSHD} is not installed (Debian package openssh-server)`;
  if (spawnSync('ssh-keygen', ['-?'], { stdio: 'ignore' }).error) return 'ssh-keygen is not installed (Debian package openssh-client)';
  return undefined;
}

export interface SshServer {
  host: string;
  port: number;
  user: string;
  /** The temporary folder holding keys, config and the remote folder. */
  dir: string;
  /** A folder the client can write to: what the tests use as remote_dir. */
  remoteDir: string;
  /** `SHA256:...` of the server's host key, as ssh-keygen -lf prints it. */
  hostKeyFingerprint: string;
  /** The server's public host key line (`ssh-ed25519 AAAA...`). */
  hostPublicKey: string;
  /** A private key (mode 600) that the server accepts. */
  clientKey: string;
  /** A private key (mode 600) that the server does not accept. */
  strangerKey: string;
  /** Starts sshd again on the same port with the same keys (after stop or kill). */
  start(): Promise<void>;
  /** Ends the listener and every session process, as a crashed or rebooted server would. */
  kill(): void;
  stop(): Promise<void>;
  /** sshd's log, to explain a failing test. */
  log(): string;
  /** Stops and removes the temporary folder. */
  dispose(): Promise<void>;
}

export async function startSshd(options: { passwordAuthentication?: boolean } = {}): Promise<SshServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sis2alma-sshd-'));
  const keygen = (file: string, type: string) => {
    const r = spawnSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', path.basename(file), '-f', file], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
    chmodSync(file, 0o600);
  };
  const hostKey = path.join(dir, 'host_ed25519');
  const clientKey = path.join(dir, 'client_ed25519');
  const strangerKey = path.join(dir, 'stranger_ed25519');
  keygen(hostKey, 'ed25519');
  keygen(clientKey, 'ed25519');
  keygen(strangerKey, 'ed25519');
  writeFileSync(path.join(dir, 'authorized_keys'), readFileSync(clientKey + '.pub'));
  const remoteDir = path.join(dir, 'remote');
  mkdirSync(remoteDir);

  const fp = spawnSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', hostKey + '.pub'], { encoding: 'utf8' }).stdout;
  const hostKeyFingerprint = /SHA256:\S+/.exec(fp)?.[0];
  if (!hostKeyFingerprint) throw new Error(`ssh-keygen -l printed no fingerprint: ${fp}`);
  const hostPublicKey = readFileSync(hostKey + '.pub', 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');

  // sshd running as root needs its privilege separation folder, which the Debian package only
  // makes when its service starts (a fresh CI machine has none).
  if (process.getuid?.() === 0 && !existsSync('/run/sshd')) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });

  let port = 0;
  const user = os.userInfo().username;
  const logFile = path.join(dir, 'sshd.log');
  const config = path.join(dir, 'sshd_config');
  const writeConfig = () =>
    writeFileSync(
      config,
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${hostKey}`,
        `PidFile ${path.join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
        // The keys live in a temporary folder whose modes sshd would otherwise refuse.
        'StrictModes no',
        'UsePAM no',
        `PasswordAuthentication ${options.passwordAuthentication ? 'yes' : 'no'}`,
        'KbdInteractiveAuthentication no',
        'PermitRootLogin yes',
        `AllowUsers ${user}`,
        'MaxStartups 50',
        'LogLevel VERBOSE',
        'Subsystem sftp internal-sftp',
        '',
      ].join('\n'),
    );

  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn(SSHD, ['-D', '-f', config, '-E', logFile], { stdio: 'ignore' });
    const exited = new Promise<string>((resolve) => child!.once('exit', (code) => resolve(`sshd exited with ${code}`)));
    const ready = waitForBanner(port, 10_000);
    const outcome = await Promise.race([ready.then(() => 'ok'), exited]);
    if (outcome !== 'ok') throw new Error(`${outcome}; log:\n${readLog()}`);
  };
  const readLog = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  const kill = () => {
    if (!child?.pid) return;
    for (const pid of [...descendants(child.pid), child.pid]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  };
  const stop = async () => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((resolve) => c.once('exit', resolve));
    kill();
    await exited;
  };

  // Another process may take the free port before sshd binds it: then try another one.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    writeConfig();
    try {
      await start();
      break;
    } catch (error) {
      if (attempt >= 3 || !/Bind to port|Address already in use|Cannot bind/i.test(readLog())) throw error;
    }
  }
  return {
    host: '127.0.0.1',
    port,
    user,
    dir,
    remoteDir,
    hostKeyFingerprint,
    hostPublicKey,
    clientKey,
    strangerKey,
    start,
    kill,
    stop,
    log: readLog,
    dispose: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Every process below `root`, found through /proc (sshd's session processes start their own sessions). */
function descendants(root: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name is in parentheses and may hold spaces; ppid is the 2nd field after it.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parentOf.set(Number(entry), ppid);
    } catch {
      /* the process ended while we looked */
    }
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    for (const [child, parent] of parentOf) {
      if (parent === pid) {
        out.push(child);
        walk(child);
      }
    }
  };
  walk(root);
  return out;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something on the port answers with an SSH banner. */
async function waitForBanner(port: number, withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      const done = (v: boolean) => {
        socket.destroy();
        resolve(v);
      };
      socket.setTimeout(1000, () => done(false));
      socket.once('error', () => done(false));
      socket.once('data', (d) => done(d.toString('latin1').startsWith('SSH-')));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`sshd did not answer on 127.0.0.1:${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
