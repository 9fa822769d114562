// What keeps a delivery safe, each pinned so that a one-line change is seen: a key known_hosts
// marks @revoked is refused even when it is also listed, a refused host key exits 10 (not the 6 a
// wrapper retries on), an upload is checked for size under its .part name before the rename, and
// the wait before each retry doubles. Against a real sshd on 127.0.0.1 and real folders.
import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { loadRunConfig } from '../src/config/run-config.js';
import { createTarget, deliverTo, deliverZips } from '../src/delivery/deliver.js';
import type { DeliveryTarget } from '../src/delivery/target.js';
import type { Logger } from '../src/shared/log.js';
import { startSshd, sshdMissing, freePort, type SshServer } from './helpers/sshd.js';
import { runCli } from './helpers/run-cli.js';
import { makeTempDir } from './helpers/tmp.js';
import { rejection } from './helpers/rejection.js';
import { usersXml, writeZip, randomZip } from './helpers/users-zip.js';
import { toolMissing } from './helpers/tools.js';

const folder = (name: string): string => makeTempDir(`sis2alma-safety-${name}-`);


function writeConfig(dir: string, delivery: Record<string, string | number | boolean>): string {
  const file = path.join(dir, 'config.yaml');
  const lines = Object.entries(delivery).map(([k, v]) => `  ${k}: ${typeof v === 'string' ? JSON.stringify(v) : v}`);
  writeFileSync(file, `mapping: mapping.yaml\ninputs: [users.csv]\noutput_dir: out\ndelivery:\n${lines.join('\n')}\n`);
  return file;
}

function recordingLogger(): Logger & { warns: string[] } {
  const warns: string[] = [];
  return { warns, info: () => {}, warn: (m) => void warns.push(m), id: (v) => v };
}


describe('host keys against a real sshd', { skip: toolMissing(sshdMissing()) }, () => {
  let server: SshServer;
  before(async () => {
    server = await startSshd();
  });
  after(async () => {
    await server?.dispose();
  });
  // Each test looks at the remote folder, so none may see what another left there.
  beforeEach(() => {
    for (const f of readdirSync(server.remoteDir)) rmSync(path.join(server.remoteDir, f), { force: true });
  });
  const sftp = (extra: Record<string, string | number>) => ({
    target: 'sftp',
    host: server.host,
    port: server.port,
    username: server.user,
    private_key_file: server.clientKey,
    remote_dir: server.remoteDir,
    retries: 3,
    retry_delay_seconds: 0.05,
    timeout_seconds: 20,
    stale: 'report',
    ...extra,
  });

  test('a key known_hosts marks @revoked is refused, even though a plain line lists the same key', async () => {
    const dir = folder('revoked');
    const knownHosts = path.join(dir, 'known_hosts');
    writeFileSync(knownHosts, `[127.0.0.1]:${server.port} ${server.hostPublicKey}\n@revoked * ${server.hostPublicKey}\n`);
    const config = loadRunConfig(writeConfig(dir, sftp({ known_hosts: 'known_hosts' })));
    const logger = recordingLogger();
    const error = await rejection(deliverZips(config.delivery, [await randomZip(path.join(dir, 'a.zip'), 1000)], { log: logger }));
    assert.equal(error.code, 'host_key_rejected');
    assert.equal(error.message, `host key of 127.0.0.1:${server.port} is ${server.hostKeyFingerprint} (ssh-ed25519), which ${knownHosts} marks @revoked: connection refused`);
    assert.deepEqual(logger.warns, [], 'a refused host key is not retried');
    assert.deepEqual(readdirSync(server.remoteDir), []);
  });

  test('sis2alma upload refused by the host key exits 10, not 6, with one line and nothing sent', async () => {
    const dir = folder('exit10');
    const wrong = `SHA256:${'A'.repeat(43)}`;
    const configFile = writeConfig(dir, sftp({ host_key: wrong }));
    // A real users package: upload checks a zip before it connects, and this test is about the connection.
    const zip = await writeZip(path.join(dir, 'users_infiniti_20261121-031500.zip'), [['users_infiniti_20261121-031500_0001.xml', usersXml(['a1', 'a2'])]]);
    const run = await runCli(['upload', zip, '--config', configFile]);
    assert.equal(run.code, 10, run.stderr);
    assert.equal(
      run.stderr,
      `sis2alma: host key of 127.0.0.1:${server.port} is ${server.hostKeyFingerprint} (ssh-ed25519), which is not the host_key in the config (${wrong}): connection refused; if the provider gave the fingerprint of another key type, write host_key as ssh-keygen -lf prints it, ending in (RSA), (ECDSA) or (ED25519)\n`,
    );
    assert.deepEqual(readdirSync(server.remoteDir), []);
  });
});

/**
 * The real dir target, with every call on the "server" recorded; `keep` makes the server keep only
 * that many bytes of what it was sent, as a server with a full disk that reports no error would.
 */
function recordedDirTarget(dir: string, keep?: number, afterWrite?: (name: string, writes: number) => void): { target: DeliveryTarget; calls: string[] } {
  const configFile = writeConfig(folder('dir-config'), { target: 'dir', dir, retries: 2, retry_delay_seconds: 0.01 });
  const real = createTarget(loadRunConfig(configFile).delivery);
  const calls: string[] = [];
  const target: DeliveryTarget = {
    label: real.label,
    remotePath: (name) => real.remotePath(name),
    open: async (options) => {
      const s = await real.open(options);
      return {
        list: async () => {
          calls.push('list');
          return s.list();
        },
        write: async (local, name, onProgress) => {
          calls.push(`write ${name}`);
          await s.write(local, name, onProgress);
          if (keep !== undefined) truncateSync(path.join(dir, name), keep);
          afterWrite?.(name, calls.filter((c) => c.startsWith('write ')).length);
        },
        size: async (name) => {
          const size = await s.size(name);
          calls.push(`size ${name} = ${size}`);
          return size;
        },
        remove: async (name) => {
          calls.push(`remove ${name}`);
          await s.remove(name);
        },
        rename: async (from, to) => {
          calls.push(`rename ${from} -> ${to}`);
          await s.rename(from, to);
        },
        close: () => s.close(),
      };
    },
  };
  return { target, calls };
}

describe('upload as .part, check its size, then rename', () => {
  test('the size is checked under the .part name, and only then is it renamed', async () => {
    const alma = folder('alma');
    const zip = await randomZip(path.join(folder('local'), 'a.zip'), 5000);
    const total = readFileSync(zip).length;
    const { target, calls } = recordedDirTarget(alma);
    const config = loadRunConfig(writeConfig(folder('c'), { target: 'dir', dir: alma, retries: 2 })).delivery;
    const result = await deliverTo(target, config, [zip]);
    assert.deepEqual(calls, ['list', 'write a.zip.part', `size a.zip.part = ${total}`, 'rename a.zip.part -> a.zip']);
    assert.deepEqual(readdirSync(alma), ['a.zip']);
    assert.deepEqual(readFileSync(path.join(alma, 'a.zip')), readFileSync(zip));
    assert.deepEqual(result.delivered, [{ file: zip, target: `dir ${alma}`, remote_path: path.join(alma, 'a.zip') }]);
  });

  test('a server that kept fewer bytes: the .part is removed, never renamed, and it is not retried', async () => {
    const alma = folder('alma-short');
    const zip = await randomZip(path.join(folder('local'), 'a.zip'), 5000);
    const total = readFileSync(zip).length;
    const { target, calls } = recordedDirTarget(alma, 100);
    const config = loadRunConfig(writeConfig(folder('c'), { target: 'dir', dir: alma, retries: 2, retry_delay_seconds: 0.01 })).delivery;
    const logger = recordingLogger();
    const error = await rejection(deliverTo(target, config, [zip], { log: logger }));
    assert.equal(error.code, 'delivery_failed');
    assert.equal(error.message, `dir ${alma} kept only 100 of ${total} bytes of ${path.join(alma, 'a.zip.part')} (the disk there may be full or a quota reached)`);
    assert.deepEqual(calls, ['list', 'write a.zip.part', 'size a.zip.part = 100', 'remove a.zip.part']);
    assert.deepEqual(readdirSync(alma), []);
    assert.deepEqual(logger.warns, []);
  });
});

describe('a stop by a signal', () => {
  test('during the size check: the .part is never renamed into view, and the undo step removes it', { timeout: 30_000 }, async () => {
    // A child process, as a real run is: the stop ends it. Its target asks for the stop in the
    // middle of the size check, and its undo step takes a while to connect, so the check answers
    // while the stop is still under way: the rename must not start then.
    const alma = folder('alma-stopped');
    const zip = await randomZip(path.join(folder('local'), 'a.zip'), 5000);
    const configFile = writeConfig(folder('c'), { target: 'dir', dir: alma, retries: 0 });
    const script = path.join(folder('script'), 'stop-during-size.mjs');
    const module = (relative: string) => JSON.stringify(new URL(relative, import.meta.url).href);
    writeFileSync(
      script,
      `import { loadRunConfig } from ${module('../src/config/run-config.js')};
import { createTarget, deliverTo } from ${module('../src/delivery/deliver.js')};
import { stopOnSignals } from ${module('../src/shared/on-stop.js')};
const pause = (ms) => new Promise((r) => setTimeout(r, ms));
stopOnSignals();
const config = loadRunConfig(${JSON.stringify(configFile)}).delivery;
const real = createTarget(config);
let opened = 0;
const target = {
  label: real.label,
  remotePath: (name) => real.remotePath(name),
  open: async (options) => {
    if (++opened > 1) await pause(1500);
    const s = await real.open(options);
    return { ...s, list: () => s.list(), write: (...a) => s.write(...a), remove: (n) => s.remove(n), close: () => s.close(),
      rename: (a, b) => s.rename(a, b),
      size: async (name) => { process.kill(process.pid, 'SIGTERM'); await pause(300); return s.size(name); } };
  },
};
// As the CLI does, a run stopped by a signal leaves the ending to the stop.
await deliverTo(target, config, [${JSON.stringify(zip)}]).catch(() => {});
`,
    );
    const child = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(child.status, 143, child.stderr);
    assert.equal(child.stderr, 'sis2alma: stopped by SIGTERM; temporary and partial files removed, lock released\n');
    assert.deepEqual(readdirSync(alma), []);
  });
});

describe('what is retried', () => {
  test('a .part gone from the server right after its upload is uploaded again, and the retry says why', async () => {
    const alma = folder('alma-gone');
    const zip = await randomZip(path.join(folder('local'), 'a.zip'), 5000);
    const total = readFileSync(zip).length;
    const { target, calls } = recordedDirTarget(alma, undefined, (name, writes) => {
      if (writes === 1) rmSync(path.join(alma, name));
    });
    const config = loadRunConfig(writeConfig(folder('c'), { target: 'dir', dir: alma, retries: 2, retry_delay_seconds: 0.01 })).delivery;
    const logger = recordingLogger();
    await deliverTo(target, config, [zip], { log: logger });
    assert.deepEqual(calls, ['list', 'write a.zip.part', 'size a.zip.part = undefined', 'write a.zip.part', `size a.zip.part = ${total}`, 'rename a.zip.part -> a.zip']);
    assert.deepEqual(logger.warns, [`${path.join(alma, 'a.zip.part')} was gone from dir ${alma} right after the upload; retry 1 of 2 in 0.01 s`]);
    assert.deepEqual(readdirSync(alma), ['a.zip']);

    // With no retry left, that is the delivery's failure, as it is.
    const empty = folder('alma-gone-again');
    const gone = recordedDirTarget(empty, undefined, (name) => rmSync(path.join(empty, name)));
    const once = loadRunConfig(writeConfig(folder('c'), { target: 'dir', dir: empty, retries: 0 })).delivery;
    const error = await rejection(deliverTo(gone.target, once, [zip]));
    assert.deepEqual([error.code, error.message], ['delivery_failed', `${path.join(empty, 'a.zip.part')} was gone from dir ${empty} right after the upload`]);
  });

  test('a delivery is no dry run: create_dir makes the missing folder, and the zip is delivered into it', async () => {
    const alma = path.join(folder('alma-create'), 'in', 'users');
    const zip = await randomZip(path.join(folder('local'), 'a.zip'), 100);
    const config = loadRunConfig(writeConfig(folder('c'), { target: 'dir', dir: alma, create_dir: true, retries: 0 })).delivery;
    const result = await deliverZips(config, [zip]);
    assert.deepEqual(readdirSync(alma), ['a.zip']);
    assert.deepEqual(result.delivered.map((d) => d.remote_path), [path.join(alma, 'a.zip')]);
  });

  test('a failure that is not a delivery error (a fault of the target) is not retried, and is named as the step that failed', async () => {
    const alma = folder('alma-fault');
    const zip = await randomZip(path.join(folder('local'), 'a.zip'), 100);
    const { target, calls } = recordedDirTarget(alma, undefined, () => {
      throw new Error('boom\nsecond line');
    });
    const config = loadRunConfig(writeConfig(folder('c'), { target: 'dir', dir: alma, retries: 2, retry_delay_seconds: 0.01 })).delivery;
    const logger = recordingLogger();
    const error = await rejection(deliverTo(target, config, [zip], { log: logger }));
    assert.equal(error.code, 'delivery_failed');
    assert.equal(error.message, `uploading a.zip at dir ${alma} failed: boom`);
    assert.deepEqual(calls, ['list', 'write a.zip.part']);
    assert.deepEqual(logger.warns, []);
  });
});

describe('retries', () => {
  test('the wait before each retry doubles from retry_delay_seconds', async () => {
    const dir = folder('backoff');
    const port = await freePort();
    writeFileSync(path.join(dir, 'password'), 'not used: the connection is refused first\n', { mode: 0o600 });
    const config = loadRunConfig(
      writeConfig(dir, { target: 'sftp', host: '127.0.0.1', port, username: 'alma', password_file: 'password', host_key: `SHA256:${'A'.repeat(43)}`, remote_dir: '/upload', retries: 3, retry_delay_seconds: 0.25 }),
    );
    const waits: number[] = [];
    const logger = recordingLogger();
    const error = await rejection(deliverZips(config.delivery, [await randomZip(path.join(dir, 'a.zip'), 100)], { log: logger, sleep: async (ms) => void waits.push(ms) }));
    assert.deepEqual(waits, [250, 500, 1000]);
    assert.equal(error.message, `127.0.0.1:${port} refused the connection (is the SFTP server running there, and is the port right?) (gave up after 4 attempts)`);
    assert.equal(logger.warns.length, 3);
  });
});
