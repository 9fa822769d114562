// The push endpoint over real HTTP(S) on 127.0.0.1: the exact curl command schools run (with -k
// for the test certificate, made here by openssl) and Node's fetch. Each case checks the status,
// the JSON answer, and what reached the `dir` delivery target.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { checkServeConfig, loadServeConfig, parseBytes } from '../src/serve/config.js';
import { startServer, type RunningServer } from '../src/serve/server.js';
import { LoginGate, LoginThrottle } from '../src/serve/login.js';
import { hashPassword, verifyPassword, checkPasswordHash } from '../src/serve/passwd.js';
import { readPassword } from '../src/commands/passwd.js';
import type { Logger } from '../src/shared/log.js';
import { RunError } from '../src/shared/errors.js';
import { readZip } from './helpers/zip.js';
import { CLI, INFINITI_MAPPING, runCli } from './helpers/run-cli.js';
import { toolMissing } from './helpers/tools.js';
import { untimed } from './helpers/log-lines.js';
import { PACKAGE_ROOT, SERVE_CONFIG_JSON_SCHEMA } from '../src/shared/paths.js';
import { jsonSchemaText, staleJsonSchemas } from '../src/config/json-schema.js';
import { serveConfigSchema } from '../src/config/shape.js';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';

const work = mkdtempSync(path.join(os.tmpdir(), 'sis2alma-serve-'));
after(() => rmSync(work, { recursive: true, force: true }));

const USER = 'infiniti';
const PASSWORD = 'correct horse battery staple';
let passwordHash = '';
const EXAMPLE_CSV = readFileSync(path.join(path.dirname(INFINITI_MAPPING), '..', 'examples', 'infiniti-users.csv'), 'utf8');
const HEADER = EXAMPLE_CSV.split('\n')[0]!;
/** The example's rows that map cleanly (rows 3 and 5 are one person, merged). */
/** What a push's summary says when its account has no delivered push yet (the run state, test/serve-state.test.ts). */
const FIRST = "First night: no earlier delivery in the run state to compare with; tonight's users become the state once delivered.";
const GOOD_CSV = EXAMPLE_CSV.split('\n').filter((line) => !/^(estu4|fstu5),/.test(line)).join('\n');

let cert: { cert: string; key: string } | undefined;

before(async () => {
  passwordHash = await hashPassword(PASSWORD);
  const dir = path.join(work, 'tls');
  mkdirSync(dir);
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'pipe' });
  if (made.status === 0) {
    chmodSync(path.join(dir, 'key.pem'), 0o600);
    cert = { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') };
  }
});

interface Site {
  dir: string;
  out: string;
  alma: string;
  archive: string;
  configFile: string;
  server: RunningServer;
  url: string;
  lines: string[];
  auth: string;
}

let counter = 0;
const open: RunningServer[] = [];
after(async () => {
  for (const s of open) await s.close();
});

/** A run config with a `serve:` section and a `dir` target, and a server started from it. */
async function site(options: { tls?: boolean; maxBytes?: number; almaDir?: string; extra?: string; stale?: string; now?: () => Date; throttle?: LoginThrottle; gate?: LoginGate } = {}): Promise<Site> {
  const dir = path.join(work, `site-${++counter}`);
  mkdirSync(dir);
  const alma = options.almaDir ?? path.join(dir, 'alma');
  if (!options.almaDir) mkdirSync(alma);
  const tls = options.tls && cert ? `  tls:\n    cert_file: ${cert.cert}\n    key_file: ${cert.key}\n` : '';
  const configFile = path.join(dir, 'config.yaml');
  writeFileSync(
    configFile,
    [
      `mapping: ${INFINITI_MAPPING}`,
      'output_dir: out',
      'archive: { dir: archive }',
      'delivery:',
      '  target: dir',
      `  dir: ${alma}`,
      '  retries: 0',
      ...(options.stale ? [`  stale: ${options.stale}`] : []),
      'serve:',
      '  host: 127.0.0.1',
      '  port: 0',
      tls + '  accounts:',
      `    - username: ${USER}`,
      `      password_hash: "${passwordHash}"`,
      ...(options.maxBytes ? [`  max_request_bytes: ${options.maxBytes}`] : []),
      ...(options.extra ? [options.extra] : []),
      '',
    ].join('\n'),
  );
  const lines: string[] = [];
  const log: Logger = { info: (m) => lines.push(m), warn: (m) => lines.push(m), id: (v) => v };
  const { now, throttle, gate } = options;
  const server = await startServer(loadServeConfig(configFile), { log, ...(now ? { now } : {}), ...(throttle ? { throttle } : {}), ...(gate ? { gate } : {}) });
  open.push(server);
  return {
    dir,
    out: path.join(dir, 'out'),
    alma,
    archive: path.join(dir, 'archive'),
    configFile,
    server,
    url: `${server.url}/api/import/users`,
    lines,
    auth: 'Basic ' + Buffer.from(`${USER}:${PASSWORD}`).toString('base64'),
  };
}

function zipsIn(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.zip')).sort() : [];
}

async function primaryIds(zip: string): Promise<string[]> {
  const ids: string[] = [];
  for (const entry of await readZip(zip)) for (const m of entry.text.matchAll(/<primary_id>([^<]*)<\/primary_id>/g)) ids.push(m[1]!);
  return ids.sort();
}

/** The reports kept in the archive, one per import. */
function archivedReports(s: Site): Record<string, unknown>[] {
  if (!existsSync(s.archive)) return [];
  return readdirSync(s.archive)
    .sort()
    .flatMap((folder) => readdirSync(path.join(s.archive, folder)).filter((f) => f.endsWith('.report.json')).map((f) => JSON.parse(readFileSync(path.join(s.archive, folder, f), 'utf8')) as Record<string, unknown>));
}

function form(csv: string, name = 'users.csv', field = 'file'): FormData {
  const body = new FormData();
  body.append(field, new Blob([csv], { type: 'text/csv' }), name);
  return body;
}

async function post(s: Site, body: FormData | undefined, headers: Record<string, string> = { authorization: s.auth }): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(s.url, { method: 'POST', headers, ...(body ? { body } : {}) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

function curl(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

const noCurl = toolMissing(spawnSync('curl', ['--version'], { stdio: 'ignore' }).error ? 'curl is not installed (Debian package curl)' : undefined);
const noOpenssl = toolMissing(spawnSync('openssl', ['version'], { stdio: 'ignore' }).error ? 'openssl is not installed (Debian package openssl)' : undefined);

describe('POST /api/import/users', () => {
  test('curl, the exact command schools run, over HTTPS: every row imported and delivered', { skip: noCurl ?? noOpenssl }, async () => {
    assert.ok(cert, 'openssl could not make a test certificate');
    const s = await site({ tls: true });
    writeFileSync(path.join(s.dir, 'users.csv'), GOOD_CSV);
    const port = s.server.port;
    const result = await curl(['-k', '-X', 'POST', '-F', 'file=@users.csv', `https://${USER}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${port}/api/import/users`], s.dir);
    assert.equal(result.code, 0, result.stderr);
    const body = JSON.parse(result.stdout) as Record<string, unknown>;
    const zips = zipsIn(s.alma);
    assert.equal(zips.length, 1);
    assert.deepEqual(body, { success: true, summary: `6 rows processed. 5 users written. 1 row merged. 0 rows failed. ${FIRST} Delivered to Alma as ${zips[0]}.` });
    assert.deepEqual(await primaryIds(path.join(s.alma, zips[0]!)), ['astu1', 'bstu2', 'cstaff1', 'dstu3', 'gstu6']);
    // The log line has the status and counts, and no patron data.
    const line = s.lines.find((l) => l.includes('import by'));
    assert.match(line ?? '', /^import by "infiniti" from 127\.0\.0\.1, \d+ bytes: 200, rows 6, users 5, merged 1, rejected 0; delivered users_infiniti_\d{8}-\d{6}\.zip/);
    assert.doesNotMatch(s.lines.join('\n'), /astu1|Aroha|school\.example/);
    const reports = archivedReports(s);
    assert.equal(reports.length, 1);
    assert.deepEqual((reports[0]!.push as Record<string, unknown>).account, USER);
    assert.equal((reports[0]!.push as Record<string, unknown>).file_name, 'users.csv');
    assert.deepEqual(readdirSync(s.out).filter((f) => f.startsWith('.upload-')), [], 'the upload is removed');
  });

  test('curl with a wrong password: 401 with the Infiniti answer, nothing delivered', { skip: noCurl }, async () => {
    const s = await site();
    writeFileSync(path.join(s.dir, 'users.csv'), GOOD_CSV);
    const result = await curl(['-s', '-w', '\n%{http_code}', '-X', 'POST', '-F', 'file=@users.csv', `http://${USER}:wrong-password@127.0.0.1:${s.server.port}/api/import/users`], s.dir);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trim().split('\n');
    assert.equal(lines.at(-1), '401');
    assert.deepEqual(JSON.parse(lines[0]!), { success: false, summary: 'Unauthorised. Check credentials.' });
    assert.deepEqual(zipsIn(s.alma), []);
    assert.equal(existsSync(s.out) ? readdirSync(s.out).length : 0, 0);
  });

  test('some rows fail: 200, success false, details by row number, the good rows delivered', async () => {
    const s = await site();
    const { status, json } = await post(s, form(EXAMPLE_CSV));
    assert.equal(status, 200);
    const zips = zipsIn(s.alma);
    assert.equal(zips.length, 1);
    assert.equal(json.success, false);
    assert.equal(json.summary, `8 rows processed. 5 users written. 1 row merged. 2 rows failed. ${FIRST} Delivered to Alma as ${zips[0]}.`);
    const details = json.details as Record<string, string>;
    assert.deepEqual(Object.keys(details).sort(), ['1', '2', '3', '4', '5', '6', '7', '8']);
    assert.match(details['6']!, /^Rejected: Field \(emailaddress\) is not a well-formed email address/);
    assert.match(details['7']!, /^Rejected: Field \(gender\)/);
    assert.equal(details['1'], 'User written');
    assert.deepEqual(await primaryIds(path.join(s.alma, zips[0]!)), ['astu1', 'bstu2', 'cstaff1', 'dstu3', 'gstu6']);
    assert.match(s.lines.join('\n'), /: 200, rows 8, users 5, merged 1, rejected 2;/);
    assert.equal(archivedReports(s).length, 1);
  });

  test('a push guard that trips: 200, success false, nothing delivered, the report archived', async () => {
    const s = await site({ extra: '  guards: { max_rejected: 1 }' });
    const { status, json } = await post(s, form(EXAMPLE_CSV));
    assert.equal(status, 200);
    assert.equal(json.success, false);
    assert.match(String(json.summary), /^8 rows processed\. 5 users written\. 1 row merged\. 2 rows failed\. Not delivered: 2 of 8 rows were rejected/);
    assert.match((json.details as Record<string, string>)['6']!, /emailaddress/);
    assert.deepEqual(zipsIn(s.alma), []);
    const reports = archivedReports(s);
    assert.equal(reports.length, 1);
    assert.equal((reports[0]!.guard as { guard: string }).guard, 'max_rejected');
  });

  test('an empty import (header only, or no bytes at all) succeeds with 0 users and delivers nothing', async () => {
    const s = await site();
    for (const csv of [HEADER + '\r\n', '']) {
      const { status, json } = await post(s, form(csv, 'empty.csv', 'upload'));
      assert.equal(status, 200);
      assert.deepEqual(json, { success: true, summary: `0 rows processed. 0 users written. 0 rows merged. 0 rows failed. ${FIRST}` });
    }
    assert.deepEqual(zipsIn(s.alma), []);
    const reports = archivedReports(s);
    assert.equal(reports.length, 2, 'each import keeps its report');
    assert.deepEqual(reports.map((r) => (r.push as { bytes: number }).bytes).sort(), [0, HEADER.length + 2].sort());
  });

  test('missing, malformed or unknown credentials: 401, and the upload is never read', async () => {
    const s = await site();
    const cases: Record<string, string>[] = [
      {},
      { authorization: 'Basic ' + Buffer.from(`${USER}:not-it`).toString('base64') },
      { authorization: 'Basic ' + Buffer.from(`nobody:${PASSWORD}`).toString('base64') },
      { authorization: 'Bearer abc' },
    ];
    // Separate addresses would not be slowed; one address is, so this also passes through the wait.
    for (const headers of cases) {
      const res = await post(s, form(GOOD_CSV), headers);
      assert.equal(res.status, 401);
      assert.deepEqual(res.json, { success: false, summary: 'Unauthorised. Check credentials.' });
      assert.match(res.headers.get('www-authenticate') ?? '', /^Basic realm="sis2alma"/);
    }
    assert.deepEqual(zipsIn(s.alma), []);
    assert.equal(s.lines.filter((l) => /^refused login from 127\.0\.0\.1: 401$/.test(l)).length, 4);
  });

  test('parallel guesses from one address: one is checked at a time, the others get 429 at once with Retry-After and cost no hash', async () => {
    // The address failed a moment ago, so the guess whose turn it is waits a minute before its hash.
    const throttle = new LoginThrottle(60_000, 60_000);
    throttle.failed('127.0.0.1', Date.now());
    const gate = new LoginGate();
    const s = await site({ throttle, gate });
    const guess = (i: number) => ({ authorization: 'Basic ' + Buffer.from(`${USER}:guess-${i}`).toString('base64') });
    const aborts = Array.from({ length: 20 }, () => new AbortController());
    const answers: string[] = [];
    const sent = aborts.map((abort, i) =>
      fetch(s.url, { method: 'POST', headers: guess(i), body: form(GOOD_CSV), signal: abort.signal }).then(
        async (res) => answers.push(`${res.status} Retry-After: ${res.headers.get('retry-after')} ${JSON.stringify(await res.json())}`),
        () => {},
      ),
    );
    for (let i = 0; i < 400 && answers.length < 19; i++) await new Promise((r) => setTimeout(r, 25));
    const refused = '429 Retry-After: 60 {"success":false,"summary":"Another login from this address is being checked. Send one request at a time."}';
    assert.deepEqual(answers, Array.from({ length: 19 }, () => refused));
    // The one in its wait gives up: no password was hashed for any of the twenty.
    for (const abort of aborts) abort.abort();
    await Promise.all(sent);
    for (let i = 0; i < 400 && !s.lines.some((l) => /closed the connection before its password was checked/.test(l)); i++) await new Promise((r) => setTimeout(r, 25));
    assert.equal(answers.length, 19);
    assert.equal(gate.hashes, 0);
    assert.equal(s.lines.filter((l) => /^refused login from 127\.0\.0\.1: 429, another login from this address is being checked$/.test(l)).length, 19);
    assert.equal(s.lines.filter((l) => /^login from 127\.0\.0\.1: the client closed the connection before its password was checked$/.test(l)).length, 1);
  });

  test('guesses from many addresses at once: the hashes run one at a time here, and those beyond the line get 503 without one', async () => {
    const gate = new LoginGate(1, 3);
    const s = await site({ gate, extra: '  trust_proxy: true' });
    // Half unknown names, half wrong passwords: each costs a hash, 401 either way.
    const answers = await Promise.all(
      Array.from({ length: 16 }, async (_, i) => {
        const auth = 'Basic ' + Buffer.from(i % 2 ? `${USER}:guess-${i}` : `nobody-${i}:${PASSWORD}`).toString('base64');
        const res = await fetch(s.url, { method: 'POST', headers: { authorization: auth, 'x-forwarded-for': `198.51.100.${i + 1}` }, body: form(GOOD_CSV) });
        return `${res.status} ${res.headers.get('retry-after')} ${JSON.stringify(await res.json())}`;
      }),
    );
    const wrong = '401 null {"success":false,"summary":"Unauthorised. Check credentials."}';
    const busy = '503 1 {"success":false,"summary":"The server is checking too many logins. Try again shortly."}';
    assert.deepEqual(answers.filter((a) => a !== wrong && a !== busy), []);
    assert.equal(gate.peak, 1, 'one hash at a time');
    assert.equal(gate.hashes, answers.filter((a) => a === wrong).length, 'every 401 cost one hash, every 503 none');
    assert.deepEqual(zipsIn(s.alma), []);
  });

  test('no file part, or not multipart at all: 400, nothing delivered', async () => {
    const s = await site();
    const fields = new FormData();
    fields.append('file', GOOD_CSV); // a text field, not a file
    const none = await post(s, fields);
    assert.equal(none.status, 400);
    assert.equal(none.json.success, false);
    assert.match(String(none.json.summary), /^No file was sent/);
    const plain = await fetch(s.url, { method: 'POST', headers: { authorization: s.auth, 'content-type': 'text/csv' }, body: GOOD_CSV });
    assert.equal(plain.status, 400);
    assert.match(String(((await plain.json()) as { summary: string }).summary), /multipart\/form-data/);
    assert.deepEqual(zipsIn(s.alma), []);
  });

  test('a file that is not the expected CSV: 400 naming the upload, not a server path', async () => {
    const s = await site();
    const { status, json } = await post(s, form('name,email\nA,a@example.org\n', 'wrong.csv'));
    assert.equal(status, 400);
    assert.equal(json.success, false);
    assert.match(String(json.summary), /^The file could not be read: "wrong\.csv": the header lacks the required columns username, enabled, staffmember/);
    assert.doesNotMatch(String(json.summary), /\.upload-/);
    assert.deepEqual(zipsIn(s.alma), []);
  });

  test('over the size limit: 413, by Content-Length or while streaming; the partial upload is removed', async () => {
    const s = await site({ maxBytes: 4096 });
    const big = GOOD_CSV + (GOOD_CSV.split('\n')[1]! + '\n').repeat(200);
    const announced = await post(s, form(big));
    assert.equal(announced.status, 413);
    assert.equal(announced.json.success, false);
    assert.match(String(announced.json.summary), /larger than this server accepts \(4 KB\)/);

    // Chunked, with no Content-Length: the limit is found while reading.
    const boundary = 'sis2alma-test-boundary';
    const chunks = [`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="users.csv"\r\nContent-Type: text/csv\r\n\r\n`, ...Array.from({ length: 40 }, () => big.slice(0, 1024)), `\r\n--${boundary}--\r\n`];
    const res = await fetch(s.url, {
      method: 'POST',
      headers: { authorization: s.auth, 'content-type': `multipart/form-data; boundary=${boundary}` },
      body: Readable.toWeb(Readable.from(chunks.map((c) => Buffer.from(c)))) as ReadableStream,
      duplex: 'half',
    } as RequestInit);
    assert.equal(res.status, 413);
    assert.match(String(((await res.json()) as { summary: string }).summary), /larger than this server accepts/);
    assert.deepEqual(zipsIn(s.alma), []);
    assert.deepEqual(readdirSync(s.out).filter((f) => f.startsWith('.upload-')), []);
  });

  test('two imports at once: the second gets 409, the first is imported', async () => {
    const s = await site();
    const boundary = 'sis2alma-slow-upload';
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    async function* slowBody() {
      yield Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="users.csv"\r\n\r\n${GOOD_CSV.slice(0, 200)}`);
      await released;
      yield Buffer.from(`${GOOD_CSV.slice(200)}\r\n--${boundary}--\r\n`);
    }
    const first = fetch(s.url, {
      method: 'POST',
      headers: { authorization: s.auth, 'content-type': `multipart/form-data; boundary=${boundary}` },
      body: Readable.toWeb(Readable.from(slowBody())) as ReadableStream,
      duplex: 'half',
    } as RequestInit);
    // The first holds the lock once its upload file exists.
    for (let i = 0; i < 200 && !(existsSync(s.out) && readdirSync(s.out).some((f) => f.startsWith('.upload-'))); i++) await new Promise((r) => setTimeout(r, 25));
    assert.ok(readdirSync(s.out).some((f) => f.startsWith('.upload-')), 'the first upload has started');

    const second = await post(s, form(GOOD_CSV));
    assert.equal(second.status, 409);
    assert.deepEqual(second.json, { success: false, summary: 'Another import of this source is running. Try again when it has finished.' });

    release();
    const res = await first;
    assert.equal(res.status, 200);
    const json = (await res.json()) as { success: boolean; summary: string };
    assert.equal(json.success, true);
    const zips = zipsIn(s.alma);
    assert.equal(zips.length, 1);
    assert.deepEqual(await primaryIds(path.join(s.alma, zips[0]!)), ['astu1', 'bstu2', 'cstaff1', 'dstu3', 'gstu6']);

    // Once the first is done, the next push goes through.
    const third = await post(s, form(HEADER + '\n'));
    assert.equal(third.status, 200);
  });

  test('an upload that does not finish in time: 408, and the next push goes through', async () => {
    const s = await site({ extra: '  request_timeout_seconds: 1' });
    const boundary = 'sis2alma-stalled-upload';
    const stalled = new ReadableStream({
      start(controller) {
        controller.enqueue(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="users.csv"\r\n\r\n${HEADER}\r\n`));
      },
    });
    const res = await fetch(s.url, { method: 'POST', headers: { authorization: s.auth, 'content-type': `multipart/form-data; boundary=${boundary}` }, body: stalled, duplex: 'half' } as RequestInit);
    assert.equal(res.status, 408);
    assert.deepEqual(await res.json(), { success: false, summary: 'The upload took longer than 1 second and was stopped.' });
    assert.deepEqual(readdirSync(s.out).filter((f) => f.startsWith('.upload-')), []);
    const next = await post(s, form(GOOD_CSV));
    assert.equal(next.status, 200);
    assert.equal(zipsIn(s.alma).length, 1);
  });

  test('a client that hangs up during the upload leaves no upload and no lock behind', async () => {
    const s = await site();
    const boundary = 'sis2alma-abandoned-upload';
    const abort = new AbortController();
    const body = new ReadableStream({
      start(controller) {
        controller.enqueue(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="users.csv"\r\n\r\n${GOOD_CSV.slice(0, 100)}`));
      },
    });
    const pending = fetch(s.url, { method: 'POST', headers: { authorization: s.auth, 'content-type': `multipart/form-data; boundary=${boundary}` }, body, duplex: 'half', signal: abort.signal } as RequestInit);
    for (let i = 0; i < 200 && !(existsSync(s.out) && readdirSync(s.out).some((f) => f.startsWith('.upload-'))); i++) await new Promise((r) => setTimeout(r, 25));
    abort.abort();
    await assert.rejects(pending);
    for (let i = 0; i < 200 && !s.lines.some((l) => /closed the connection/.test(l)); i++) await new Promise((r) => setTimeout(r, 25));
    assert.ok(s.lines.some((l) => /^import by "infiniti" from 127\.0\.0\.1: the client closed the connection during the upload$/.test(l)), s.lines.join('\n'));
    const next = await post(s, form(GOOD_CSV));
    assert.equal(next.status, 200);
    assert.deepEqual(readdirSync(s.out).filter((f) => f.startsWith('.upload-')), []);
  });

  test('stale: report: the import line says how many zips were waiting in Alma\'s folder, naming three at most', async () => {
    let minute = 0;
    const s = await site({ stale: 'report', now: () => new Date(Date.UTC(2026, 10, 21, 15, minute++)) });
    for (let i = 0; i < 5; i++) assert.equal((await post(s, form(GOOD_CSV))).status, 200);
    const zips = zipsIn(s.alma);
    assert.equal(zips.length, 5);
    const imports = s.lines.filter((l) => l.startsWith('import by '));
    assert.equal(imports.length, 5);
    assert.doesNotMatch(imports[0]!, /waiting/);
    assert.match(imports[1]!, new RegExp(`; delivered ${zips[1]}; 1 zip Alma had not loaded yet was waiting in ${s.alma} \\(left for Alma to load\\): ${zips[0]}; report in `));
    assert.match(imports[4]!, new RegExp(`; delivered ${zips[4]}; 4 zips Alma had not loaded yet were waiting in ${s.alma} \\(left for Alma to load\\): ${zips[0]}, ${zips[1]}, \\.\\.\\. \\(1 more\\), ${zips[3]}; report in `));
    // No other line lists them, and none says `dir X:X`.
    assert.deepEqual(s.lines.filter((l) => !l.startsWith('import by ')), []);
  });

  test('the delivery fails: 502 with the JSON answer, and the report is still archived', async () => {
    const s = await site({ almaDir: path.join(work, 'no-such-folder') });
    const { status, json } = await post(s, form(GOOD_CSV));
    assert.equal(status, 502);
    assert.equal(json.success, false);
    assert.match(String(json.summary), /^6 rows processed\. 5 users written\. 1 row merged\. 0 rows failed\. First night: [^.]*; tonight's users become the state once delivered\. Not delivered: /);
    assert.doesNotMatch(String(json.summary), /no-such-folder/, 'server paths stay in the log');
    assert.match(s.lines.join('\n'), /: 502, .*delivery failed: delivery folder .*no-such-folder does not exist/);
    assert.equal(archivedReports(s).length, 1);
  });

  test('other paths and methods: 404 and 405 in JSON', async () => {
    const s = await site();
    const other = await fetch(`${s.server.url}/api/import/books`, { method: 'POST', headers: { authorization: s.auth } });
    assert.equal(other.status, 404);
    assert.equal(((await other.json()) as { success: boolean }).success, false);
    const get = await fetch(s.url, { headers: { authorization: s.auth } });
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');
  });
});

describe('serve: section of the run config', () => {
  const base = (serve: string, top = `mapping: ${INFINITI_MAPPING}\noutput_dir: out\ndelivery:\n  target: dir\n  dir: alma\n`) => `${top}serve:\n${serve}`;
  const check = (text: string) => checkServeConfig(text, path.join(work, 'config.yaml')).problems.map((p) => `${p.line}:${p.column}: ${p.path ? p.path + ': ' : ''}${p.message}`);

  test('defaults: 127.0.0.1:8080, 100 MB, 300 s, every good row imported', () => {
    const { config, problems } = checkServeConfig(base(`  accounts:\n    - { username: a, password_hash: "${passwordHash}" }\n`), path.join(work, 'config.yaml'));
    assert.deepEqual(problems, []);
    assert.equal(config!.serve.host, '127.0.0.1');
    assert.equal(config!.serve.port, 8080);
    assert.equal(config!.serve.maxRequestBytes, 100 * 1024 * 1024);
    assert.equal(config!.serve.requestTimeoutMs, 300_000);
    assert.deepEqual(config!.serve.guards, { maxRejected: '100%' });
    assert.equal(config!.serve.mappingFile, INFINITI_MAPPING);
    assert.equal(config!.run.outputDir, path.join(work, 'out'));
  });

  test('guards.accept_changes_on is refused: a date would let every push of that day through', () => {
    const top = `mapping: ${INFINITI_MAPPING}\noutput_dir: out\nguards:\n  accept_changes_on: 2026-12-02\ndelivery:\n  target: dir\n  dir: alma\n`;
    assert.deepEqual(check(base(`  accounts:\n    - { username: a, password_hash: "${passwordHash}" }\n`, top)), [
      "4:3: guards.accept_changes_on: is for sis2alma run; to let one push through, create the file accept-changes in the account's state folder",
    ]);
  });

  test('examples/serve-config.yaml is a valid config', () => {
    const file = path.join(path.dirname(INFINITI_MAPPING), '..', 'examples', 'serve-config.yaml');
    const { config, problems } = checkServeConfig(readFileSync(file, 'utf8'), file);
    assert.deepEqual(problems.map((p) => `${p.line}:${p.column}: ${p.message}`), []);
    assert.deepEqual([...config!.serve.accounts.keys()], ['infiniti']);
    assert.equal(config!.serve.maxRequestBytes, 100 * 1024 * 1024);
    assert.equal(config!.run.delivery.target, 'dir');
  });

  test('problems carry file:line:column, also those config.ts finds below the serve section', () => {
    const text = `mapping: ${INFINITI_MAPPING}\nserve:\n  prot: 8080\n  accounts:\n    - username: "a:b"\n      password_hash: "md5$abc"\n  max_request_bytes: lots\noutput_dir: out\ndelivery:\n  target: dir\n  dri: alma\n`;
    assert.deepEqual(check(text), [
      '3:3: serve.prot: unknown key "prot"; did you mean "port"?',
      '5:17: serve.accounts[0].username: the value is not in the expected form (a name without a colon)',
      '6:22: serve.accounts[0].password_hash: a password hash looks like scrypt$32768$8$1$<salt>$<hash>: make one with `sis2alma passwd`',
      '7:22: serve.max_request_bytes: must be a size such as 104857600 or "100MB" (at least 1KB), not "lots"',
      "10:3: delivery: missing \"dir\": the folder Alma's server reads",
      '11:3: delivery.dri: unknown key "dri"; did you mean "dir"?',
    ]);
  });

  test('a missing serve section or accounts list is named', () => {
    assert.deepEqual(check(`mapping: m.yaml\noutput_dir: out\ndelivery: { target: dir, dir: alma }\n`), ['1:1: missing "serve": the push endpoint\'s settings (host, port, accounts)']);
    assert.deepEqual(check(base('  port: 9000\n')), ['7:3: serve: missing "accounts": at least one { username, password_hash } (make the hash with `sis2alma passwd`)']);
  });

  // Every problem in one run, in file order, as for the run config.
  const mistakes: Array<{ what: string; text: () => string; problems: string[] }> = [
    {
      what: 'a misspelt key, a wrong type and a missing required key',
      text: () => base('  hots: 0.0.0.0\n  trust_proxy: maybe\n'),
      problems: [
        '7:3: serve: missing "accounts": at least one { username, password_hash } (make the hash with `sis2alma passwd`)',
        '7:3: serve.hots: unknown key "hots"; did you mean "host"?',
        '8:16: serve.trust_proxy: expected true or false, found "maybe"',
      ],
    },
    {
      what: 'the mapping named neither at the top nor under serve',
      text: () => `output_dir: out\ndelivery: { target: dir, dir: alma }\nserve:\n  accounts: [{ username: a, password_hash: "${passwordHash}" }]\n`,
      problems: ['1:1: missing "mapping"'],
    },
    {
      what: 'a password hash in the wrong place is not repeated',
      text: () => base('  accounts: [{ username: a, password_hash: 12345678901234 }]\n'),
      problems: ['7:44: serve.accounts[0].password_hash: expected a text'],
    },
  ];
  for (const { what, text, problems } of mistakes) {
    test(`every problem in one run: ${what}`, () => {
      assert.deepEqual(check(text()), problems);
    });
  }

  test('the mapping may be named under serve: alone', () => {
    const { config, problems } = checkServeConfig(
      `output_dir: out\ndelivery: { target: dir, dir: alma }\nserve:\n  mapping: ${INFINITI_MAPPING}\n  accounts: [{ username: a, password_hash: "${passwordHash}" }]\n`,
      path.join(work, 'config.yaml'),
    );
    assert.deepEqual(problems, []);
    assert.equal(config!.serve.mappingFile, INFINITI_MAPPING);
    assert.equal(config!.run.mappingFile, '');
  });

  test('a TLS key readable by others is refused', () => {
    const key = path.join(work, 'open-key.pem');
    writeFileSync(key, 'x');
    chmodSync(key, 0o644);
    const problems = check(base(`  tls: { cert_file: ${key}, key_file: ${key} }\n  accounts: [{ username: a, password_hash: "${passwordHash}" }]\n`));
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^7:\d+: serve\.tls\.key_file: private key file .*open-key\.pem is readable by others \(mode 644\): run chmod 600/);
  });

  test('sizes: bytes or K/M/G in 1024s, at least 1 KB', () => {
    assert.equal(parseBytes(2048), 2048);
    assert.equal(parseBytes('100MB'), 100 * 1024 * 1024);
    assert.equal(parseBytes('512 KiB'), 512 * 1024);
    assert.equal(parseBytes('1G'), 1024 ** 3);
    assert.equal(parseBytes(100), undefined);
    assert.equal(parseBytes('ten'), undefined);
  });
});

describe('schemas/serve-config.schema.json', () => {
  test('is the JSON of src/config/shape.ts, the schema the runtime check uses (run node dist/src/config/json-schema.js --write after a change)', () => {
    assert.equal(readFileSync(SERVE_CONFIG_JSON_SCHEMA, 'utf8'), jsonSchemaText(serveConfigSchema));
    assert.ok(!staleJsonSchemas().includes(SERVE_CONFIG_JSON_SCHEMA));
  });

  test('an editor using it accepts the shipped example and flags the misspelt key the check names', () => {
    const validate = new Ajv({ allErrors: true, strict: false }).compile(JSON.parse(readFileSync(SERVE_CONFIG_JSON_SCHEMA, 'utf8')) as object);
    const example = readFileSync(path.join(PACKAGE_ROOT, 'examples', 'serve-config.yaml'), 'utf8');
    assert.equal(validate(parseYaml(example)), true, JSON.stringify(validate.errors));
    assert.equal(validate(parseYaml('mapping: m.yaml\noutput_dir: out\ndelivery: { target: dir, dir: alma }\nserve:\n  prot: 8080\n  accounts: [{ username: a, password_hash: x }]\n')), false);
    const extras = (validate.errors ?? []).filter((e) => e.keyword === 'additionalProperties').map((e) => `${e.instancePath}/${(e.params as { additionalProperty: string }).additionalProperty}`);
    assert.deepEqual(extras, ['/serve/prot']);
  });

  test('the shipped example points editors at it', () => {
    assert.match(readFileSync(path.join(PACKAGE_ROOT, 'examples', 'serve-config.yaml'), 'utf8'), /^# yaml-language-server: \$schema=\.\.\/schemas\/serve-config\.schema\.json$/m);
  });
});

describe('passwords', () => {
  test('a hash verifies its password and no other; the same password hashes differently each time', async () => {
    const a = await hashPassword('s3cret-password-1');
    const b = await hashPassword('s3cret-password-1');
    assert.notEqual(a, b);
    assert.match(a, /^scrypt\$32768\$8\$1\$[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}$/);
    assert.equal(checkPasswordHash(a), undefined);
    assert.equal(await verifyPassword('s3cret-password-1', a), true);
    assert.equal(await verifyPassword('s3cret-password-2', a), false);
    assert.equal(await verifyPassword('s3cret-password-1', 'scrypt$3$8$1$AAAA$AAAA'), false);
  });

  test('failed logins make the next attempts from that address wait longer, up to a bound; success clears them', () => {
    const t = new LoginThrottle(1000, 8000);
    assert.equal(t.delayFor('a', 0), 0);
    const waits: number[] = [];
    for (let i = 0; i < 6; i++) {
      t.failed('a', i);
      waits.push(t.delayFor('a', i));
    }
    assert.deepEqual(waits, [1000, 2000, 4000, 8000, 8000, 8000]);
    assert.equal(t.delayFor('b', 6), 0, 'another address is not slowed');
    t.succeeded('a');
    assert.equal(t.delayFor('a', 7), 0);
  });

  test('passwd reads the first line of piped input, and refuses an empty or short one', async () => {
    const piped = (text: string) => Readable.from([Buffer.from(text)]) as unknown as NodeJS.ReadStream;
    assert.equal(await readPassword(piped('a long enough password\nsecond line\n'), process.stderr), 'a long enough password');
    await assert.rejects(readPassword(piped('\n'), process.stderr), (e: unknown) => e instanceof RunError && /password is empty/.test(e.message));
    await assert.rejects(readPassword(piped('short\n'), process.stderr), (e: unknown) => e instanceof RunError && /at least 12/.test(e.message));
  });
});

describe('the commands, through the CLI', () => {
  test('sis2alma passwd prints a hash that verifies the piped password', async () => {
    const child = spawnSync(process.execPath, [CLI, 'passwd'], { input: 'piped password here\n', encoding: 'utf8' });
    assert.equal(child.status, 0, child.stderr);
    const hash = child.stdout.trim();
    assert.equal(await verifyPassword('piped password here', hash), true);
    assert.doesNotMatch(child.stdout + child.stderr, /piped password here/);
  });

  test('sis2alma serve answers curl and stops on SIGTERM', async () => {
    const s = await site();
    await s.server.close();
    const child = spawn(process.execPath, [CLI, 'serve', '--config', s.configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    for (let i = 0; i < 200 && !/listening on/.test(stdout); i++) await new Promise((r) => setTimeout(r, 25));
    const url = /listening on (\S+)/.exec(stdout)?.[1];
    assert.ok(url, stdout);
    writeFileSync(path.join(s.dir, 'users.csv'), GOOD_CSV);
    const result = await curl(['-s', '-X', 'POST', '-F', 'file=@users.csv', url.replace('://', `://${USER}:${encodeURIComponent(PASSWORD)}@`)], s.dir);
    assert.equal((JSON.parse(result.stdout) as { success: boolean }).success, true);
    assert.equal(zipsIn(s.alma).length, 1);
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    // Every line dated, with its level and one prefix; the import's line has no patron data.
    const lines = untimed(stdout).trimEnd().split('\n');
    assert.equal(lines.length, 3, stdout);
    assert.equal(lines[0], `<time> INFO  sis2alma serve: listening on ${url} (1 account)`);
    assert.match(lines[1]!, /^<time> INFO  sis2alma serve: import by "infiniti" from 127\.0\.0\.1, \d+ bytes: 200, rows 6, users 5, merged 1, rejected 0; delivered users_infiniti_\d{8}-\d{6}\.zip; report in \S+$/);
    assert.equal(lines[2], '<time> INFO  sis2alma serve: SIGTERM: finishing running imports, then stopping');
  });

  test('sis2alma serve --log-format json: one JSON object a line, the same messages', async () => {
    const s = await site();
    await s.server.close();
    const child = spawn(process.execPath, [CLI, 'serve', '--config', s.configFile, '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    for (let i = 0; i < 200 && !/listening on/.test(stdout); i++) await new Promise((r) => setTimeout(r, 25));
    const url = /listening on ([^\s"]+)/.exec(stdout)?.[1];
    assert.ok(url, stdout);
    writeFileSync(path.join(s.dir, 'users.csv'), GOOD_CSV);
    const refused = await curl(['-s', '-X', 'POST', '-F', 'file=@users.csv', url.replace('://', `://${USER}:wrong-password@`)], s.dir);
    assert.equal(JSON.parse(refused.stdout).success, false);
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    const records = (stdout + stderr).trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    for (const r of records) {
      assert.deepEqual(Object.keys(r), ['level', 'time', 'command', 'msg']);
      assert.equal(new Date(String(r.time)).toISOString(), r.time);
    }
    assert.deepEqual(
      records.map(({ level, command, msg }) => ({ level, command, msg })),
      [
        { level: 'info', command: 'serve', msg: `listening on ${url} (1 account)` },
        { level: 'info', command: 'serve', msg: 'SIGTERM: finishing running imports, then stopping' },
        { level: 'warn', command: 'serve', msg: 'refused login from 127.0.0.1: 401' },
      ],
    );
  });

  test('sis2alma serve reads its config again on SIGHUP: accounts and a renewed certificate; a config it cannot take is reported and left', { skip: noOpenssl }, async () => {
    const s = await site();
    await s.server.close();
    const keyFile = path.join(s.dir, 'key.pem');
    const certFile = path.join(s.dir, 'cert.pem');
    const makeCert = (name: string) => {
      const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', `/CN=${name}`, '-keyout', keyFile, '-out', certFile], { stdio: 'pipe' });
      chmodSync(keyFile, 0o600);
      return made.status === 0;
    };
    assert.ok(makeCert('first'), 'openssl could not make a test certificate');
    const config = readFileSync(s.configFile, 'utf8').replace('  accounts:', `  tls:\n    cert_file: ${certFile}\n    key_file: ${keyFile}\n  accounts:`);
    writeFileSync(s.configFile, config);
    const child = spawn(process.execPath, [CLI, 'serve', '--config', s.configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const until = async (what: () => boolean) => {
      for (let i = 0; i < 400 && !what(); i++) await new Promise((r) => setTimeout(r, 25));
      assert.ok(what(), `stdout: ${stdout}\nstderr: ${stderr}`);
    };
    await until(() => /listening on/.test(stdout));
    const url = /listening on (\S+)/.exec(stdout)![1]!;
    const port = Number(new URL(url).port);
    const certificateName = () =>
      new Promise<string>((resolve, reject) => {
        const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
          resolve(String(socket.getPeerCertificate().subject.CN));
          socket.end();
        });
        socket.on('error', reject);
      });
    // Good credentials get 400 (the body is not multipart), others 401: nothing is imported.
    const statusFor = (user: string) =>
      new Promise<number>((resolve, reject) => {
        const auth = 'Basic ' + Buffer.from(`${user}:${PASSWORD}`).toString('base64');
        const req = httpsRequest(url, { method: 'POST', rejectUnauthorized: false, headers: { authorization: auth, 'content-type': 'text/csv' } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end('x');
      });
    assert.equal(await certificateName(), 'first');
    assert.equal(await statusFor(USER), 400);

    // The certificate renewed and the account renamed, in place: SIGHUP takes both.
    assert.ok(makeCert('renewed'));
    writeFileSync(s.configFile, config.replace(`username: ${USER}`, 'username: school2'));
    child.kill('SIGHUP');
    await until(() => /SIGHUP: reloaded .*config\.yaml \(1 account\)/.test(stdout));
    assert.equal(await certificateName(), 'renewed');
    assert.equal(await statusFor(USER), 401);
    assert.equal(await statusFor('school2'), 400);

    // A config with a problem is named with file:line:column, and the server keeps the one it has.
    writeFileSync(s.configFile, config.replace('  port: 0', '  port: http'));
    child.kill('SIGHUP');
    await until(() => /was not reloaded/.test(stderr));
    assert.match(untimed(stderr), /^<time> WARN  sis2alma serve: \S+config\.yaml:\d+:\d+: serve\.port: expected a whole number, found "http"$/m);
    // A port, host or HTTPS change needs a restart: said, and not taken.
    writeFileSync(s.configFile, config.replace('  port: 0', '  port: 1').replace(`username: ${USER}`, 'username: school3'));
    child.kill('SIGHUP');
    await until(() => /port changed: restart the server for that/.test(stderr));
    assert.equal(await statusFor('school2'), 400);
    assert.equal(await statusFor('school3'), 401);
    assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');

    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });

  test('sis2alma serve with a broken config exits 3 with file:line:column', async () => {
    const file = path.join(work, 'broken.yaml');
    writeFileSync(file, `mapping: ${INFINITI_MAPPING}\noutput_dir: out\ndelivery: { target: dir, dir: alma }\nserve:\n  port: http\n  accounts: []\n`);
    const result = await runCli(['serve', '--config', file]);
    assert.equal(result.code, 3);
    assert.match(result.stderr, /broken\.yaml:5:9: serve\.port: expected a whole number, found "http"/);
  });
});

/**
 * A client that sends its whole request before it reads anything, as python-requests does: the
 * status and JSON it then read, or the error that stopped it.
 */
function sendAllThenRead(port: number, headers: string[], body: Buffer): Promise<{ status: number; json: unknown; error?: string }> {
  return new Promise((resolve) => {
    let error: string | undefined;
    const chunks: Buffer[] = [];
    const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      socket.pause();
      socket.write([...headers, `Content-Length: ${body.length}`, '', ''].join('\r\n'));
      socket.write(body, (failed) => {
        if (failed) error ??= (failed as NodeJS.ErrnoException).code ?? failed.message;
        else socket.resume();
      });
    });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (failed: NodeJS.ErrnoException) => (error ??= failed.code ?? failed.message));
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1] ?? 0);
      const json = text.includes('\r\n\r\n') ? (JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4) || 'null') as unknown) : undefined;
      resolve({ status, json, ...(error ? { error } : {}) });
    });
  });
}

describe('HTTPS', { skip: noOpenssl }, () => {
  /** The suite the server chose, or the error code of a refused handshake. */
  const handshake = (port: number, ciphers?: string) =>
    new Promise<string>((resolve) => {
      const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...(ciphers ? { ciphers, maxVersion: 'TLSv1.2' as const } : {}) }, () => {
        resolve(`${socket.getProtocol()} ${socket.getCipher().name}`);
        socket.end();
      });
      socket.on('error', (error: NodeJS.ErrnoException) => resolve(`refused: ${error.code}`));
    });

  test('a client that sends its whole body before reading gets its 401 or 413 in JSON, not a closed connection', async () => {
    assert.ok(cert, 'openssl made a test certificate');
    const s = await site({ tls: true, maxBytes: 4096 });
    // 8 MB: more than the socket buffers hold, so the client is still writing when the answer comes.
    const body = Buffer.alloc(8 * 1024 * 1024, 'a');
    const head = (auth: string) => ['POST /api/import/users HTTP/1.1', 'Host: 127.0.0.1', `Authorization: ${auth}`, 'Content-Type: multipart/form-data; boundary=x'];
    const wrong = await sendAllThenRead(s.server.port, head('Basic ' + Buffer.from(`${USER}:wrong-password`).toString('base64')), body);
    assert.deepEqual(wrong, { status: 401, json: { success: false, summary: 'Unauthorised. Check credentials.' } });
    const large = await sendAllThenRead(s.server.port, head(s.auth), body);
    assert.deepEqual(large, { status: 413, json: { success: false, summary: 'The request is larger than this server accepts (4 KB). Ask the library to raise serve.max_request_bytes.' } });
    assert.deepEqual(zipsIn(s.alma), []);
  });

  test('what a refused client still sends is read up to a bound: one that sends without end, or not at all, is cut off', async () => {
    assert.ok(cert, 'openssl made a test certificate');
    const s = await site({ tls: true, maxBytes: 4096, extra: '  request_timeout_seconds: 1' });
    const head = ['POST /api/import/users HTTP/1.1', 'Host: 127.0.0.1', `Authorization: ${s.auth}`, 'Content-Type: multipart/form-data; boundary=x'];
    // Without end (chunked): read and dropped until the bound in bytes, then the connection is cut.
    const endless = await new Promise<{ answer: string; sent: number }>((resolve) => {
      let answer = '';
      let sent = 0;
      const chunk = Buffer.from(`100000\r\n${'a'.repeat(0x100000)}\r\n`);
      const socket = tlsConnect({ host: '127.0.0.1', port: s.server.port, rejectUnauthorized: false }, () => {
        socket.write([...head, 'Transfer-Encoding: chunked', '', ''].join('\r\n'));
        const more = () => {
          while (!socket.destroyed && sent < 256 * 0x100000) {
            sent += 0x100000;
            if (!socket.write(chunk)) return void socket.once('drain', more);
          }
        };
        more();
      });
      socket.on('data', (c: Buffer) => (answer += c.toString()));
      socket.on('error', () => {});
      socket.on('close', () => resolve({ answer, sent }));
    });
    assert.match(endless.answer, /^HTTP\/1\.1 413 /);
    assert.ok(endless.sent < 256 * 0x100000, `the server read all ${endless.sent} bytes`);
    // Nothing sent after the headers: cut after the time bound (request_timeout_seconds, here).
    const silent = await new Promise<string>((resolve) => {
      let answer = '';
      const socket = tlsConnect({ host: '127.0.0.1', port: s.server.port, rejectUnauthorized: false }, () => {
        socket.write([...head, 'Content-Length: 1000000', '', ''].join('\r\n'));
      });
      socket.on('data', (c: Buffer) => (answer += c.toString()));
      socket.on('error', () => {});
      socket.on('close', () => resolve(answer));
    });
    assert.match(silent, /^HTTP\/1\.1 413 [^]*\r\n\r\n\{"success":false,"summary":"The request is larger than this server accepts \(4 KB\)/);
  });

  test('TLS 1.2 offers only ECDHE with AEAD suites: CBC-SHA1, ARIA and CCM8 are refused, also after a reload', async () => {
    assert.ok(cert, 'openssl made a test certificate');
    const s = await site({ tls: true });
    const refused = 'refused: ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE';
    const expected = {
      'ECDHE-RSA-AES128-GCM-SHA256': 'TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256',
      'ECDHE-RSA-CHACHA20-POLY1305': 'TLSv1.2 ECDHE-RSA-CHACHA20-POLY1305',
      'ECDHE-RSA-AES128-SHA': refused,
      'AES256-SHA': refused,
      'ECDHE-ARIA128-GCM-SHA256': refused,
      'AES128-CCM8': refused,
      'ECDHE-RSA-AES256-SHA384': refused,
    };
    for (const round of ['at start', 'after SIGHUP']) {
      const seen: Record<string, string> = {};
      for (const suite of Object.keys(expected)) seen[suite] = await handshake(s.server.port, suite);
      assert.deepEqual(seen, expected, round);
      assert.match(await handshake(s.server.port), /^TLSv1\.3 TLS_AES_(128|256)_GCM_SHA(256|384)$/, round);
      s.server.reload(loadServeConfig(s.configFile));
    }
  });
});
