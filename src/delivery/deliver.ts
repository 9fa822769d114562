// Delivery: puts zips where Alma's Users SYNCHRONIZE job picks them up, on its own schedule.
// Alma loads any zip it finds in that folder, so three rules hold here:
//  - a zip appears under its final name only when it is whole (upload as `.part`, check the size
//    on the server, then rename);
//  - zips of an earlier run that Alma has not processed yet are found before uploading, so Alma never
//    loads two generations out of order (policy `stale`: report, rename to `.stale`, or stop);
//  - the server is who the config says it is (host key pinned; nothing ever trusts any key).
// Two targets sit behind one interface: `sftp` (ssh2-sftp-client) and `dir` (a local or mounted folder).
import { createHash, createHmac } from 'node:crypto';
import { existsSync, readFileSync, promises as fsp, statSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type SftpClient from 'ssh2-sftp-client';
import type ssh2Module from 'ssh2';
import { RunError } from '../shared/errors.js';
import { silentLogger, type Logger } from '../shared/log.js';
import { onStop } from '../shared/on-stop.js';

// ssh2 and its SFTP client are loaded when a delivery starts, not with the command: a run keeps
// them out of memory while it converts (several megabytes, bench/RESULTS.md).
const require = createRequire(import.meta.url);
const sftpClient = (): typeof SftpClient => require('ssh2-sftp-client') as typeof SftpClient;
const ssh2 = (): typeof ssh2Module => require('ssh2') as typeof ssh2Module;
import type { DeliveryConfig, DirDeliveryConfig, SecretSource, SftpDeliveryConfig } from '../config/run-config.js';

/** Suffix of a zip still being uploaded: Alma loads `.zip` files only, so it never takes a partial one. */
export const PART_SUFFIX = '.part';
/** Suffix given to a zip of an earlier run that Alma has not processed, with `stale: rename`. */
export const STALE_SUFFIX = '.stale';

export interface DeliveredFile {
  /** The local zip. */
  file: string;
  /** Where it went, without credentials: `sftp://user@host:port` or `dir`. */
  target: string;
  remote_path: string;
}

export interface DeliveryResult {
  delivered: DeliveredFile[];
  /** Zips found waiting in the remote folder before this delivery (names only). */
  stale: string[];
  /** Those of them renamed to `.stale`. */
  renamed: string[];
}

export interface DeliverOptions {
  log?: Logger;
  /** Check the connection and the remote folder, report stale zips, upload nothing. */
  dryRun?: boolean;
  /** Bytes of `file` sent so far in the current attempt. */
  onProgress?: (file: string, sent: number, total: number) => void;
  /** How to wait between attempts (tests may shorten it; the config's delays are used as given). */
  sleep?: (ms: number) => Promise<void>;
}

/** A failed delivery step. `transient` says a retry may succeed (the connection, not the request, failed). */
export class DeliveryError extends RunError {
  readonly transient: boolean;
  constructor(code: 'delivery_failed' | 'host_key_rejected', message: string, transient: boolean, file?: string) {
    super(code, message, file ? { file } : {});
    this.transient = transient;
  }
}

export interface RemoteFile {
  name: string;
  size: number;
}

/** One open connection to a target. Names are relative to the target's folder. */
export interface DeliverySession {
  list(): Promise<RemoteFile[]>;
  /** Writes `local` under `name`, replacing any file of that name. */
  write(local: string, name: string, onProgress?: (sent: number) => void): Promise<void>;
  /** The size of `name`, or undefined when it does not exist. */
  size(name: string): Promise<number | undefined>;
  /** Deletes `name` if it exists. */
  remove(name: string): Promise<void>;
  /** Renames, replacing any file under the new name. */
  rename(from: string, to: string): Promise<void>;
  close(): Promise<void>;
  /** Drops the connection at once, with whatever is in flight (a run stopped by a signal). */
  abort?(): void;
}

export interface DeliveryTarget {
  /** For reports and messages; never holds a credential. */
  readonly label: string;
  remotePath(name: string): string;
  /** With dryRun, changes nothing on the target (not even a missing folder with create_dir). */
  open(options?: { dryRun?: boolean }): Promise<DeliverySession>;
}

export function createTarget(config: DeliveryConfig): DeliveryTarget {
  return config.target === 'dir' ? new DirTarget(config) : new SftpTarget(config);
}

/**
 * Delivers zips in the order given, each atomically, retrying with backoff when the connection
 * fails. Before the first upload it looks for zips Alma has not processed yet and applies the
 * `stale` policy. Throws DeliveryError (a RunError) when a zip cannot be delivered.
 */
export async function deliverZips(config: DeliveryConfig, zips: string[], options: DeliverOptions = {}): Promise<DeliveryResult> {
  return deliverTo(createTarget(config), config, zips, options);
}

export async function deliverTo(target: DeliveryTarget, config: DeliveryConfig, zips: string[], options: DeliverOptions = {}): Promise<DeliveryResult> {
  const log = options.log ?? silentLogger;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const result: DeliveryResult = { delivered: [], stale: [], renamed: [] };
  const sizes = new Map<string, number>();
  for (const zip of zips) {
    const st = statSync(zip, { throwIfNoEntry: false });
    if (!st || !st.isFile()) throw new RunError('input_unreadable', `zip ${zip} does not exist`, { file: zip });
    sizes.set(zip, st.size);
  }

  let session: DeliverySession | undefined;
  let staleChecked = false;
  const closeSession = async () => {
    const s = session;
    session = undefined;
    if (s) await s.close().catch(() => {});
  };
  // Each step below is safe to repeat after a lost connection: a retry lists nothing twice, and
  // an upload restarts its `.part` file from the beginning.
  // Set by a signal (src/on-stop.ts): no step starts after it, no retry, no rename.
  let stopped = false;
  const withRetries = async (what: string, step: (s: DeliverySession) => Promise<void>) => {
    for (let attempt = 0; ; attempt++) {
      if (stopped) throw new Error('stopped by a signal');
      try {
        session ??= await target.open({ dryRun: options.dryRun ?? false });
        if (stopped) throw new Error('stopped by a signal');
        await step(session);
        return;
      } catch (error) {
        await closeSession();
        const failure = error instanceof RunError ? error : new DeliveryError('delivery_failed', `${what} at ${target.label} failed: ${firstLine(error)}`, false);
        const transient = failure instanceof DeliveryError && failure.transient;
        if (!transient || attempt >= config.retries) {
          if (transient && config.retries > 0) throw new DeliveryError(failure.code as 'delivery_failed', `${failure.message} (gave up after ${config.retries + 1} attempts)`, false);
          throw failure;
        }
        const delay = config.retryDelayMs * 2 ** attempt;
        log.warn(`${failure.message}; retry ${attempt + 1} of ${config.retries} in ${formatSeconds(delay)}`);
        await sleep(delay);
      }
    }
  };

  try {
    await withRetries('listing the remote folder', async (s) => {
      if (staleChecked) return;
      await handleStale(s, target, config, result, log, options.dryRun ?? false);
      staleChecked = true;
    });
    if (options.dryRun) return result;

    for (const zip of zips) {
      const name = path.basename(zip);
      const part = name + PART_SUFFIX;
      const total = sizes.get(zip)!;
      // Stopped mid-upload: the upload's connection is dropped, so it writes no more, and a new
      // one removes the `.part`, which would otherwise hold the server's space until a later run.
      const forgetPart = onStop(async () => {
        stopped = true;
        session?.abort?.();
        session = undefined;
        try {
          const s = await target.open();
          try {
            await s.remove(part);
          } finally {
            await s.close();
          }
        } catch (error) {
          throw new Error(`${target.label}:${target.remotePath(part)} (${firstLine(error)})`);
        }
      });
      try {
        await withRetries(`uploading ${name}`, async (s) => {
          await s.write(zip, part, options.onProgress ? (sent) => options.onProgress!(zip, sent, total) : undefined);
          // The last line of defence against a partial file under the final name: whatever the
          // transfer reported, the server must hold every byte before the rename.
          const seen = await s.size(part);
          if (seen === undefined) throw new DeliveryError('delivery_failed', `${target.remotePath(part)} was gone from ${target.label} right after the upload`, true);
          if (seen !== total) {
            await s.remove(part).catch(() => {});
            throw new DeliveryError('delivery_failed', `${target.label} kept only ${seen} of ${total} bytes of ${target.remotePath(part)} (the disk there may be full or a quota reached)`, false);
          }
          if (stopped) throw new Error('stopped by a signal');
          await s.rename(part, name);
        });
      } finally {
        forgetPart();
      }
      result.delivered.push({ file: zip, target: target.label, remote_path: target.remotePath(name) });
      log.info(`delivered ${name} to ${target.label} as ${target.remotePath(name)}`);
    }
    return result;
  } finally {
    await closeSession();
  }
}

async function handleStale(s: DeliverySession, target: DeliveryTarget, config: DeliveryConfig, result: DeliveryResult, log: Logger, dryRun: boolean): Promise<void> {
  const files = await s.list();
  // Alma renames what it has processed, so any `.zip` still here is waiting for its next job run.
  const waiting = files.filter((f) => f.name.toLowerCase().endsWith('.zip')).map((f) => f.name).sort();
  result.stale = waiting;
  const leftovers = files.filter((f) => f.name.toLowerCase().endsWith('.zip' + PART_SUFFIX)).map((f) => f.name).sort();
  if (leftovers.length > 0) log.warn(`${target.label}:${target.remotePath('')} holds partial uploads of earlier runs, which Alma ignores: ${leftovers.join(', ')}`);
  if (waiting.length === 0) return;
  const list = waiting.join(', ');
  const where = `${target.label}:${target.remotePath('')}`;
  if (config.stale === 'stop') {
    throw new DeliveryError('delivery_failed', `${where} still holds ${waiting.length} zip(s) Alma has not processed: ${list}; stopped so Alma does not load two generations (stale: stop)`, false);
  }
  if (config.stale === 'report' || dryRun) {
    log.warn(`${where} still holds ${waiting.length} zip(s) Alma has not processed: ${list}${dryRun && config.stale === 'rename' ? ' (would rename them to .stale)' : ' (left in place: stale: report)'}`);
    return;
  }
  for (const name of waiting) {
    await s.rename(name, name + STALE_SUFFIX);
    result.renamed.push(name);
    log.warn(`renamed ${target.remotePath(name)} on ${target.label} to ${name + STALE_SUFFIX}: Alma had not processed it`);
  }
}

// ---- dir: a local or mounted folder ------------------------------------------------------

class DirTarget implements DeliveryTarget {
  readonly label: string;
  constructor(private readonly config: DirDeliveryConfig) {
    this.label = `dir ${config.dir}`;
  }
  remotePath(name: string): string {
    return path.join(this.config.dir, name);
  }
  async open(options: { dryRun?: boolean } = {}): Promise<DeliverySession> {
    const dir = this.config.dir;
    const fail = (error: unknown, action: string, file: string): never => {
      throw classifyLocalError(error, action, file);
    };
    if (this.config.createDir) {
      if (options.dryRun && !existsSync(dir)) return { list: async () => [], write: async () => {}, size: async () => undefined, remove: async () => {}, rename: async () => {}, close: async () => {} };
      // EEXIST: something that is not a folder holds the name; the check below says so.
      await fsp.mkdir(dir, { recursive: true }).catch((e) => ((e as NodeJS.ErrnoException).code === 'EEXIST' ? undefined : fail(e, 'create folder', dir)));
    }
    const st = await fsp.stat(dir).catch((e) => fail(e, 'open folder', dir));
    if (!st.isDirectory()) throw new DeliveryError('delivery_failed', `delivery folder ${dir} is not a folder`, false);
    return {
      list: async () => {
        const entries = await fsp.readdir(dir, { withFileTypes: true }).catch((e) => fail(e, 'list', dir));
        const out: RemoteFile[] = [];
        for (const e of entries) if (e.isFile()) out.push({ name: e.name, size: (await fsp.stat(path.join(dir, e.name))).size });
        return out;
      },
      write: async (local, name, onProgress) => {
        const dest = path.join(dir, name);
        try {
          await fsp.copyFile(local, dest);
          // A mounted share may keep data in cache; flush before the rename makes it visible.
          const handle = await fsp.open(dest, 'r+');
          try {
            await handle.sync();
          } finally {
            await handle.close();
          }
          onProgress?.((await fsp.stat(dest)).size);
        } catch (error) {
          // Leave no partial copy behind on a full disk; Alma would ignore it, but it holds space.
          await fsp.rm(dest, { force: true }).catch(() => {});
          fail(error, 'write', dest);
        }
      },
      size: async (name) => (await fsp.stat(path.join(dir, name)).catch(() => undefined))?.size,
      remove: async (name) => {
        await fsp.rm(path.join(dir, name), { force: true }).catch((e) => fail(e, 'remove', path.join(dir, name)));
      },
      rename: async (from, to) => {
        await fsp.rename(path.join(dir, from), path.join(dir, to)).catch((e) => fail(e, 'rename', path.join(dir, from)));
      },
      close: async () => {},
    };
  }
}

function classifyLocalError(error: unknown, action: string, file: string): DeliveryError {
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return new DeliveryError('delivery_failed', action === 'open folder' || action === 'list' ? `delivery folder ${file} does not exist` : `cannot ${action} ${file}: it does not exist`, false);
    case 'EACCES':
    case 'EPERM':
      return new DeliveryError('delivery_failed', `permission denied: cannot ${action} ${file}`, false);
    case 'ENOSPC':
    case 'EDQUOT':
      return new DeliveryError('delivery_failed', `no space left: cannot ${action} ${file} (disk full or quota reached)`, false);
    case 'EROFS':
      return new DeliveryError('delivery_failed', `cannot ${action} ${file}: the file system is read-only`, false);
    default:
      // A mounted share that went away for a moment may come back.
      return new DeliveryError('delivery_failed', `cannot ${action} ${file}: ${firstLine(error)}`, code === 'EIO' || code === 'ESTALE' || code === 'ETIMEDOUT');
  }
}

// ---- sftp ---------------------------------------------------------------------------------

interface ConnectionState {
  /** Set when the host key check refused the server: the reason, with the fingerprint seen. */
  hostKeyProblem?: string;
  /** The last error ssh2 raised, before ssh2-sftp-client rewrote it (it keeps `level`). */
  raw?: Error & { code?: string | number; level?: string };
  lost: boolean;
}

class SftpTarget implements DeliveryTarget {
  readonly label: string;
  constructor(private readonly config: SftpDeliveryConfig) {
    this.label = `sftp://${config.username}@${config.host}:${config.port}`;
  }
  remotePath(name: string): string {
    return path.posix.join(this.config.remoteDir, name);
  }

  async open(): Promise<DeliverySession> {
    const cfg = this.config;
    const state: ConnectionState = { lost: false };
    const client = new (sftpClient())('sis2alma', {
      // ssh2-sftp-client prints these events by default; the errors reach us through the calls.
      error: (e) => {
        state.raw ??= e as ConnectionState['raw'];
      },
      end: () => {
        state.lost = true;
      },
      close: () => {
        state.lost = true;
      },
    });
    client.on('error', (e: ConnectionState['raw']) => {
      state.raw = e;
    });
    client.on('close', () => {
      state.lost = true;
    });
    const fail = (error: unknown, action: string, remote: string): never => {
      throw classifySftpError(error, { host: cfg.host, port: cfg.port, username: cfg.username, action, path: remote, timeoutMs: cfg.timeoutMs, auth: describeAuth(cfg) }, state);
    };
    const verifier = hostVerifier(cfg, state);
    const credentials = readCredentials(cfg);
    try {
      await client.connect({
        host: cfg.host,
        port: cfg.port,
        username: cfg.username,
        ...credentials,
        readyTimeout: cfg.timeoutMs,
        // A server that stops answering mid-transfer is noticed within about three intervals.
        keepaliveInterval: Math.max(1000, Math.min(10000, Math.round(cfg.timeoutMs / 3))),
        keepaliveCountMax: 3,
        hostVerifier: verifier.verify,
        ...(verifier.algorithms.length > 0 ? { algorithms: { serverHostKey: verifier.algorithms as never } } : {}),
      });
    } catch (error) {
      await endClient(client);
      fail(error, 'connect to', cfg.remoteDir);
    }
    const remote = (name: string) => path.posix.join(cfg.remoteDir, name);
    const guarded = async <T>(action: string, file: string, op: () => Promise<T>): Promise<T> => {
      if (state.lost) fail(new Error('connection closed'), action, file);
      try {
        return await op();
      } catch (error) {
        return fail(error, action, file);
      }
    };
    return {
      list: () =>
        guarded('list', cfg.remoteDir, async () => {
          let entries: Awaited<ReturnType<SftpClient['list']>>;
          try {
            entries = await client.list(cfg.remoteDir);
          } catch (error) {
            // OpenSSH answers "no such file" also when the path is a file (ENOTDIR): ask what is there.
            const code = (error as { code?: unknown }).code;
            if (code !== 2 && code !== 'ENOENT') throw error;
            const st = await client.stat(cfg.remoteDir).catch(() => undefined);
            if (st && !st.isDirectory) {
              throw new DeliveryError('delivery_failed', `remote folder ${cfg.remoteDir} on ${cfg.host}:${cfg.port} is ${st.isFile ? 'a file' : 'something else'}, not a folder`, false);
            }
            throw error;
          }
          return entries.filter((e) => e.type === '-').map((e) => ({ name: e.name, size: e.size }));
        }),
      write: (local, name, onProgress) =>
        guarded('write', remote(name), async () => {
          // fastPut keeps many writes in flight: a stream writes one chunk per round trip, which
          // over a long link to the provider is many times slower.
          try {
            await client.fastPut(local, remote(name), {
              mode: 0o644,
              ...(onProgress ? { step: (sent: number) => onProgress(sent) } : {}),
            });
          } catch (error) {
            // The server refused a write (a full disk): free what the partial file holds.
            if (!state.lost) await client.delete(remote(name), true).catch(() => {});
            throw error;
          }
        }),
      size: (name) =>
        guarded('check the size of', remote(name), async () => {
          const found = await client.exists(remote(name));
          if (!found) return undefined;
          return (await client.stat(remote(name))).size;
        }),
      remove: (name) =>
        guarded('remove', remote(name), async () => {
          await client.delete(remote(name), true);
        }),
      rename: (from, to) =>
        guarded('rename', remote(from), async () => {
          try {
            // posix-rename replaces the target in one step, as rename(2) does.
            await client.posixRename(remote(from), remote(to));
          } catch (error) {
            if (!/not support/i.test(String((error as Error).message))) throw error;
            if (await client.exists(remote(to))) await client.delete(remote(to));
            await client.rename(remote(from), remote(to));
          }
        }),
      close: () => endClient(client),
      abort: () => (client as unknown as { client?: { destroy?: () => void } }).client?.destroy?.(),
    };
  }
}

async function endClient(client: SftpClient): Promise<void> {
  const raw = (client as unknown as { client?: { destroy?: () => void } }).client;
  await Promise.race([client.end().catch(() => {}), new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
  raw?.destroy?.();
}

function readSecret(source: SecretSource, what: string): string {
  if ('env' in source) {
    const value = process.env[source.env];
    if (!value) throw new RunError('config_invalid', `environment variable ${source.env} (the ${what}) is not set`);
    return value;
  }
  try {
    // A trailing newline is how editors save a one-line file, not part of the secret.
    return readFileSync(source.file, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw new RunError('config_invalid', `the ${what} file ${source.file} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`, { file: source.file });
  }
}

function readCredentials(cfg: SftpDeliveryConfig): { privateKey?: Buffer; passphrase?: string; password?: string } {
  if (cfg.auth.kind === 'password') return { password: readSecret(cfg.auth.password, 'password') };
  const file = cfg.auth.privateKeyFile;
  let privateKey: Buffer;
  try {
    const st = statSync(file);
    if ((st.mode & 0o077) !== 0) throw new RunError('config_invalid', `private key file ${file} is readable by others (mode ${(st.mode & 0o777).toString(8)}): run chmod 600 ${file}`, { file });
    privateKey = readFileSync(file);
  } catch (error) {
    if (error instanceof RunError) throw error;
    throw new RunError('config_invalid', `private key file ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`, { file });
  }
  const passphrase = cfg.auth.passphrase ? readSecret(cfg.auth.passphrase, 'key passphrase') : undefined;
  // A key ssh2 cannot read (wrong format, wrong or missing passphrase) is a config problem, not a
  // refused login: say so before connecting.
  const parsed = ssh2().utils.parseKey(privateKey, passphrase);
  if (parsed instanceof Error) {
    const why = /passphrase/i.test(parsed.message) ? (passphrase === undefined ? 'it is encrypted and the config names no passphrase_env or passphrase_file' : 'the passphrase does not open it') : `it is not a private key in a format ssh2 reads (${parsed.message})`;
    throw new RunError('config_invalid', `private key file ${file} cannot be used: ${why}`, { file });
  }
  return { privateKey, ...(passphrase !== undefined ? { passphrase } : {}) };
}

function describeAuth(cfg: SftpDeliveryConfig): string {
  if (cfg.auth.kind === 'key') return `private key ${cfg.auth.privateKeyFile}`;
  const s = cfg.auth.password;
  return 'env' in s ? `the password in environment variable ${s.env}` : `the password in ${s.file}`;
}

// ---- host keys ------------------------------------------------------------------------------

/** The fingerprint of a host key blob as `ssh-keygen -lf` prints it: SHA256 + unpadded base64. */
export function fingerprintOf(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

function md5FingerprintOf(blob: Buffer): string {
  return 'MD5:' + (createHash('md5').update(blob).digest('hex').match(/../g) ?? []).join(':');
}

/** The key type named inside a host key blob (`ssh-ed25519`, `ssh-rsa`, ...). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const n = blob.readUInt32BE(0);
  return n > 0 && n < 64 && blob.length >= 4 + n ? blob.subarray(4, 4 + n).toString('latin1') : 'unknown';
}

export interface KnownHostKeys {
  keys: { type: string; blob: Buffer }[];
  revoked: Buffer[];
}

/**
 * The keys a known_hosts file lists for a host, as OpenSSH reads it: `[host]:port` for a port other
 * than 22, hashed `|1|salt|hash` names, comma lists, `*`/`?` wildcards, `!` negations and
 * @revoked lines. @cert-authority lines are skipped: certificates are not supported.
 */
export function knownHostKeys(text: string, host: string, port: number): KnownHostKeys {
  const name = (port === 22 ? host : `[${host}]:${port}`).toLowerCase();
  const out: KnownHostKeys = { keys: [], revoked: [] };
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let marker: string | undefined;
    if (fields[0]!.startsWith('@')) marker = fields.shift();
    if (fields.length < 3) continue;
    const [patterns, type, key] = fields as [string, string, string];
    if (marker === '@cert-authority') continue;
    if (!hostMatches(patterns, name)) continue;
    const blob = Buffer.from(key, 'base64');
    if (marker === '@revoked') out.revoked.push(blob);
    else out.keys.push({ type, blob });
  }
  return out;
}

function hostMatches(patterns: string, name: string): boolean {
  if (patterns.startsWith('|1|')) {
    const [, , salt, hash] = patterns.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  let matched = false;
  for (const raw of patterns.split(',')) {
    const negated = raw.startsWith('!');
    const pattern = (negated ? raw.slice(1) : raw).toLowerCase();
    const re = new RegExp('^' + pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$');
    if (re.test(name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

const ALGORITHMS_FOR_KEY_TYPE: Record<string, string[]> = {
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
};

function hostVerifier(cfg: SftpDeliveryConfig, state: ConnectionState): { verify: (key: Buffer) => boolean; algorithms: string[] } {
  const server = `${cfg.host}:${cfg.port}`;
  const seen = (blob: Buffer) => `${fingerprintOf(blob)} (${keyTypeOf(blob)})`;
  if (cfg.hostKey.kind === 'fingerprint') {
    const wanted = cfg.hostKey.fingerprints;
    return {
      algorithms: cfg.hostKey.keyTypes,
      verify: (blob) => {
        if (wanted.includes(fingerprintOf(blob)) || wanted.includes(md5FingerprintOf(blob))) return true;
        // A server with several host keys presents the type ssh2 prefers (ed25519 first); a
        // fingerprint of its RSA key only matches when the config asks for that type.
        const hint = cfg.hostKey.kind === 'fingerprint' && cfg.hostKey.keyTypes.length === 0
          ? '; if the provider gave the fingerprint of another key type, write host_key as ssh-keygen -lf prints it, ending in (RSA), (ECDSA) or (ED25519)'
          : '; if the server\'s key really changed, check the new fingerprint with the provider before putting it in the config';
        state.hostKeyProblem = `host key of ${server} is ${seen(blob)}, which is not the host_key in the config (${wanted.join(', ')}): connection refused${hint}`;
        return false;
      },
    };
  }
  const file = cfg.hostKey.file;
  let known: KnownHostKeys;
  try {
    known = knownHostKeys(readFileSync(file, 'utf8'), cfg.host, cfg.port);
  } catch (error) {
    throw new RunError('config_invalid', `known_hosts file ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`, { file });
  }
  // As OpenSSH does, ask the server for a key of a type we know for it, so a server with several
  // host keys presents the one we can check.
  const algorithms = [...new Set(known.keys.flatMap((k) => ALGORITHMS_FOR_KEY_TYPE[k.type] ?? []))];
  return {
    algorithms,
    verify: (blob) => {
      if (known.revoked.some((r) => r.equals(blob))) {
        state.hostKeyProblem = `host key of ${server} is ${seen(blob)}, which ${file} marks @revoked: connection refused`;
        return false;
      }
      if (known.keys.some((k) => k.blob.equals(blob))) return true;
      const entry = cfg.port === 22 ? cfg.host : `[${cfg.host}]:${cfg.port}`;
      state.hostKeyProblem = known.keys.length === 0
        ? `host key of ${server} is ${seen(blob)}, and ${file} has no entry for ${entry}: connection refused; add the server's key after checking its fingerprint with the provider`
        : `host key of ${server} is ${seen(blob)}, which does not match the key(s) for ${entry} in ${file}: connection refused (the server's key changed, or this is not the server)`;
      return false;
    },
  };
}

// ---- errors -------------------------------------------------------------------------------

export interface SftpErrorContext {
  host: string;
  port: number;
  username: string;
  /** A verb phrase: 'connect to', 'list', 'write', 'rename'. */
  action: string;
  path: string;
  timeoutMs: number;
  /** How we logged in, without the secret: `private key /etc/…` */
  auth: string;
}

/**
 * One line for each way an SFTP step fails, naming host and path and never a credential. The
 * error may come from ssh2 (code, level), from ssh2-sftp-client (rewritten message; SFTP status in
 * `code`: 2 no such file, 3 permission denied, 4 failure), or from the socket.
 */
export function classifySftpError(error: unknown, ctx: SftpErrorContext, state: Partial<ConnectionState> = {}): DeliveryError | RunError {
  if (error instanceof RunError) return error;
  const server = `${ctx.host}:${ctx.port}`;
  if (state.hostKeyProblem) return new DeliveryError('host_key_rejected', state.hostKeyProblem, false);
  const e = (error ?? {}) as { code?: string | number; level?: string; message?: string };
  const raw: { code?: string | number; level?: string; message?: string } = state.raw ?? {};
  const codes = [e.code, raw.code];
  const text = `${e.message ?? ''} ${raw.message ?? ''}`;
  const has = (c: string | number) => codes.includes(c);
  const connecting = ctx.action === 'connect to';

  if (/no matching host key/i.test(text)) {
    return new DeliveryError('host_key_rejected', `${server} has no host key of the type the config pins (the (TYPE) of host_key, or the key types known_hosts lists for it): connection refused`, false);
  }
  if (has('ENOTFOUND')) return new DeliveryError('delivery_failed', `cannot find host ${ctx.host}: DNS lookup failed (is the host name right?)`, false);
  if (has('EAI_AGAIN')) return new DeliveryError('delivery_failed', `cannot look up host ${ctx.host} just now (DNS did not answer)`, true);
  if (has('ECONNREFUSED')) return new DeliveryError('delivery_failed', `${server} refused the connection (is the SFTP server running there, and is the port right?)`, true);
  if (has('EHOSTUNREACH') || has('ENETUNREACH')) return new DeliveryError('delivery_failed', `cannot reach ${server}: no route to the host`, true);
  if (raw.level === 'client-authentication' || e.level === 'client-authentication' || /authentication methods failed/i.test(text)) {
    return new DeliveryError('delivery_failed', `${server} refused the login of user ${ctx.username} with ${ctx.auth}`, false);
  }
  if (raw.level === 'client-timeout' || has('ETIMEDOUT') || /timed out/i.test(text)) {
    return new DeliveryError('delivery_failed', `no answer from ${server} within ${formatSeconds(ctx.timeoutMs)}${connecting ? '' : ` while trying to ${ctx.action} ${ctx.path}`}`, true);
  }
  if (has('ECONNRESET') || has('EPIPE') || has('ERR_NOT_CONNECTED') || state.lost || /unexpected (end|close)|no sftp connection|connection (lost|closed)|not connected/i.test(text)) {
    return new DeliveryError('delivery_failed', `connection to ${server} was lost while trying to ${ctx.action} ${ctx.path}`, true);
  }
  if (has(2) || has('ENOENT')) {
    return new DeliveryError('delivery_failed', ctx.action === 'list' || connecting ? `remote folder ${ctx.path} does not exist on ${server}` : `cannot ${ctx.action} ${ctx.path} on ${server}: no such file or folder (does the remote folder exist?)`, false);
  }
  if (has(3) || has('EACCES')) return new DeliveryError('delivery_failed', `permission denied on ${server}: cannot ${ctx.action} ${ctx.path}`, false);
  if ((has(4) || has(14)) && ctx.action === 'write') {
    // OpenSSH's server answers a full disk or a quota with the generic SFTP "failure" status.
    return new DeliveryError('delivery_failed', `${server} could not write ${ctx.path} (the server's disk may be full or a quota reached)`, false);
  }
  if (has(4)) return new DeliveryError('delivery_failed', `${server} failed to ${ctx.action} ${ctx.path}`, false);
  return new DeliveryError('delivery_failed', `cannot ${ctx.action} ${ctx.path} on ${server}: ${firstLine(error)}`, connecting);
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0]!.replace(/^(_?[a-zA-Z]+(->)?: )+/, '');
}

function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(ms < 1000 ? 2 : 1))} s`;
}
