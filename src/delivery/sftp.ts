// The `sftp` target (ssh2-sftp-client): connects with the config's key or password, checks the
// server's host key (host-keys.ts) and turns every failure into one line (sftp-errors.ts).
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type SftpClient from 'ssh2-sftp-client';
import type ssh2Module from 'ssh2';
import { RunError } from '../shared/errors.js';
import type { SecretSource, SftpDeliveryConfig } from '../config/run-config.js';
import { DeliveryError, type DeliverySession, type DeliveryTarget } from './target.js';
import { hostVerifier } from './host-keys.js';
import { classifySftpError, type ConnectionState } from './sftp-errors.js';

// ssh2 and its SFTP client are loaded when a delivery starts, not with the command: a run keeps
// them out of memory while it converts (several megabytes, bench/RESULTS.md).
const require = createRequire(import.meta.url);
const sftpClient = (): typeof SftpClient => require('ssh2-sftp-client') as typeof SftpClient;
const ssh2 = (): typeof ssh2Module => require('ssh2') as typeof ssh2Module;

export class SftpTarget implements DeliveryTarget {
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

