// Nothing left behind: the real CLI, stopped by real signals in the middle of its work, removes
// its temporary folder, its partial files, its lock and the `.part` on a real sshd, prints one
// line and ends with 128 + the signal's number; two live runs of one config never both proceed.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { constants } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { generate } from '../bench/generate.js';
import { LOCK_FILE } from '../src/job/lock.js';
import { PACKAGE_ROOT } from '../src/shared/paths.js';
import { CLI, NOW } from './helpers/run-cli.js';
import { startSshd, sshdMissing, freePort, type SshServer } from './helpers/sshd.js';
import { makeTempDir } from './helpers/tmp.js';
import { toolMissing } from './helpers/tools.js';

const MAPPING = path.join(PACKAGE_ROOT, 'mappings', 'university.yaml');
const missingSshd = toolMissing(sshdMissing());

interface Started {
  child: ChildProcess;
  tmp: string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string }>;
}

/** The real CLI with a TMPDIR of its own, so that the test sees every temporary folder it makes. */
function start(args: string[], env: NodeJS.ProcessEnv = {}): Started {
  const tmp = makeTempDir('sis2alma-life-tmp-');
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, TMPDIR: tmp, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (t: string) => (stdout += t));
  child.stderr!.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stderr, stdout })),
  );
  return { child, tmp, done };
}

/** Waits until `seen` holds, or fails when the process ended first (the signal must land mid-work). */
async function waitFor(run: Started, what: string, seen: () => boolean): Promise<void> {
  let ended = false;
  void run.done.then(() => (ended = true));
  for (;;) {
    if (seen()) return;
    if (ended) {
      const r = await run.done;
      assert.fail(`the run ended (code ${r.code}) before ${what}; stderr: ${r.stderr}`);
    }
    await sleep(5);
  }
}

const batchesIn = (tmp: string) => readdirSync(tmp).filter((d) => d.startsWith('sis2alma-')).some((d) => readdirSync(path.join(tmp, d)).some((f) => /^batch-\d+\.xml$/.test(f)));
const safeList = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);

/** Processes whose command line names `text` (the validators are started with the schema's path). */
function processesNaming(text: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmdline.includes(text)) out.push(`${pid}: ${cmdline}`);
    } catch {
      /* ended while we looked */
    }
  }
  return out;
}

/** CPU time a process has used, from /proc/PID/stat (utime + stime, in clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

async function assertStopped(run: Started, signal: NodeJS.Signals, outDir: string): Promise<void> {
  const r = await run.done;
  assert.equal(r.code, 128 + constants.signals[signal], `exit code; stderr: ${r.stderr}`);
  assert.deepEqual(r.stderr.split('\n').filter(Boolean), [`sis2alma: stopped by ${signal}; temporary and partial files removed, lock released`]);
  assert.deepEqual(readdirSync(run.tmp), [], 'no temporary folder is left in TMPDIR');
  assert.deepEqual(safeList(outDir).filter((f) => f.endsWith('.tmp') || f.endsWith('.partial') || f === LOCK_FILE), [], 'no partial file and no lock in the output folder');
}

/**
 * A TCP relay to sshd that passes the client's bytes at `bytesPerSecond`, as a slow link to the
 * provider would: an upload then lasts long enough for a signal to land in it.
 */
async function slowLink(port: number, bytesPerSecond: number): Promise<{ port: number; close: () => void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    upstream.pipe(client);
    client.on('data', (chunk: Buffer) => {
      client.pause();
      upstream.write(chunk);
      setTimeout(() => client.resume(), (chunk.length / bytesPerSecond) * 1000);
    });
    client.on('end', () => upstream.end());
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  const listen = await freePort();
  await new Promise<void>((resolve) => server.listen(listen, '127.0.0.1', resolve));
  return {
    port: listen,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

describe('a run stopped by a signal leaves nothing behind', () => {
  let data: string[];
  let schema: string;
  before(async () => {
    const dir = makeTempDir('sis2alma-life-data-');
    data = (await generate({ rows: 40_000, seed: 12, outDir: dir })).files;
    // A copy of the schema whose path only this test's validators name in their command lines.
    schema = path.join(dir, 'lifecycle-alma-users.xsd');
    copyFileSync(path.join(PACKAGE_ROOT, 'schemas', 'alma_users.xsd'), schema);
  });

  for (const [signal, validator] of [['SIGTERM', 'xmllint'], ['SIGINT', 'libxmljs2']] as const) {
    test(`convert, ${signal} while ${validator} validates: no temporary folder, no partial file, no validator left running`, async () => {
      const out = path.join(makeTempDir('sis2alma-life-out-'), 'out');
      const run = start(['convert', '--mapping', MAPPING, ...data.flatMap((f) => ['--input', f]), '--out', out, '--now', NOW, '--schema', schema, '--max-rejected', '50%'], { SIS2ALMA_VALIDATOR: validator });
      await waitFor(run, 'its first batch went to the validator', () => batchesIn(run.tmp) && safeList(out).some((f) => f.endsWith('.details.tmp')));
      run.child.kill(signal);
      await assertStopped(run, signal, out);
      assert.deepEqual(safeList(out).filter((f) => f.endsWith('.zip')), [], 'no zip under a final name');
      assert.deepEqual(processesNaming(schema), [], 'the validators ended with the run');
    });
  }

  test('run, SIGHUP while converting: the lock is released with the rest', async () => {
    const root = makeTempDir('sis2alma-life-run-');
    const out = path.join(root, 'out');
    const config = path.join(root, 'config.yaml');
    writeFileSync(config, `mapping: ${MAPPING}\ninputs: [${data.join(', ')}]\noutput_dir: out\nguards: { max_rejected: "50%" }\ndelivery: { target: dir, dir: delivered, create_dir: true }\n`);
    const run = start(['run', '--config', config, '--now', NOW]);
    await waitFor(run, 'it held the lock and validated', () => batchesIn(run.tmp) && existsSync(path.join(out, LOCK_FILE)));
    run.child.kill('SIGHUP');
    await assertStopped(run, 'SIGHUP', out);
    assert.deepEqual(safeList(path.join(root, 'delivered')), []);
  });

  test('mapping explain, SIGINT mid-way: one line, exit 130', async () => {
    const run = start(['mapping', 'explain', '--mapping', MAPPING, ...data.flatMap((f) => ['--input', f]), '--now', NOW]);
    // explain prints only at its end; its CPU time says it is past starting up and at work.
    await waitFor(run, 'it had worked for a second of CPU', () => cpuSeconds(run.child.pid!) >= 1);
    run.child.kill('SIGINT');
    const r = await run.done;
    assert.equal(r.code, 130, r.stderr);
    assert.deepEqual(r.stderr.split('\n').filter(Boolean), ['sis2alma: stopped by SIGINT; temporary and partial files removed, lock released']);
    assert.equal(r.stdout, '', 'nothing of the explanation is printed once stopped');
  });

  test('two live runs of one config: the second exits 9 and leaves the first to finish', async () => {
    const root = makeTempDir('sis2alma-life-two-');
    const out = path.join(root, 'out');
    const config = path.join(root, 'config.yaml');
    writeFileSync(config, `mapping: ${MAPPING}\ninputs: [${data.join(', ')}]\noutput_dir: out\nguards: { max_rejected: "50%" }\ndelivery: { target: dir, dir: delivered, create_dir: true }\n`);
    const first = start(['run', '--config', config, '--now', NOW]);
    await waitFor(first, 'it held the lock', () => existsSync(path.join(out, LOCK_FILE)) && readFileSync(path.join(out, LOCK_FILE), 'utf8') !== '');
    const second = start(['run', '--config', config, '--now', NOW, '--quiet']);
    const r2 = await second.done;
    assert.equal(r2.code, 9, r2.stderr);
    assert.equal(r2.stderr, `sis2alma: another sis2alma run (pid ${first.child.pid}, started 2026-11-21T02:00:00.000Z) is using ${out}: it holds the lock ${path.join(out, LOCK_FILE)}\n`.replace('2026-11-21T02:00:00.000Z', new Date(NOW).toISOString()));
    const r1 = await first.done;
    assert.equal(r1.code, 0, r1.stderr);
    assert.ok(!existsSync(path.join(out, LOCK_FILE)));
  });
});

describe('a delivery stopped by a signal leaves no .part on the server', { skip: missingSshd }, () => {
  let server: SshServer;
  let link: { port: number; close: () => void };
  let root: string;
  let config: string;
  before(async () => {
    server = await startSshd();
    link = await slowLink(server.port, 256 * 1024);
    root = makeTempDir('sis2alma-life-sftp-');
    const data = (await generate({ rows: 10_000, seed: 13, outDir: path.join(root, 'data') })).files;
    config = path.join(root, 'config.yaml');
    writeFileSync(
      config,
      [
        `mapping: ${MAPPING}`,
        `inputs: [${data.join(', ')}]`,
        'output_dir: out',
        'guards: { max_rejected: "50%" }',
        'delivery:',
        '  target: sftp',
        `  host: ${server.host}`,
        `  port: ${link.port}`,
        `  username: ${server.user}`,
        `  private_key_file: ${server.clientKey}`,
        `  host_key: "${server.hostKeyFingerprint}"`,
        `  remote_dir: ${server.remoteDir}`,
        '  stale: report',
        '',
      ].join('\n'),
    );
  });
  after(async () => {
    link?.close();
    await server?.dispose();
  });
  const uploading = () => readdirSync(server.remoteDir).some((f) => f.endsWith('.zip.part'));

  test('run, SIGTERM mid-upload: the .part is removed from the server, the zip stays in output_dir', async () => {
    const run = start(['run', '--config', config, '--now', NOW]);
    await waitFor(run, 'the upload began', uploading);
    run.child.kill('SIGTERM');
    await assertStopped(run, 'SIGTERM', path.join(root, 'out'));
    assert.deepEqual(readdirSync(server.remoteDir), [], 'nothing on the server');
    assert.equal(readdirSync(path.join(root, 'out')).filter((f) => f.endsWith('.zip')).length, 1, 'the zip waits in output_dir for upload');
  });

  test('upload, SIGHUP mid-upload: the .part is removed from the server', async () => {
    const zip = readdirSync(path.join(root, 'out')).find((f) => f.endsWith('.zip'));
    assert.ok(zip, 'the stopped run left its zip');
    const run = start(['upload', path.join(root, 'out', zip), '--config', config]);
    await waitFor(run, 'the upload began', uploading);
    run.child.kill('SIGHUP');
    await assertStopped(run, 'SIGHUP', path.join(root, 'out'));
    assert.deepEqual(readdirSync(server.remoteDir), [], 'nothing on the server');
  });
});


