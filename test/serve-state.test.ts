// The push endpoint's run state (issue 16, point 8): each account keeps a state.db of its own
// under the state folder, and each push is checked against that account's last delivered push,
// with the guards and departures of `sis2alma run`. A real HTTP server on 127.0.0.1, real files,
// state.db read with the sqlite3 command, `sis2alma history --account` run as a process.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadServeConfig } from '../src/serve/config.js';
import { startServer, type RunningServer } from '../src/serve/server.js';
import { hashPassword } from '../src/serve/passwd.js';
import type { Logger } from '../src/shared/log.js';
import { readZip } from './helpers/zip.js';
import { INFINITI_MAPPING, runCli, tempDir } from './helpers/run-cli.js';

const HEADER = 'username,givenname,surname,middlename,preferredname,emailaddress,graduationyear,librarybarcode,adminsystemid,gender,password,formclass,enabled,staffmember,presentationgrouplabel';
const PASSWORD = 'correct horse battery staple';
let passwordHash = '';
before(async () => {
  passwordHash = await hashPassword(PASSWORD);
});

const open: RunningServer[] = [];
after(async () => {
  for (const s of open) await s.close();
});

/** Student number `id` in the Infiniti layout; without an email when the export has lost that column's values. */
function row(id: number, { email = true, given = `Given${id}` } = {}): string {
  return `stu${id},${given},Surname${id},,,${email ? `stu${id}@school.example.nz` : ''},2027,B${100000 + id},SIS${1000 + id},F,,10A,Y,N,Year 10`;
}
const ids = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const csvOf = (rows: string[], header = HEADER) => [header, ...rows].join('\n') + '\n';

interface Site {
  dir: string;
  configFile: string;
  alma: string;
  archive: string;
  stateDir: string;
  url: string;
  lines: string[];
}

/** A serve config with the given accounts and extra top-level lines, and a server started from it; each push one day later. */
async function site(accounts: string[], extra = ''): Promise<Site> {
  const dir = tempDir('sis2alma-serve-state-');
  const alma = path.join(dir, 'alma');
  mkdirSync(alma);
  const configFile = path.join(dir, 'config.yaml');
  writeFileSync(
    configFile,
    [
      `mapping: ${INFINITI_MAPPING}`,
      'output_dir: out',
      'archive: { dir: archive }',
      extra,
      'delivery:',
      '  target: dir',
      `  dir: ${alma}`,
      '  retries: 0',
      '  stale: report',
      'serve:',
      '  host: 127.0.0.1',
      '  port: 0',
      '  accounts:',
      ...accounts.flatMap((a) => [`    - username: "${a}"`, `      password_hash: "${passwordHash}"`]),
      '',
    ].join('\n'),
  );
  const lines: string[] = [];
  const log: Logger = { info: (m) => lines.push(m), warn: (m) => lines.push(m), id: (v) => v };
  let day = 0;
  const now = () => new Date(Date.UTC(2026, 10, 20 + ++day, 2, 0, 0));
  const server = await startServer(loadServeConfig(configFile), { log, now });
  open.push(server);
  return { dir, configFile, alma, archive: path.join(dir, 'archive'), stateDir: path.join(dir, 'out', 'state'), url: `${server.url}/api/import/users`, lines };
}

async function push(s: Site, account: string, csv: string): Promise<{ status: number; json: { success: boolean; summary: string } }> {
  const body = new FormData();
  body.append('file', new Blob([csv], { type: 'text/csv' }), 'users.csv');
  const res = await fetch(s.url, { method: 'POST', headers: { authorization: 'Basic ' + Buffer.from(`${account}:${PASSWORD}`).toString('base64') }, body });
  return { status: res.status, json: (await res.json()) as { success: boolean; summary: string } };
}

/** What the sqlite3 command prints for a query of an account's state file (`|` between columns). */
function sqlite(file: string, query: string): string {
  const r = spawnSync('sqlite3', [file, query], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

const zipsIn = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.zip')).sort();

/** The reports kept in the archive, one per push, in push order. */
function archivedReports(s: Site): Record<string, any>[] {
  return readdirSync(s.archive)
    .sort()
    .flatMap((folder) => readdirSync(path.join(s.archive, folder)).filter((f) => f.endsWith('.report.json')).sort().map((f) => JSON.parse(readFileSync(path.join(s.archive, folder, f), 'utf8')) as Record<string, any>));
}

describe('serve keeps a run state per account', () => {
  test('a first push says first night and makes <state dir>/<account>/state.db (mode 600), read with sqlite3 and history --account', async () => {
    const s = await site(['infiniti']);
    const { status, json } = await push(s, 'infiniti', csvOf(ids(1, 20).map((i) => row(i))));
    assert.equal(status, 200);
    assert.equal(json.success, true);
    assert.match(json.summary, /^20 rows processed\. 20 users written\. 0 rows merged\. 0 rows failed\. First night: no earlier delivery in the run state to compare with; tonight's users become the state once delivered\. Delivered to Alma as users_infiniti_20261121-020000\.zip\.$/);
    const file = path.join(s.stateDir, 'infiniti', 'state.db');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(existsSync(path.join(s.stateDir, 'state.db')), false, 'no state of the config itself');
    assert.equal(sqlite(file, 'SELECT id, outcome, files FROM runs'), '1|delivered|["users_infiniti_20261121-020000.zip"]');
    assert.equal(sqlite(file, 'SELECT count(*) FROM people'), '20');
    assert.equal(archivedReports(s)[0]!.changes.first_night, true);

    const history = await runCli(['history', '--config', s.configFile, '--account', 'infiniti']);
    assert.equal(history.code, 0, history.stderr);
    assert.match(history.stdout, /^1 +2026-11-21T02:00:00\.000Z +full +delivered +20 +0 +20 +0 +0 +0 +users_infiniti_20261121-020000\.zip$/m);
    // Without --account, history says where a serve config's states are.
    const bare = await runCli(['history', '--config', s.configFile]);
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /keep a run state per account in .*: name one with --account \("infiniti"\)/);
    const unknown = await runCli(['history', '--config', s.configFile, '--account', 'nobody']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no run state for the push account "nobody"/);
  });

  test('a second push that drops the email column trips max_field_loss: success false, named with its figures, nothing delivered, the state as it was; accept-changes lets the next one through', async () => {
    const s = await site(['infiniti']);
    assert.equal((await push(s, 'infiniti', csvOf(ids(1, 20).map((i) => row(i))))).json.success, true);
    const file = path.join(s.stateDir, 'infiniti', 'state.db');
    const before = sqlite(file, 'SELECT key, fingerprint, sent_run, missing_since FROM people ORDER BY key; SELECT id, people FROM runs');

    const dropped = csvOf(ids(1, 20).map((i) => row(i, { email: false })));
    const { status, json } = await push(s, 'infiniti', dropped);
    assert.equal(status, 200);
    assert.equal(json.success, false);
    assert.match(json.summary, /^20 rows processed\. 20 users written\. 0 rows merged\. 0 rows failed\. Not delivered: email: 20 of 20 users \(100\.0%\) would lose their email, over the limit of 5% \(max_field_loss\)\. Since the last delivery: 0 new, 20 changed, /);
    assert.doesNotMatch(json.summary, /Delivered to Alma/);
    assert.deepEqual(zipsIn(s.alma), ['users_infiniti_20261121-020000.zip'], 'nothing delivered');
    assert.equal(sqlite(file, 'SELECT key, fingerprint, sent_run, missing_since FROM people ORDER BY key; SELECT id, people FROM runs'), before, 'the state did not move');
    const report = archivedReports(s)[1]!;
    assert.equal(report.guard.guard, 'max_field_loss');
    assert.equal(report.changes.field_loss.email.lost, 20);
    assert.equal(report.push.account, 'infiniti');
    assert.match(s.lines.at(-1)!, /: 200, rows 20, users 20, merged 0, rejected 0; guard max_field_loss tripped; delivered nothing; report in /);

    // The operator checks the report, then lets the account's next push through, once.
    const accept = path.join(s.stateDir, 'infiniti', 'accept-changes');
    writeFileSync(accept, '');
    const third = await push(s, 'infiniti', dropped);
    assert.equal(third.json.success, true, third.json.summary);
    assert.match(third.json.summary, /Changes over the guards accepted/);
    assert.equal(existsSync(accept), false, 'used up');
    assert.equal(sqlite(file, 'SELECT id, outcome FROM runs ORDER BY id'), '1|delivered\n2|delivered, changes accepted');
    assert.match(s.lines.at(-1)!, /; changes accepted \(accept-changes\);/);
  });

  test('a healthy second push sends the departure of a person it leaves out; a push with a rejected row sends none', async () => {
    const s = await site(['infiniti'], 'departures: { action: expire }\nguards: { max_departures: 2 }');
    const file = path.join(s.stateDir, 'infiniti', 'state.db');
    assert.equal((await push(s, 'infiniti', csvOf(ids(1, 20).map((i) => row(i))))).json.success, true);

    // stu20 has left; stu19's row is rejected (a bad email): a rejected row may be a person still there.
    const rejected = await push(s, 'infiniti', csvOf([...ids(1, 18).map((i) => row(i)), row(19).replace('stu19@school.example.nz', 'stu19@@bad')]));
    assert.equal(rejected.status, 200);
    assert.match(rejected.json.summary, /1 row failed\..* 2 departed/);
    assert.deepEqual(zipsIn(s.alma), ['users_infiniti_20261121-020000.zip', 'users_infiniti_20261122-020000.zip'], 'no departures zip');
    assert.match(archivedReports(s)[1]!.departures.not_sent, /^1 row\(s\) rejected: a push sends departures only when every row was imported/);
    assert.equal(sqlite(file, 'SELECT count(*) FROM people WHERE departed_run IS NOT NULL'), '0');

    // A healthy push: stu19 is back, stu20 still missing: their departure is sent.
    const healthy = await push(s, 'infiniti', csvOf(ids(1, 19).map((i) => row(i))));
    assert.equal(healthy.status, 200);
    assert.equal(healthy.json.success, true, healthy.json.summary);
    assert.match(healthy.json.summary, /1 returned/);
    assert.match(healthy.json.summary, /Delivered to Alma as users_infiniti_20261123-020000\.zip, users_infiniti_20261123-020000_departures\.zip\.$/);
    const [entry] = await readZip(path.join(s.alma, 'users_infiniti_20261123-020000_departures.zip'));
    assert.match(entry!.text, /<primary_id>stu20<\/primary_id>/);
    assert.match(entry!.text, /<expiry_date>2026-11-23Z?<\/expiry_date>/);
    assert.match(entry!.text, /<email_address>stu20@school\.example\.nz<\/email_address>/, 'the whole last record');
    assert.match(entry!.text, /No longer in the SIS feed as of 2026-11-23/);
    assert.equal(sqlite(file, 'SELECT primary_id, departed_run FROM people WHERE departed_run IS NOT NULL'), 'stu20|3');
    assert.equal(archivedReports(s)[2]!.departures.sent, 1);
  });

  test('two accounts keep separate states: one account\'s people are never the other\'s departures', async () => {
    const s = await site(['school-a', 'school b']);
    assert.match((await push(s, 'school-a', csvOf(ids(1, 20).map((i) => row(i))))).json.summary, /First night/);
    assert.match((await push(s, 'school b', csvOf(ids(101, 130).map((i) => row(i))))).json.summary, /First night/);
    const again = await push(s, 'school-a', csvOf(ids(1, 20).map((i) => row(i))));
    assert.equal(again.json.success, true, again.json.summary);
    assert.match(again.json.summary, /Since the last delivery: 0 new, 0 changed, 20 unchanged, 0 departed, 0 returned, 0 changed user group\./);
    const a = path.join(s.stateDir, 'school-a', 'state.db');
    const b = path.join(s.stateDir, 'school%20b', 'state.db');
    assert.equal(sqlite(a, 'SELECT count(*), min(primary_id) FROM people; SELECT count(*) FROM runs'), '20|stu1\n2');
    assert.equal(sqlite(b, 'SELECT count(*), min(primary_id) FROM people; SELECT count(*) FROM runs'), '30|stu101\n1');
    const history = await runCli(['history', '--config', s.configFile, '--account', 'school b', '--json']);
    assert.equal(history.code, 0, history.stderr);
    assert.deepEqual((JSON.parse(history.stdout) as { counts: { users: number } }[]).map((r) => r.counts.users), [30]);
  });

  test('state: { mode: delta } sends only what changed since the account\'s last push', async () => {
    const s = await site(['infiniti'], 'state: { mode: delta }');
    assert.equal((await push(s, 'infiniti', csvOf(ids(1, 20).map((i) => row(i))))).json.success, true);
    const second = await push(s, 'infiniti', csvOf(ids(1, 20).map((i) => row(i, { given: i === 7 ? 'Renamed' : `Given${i}` }))));
    assert.equal(second.json.success, true, second.json.summary);
    assert.match(second.json.summary, /Delta run \(mode: delta\): 1 users sent, 19 unchanged left out\./);
    const entries = await readZip(path.join(s.alma, 'users_infiniti_20261122-020000.zip'));
    assert.deepEqual(entries.flatMap((e) => [...e.text.matchAll(/<primary_id>([^<]*)</g)].map((m) => m[1])), ['stu7']);
  });
});
