// `mapping explain` and `mapping diff` on the university example (two exports, merged by netid),
// checked against what convert really writes for the same input; and the shipped mappings'
// output checked against Ex Libris' rest_users.xsd.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { explainMapping, diffMappings, formatExplanation, type Explanation, type MappingDiff } from '../src/review/explain.js';
import { validateFiles } from '../src/commands/validate.js';
import { convert } from '../src/pipeline/convert.js';
import { loadMapping } from '../src/mapping/load.js';
import { PACKAGE_ROOT } from '../src/shared/paths.js';
import { makeTempDir } from './helpers/tmp.js';
import { runMappingCommand } from './helpers/mapping-command.js';

const RUN_DATE = '2026-11-21';
const NOW = '2026-11-21T02:00:00';
const UNIVERSITY = path.join(PACKAGE_ROOT, 'mappings', 'university.yaml');
const INFINITI = path.join(PACKAGE_ROOT, 'mappings', 'infiniti.yaml');
const STUDENTS = path.join(PACKAGE_ROOT, 'examples', 'university', 'students.csv');
const EMPLOYEES = path.join(PACKAGE_ROOT, 'examples', 'university', 'employees.csv');
const INFINITI_CSV = path.join(PACKAGE_ROOT, 'examples', 'infiniti-users.csv');
const EXLIBRIS_XSD = path.resolve(PACKAGE_ROOT, '..', 'shared', 'reference', 'alma', 'rest_users.xsd');
const CLI = path.join(PACKAGE_ROOT, 'dist', 'src', 'cli.js');

const run = runMappingCommand;

/** A copy of the university mapping (with its tables) in a temporary folder, edited. */
function editedUniversity(edits: Array<[from: string, to: string]>): string {
  const dir = makeTempDir('sis2alma-diff-');
  cpSync(path.join(PACKAGE_ROOT, 'mappings', 'university'), path.join(dir, 'university'), { recursive: true });
  let text = readFileSync(UNIVERSITY, 'utf8');
  for (const [from, to] of edits) {
    assert.ok(text.includes(from), `university.yaml lacks ${from}`);
    text = text.replace(from, to);
  }
  const file = path.join(dir, 'university.yaml');
  writeFileSync(file, text);
  return file;
}

describe('mapping explain on the university example', () => {
  let x: Explanation;
  before(async () => {
    x = await explainMapping(loadMapping(UNIVERSITY), [STUDENTS, EMPLOYEES], { runDate: RUN_DATE });
  });

  test('rows, users and users per group, after merging people with several roles', () => {
    assert.deepEqual(x.inputs, [
      { file: STUDENTS, rows: 15 },
      { file: EMPLOYEES, rows: 15 },
    ]);
    assert.deepEqual(x.rows, { total: 30, mapped: 22, rejected: 8, skipped: 0 });
    assert.deepEqual(x.users, { total: 18, by_group: { UNDERGRAD: 7, FACULTY: 4, STAFF: 4, GRAD: 2, EMERITUS: 1 } });
  });

  test('expiry dates per group: term calendar for students, end dates or 31 December of next year for employees', () => {
    assert.deepEqual(x.expiry.GRAD?.dates, { '2027-06-30': 2 });
    assert.deepEqual(x.expiry.FACULTY?.dates, { '2027-01-31': 1, '2027-12-31': 2, '2028-06-30': 1 });
    assert.deepEqual(x.expiry.EMERITUS?.dates, { '2028-12-31': 1 });
    assert.deepEqual([x.expiry.STAFF?.earliest, x.expiry.STAFF?.latest, x.expiry.STAFF?.none], ['2027-06-30', '2028-06-30', 0]);
  });

  test('values no rule maps, with counts and example rows', () => {
    assert.deepEqual(
      x.unmapped.map((u) => [u.field, u.value, u.outcome, u.rows, u.examples]),
      [
        ['department', 'ARCH', 'DEPT_OTHER', 1, ['employees.csv:12']],
        ['department', 'NURS', 'DEPT_OTHER', 1, ['students.csv:5']],
        ['user_group', "employee_type = 'CONTRACTOR'", 'rejected', 1, ['employees.csv:8']],
        ['user_group', "level = 'XX'", 'rejected', 1, ['students.csv:6']],
      ],
    );
  });

  test('rows without an email', () => {
    assert.deepEqual(x.without_email, { rows: 1, users: 1, examples: ['students.csv:14'] });
  });

  test('merges, with the reason and masked ids', () => {
    assert.equal(x.merges.people, 4);
    assert.equal(x.merges.rows, 8);
    assert.deepEqual(x.merges.by_reason, {
      'exception "staff who are undergraduates get UNDERGRAD" gives UNDERGRAD': 1,
      'STAFF wins over GRAD by priority': 1,
      'FACULTY wins over GRAD by priority': 1,
      'GRAD (the active row) wins': 1,
    });
    assert.deepEqual(x.merges.examples[0], {
      primary_id: 'jd***1',
      rows: ['students.csv:1', 'employees.csv:1'],
      user_group: 'UNDERGRAD',
      reason: 'exception "staff who are undergraduates get UNDERGRAD" gives UNDERGRAD',
    });
  });

  test('rejections by reason, naming the column each came from', () => {
    assert.deepEqual(
      Object.fromEntries(Object.entries(x.rejections).map(([code, r]) => [code, [r.rows, r.columns, r.examples]])),
      {
        no_user_group: [2, { employee_type: 1, level: 1 }, ['students.csv:6', 'employees.csv:8']],
        bad_email: [2, { email: 1, work_email: 1 }, ['students.csv:7', 'employees.csv:11']],
        bad_date: [2, { birth_date: 1, end_date: 1 }, ['students.csv:8', 'employees.csv:10']],
        missing_value: [1, { netid: 1 }, ['students.csv:9']],
        bad_boolean: [1, { active: 1 }, ['employees.csv:9']],
      },
    );
  });

  test('agrees with what convert writes for the same input', async () => {
    const out = makeTempDir('sis2alma-explain-convert-');
    const result = await convert({ mappingFile: UNIVERSITY, inputs: [STUDENTS, EMPLOYEES], outDir: out, now: new Date(NOW), guards: { maxRejected: '50%' } });
    assert.deepEqual(
      [result.report.counts.rows, result.report.counts.users, result.report.counts.rejected, result.report.counts.merged],
      [x.rows.total, x.users.total, x.rows.rejected, x.merges.rows - x.merges.people],
    );
    // The same warnings, the merge's included (a preferred address that another row's overrules).
    assert.deepEqual(result.report.warnings, Object.fromEntries(Object.entries(x.warnings).map(([kind, w]) => [kind, { count: w.rows, examples: w.examples }])));
    assert.equal(x.warnings.extra_preferred?.rows, 8);
  });

  test('identifiers are unique across users, in the order convert decides it: explain warns of the ones convert leaves out', async () => {
    // Row 3 carries row 1's library card; row 5 carries asmith2's primary id as its card. jdoe1
    // (row 1) has a second row among the employees, so convert writes that person later than row 3,
    // and row 3 keeps the card.
    const dir = makeTempDir('sis2alma-explain-ids-');
    const students = path.join(dir, 'students.csv');
    writeFileSync(students, readFileSync(STUDENTS, 'utf8').replace('21000000000003', '21000000000001').replace('21000000000005', 'ASMITH2'));
    const employees = path.join(dir, 'employees.csv');
    cpSync(EMPLOYEES, employees);
    const explained = await explainMapping(loadMapping(UNIVERSITY), [students, employees], { runDate: RUN_DATE });
    assert.deepEqual(explained.warnings.duplicate_identifier, { rows: 2, examples: ['students.csv:5', 'students.csv:1'] });
    assert.ok(formatExplanation(explained).includes('  an identifier another user (or this one) already has was left out: 2 rows, e.g. rows students.csv:5, students.csv:1'));

    const result = await convert({ mappingFile: UNIVERSITY, inputs: [students, employees], outDir: makeTempDir('sis2alma-explain-ids-out-'), now: new Date(NOW), guards: { maxRejected: '50%' } });
    assert.deepEqual(result.report.warnings, Object.fromEntries(Object.entries(explained.warnings).map(([kind, w]) => [kind, { count: w.rows, examples: w.examples }])));
    const details = (JSON.parse(readFileSync(result.reportFile, 'utf8')) as { details: Record<string, string> }).details;
    assert.match(details['students.csv:1']!, /identifier BARCODE '21000000000001' is already used by row students\.csv:3, which keeps it/);
  });

  test('a value holding a NUL character is read as one value, as convert reads it', async () => {
    // The mapping thread sends explain each record as one string, its values joined by NUL; a record
    // with a NUL of its own must come as its values.
    const dir = makeTempDir('sis2alma-explain-nul-');
    const students = path.join(dir, 'students.csv');
    writeFileSync(students, readFileSync(STUDENTS, 'utf8').replace('100000001,jdoe1,John,', '100000001,jdoe1,Jo\u0000hn,'));
    const explained = await explainMapping(loadMapping(UNIVERSITY), [students, EMPLOYEES], { runDate: RUN_DATE });
    assert.deepEqual(explained.rows, x.rows);
    assert.deepEqual(explained.users, x.users);
    assert.deepEqual(explained.warnings.stripped_characters, { rows: 1, examples: ['students.csv:1'] });
    const result = await convert({ mappingFile: UNIVERSITY, inputs: [students, EMPLOYEES], outDir: makeTempDir('sis2alma-explain-nul-out-'), now: new Date(NOW), guards: { maxRejected: '50%' } });
    assert.deepEqual((result.report.warnings as Record<string, unknown>).stripped_characters, { count: 1, examples: ['students.csv:1'] });
  });

  test('ids in full with showPii', async () => {
    const full = await explainMapping(loadMapping(UNIVERSITY), [STUDENTS, EMPLOYEES], { runDate: RUN_DATE, showPii: true });
    assert.deepEqual(
      full.merges.examples.map((m) => m.primary_id),
      ['jdoe1', 'asmith2', 'hprof12', 'gstudent15'],
    );
  });

  test('the text a librarian reads', () => {
    const text = formatExplanation(x);
    assert.ok(text.includes('30 rows: 22 mapped, 8 rejected; 18 users would be written.'));
    assert.ok(text.includes('  UNDERGRAD               7'));
    assert.ok(text.includes('  GRAD             2027-06-30 (2)'));
    assert.ok(text.includes("  department = 'NURS': 1 row given DEPT_OTHER (rows students.csv:5)"));
    assert.ok(text.includes('Rows without an email: 1 (rows students.csv:14); users without an email: 1'));
    assert.ok(text.includes('  e.g. jd***1: rows students.csv:1 + employees.csv:1 → exception "staff who are undergraduates get UNDERGRAD" gives UNDERGRAD'));
    assert.ok(text.includes('  e.g. gs***5: rows students.csv:15 + employees.csv:6 → GRAD (the active row) wins'));
    assert.ok(text.includes('  Field (email) is not a well-formed email address: 1 row, e.g. row students.csv:7'));
    assert.ok(text.includes('  Field (work_email) is not a well-formed email address: 1 row, e.g. row employees.csv:11'));
  });
});

describe('sis2alma mapping explain (command)', () => {
  test('text by default, JSON with --json; nothing is written', async () => {
    const dir = makeTempDir('sis2alma-explain-');
    const students = path.join(dir, 'students.csv');
    cpSync(STUDENTS, students);
    const before = readdirSync(dir);
    const text = await run(['mapping', 'explain', '--mapping', UNIVERSITY, '--input', students, '--now', NOW]);
    assert.equal(text.exitCode, 0);
    assert.ok(text.lines.includes('15 rows: 11 mapped, 4 rejected; 11 users would be written.'), text.lines.join('\n'));
    const json = await run(['mapping', 'explain', '--mapping', UNIVERSITY, '--input', students, '--now', NOW, '--json', '--show-pii']);
    const parsed = JSON.parse(json.lines.join('\n')) as Explanation;
    assert.deepEqual(parsed.users.by_group, { UNDERGRAD: 7, GRAD: 4 });
    assert.equal(parsed.run_date, RUN_DATE);
    assert.deepEqual(readdirSync(dir), before);
  });

  test('a broken mapping stops with mapping_invalid, a missing input with input_unreadable', async () => {
    await assert.rejects(run(['mapping', 'explain', '--mapping', path.join(PACKAGE_ROOT, 'test', 'fixtures', 'mapping', 'broken', 'unknown-keys.yaml'), '--input', STUDENTS]), {
      code: 'mapping_invalid',
    });
    await assert.rejects(run(['mapping', 'explain', '--mapping', UNIVERSITY, '--input', path.join(tmpdir(), 'no-such-export.csv')]), { code: 'input_unreadable' });
  });

  test('through the CLI: exit code 0 and the report on stdout', () => {
    const result = spawnSync(process.execPath, [CLI, 'mapping', 'explain', '--mapping', UNIVERSITY, '--input', STUDENTS, '--input', EMPLOYEES, '--now', NOW], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^30 rows: 22 mapped, 8 rejected; 18 users would be written\.$/m);
  });
});

describe('mapping diff', () => {
  test('the same mapping twice: no changes', async () => {
    const d = await diffMappings(loadMapping(UNIVERSITY), loadMapping(UNIVERSITY), [STUDENTS, EMPLOYEES], { runDate: RUN_DATE });
    assert.deepEqual(d.changes, []);
    assert.equal(d.compared, 25);
    assert.equal(d.unchanged, 25);
  });

  test('an edit: users move group, get a new expiry date (and so a new purge date), are now rejected', async () => {
    const edited = editedUniversity([
      // Graduate students who also teach are loaded as GRAD.
      ['priority: [FACULTY, EMERITUS, STAFF, GRAD, UNDERGRAD]', 'priority: [FACULTY, EMERITUS, GRAD, STAFF, UNDERGRAD]'],
      // Emeritus accounts run a year longer.
      ['EMERITUS: { next: { month_day: 12-31, years: 2 } }', 'EMERITUS: { next: { month_day: 12-31, years: 3 } }'],
      // No fallback for unknown departments: those rows are rejected.
      ['map: departments, unknown: DEPT_OTHER }', 'map: departments }'],
    ]);
    const d: MappingDiff = await diffMappings(loadMapping(UNIVERSITY), loadMapping(edited), [STUDENTS, EMPLOYEES], { runDate: RUN_DATE, showPii: true });
    assert.deepEqual(
      d.changes.map((c) => [c.message, c.examples]),
      [
        ['1 user moves from STAFF to GRAD', ['asmith2']],
        ['1 user gets a new expiry date', ['eemer5 (2028-12-31 → 2029-12-31)']],
        // purge: days_after_expiry: 180 moves with the expiry date.
        ['1 user gets a new purge date', ['eemer5 (2029-06-29 → 2030-06-29)']],
        ['2 users are now rejected (written with the old mapping)', ['pnurse5 (rows students.csv:5)', 'aarch12 (rows employees.csv:12)']],
      ],
    );
    assert.deepEqual(d.rows_rejected, { old: 8, new: 10 });
    assert.equal(d.compared, 25);
  });

  test('an edit that makes identifiers collide: the users who would lose one, as convert decides it', async () => {
    // The library card taken from the department: the first user of each department keeps it.
    const edited = editedUniversity([['    from: barcode', '    from: department']]);
    const d = await diffMappings(loadMapping(UNIVERSITY), loadMapping(edited), [STUDENTS, EMPLOYEES], { runDate: RUN_DATE, showPii: true });
    assert.deepEqual(
      d.changes.map((c) => [c.message, c.examples]),
      [
        ['6 users go from 2 to 1 identifier', ['rprof3', 'eemer5', 'ttemp7', 'divanov13', 'sblake14']],
        ['2 users go from 4 to 2 identifiers', ['hprof12', 'gstudent15']],
        ['1 user goes from 4 to 3 identifiers', ['jdoe1']],
      ],
    );
  });

  test('the command: sentences with masked example ids, JSON with --json, exit code 0', async () => {
    const edited = editedUniversity([['priority: [FACULTY, EMERITUS, STAFF, GRAD, UNDERGRAD]', 'priority: [FACULTY, EMERITUS, GRAD, STAFF, UNDERGRAD]']]);
    const text = await run(['mapping', 'diff', UNIVERSITY, edited, '--input', STUDENTS, '--input', EMPLOYEES, '--now', NOW]);
    assert.equal(text.exitCode, 0);
    assert.deepEqual(text.lines.slice(4), ['1 user moves from STAFF to GRAD, e.g. as***2', '', '25 people compared, 24 unchanged. Nothing was written.']);
    const moved = editedUniversity([['    - name: emeritus professors\n      when: { employee_type: EMERITUS }\n      group: EMERITUS\n', '']]);
    const json = await run(['mapping', 'diff', UNIVERSITY, moved, '--input', EMPLOYEES, '--now', NOW, '--json']);
    const parsed = JSON.parse(json.lines.join('\n')) as MappingDiff;
    assert.deepEqual(
      parsed.changes.map((c) => [c.kind, c.users, c.examples]),
      [['now_rejected', 1, ['ee***5 (rows 5)']]],
    );
    const lines = (await run(['mapping', 'diff', UNIVERSITY, moved, '--input', EMPLOYEES, '--now', NOW])).lines;
    assert.ok(lines.includes('1 user is now rejected (written with the old mapping), e.g. ee***5 (rows 5)'), lines.join('\n'));
    assert.ok(lines.includes('1 more row is rejected (4 → 5)'), lines.join('\n'));
  });
});

describe('the shipped mappings with their examples', () => {
  const cases = [
    { mapping: INFINITI, inputs: [INFINITI_CSV], users: 5 },
    { mapping: UNIVERSITY, inputs: [STUDENTS, EMPLOYEES], users: 18 },
  ];
  for (const { mapping, inputs, users } of cases) {
    test(`${path.basename(mapping)}: convert's output validates against Ex Libris' rest_users.xsd`, async () => {
      const out = makeTempDir('sis2alma-shipped-');
      const result = await convert({ mappingFile: mapping, inputs, outDir: out, now: new Date(NOW), guards: { maxRejected: '50%' } });
      assert.equal(result.report.counts.users, users);
      assert.equal(result.zips.length, 1);
      const lines: string[] = [];
      const checked = await validateFiles(result.zips, { schema: EXLIBRIS_XSD, write: (line) => lines.push(line) });
      assert.deepEqual([checked.checked, checked.failed], [1, 0], lines.join('\n'));
      assert.match(lines.join('\n'), new RegExp(`${users} users, valid`));
    });
  }
});
