// The run state (issue 16): nights that remember each other. Every test runs the real
// `sis2alma run` over several simulated nights to a folder target, and reads state.db with the
// sqlite3 command, as campus IT would.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { hostname } from 'node:os';
import Database from 'better-sqlite3';
import { CLI, INFINITI_MAPPING, runCli, tempDir, type CliResult } from './helpers/run-cli.js';
import { MIGRATIONS } from '../src/state/store.js';
import { packRecord } from '../src/state/user-record.js';

const HEADER = 'username,givenname,surname,middlename,preferredname,emailaddress,graduationyear,librarybarcode,adminsystemid,gender,password,formclass,enabled,staffmember,presentationgrouplabel';

interface Person {
  id: number;
  given?: string;
  staff?: boolean;
  email?: boolean;
  barcode?: boolean;
}

/** A row of the Infiniti layout for student (or staff member) number `id`. */
function row({ id, given = `Given${id}`, staff = false, email = true, barcode = true }: Person): string {
  return `stu${id},${given},Surname${id},,,${email ? `stu${id}@school.example.nz` : ''},2027,${barcode ? `B${100000 + id}` : ''},SIS${1000 + id},F,,10A,Y,${staff ? 'Y' : 'N'},Year 10`;
}

const people = (from: number, to: number, extra: Partial<Person> = {}): Person[] => Array.from({ length: to - from + 1 }, (_, i) => ({ id: from + i, ...extra }));

interface Site {
  dir: string;
  config: string;
  csv: string;
  mapping: string;
  out: string;
  drop: string;
  state: string;
}

/** A run config of its own: the shipped Infiniti mapping (copied, so that a test may recode it), one export, a folder target. */
function site(extraConfig = ''): Site {
  const dir = tempDir('sis2alma-state-');
  const mapping = path.join(dir, 'infiniti.yaml');
  copyFileSync(INFINITI_MAPPING, mapping);
  const config = path.join(dir, 'config.yaml');
  writeFileSync(
    config,
    `mapping: infiniti.yaml\ninputs: [export.csv]\noutput_dir: out\nguards: { max_rejected: 0 }\n${extraConfig}delivery:\n  target: dir\n  dir: drop\n  create_dir: true\n  stale: rename\n`,
  );
  return { dir, config, csv: path.join(dir, 'export.csv'), mapping, out: path.join(dir, 'out'), drop: path.join(dir, 'drop'), state: path.join(dir, 'out', 'state', 'state.db') };
}

function writeExport(s: Site, rows: Person[], header = HEADER): void {
  writeFileSync(s.csv, [header, ...rows.map(row)].join('\n') + '\n');
}

/** One night: `sis2alma run` at midnight of day `day` of November 2026. */
function night(s: Site, day: number, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runCli(['run', '--config', s.config, '--now', `2026-11-${String(day).padStart(2, '0')}T02:00:00`, '--quiet', ...args], { env });
}

/** The report of the night of `day`. */
function reportOf(s: Site, day: number): Record<string, any> {
  return JSON.parse(readFileSync(path.join(s.out, `users_infiniti_202611${String(day).padStart(2, '0')}-020000.report.json`), 'utf8'));
}

/** What the sqlite3 command prints for a query of the state file (`|` between columns). */
function sqlite(s: Site, query: string): string {
  const r = spawnSync('sqlite3', [s.state, query], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** The state as a test compares it: every person's row and every run, as sqlite3 prints them. */
const stateDump = (s: Site) => sqlite(s, 'SELECT key, fingerprint, user_group, sent_run, missing_since, first_seen FROM people ORDER BY key; SELECT id, run_time, outcome, people FROM runs;');

describe('the run state', () => {
  test('a first night makes state.db (mode 600, its folder 700), readable with sqlite3; an identical second night changes nobody', async () => {
    const s = site();
    writeExport(s, people(1, 20));
    const first = await night(s, 21);
    assert.equal(first.code, 0, first.stderr);
    const one = reportOf(s, 21);
    assert.equal(one.changes.first_night, true);
    assert.match(one.summary, /First night: no earlier delivery in the run state to compare with/);
    assert.deepEqual(one.changes.guards, []);
    assert.equal(statSync(s.state).mode & 0o777, 0o600);
    assert.equal(statSync(path.dirname(s.state)).mode & 0o777, 0o700);
    assert.equal(sqlite(s, 'PRAGMA user_version'), '2');
    assert.equal(sqlite(s, 'SELECT count(*), min(user_group), max(user_group) FROM people'), '20|STUDENT|STUDENT');
    assert.equal(sqlite(s, "SELECT kinds FROM people WHERE key = 'stu1'"), 'email statistics identifier:BARCODE identifier:UNIV_ID');
    assert.equal(sqlite(s, "SELECT value FROM meta WHERE name = 'source'"), 'infiniti');
    assert.equal(sqlite(s, 'SELECT id, run_time, mode, outcome, files FROM runs'), '1|2026-11-21T02:00:00.000Z|full|delivered|["users_infiniti_20261121-020000.zip"]');

    const second = await night(s, 22);
    assert.equal(second.code, 0, second.stderr);
    const two = reportOf(s, 22);
    assert.equal(two.changes.first_night, false);
    assert.deepEqual([two.changes.new.count, two.changes.changed.count, two.changes.unchanged.count, two.changes.departed.count, two.changes.returned.count], [0, 0, 20, 0, 0]);
    // The feed came in last night's order: every user was found beside it, none by a look-up.
    assert.equal(two.changes.unchanged.out_of_order, 0);
    assert.match(two.summary, / Since the last delivery: 0 new, 0 changed, 20 unchanged, 0 departed, 0 returned, 0 changed user group\.$/);
    // Sent again as before: nothing of theirs is written; the run counts them.
    assert.equal(sqlite(s, "SELECT first_seen, sent_run, missing_since IS NULL FROM people WHERE key = 'stu7'"), '2026-11-21T02:00:00.000Z|1|1');
    assert.equal(sqlite(s, 'SELECT id, people FROM runs'), '1|20\n2|20');
    assert.match((await runCli(['history', 'person', 'stu7', '--config', s.config])).stdout, /first sent 2026-11-21T02:00:00\.000Z, last sent 2026-11-22T02:00:00\.000Z \(run 2, the last delivered run\)/);
    assert.equal(sqlite(s, 'SELECT count(*) FROM runs'), '2');
  });

  test('new, changed (per field), departed and returned people over three nights, with examples', async () => {
    const s = site();
    writeExport(s, people(1, 20));
    assert.equal((await night(s, 21)).code, 0);
    // Night 2: stu20 leaves, stu1 changes name, stu21 arrives.
    writeExport(s, [{ id: 1, given: 'Renamed' }, ...people(2, 19), { id: 21 }]);
    const second = await night(s, 22);
    assert.equal(second.code, 0, second.stderr);
    const c = reportOf(s, 22).changes;
    assert.deepEqual(c.new, { count: 1, examples: ['stu21'] });
    assert.deepEqual(c.changed, { count: 1, fields: { first_name: 1 }, examples: [{ primary_id: 'stu1', fields: ['first_name'] }] });
    assert.deepEqual(c.unchanged, { count: 18, out_of_order: 0 });
    assert.deepEqual(c.departed, { count: 1, examples: [{ primary_id: 'stu20', user_group: 'STUDENT' }] });
    assert.deepEqual(c.returned, { count: 0, examples: [] });
    assert.equal(sqlite(s, "SELECT run, change, fields FROM sent WHERE key IN ('stu1', 'stu20', 'stu21') AND run = 2 ORDER BY key"), '2|changed|first_name\n2|departed|\n2|new|');
    assert.equal(sqlite(s, "SELECT key, sent_run, missing_since FROM people WHERE key IN ('stu1', 'stu2', 'stu20', 'stu21') ORDER BY key"), 'stu1|2|\nstu2|1|\nstu20|1|2\nstu21|2|');
    // Night 3: stu20 comes back.
    writeExport(s, [{ id: 1, given: 'Renamed' }, ...people(2, 21)]);
    assert.equal((await night(s, 23)).code, 0);
    const c3 = reportOf(s, 23).changes;
    assert.deepEqual(c3.returned, { count: 1, examples: ['stu20'] });
    assert.deepEqual([c3.new.count, c3.changed.count, c3.unchanged.count, c3.departed.count], [0, 0, 20, 0]);
    assert.equal(sqlite(s, "SELECT first_seen, sent_run, missing_since IS NULL FROM people WHERE key = 'stu20'"), '2026-11-21T02:00:00.000Z|3|1');
  });

  test('a dropped email column trips max_field_loss: nothing delivered, the state as it was; --accept-changes delivers it', async () => {
    const s = site();
    writeExport(s, people(1, 20));
    assert.equal((await night(s, 21)).code, 0);
    const before = sha(s.state);
    // The SIS view that gave the emails broke: the column is gone.
    writeExport(s, people(1, 20), HEADER.replace(',emailaddress', ''));
    writeFileSync(s.csv, readFileSync(s.csv, 'utf8').replace(/,stu\d+@school\.example\.nz/g, ''));
    const tripped = await night(s, 22);
    assert.equal(tripped.code, 5, tripped.stderr);
    const message = 'email: 20 of 20 users (100.0%) would lose their email, over the limit of 5% (max_field_loss)';
    assert.match(tripped.stderr, new RegExp(`guard max_field_loss tripped: ${message.replace(/[().%]/g, '\\$&')}`));
    // Logs name no patron; the report names five, whole.
    assert.doesNotMatch(tripped.stderr, /stu\d/);
    const report = reportOf(s, 22);
    assert.deepEqual(report.guard, { guard: 'max_field_loss', limit: '5%', actual: 20, message, examples: ['stu1', 'stu2', 'stu3', 'stu4', 'stu5'] });
    assert.deepEqual(report.changes.field_loss, { email: { had: 20, lost: 20, examples: ['stu1', 'stu2', 'stu3', 'stu4', 'stu5'] } });
    assert.deepEqual(report.files, []);
    assert.deepEqual(readdirSync(s.drop).filter((f) => f.includes('20261122')), []);
    assert.equal(sha(s.state), before);
    assert.equal(sqlite(s, 'SELECT count(*) FROM runs'), '1');

    const accepted = await night(s, 22, ['--accept-changes']);
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.equal(reportOf(s, 22).changes.accepted, true);
    assert.equal(sqlite(s, 'SELECT id, outcome FROM runs ORDER BY id'), '1|delivered\n2|delivered, changes accepted');
    assert.equal(sqlite(s, "SELECT kinds FROM people WHERE key = 'stu1'"), 'statistics identifier:BARCODE identifier:UNIV_ID');
  });

  test('max_field_loss per kind: a kind named has its own limit, the others the default, and the trip names the limit that applied', async () => {
    const s = site();
    const guards = (fieldLoss: string) => writeFileSync(s.config, readFileSync(s.config, 'utf8').replace(/guards: .*\n/, `guards: { max_rejected: 0, max_field_loss: ${fieldLoss} }\n`));
    writeExport(s, people(1, 20));
    assert.equal((await night(s, 21)).code, 0);
    // Tonight stu1-stu3 lose their email (15%), stu4 and stu5 their barcode (10%).
    writeExport(s, [...people(1, 3, { email: false }), ...people(4, 5, { barcode: false }), ...people(6, 20)]);
    const tonight = async (fieldLoss: string) => {
      guards(fieldLoss);
      const r = await night(s, 22);
      assert.equal(r.code, 5, r.stderr);
      return reportOf(s, 22).changes.guards.map((g: { limit: string; message: string }) => `${g.limit} | ${g.message}`);
    };
    assert.deepEqual(await tonight('{ default: "10%", email: "20%", "identifier:BARCODE": 1 }'), [
      '1 | BARCODE identifier: 2 of 20 users (10.0%) would lose their BARCODE identifier, over the limit of 1 (max_field_loss.identifier:BARCODE)',
    ]);
    assert.deepEqual(await tonight('{ default: "5%", email: "20%" }'), [
      '5% | BARCODE identifier: 2 of 20 users (10.0%) would lose their BARCODE identifier, over the limit of 5% (max_field_loss.default)',
    ]);
    assert.deepEqual(await tonight('{ email: "10%", "identifier:BARCODE": "10%" }'), [
      '10% | email: 3 of 20 users (15.0%) would lose their email, over the limit of 10% (max_field_loss.email)',
    ]);
    // Without default, a kind not named has the default's default (5%).
    assert.deepEqual(await tonight('{ email: 3 }'), [
      '5% | BARCODE identifier: 2 of 20 users (10.0%) would lose their BARCODE identifier, over the limit of 5% (max_field_loss.default)',
    ]);
    // One value for every kind, as before.
    assert.deepEqual(await tonight('"12%"'), ['12% | email: 3 of 20 users (15.0%) would lose their email, over the limit of 12% (max_field_loss)']);
    guards('{ default: 3, email: "15%" }');
    assert.equal((await night(s, 22)).code, 0);
  });

  test('max_field_loss names a kind the state does not know: the config is refused, with did you mean', async () => {
    const s = site();
    writeFileSync(s.config, readFileSync(s.config, 'utf8').replace(/guards: .*\n/, 'guards:\n  max_field_loss: { default: 5%, emial: 2%, "identifer:BARCODE": 1%, BARCODE: 1, phone: lots }\n'));
    writeExport(s, people(1, 3));
    const r = await night(s, 21);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stderr.trim(), [
      `sis2alma: ${s.config}:5:34: guards.max_field_loss.emial: unknown key "emial"; did you mean "email"?`,
      `${s.config}:5:45: guards.max_field_loss.identifer:BARCODE: unknown key "identifer:BARCODE"; did you mean "identifier:BARCODE"?`,
      `${s.config}:5:70: guards.max_field_loss.BARCODE: unknown key "BARCODE"; expected one of: default, email, address, phone, statistics, notes, identifier:TYPE`,
      `${s.config}:5:89: guards.max_field_loss.phone: "lots" is not in the expected form (The limit for users who lose their phones.)`,
    ].join('\n'));
  });

  test('guards.accept_changes_on: the run of that date delivers its changes as --accept-changes does; on another date it is ignored, with a warning', async () => {
    const s = site();
    writeExport(s, people(1, 20));
    assert.equal((await night(s, 21)).code, 0);
    writeFileSync(s.config, readFileSync(s.config, 'utf8').replace('guards: { max_rejected: 0 }', 'guards: { max_rejected: 0, accept_changes_on: 2026-11-22 }'));
    // Tonight the email column is gone: over max_field_loss, accepted by the config line.
    writeExport(s, people(1, 20, { email: false }));
    const accepted = await night(s, 22);
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.doesNotMatch(accepted.stderr, /accept_changes_on/);
    const report = reportOf(s, 22);
    assert.equal(report.changes.accepted, true);
    assert.equal(report.changes.accepted_by, 'guards.accept_changes_on: 2026-11-22 in the run config');
    assert.equal(report.changes.guards[0].guard, 'max_field_loss');
    assert.match(report.summary, / Changes over the guards accepted \(guards\.accept_changes_on: 2026-11-22 in the run config\)\.$/);
    assert.equal(report.warnings.accept_changes_on_stale, undefined);
    assert.equal(sqlite(s, 'SELECT id, outcome FROM runs ORDER BY id'), '1|delivered\n2|delivered, changes accepted');
    const shown = await runCli(['history', 'show', '2', '--config', s.config]);
    assert.match(shown.stdout, /\nguards \(accepted with guards\.accept_changes_on: 2026-11-22 in the run config\):\n {2}max_field_loss: email: 20 of 20/);
    // The next night the line is stale: ignored (the guards trip again), and said once.
    writeExport(s, people(1, 10, { email: false }));
    const stale = await night(s, 23);
    assert.equal(stale.code, 5, stale.stderr);
    const warning = `guards.accept_changes_on: 2026-11-22 in ${s.config} is stale (tonight's run date is 2026-11-23): it is ignored, the guards against the last night apply; remove the line`;
    assert.equal(stale.stderr.split(warning).length - 1, 1, stale.stderr);
    assert.match(stale.stderr, /WARN {2}sis2alma run: guards\.accept_changes_on: 2026-11-22 in /);
    const after = reportOf(s, 23);
    assert.deepEqual(after.warnings.accept_changes_on_stale, { count: 1, examples: [], message: warning });
    assert.equal(after.changes.accepted, undefined);
    assert.equal(after.guard.guard, 'max_departures');
    assert.equal(sqlite(s, 'SELECT count(*) FROM runs'), '2');
    // A date still to come is ignored tonight too.
    writeFileSync(s.config, readFileSync(s.config, 'utf8').replace('accept_changes_on: 2026-11-22', 'accept_changes_on: 2026-11-30'));
    const early = await night(s, 23);
    assert.equal(early.code, 5);
    assert.match(early.stderr, new RegExp(`guards\\.accept_changes_on: 2026-11-30 in .* is not tonight's run date \\(2026-11-23\\): it is ignored tonight, the guards against the last night apply`));
  });

  test('a half-empty export trips max_departures', async () => {
    const s = site();
    writeExport(s, people(1, 20));
    assert.equal((await night(s, 21)).code, 0);
    writeExport(s, people(1, 10));
    const r = await night(s, 22);
    assert.equal(r.code, 5, r.stderr);
    const report = reportOf(s, 22);
    assert.equal(report.guard.guard, 'max_departures');
    assert.equal(report.guard.message, "10 of 20 people of the last delivered run (50.0%) are not in tonight's feed, over the limit of 5% (max_departures)");
    assert.deepEqual(report.changes.departed.examples.map((d: { primary_id: string }) => d.primary_id), ['stu11', 'stu12', 'stu13', 'stu14', 'stu15']);
    assert.equal(sqlite(s, 'SELECT count(*) FROM people WHERE missing_since IS NULL'), '20');
  });

  test('a recoded group table trips max_group_changes, with a from → to table', async () => {
    const s = site();
    writeExport(s, [...people(1, 18), ...people(19, 20, { staff: true })]);
    assert.equal((await night(s, 21)).code, 0);
    writeFileSync(s.mapping, readFileSync(s.mapping, 'utf8').replace('group: STUDENT', 'group: UNDERGRAD').replace('[STAFF, STUDENT]', '[STAFF, UNDERGRAD]').replace('  STUDENT: { end_of_year', '  UNDERGRAD: { end_of_year'));
    const r = await night(s, 22);
    assert.equal(r.code, 5, r.stderr);
    const report = reportOf(s, 22);
    assert.equal(report.guard.guard, 'max_group_changes');
    assert.equal(report.guard.message, '18 of 20 users known from the last run (90.0%) would change user group (STUDENT → UNDERGRAD: 18), over the limit of 10% (max_group_changes)');
    assert.deepEqual(report.changes.group_moves, [{ from: 'STUDENT', to: 'UNDERGRAD', count: 18, examples: ['stu1', 'stu2', 'stu3', 'stu4', 'stu5'] }]);
    assert.equal(report.changes.changed.fields.user_group, 18);
  });

  test('a renamed group rule leaves the users unchanged, and the state names the new rule', async () => {
    const s = site();
    writeExport(s, people(1, 20));
    assert.equal((await night(s, 21)).code, 0);
    assert.equal(sqlite(s, "SELECT group_rule FROM people WHERE key = 'stu1'"), 'everyone else is a student');
    writeFileSync(s.mapping, readFileSync(s.mapping, 'utf8').replace('name: everyone else is a student', 'name: the rest are students'));
    const r = await night(s, 22);
    assert.equal(r.code, 0, r.stderr);
    const c = reportOf(s, 22).changes;
    assert.deepEqual([c.new.count, c.changed.count, c.unchanged.count, c.departed.count], [0, 0, 20, 0]);
    // Same XML, not sent again (sent_run stays 1); but why they have their group is the new rule, run by run.
    assert.equal(sqlite(s, "SELECT group_rule, sent_run FROM people WHERE key = 'stu1'"), 'the rest are students|1');
    assert.equal(sqlite(s, "SELECT change, group_rule, record_batch IS NULL FROM sent WHERE run = 2 AND key = 'stu1'"), 'unchanged|the rest are students|1');
    assert.equal(reportOf(s, 22).changes.unchanged.count, 20);
    writeExport(s, people(1, 20));
    assert.equal((await night(s, 23)).code, 0);
    const history = (await runCli(['history', 'person', 'stu1', '--config', s.config])).stdout;
    assert.match(history, /^stu1: user group STUDENT \(rule "the rest are students"\)/);
    assert.deepEqual(history.trim().split('\n').slice(1).map((l) => l.replace(/ {2}2026-\S+ {2}/, ' ')), [
      'run 1 new: STUDENT, rule "everyone else is a student"; row 1',
      'run 2 unchanged: STUDENT, rule "the rest are students"; row 1',
      'run 3 unchanged: STUDENT, rule "the rest are students"',
    ]);
  });

  test('a count limit and max_new_users: more new users than allowed trips it', async () => {
    const s = site();
    writeFileSync(s.config, readFileSync(s.config, 'utf8').replace('guards: { max_rejected: 0 }', 'guards: { max_rejected: 0, max_new_users: 2 }'));
    writeExport(s, people(1, 10));
    assert.equal((await night(s, 21)).code, 0);
    writeExport(s, people(1, 13));
    const r = await night(s, 22);
    assert.equal(r.code, 5, r.stderr);
    assert.equal(reportOf(s, 22).guard.message, '3 new users, against 10 people of the last delivered run (30.0%), over the limit of 2 (max_new_users)');
  });

  test('a dry run and a failed delivery leave the state as it was', async () => {
    const s = site();
    writeExport(s, people(1, 20));
    assert.equal((await night(s, 21)).code, 0);
    const before = sha(s.state);
    writeExport(s, [{ id: 1, given: 'Changed' }, ...people(2, 20)]);
    const dry = await night(s, 22, ['--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(reportOf(s, 22).changes.changed.count, 1);
    assert.equal(sha(s.state), before);
    // A target folder that is gone (create_dir off): the delivery fails.
    writeFileSync(s.config, readFileSync(s.config, 'utf8').replace('create_dir: true', 'create_dir: false'));
    rmSync(s.drop, { recursive: true });
    const failed = await night(s, 23);
    assert.equal(failed.code, 6, failed.stderr);
    assert.equal(sha(s.state), before);
    assert.equal(sqlite(s, 'SELECT count(*) FROM runs'), '1');
  });

  test('killed (SIGKILL) while the state is being updated, the previous state is intact, and the next run goes on from it', async () => {
    const s = site();
    writeExport(s, people(1, 20));
    assert.equal((await night(s, 21)).code, 0);
    const before = stateDump(s);
    writeExport(s, [{ id: 1, given: 'Changed' }, ...people(2, 19), { id: 30 }]);
    const marker = path.join(s.dir, 'paused');
    // A temporary folder of the runs' own, to see what a killed run leaves there.
    const tmp = path.join(s.dir, 'tmp');
    mkdirSync(tmp);
    const child = spawn(process.execPath, [CLI, 'run', '--config', s.config, '--now', '2026-11-22T02:00:00', '--quiet'], { env: { ...process.env, SIS2ALMA_TEST_STATE_PAUSE: marker, TMPDIR: tmp }, stdio: 'ignore' });
    const ended = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    for (let i = 0; i < 600 && !existsSync(marker); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(existsSync(marker), 'the run reached the state update');
    // Inside the transaction: the people are written, not yet committed.
    assert.ok(existsSync(`${s.state}-journal`), 'a rollback journal while the transaction is open');
    assert.equal(statSync(`${s.state}-journal`).mode & 0o777, 0o600);
    child.kill('SIGKILL');
    assert.equal(await ended, 'SIGKILL');
    // A kill leaves tonight's staged night (patron data) behind, saying whose it was.
    const abandoned = readdirSync(tmp);
    assert.deepEqual(abandoned.map((n) => n.replace(/-\w{6}$/, '')), ['sis2alma-night']);
    assert.deepEqual(readdirSync(path.join(tmp, abandoned[0]!)).sort(), ['.owner', 'night.db']);
    const owner = readFileSync(path.join(tmp, abandoned[0]!, '.owner'), 'utf8');
    const [host, boot, pid, start] = owner.trim().split(' ');
    assert.equal(owner, `${hostname()} ${readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()} ${child.pid} ${start}\n`);
    assert.match(start!, /^\d+$/);
    // Never taken: a folder of a process still running (this one), or of another host (a shared
    // TMPDIR). Taken: one whose process id is now another process's (a different start time),
    // and one from an earlier boot.
    const own = readFileSync(`/proc/${process.pid}/stat`, 'utf8');
    const ownStart = own.slice(own.lastIndexOf(')') + 2).split(' ')[19];
    const folders: Record<string, string> = {
      'sis2alma-night-LIVE00': `${host} ${boot} ${process.pid} ${ownStart}`,
      'sis2alma-night-OTHER0': `elsewhere.example ${boot} ${pid} ${start}`,
      'sis2alma-night-REUSED': `${host} ${boot} ${process.pid} 1`,
      'sis2alma-night-BOOTED': `${host} 00000000-0000-0000-0000-000000000000 ${process.pid} ${ownStart}`,
    };
    for (const [name, line] of Object.entries(folders)) {
      mkdirSync(path.join(tmp, name));
      writeFileSync(path.join(tmp, name, '.owner'), `${line}\n`);
    }
    // The file and its hot journal as the kill left them, for the next run to find.
    const left = [readFileSync(s.state), readFileSync(`${s.state}-journal`)] as const;
    // sqlite3 rolls the hot journal back as it opens the file.
    assert.equal(stateDump(s), before);
    assert.equal(sqlite(s, 'PRAGMA integrity_check'), 'ok');
    // The next run may be the first to open it: it rolls the journal back too, and goes on.
    writeFileSync(s.state, left[0]);
    writeFileSync(`${s.state}-journal`, left[1]);
    const again = await night(s, 22, [], { TMPDIR: tmp });
    assert.equal(again.code, 0, again.stderr);
    const c = reportOf(s, 22).changes;
    assert.deepEqual([c.new.count, c.changed.count, c.departed.count], [1, 1, 1]);
    // The next run removed the killed one's folder, and its own; the live one's and the other host's stay.
    assert.deepEqual(readdirSync(tmp).sort(), ['sis2alma-night-LIVE00', 'sis2alma-night-OTHER0']);
    assert.equal(sqlite(s, 'SELECT count(*) FROM runs'), '2');
  });

  test('a state that cannot be read, of a newer version, or of another source stops the run (exit 11), never a silent fresh start', async () => {
    const s = site();
    writeExport(s, people(1, 5));
    assert.equal((await night(s, 21)).code, 0);
    sqlite(s, "UPDATE meta SET value = 'other' WHERE name = 'source'");
    const other = await night(s, 22);
    assert.equal(other.code, 11);
    assert.match(other.stderr, new RegExp(`sis2alma: the run state ${s.state} belongs to the source "other", and this run's is "infiniti": each run config needs a state of its own \\(state.dir in the run config\\); nothing was converted`));
    sqlite(s, "UPDATE meta SET value = 'infiniti' WHERE name = 'source'; PRAGMA user_version = 7");
    const newer = await night(s, 22);
    assert.equal(newer.code, 11);
    assert.match(newer.stderr, /was written by a newer sis2alma \(state version 7; this one reads up to 2\): upgrade sis2alma, or move the file away/);
    writeFileSync(s.state, 'not a database, but a file some script overwrote'.repeat(100));
    const broken = await night(s, 22);
    assert.equal(broken.code, 11);
    assert.match(broken.stderr, new RegExp(`the run state ${s.state} cannot be read \\(it is not an SQLite database\\); sis2alma will not start again from an empty state on its own`));
    assert.doesNotMatch(broken.stderr, /\n\s+at /);
    assert.equal(existsSync(path.join(s.out, 'users_infiniti_20261122-020000.report.json')), false);
  });

  test('state: { enabled: false } keeps no state', async () => {
    const s = site('state: { enabled: false }\n');
    writeExport(s, people(1, 5));
    const r = await night(s, 21);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(existsSync(path.dirname(s.state)), false);
    assert.equal(reportOf(s, 21).changes, undefined);
  });
});

describe('sis2alma history', () => {
  test('lists the delivered runs, shows one, and tells for one person what was sent run by run and why', async () => {
    const s = site();
    // stu5 is a staff member who also studies: two rows, merged into one user.
    writeExport(s, [...people(1, 4), { id: 5, staff: true }, { id: 5 }]);
    assert.equal((await night(s, 21)).code, 0);
    writeExport(s, [{ id: 1, given: 'Renamed' }, ...people(2, 3), { id: 5, staff: true }, { id: 5 }]);
    assert.equal((await night(s, 22, ['--accept-changes'])).code, 0);
    assert.equal((await night(s, 23)).code, 0);

    const list = await runCli(['history', '--config', s.config]);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(list.stdout.split('\n').map((l) => l.replace(/ +/g, ' ')), [
      'run time mode outcome users rejected new changed departed returned files',
      '1 2026-11-21T02:00:00.000Z full delivered 5 0 5 0 0 0 users_infiniti_20261121-020000.zip',
      '2 2026-11-22T02:00:00.000Z full delivered, changes accepted 4 0 0 1 1 0 users_infiniti_20261122-020000.zip',
      '3 2026-11-23T02:00:00.000Z full delivered 4 0 0 0 0 0 users_infiniti_20261123-020000.zip',
      '',
    ]);
    const show = await runCli(['history', 'show', '2', '--config', s.config]);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /^run 2, 2026-11-22T02:00:00\.000Z: delivered, changes accepted \(full\)\n/);
    assert.match(show.stdout, /\nchanges: 0 new, 1 changed \(first_name 1\), 3 unchanged, 1 departed, 0 returned\n/);
    assert.match(show.stdout, /\nguards \(accepted with --accept-changes\):\n {2}max_departures: 1 of 5 people of the last delivered run \(20\.0%\)/);
    const shown = JSON.parse((await runCli(['history', 'show', '2', '--config', s.config, '--json'])).stdout);
    assert.deepEqual([shown.id, shown.counts.users, shown.changes.departed.examples], [2, 4, [{ primary_id: 'stu4', user_group: 'STUDENT' }]]);

    const merged = await runCli(['history', 'person', 'STU5', '--config', s.config]);
    assert.equal(merged.code, 0, merged.stderr);
    assert.deepEqual(merged.stdout.trim().split('\n').slice(1), [
      'run 1  2026-11-21T02:00:00.000Z  new: STAFF, rule "staff members"; merged from rows 5, 6: STAFF wins over STUDENT by priority',
      'run 2  2026-11-22T02:00:00.000Z  unchanged: STAFF, rule "staff members"; merged: STAFF wins over STUDENT by priority',
      'run 3  2026-11-23T02:00:00.000Z  unchanged: STAFF, rule "staff members"; merged: STAFF wins over STUDENT by priority',
    ]);
    const left = await runCli(['history', 'person', 'stu4', '--config', s.config]);
    assert.deepEqual(left.stdout.trim().split('\n').slice(1), ['run 1  2026-11-21T02:00:00.000Z  new: STUDENT, rule "everyone else is a student"; row 4', 'run 2  2026-11-22T02:00:00.000Z  departed: not in the feed']);
    const json = JSON.parse((await runCli(['history', 'person', 'stu1', '--config', s.config, '--json'])).stdout);
    assert.deepEqual(json.runs.map((n: { run: number; change: string; fields: string[] }) => [n.run, n.change, n.fields]), [[1, 'new', []], [2, 'changed', ['first_name']], [3, 'unchanged', []]]);
    assert.match(json.runs[1].record, /<first_name>Renamed<\/first_name>/);
    assert.match(json.runs[0].record, /<first_name>Given1<\/first_name>/);
    assert.equal(json.current, true);

    const nobody = await runCli(['history', 'person', 'nobody', '--config', s.config]);
    assert.equal(nobody.code, 2);
    assert.match(nobody.stderr, /^sis2alma: no person with primary id 'nobody' in the run state .*state\.db: none was delivered with this run config\n/);
  });

  test('before any delivery, history says so', async () => {
    const s = site();
    const r = await runCli(['history', '--config', s.config]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `no delivered run in the run state ${s.state} yet\n`);
  });
});

describe('departures', () => {
  /** The XML of every user in the zips of the night of `day` in the delivery folder, by zip. */
  async function delivered(s: Site, day: number): Promise<Record<string, string>> {
    const { readZip } = await import('./helpers/zip.js');
    const out: Record<string, string> = {};
    for (const name of readdirSync(s.drop).filter((f) => f.includes(`202611${day}-`) && f.endsWith('.zip')).sort()) out[name] = (await readZip(path.join(s.drop, name))).map((e) => e.text).join('');
    return out;
  }

  test('expire: a person missing for one night is sent once more, whole, expired on the run date with a note; once; and counted as returned when back', async () => {
    const s = site('departures: { action: expire }\n');
    writeExport(s, people(1, 20));
    assert.equal((await night(s, 21)).code, 0);
    writeExport(s, people(1, 19));
    const r = await night(s, 22);
    assert.equal(r.code, 0, r.stderr);
    const zips = await delivered(s, 22);
    assert.deepEqual(Object.keys(zips), ['users_infiniti_20261122-020000.zip', 'users_infiniti_20261122-020000_departures.zip']);
    const departure = zips['users_infiniti_20261122-020000_departures.zip']!;
    assert.equal((departure.match(/<user>/g) ?? []).length, 1);
    // The whole last record: identifiers and contacts stay, so that Alma wipes nothing.
    for (const kept of ['<primary_id>stu20</primary_id>', '<email_address>stu20@school.example.nz</email_address>', '<value>B100020</value>', '<value>SIS1020</value>', '<statistic_category>10A</statistic_category>'])
      assert.ok(departure.includes(kept), kept);
    assert.match(departure, /<expiry_date>2026-11-22<\/expiry_date>/);
    // The mapping's purge rule counts from the expiry date (after_expiry: 1 year): from the new one.
    assert.match(departure, /<expiry_date>2026-11-22<\/expiry_date>\n {4}<purge_date>2027-11-22<\/purge_date>\n/);
    assert.match(departure, /<status>ACTIVE<\/status>/);
    assert.match(departure, /<user_notes>\n {6}<user_note segment_type="External">\n {8}<note_type>OTHER<\/note_type>\n {8}<note_text>No longer in the SIS feed as of 2026-11-22<\/note_text>/);
    const report = reportOf(s, 22);
    assert.deepEqual(report.departures, { action: 'expire', after_missing_runs: 1, sent: 1, examples: ['stu20'], files: ['users_infiniti_20261122-020000_departures.zip'] });
    assert.equal(sqlite(s, "SELECT departed_run FROM people WHERE key = 'stu20'"), '2');
    assert.equal(sqlite(s, "SELECT change FROM sent WHERE key = 'stu20' AND run = 2 ORDER BY change"), 'departed\ndeparture sent');
    // Sent once: the next night still without stu20 sends no departure.
    assert.equal((await night(s, 23)).code, 0);
    assert.deepEqual(Object.keys(await delivered(s, 23)), ['users_infiniti_20261123-020000.zip']);
    assert.equal(reportOf(s, 23).departures.sent, 0);
    // Back: returned, and may depart again later.
    writeExport(s, people(1, 20));
    assert.equal((await night(s, 24)).code, 0);
    assert.deepEqual(reportOf(s, 24).changes.returned, { count: 1, examples: ['stu20'] });
    assert.equal(sqlite(s, "SELECT departed_run IS NULL FROM people WHERE key = 'stu20'"), '1');
    const history = await runCli(['history', 'person', 'stu20', '--config', s.config]);
    assert.deepEqual(history.stdout.trim().split('\n').slice(1).map((l) => l.replace(/ {2}2026-\S+ {2}/, ' ')), [
      'run 1 new: STUDENT, rule "everyone else is a student"; row 20',
      'run 2 departed: not in the feed',
      "run 2 departure sent: the last record, as the run config's departures: says",
      'run 4 returned: STUDENT, rule "everyone else is a student"; row 20',
    ]);
  });

  test('expire: a purge rule that needs the row keeps the purge date last sent, never before the new expiry date', async () => {
    const s = site('departures: { action: expire }\n');
    // The purge date depends on the row: the departure cannot recompute it.
    writeFileSync(s.mapping, readFileSync(s.mapping, 'utf8').replace('  default: { after_expiry: 1 year }', '  default:\n    rules:\n      - { when: { formclass: 9Z }, run_date: true }\n    otherwise: { after_expiry: 1 year }'));
    writeExport(s, people(1, 20));
    assert.equal((await night(s, 21)).code, 0);
    writeExport(s, people(1, 19));
    const r = await night(s, 22);
    assert.equal(r.code, 0, r.stderr);
    const departure = (await delivered(s, 22))['users_infiniti_20261122-020000_departures.zip']!;
    // Graduation year 2027: it expired 2027-12-31 and was to be purged a year later.
    assert.match(departure, /<expiry_date>2026-11-22<\/expiry_date>\n {4}<purge_date>2028-12-31<\/purge_date>\n/);
  });

  test('inactivate after two missing nights; none on a night a guard tripped, even accepted', async () => {
    const s = site('departures: { action: inactivate, after_missing_runs: 2, note: "Left on {last_seen}" }\n');
    writeExport(s, people(1, 20));
    assert.equal((await night(s, 21)).code, 0);
    writeExport(s, people(1, 19));
    assert.equal((await night(s, 22)).code, 0);
    assert.equal(reportOf(s, 22).departures.sent, 0);
    // A night of many departures, delivered with --accept-changes: not a healthy night.
    writeExport(s, people(1, 10));
    assert.equal((await night(s, 23, ['--accept-changes'])).code, 0);
    assert.deepEqual(reportOf(s, 23).departures, { action: 'inactivate', after_missing_runs: 2, sent: 0, examples: [], not_sent: 'a guard against the last night tripped: departures are sent only on a healthy night' });
    assert.equal((await night(s, 24)).code, 0);
    const departure = (await delivered(s, 24))['users_infiniti_20261124-020000_departures.zip']!;
    assert.equal((departure.match(/<user>/g) ?? []).length, 10);
    assert.match(departure, /<primary_id>stu20<\/primary_id>[^]*?<status>INACTIVE<\/status>[^]*?<note_text>Left on 2026-11-21<\/note_text>/);
    assert.match(departure, /<primary_id>stu11<\/primary_id>[^]*?<note_text>Left on 2026-11-22<\/note_text>/);
    assert.doesNotMatch(departure, /<expiry_date>2026-11-24/);
  });
});

describe('delta runs', () => {
  test('mode: delta sends only new, changed and returned users; full_every and --full send everyone; the report says which mode ran and why', async () => {
    const s = site('state: { mode: delta, full_every: sunday }\n');
    const zipped = async (day: number) => {
      const { readZip } = await import('./helpers/zip.js');
      const name = readdirSync(s.drop).find((f) => f.startsWith(`users_infiniti_202611${day}-`) && f.endsWith('.zip'))!;
      return [...(await readZip(path.join(s.drop, name))).map((e) => e.text).join('').matchAll(/<primary_id>([^<]+)</g)].map((m) => m[1]);
    };
    writeExport(s, people(1, 20));
    // 2026-11-20 is a Friday: the first night is full all the same.
    assert.equal((await night(s, 20)).code, 0);
    assert.deepEqual(reportOf(s, 20).changes.mode, { mode: 'full', why: 'first night' });
    assert.equal((await zipped(20)).length, 20);
    // Saturday: delta; stu1 changes, stu21 is new.
    writeExport(s, [{ id: 1, given: 'Changed' }, ...people(2, 21)]);
    const saturday = await night(s, 21);
    assert.equal(saturday.code, 0, saturday.stderr);
    const report = reportOf(s, 21);
    assert.deepEqual(report.changes.mode, { mode: 'delta', why: 'mode: delta', sent: 2, left_out: 19 });
    assert.deepEqual(await zipped(21), ['stu1', 'stu21']);
    assert.equal(report.counts.users, 21);
    assert.match(report.summary, / Delta run \(mode: delta\): 2 users sent, 19 unchanged left out\.$/);
    assert.equal(report.details['2'], 'User unchanged since the last delivery, not sent (delta)');
    assert.equal(report.details['1'], 'User written');
    assert.equal(sqlite(s, 'SELECT id, mode FROM runs ORDER BY id'), '1|full\n2|delta');
    // Every person is in the state, sent or not.
    assert.equal(sqlite(s, 'SELECT count(*) FROM people WHERE missing_since IS NULL'), '21');
    assert.equal(sqlite(s, 'SELECT people FROM runs WHERE id = 2'), '21');
    // Sunday: full_every.
    assert.equal((await night(s, 22)).code, 0);
    assert.deepEqual(reportOf(s, 22).changes.mode, { mode: 'full', why: 'full_every: sunday' });
    assert.equal((await zipped(22)).length, 21);
    // Monday with nothing changed: nothing to send, nothing delivered, the state as it was.
    const before = sha(s.state);
    const quiet = await night(s, 23, ['--log-format', 'text']);
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.equal(readdirSync(s.drop).some((f) => f.includes('20261123')), false);
    assert.equal(sha(s.state), before);
    // --full forces one.
    assert.equal((await night(s, 24, ['--full'])).code, 0);
    assert.deepEqual(reportOf(s, 24).changes.mode, { mode: 'full', why: '--full' });
    assert.equal((await zipped(24)).length, 21);
  });

  test('a delta night on which nobody changed but someone left records the night, and sends the departure when one is due', async () => {
    const s = site('state: { mode: delta }\ndepartures: { action: expire }\n');
    writeExport(s, people(1, 30));
    assert.equal((await night(s, 21)).code, 0);
    // Only stu30 leaves: nobody to send but the departure.
    writeExport(s, people(1, 29));
    const r = await night(s, 22);
    assert.equal(r.code, 0, r.stderr);
    const report = reportOf(s, 22);
    assert.deepEqual([report.changes.mode.sent, report.changes.unchanged.count, report.changes.departed.count], [0, 29, 1]);
    assert.deepEqual(readdirSync(s.drop).filter((f) => f.includes('20261122')), ['users_infiniti_20261122-020000_departures.zip']);
    assert.equal(report.departures.sent, 1);
    assert.equal(sqlite(s, "SELECT missing_since, departed_run FROM people WHERE key = 'stu30'"), '2|2');
    assert.equal(sqlite(s, 'SELECT id, outcome, files FROM runs WHERE id = 2'), '2|delivered|["users_infiniti_20261122-020000_departures.zip"]');
    // Without departures: in the config, the night has nothing to send at all, and is recorded all the same.
    writeFileSync(s.config, readFileSync(s.config, 'utf8').replace('departures: { action: expire }\n', ''));
    writeExport(s, people(1, 28));
    const q = await runCli(['run', '--config', s.config, '--now', '2026-11-23T02:00:00', '--log-format', 'text']);
    assert.equal(q.code, 0, q.stderr);
    assert.match(q.stdout + q.stderr, /delta: nothing to send; nothing delivered, the night recorded in the run state/);
    assert.deepEqual(readdirSync(s.drop).filter((f) => f.includes('20261123')), []);
    assert.equal(sqlite(s, 'SELECT id, outcome, files, people FROM runs WHERE id = 3'), '3|nothing to deliver|[]|28');
    assert.equal(sqlite(s, "SELECT missing_since FROM people WHERE key = 'stu29'"), '3');
  });
});

describe('state versions', () => {
  test('a state of version 1 (each record in its row) is read as it is, and the first run that delivers migrates it to version 2 (records in batches), losing no record', async () => {
    const s = site('departures: { action: expire }\n');
    writeExport(s, people(1, 20));
    assert.equal((await night(s, 21)).code, 0);
    const recordOf = async (id: string) => JSON.parse((await runCli(['history', 'person', id, '--config', s.config, '--json'])).stdout).record as string;
    const records: Record<string, string> = {};
    for (let id = 1; id <= 20; id++) records[`stu${id}`] = await recordOf(`stu${id}`);
    assert.match(records.stu20!, /<value>B100020<\/value>/);
    // The same night as version 1 of the state kept it.
    const v2 = s.state + '.v2';
    copyFileSync(s.state, v2);
    rmSync(s.state);
    const db = new Database(s.state);
    db.exec(MIGRATIONS[0] as string);
    db.prepare('ATTACH DATABASE ? AS v2').run(v2);
    db.exec(`INSERT INTO meta SELECT * FROM v2.meta;
      INSERT INTO runs SELECT id, run_time, mode, outcome, config_file, config_sha256, mapping_file, mapping_sha256, counts, changes, files, report_file FROM v2.runs;
      INSERT INTO people (key, primary_id, fingerprint, user_group, group_rule, merge, expiry_date, kinds, first_seen, last_seen, last_run, departed_run)
        SELECT key, primary_id, fingerprint, user_group, group_rule, merge, expiry_date, kinds, first_seen, first_seen, 1, departed_run FROM v2.people;
      INSERT INTO sent (key, run, change, fields, user_group, group_rule, merge, rows) SELECT key, run, change, fields, user_group, group_rule, merge, rows FROM v2.sent;
      PRAGMA user_version = 1;`);
    for (const [key, xml] of Object.entries(records)) {
      db.prepare('UPDATE people SET record = ? WHERE key = ?').run(packRecord(Buffer.from(xml)), key);
      db.prepare('UPDATE sent SET record = ? WHERE key = ?').run(packRecord(Buffer.from(xml)), key);
    }
    db.close();
    rmSync(v2);
    assert.equal(sqlite(s, 'PRAGMA user_version'), '1');
    // history reads it as it is, through a migrated copy, and leaves the file at version 1.
    const before = sha(s.state);
    assert.equal(await recordOf('stu2'), records.stu2);
    assert.match((await runCli(['history', 'person', 'stu2', '--config', s.config])).stdout, /last sent 2026-11-21T02:00:00\.000Z \(run 1, the last delivered run\)/);
    assert.equal(sha(s.state), before);
    assert.equal(sqlite(s, 'PRAGMA user_version'), '1');

    // stu1 renamed, stu20 gone: the changed fields and the departure come from version 1's records.
    writeExport(s, [{ id: 1, given: 'Renamed' }, ...people(2, 19)]);
    const r = await night(s, 22);
    assert.equal(r.code, 0, r.stderr);
    const report = reportOf(s, 22);
    assert.deepEqual(report.changes.changed, { count: 1, fields: { first_name: 1 }, examples: [{ primary_id: 'stu1', fields: ['first_name'] }] });
    assert.equal(report.changes.unchanged.count, 18);
    assert.equal(report.departures.sent, 1);
    const { readZip } = await import('./helpers/zip.js');
    const departure = (await readZip(path.join(s.drop, 'users_infiniti_20261122-020000_departures.zip'))).map((e) => e.text).join('');
    // The record up to its expiry date, as version 1 kept it, and its identifiers after.
    assert.ok(departure.includes(records.stu20!.split('<expiry_date>')[0]!), departure);
    assert.match(departure, /<value>B100020<\/value>[\s\S]*No longer in the SIS feed as of 2026-11-22/);

    // Migrated: batches, no record left in a row, and every record still there.
    assert.equal(sqlite(s, 'PRAGMA user_version'), '2');
    assert.equal(sqlite(s, "SELECT count(*) FROM pragma_table_info('people') WHERE name = 'record'"), '0');
    assert.equal(sqlite(s, 'SELECT count(*) > 0 FROM records'), '1');
    const stu1 = JSON.parse((await runCli(['history', 'person', 'stu1', '--config', s.config, '--json'])).stdout);
    assert.equal(stu1.runs[0].record, records.stu1);
    assert.match(stu1.runs[1].record, /<first_name>Renamed<\/first_name>/);
    assert.equal(stu1.record, stu1.runs[1].record);
    assert.equal(await recordOf('stu2'), records.stu2);
  });
});
