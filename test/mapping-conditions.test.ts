// Conditions and row outcomes of the mapping language: conditions as a tree (not, all, any),
// in / not_in, not_equals, not_matches, date comparisons, equals_column and input_file; the
// skip and reject lists; user_group.unmapped: omit. Each with a real mapping file, checked by
// checkMapping and applied by compileMapping (as the pipeline does), and through `convert`,
// `mapping explain` and `mapping diff`. Run date 2026-11-21 throughout.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { checkMapping, formatProblem } from '../src/mapping/load.js';
import type { Mapping } from '../src/mapping/model.js';
import { compileMapping, type MapResult, type MappedUser, type RejectedRow } from '../src/mapping/map.js';
import { diffMappings, explainMapping, formatDiff, formatExplanation } from '../src/review/explain.js';
import { mergeUsers } from '../src/pipeline/merge.js';
import { convertCli, toCsv } from './helpers/run-cli.js';
import { loadRunConfig } from '../src/config/run-config.js';
import { runJob } from '../src/job/run-job.js';
import { silentLogger } from '../src/shared/log.js';
import { makeTempDir } from './helpers/tmp.js';

const RUN_DATE = '2026-11-21';

function writeMapping(blocks: string): string {
  const dir = makeTempDir('sis2alma-conditions-');
  let text = 'source: test\n' + blocks;
  if (!/^fields:/m.test(blocks)) text += '\nfields:\n  primary_id: "{id}"\n';
  if (!/^user_group:/m.test(blocks)) text += '\nuser_group:\n  rules:\n    - group: PATRON\n';
  // Alma never purges a user without a purge date: check warns about a mapping that sets none.
  if (!/^purge:/m.test(blocks)) text += '\npurge:\n  days_after_expiry: 180\n';
  const file = path.join(dir, 'mapping.yaml');
  writeFileSync(file, text);
  return file;
}

function mappingOf(blocks: string): Mapping {
  const file = writeMapping(blocks);
  const result = checkMapping(file);
  assert.deepEqual(result.problems.map(formatProblem), [], blocks);
  return result.mapping!;
}

/** The problems `mapping check` finds, as `line:column: message` (without the file). */
function problemsOf(blocks: string): string[] {
  const file = writeMapping(blocks);
  return checkMapping(file).problems.map((p) => `${p.line}:${p.column}: ${p.path}: ${p.message}`);
}

function mapRows(mapping: Mapping, rows: Record<string, string>[], file = '', runDate = RUN_DATE): MapResult[] {
  const header = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const mapper = compileMapping(mapping, header, runDate, file);
  return rows.map((r) => mapper.map(header.map((h) => r[h] ?? '')));
}

function written(result: MapResult): MappedUser {
  assert.ok(result.ok, `expected a user, got ${JSON.stringify(!result.ok && result)}`);
  return result;
}

function rejected(result: MapResult): RejectedRow {
  assert.ok(!result.ok, `expected a rejection, got ${JSON.stringify(result.ok && result.user)}`);
  return result;
}

/** The group each row gets ('-' for a rejected row, 'skip:<rule>' for a skipped one). */
function groups(mapping: Mapping, rows: Record<string, string>[], file = ''): string[] {
  return mapRows(mapping, rows, file).map((r) => (r.ok ? (r.user.user_group ?? '(none)') : r.skipped !== undefined ? `skip:${r.skipped}` : '-'));
}

describe('conditions: not, all, any, nested', () => {
  const mapping = mappingOf(`user_group:
  rules:
    - name: library staff or faculty, not on leave
      when:
        any:
          - type: FAC
          - all:
              - type: STAFF
              - dept: LIB
        not: { status: LEAVE }
      group: STAFF
    - name: a list of conditions, all must hold
      when:
        - type: STUDENT
        - not: { any: [{ level: UG }, { level: { empty: true } }] }
      group: GRAD
  default: GUEST
`);
  const cases: Array<[Record<string, string>, string]> = [
    [{ type: 'FAC', dept: 'PHYS', status: '' }, 'STAFF'],
    [{ type: 'FAC', dept: 'PHYS', status: 'leave' }, 'GUEST'],
    [{ type: 'STAFF', dept: 'LIB', status: '' }, 'STAFF'],
    [{ type: 'STAFF', dept: 'ENG', status: '' }, 'GUEST'],
    [{ type: 'STUDENT', level: 'GR' }, 'GRAD'],
    [{ type: 'STUDENT', level: 'UG' }, 'GUEST'],
    [{ type: 'STUDENT', level: '' }, 'GUEST'],
  ];
  for (const [row, group] of cases) {
    test(`${JSON.stringify(row)} → ${group}`, () => {
      assert.deepEqual(groups(mapping, [{ id: 'u1', type: '', dept: '', status: '', level: '', ...row }]), [group]);
    });
  }

  test('a row no rule maps names every column the rules looked at, also inside any/all/not', () => {
    const strict = mappingOf(`user_group:
  rules:
    - when: { any: [{ type: FAC }, { all: [{ type: STAFF }, { dept: LIB }] }] }
      group: STAFF
`);
    const row = rejected(mapRows(strict, [{ id: 'u1', type: 'STAFF', dept: 'ENG' }])[0]!);
    assert.deepEqual(
      row.problems.map((p) => [p.code, p.message]),
      [['no_user_group', "No user group rule maps this row (type = 'STAFF', dept = 'ENG')"]],
    );
  });
});

describe('conditions: in, not_in, not_equals, not_matches, empty', () => {
  const mapping = mappingOf(`user_group:
  rules:
    - { name: in, when: { type: { in: [FAC, STAFF] }, dept: { not_in: [TEMP, ext] } }, group: STAFF }
    - { name: not_equals, when: { type: { not_equals: STUDENT }, dept: { empty: false } }, group: OTHER }
    - { name: not_matches, when: { program: { not_matches: "PHD-.*" } }, group: UNDERGRAD }
  default: GRAD
`);
  test('each test, both ways, without case', () => {
    assert.deepEqual(
      groups(mapping, [
        { id: '1', type: 'fac', dept: 'LIB', program: '' },
        { id: '2', type: 'FAC', dept: 'Ext', program: 'PHD-X' },
        { id: '3', type: 'VISITOR', dept: 'EXT', program: 'PHD-X' },
        { id: '4', type: 'STUDENT', dept: 'LIB', program: 'BSC' },
        { id: '5', type: 'STUDENT', dept: 'LIB', program: 'PHD-CHEM' },
        { id: '6', type: 'VISITOR', dept: '', program: 'PHD-CHEM' },
      ]),
      ['STAFF', 'OTHER', 'OTHER', 'UNDERGRAD', 'GRAD', 'GRAD'],
    );
  });
});

describe('conditions: dates against the run date or a fixed date', () => {
  const mapping = mappingOf(`user_group:
  rules:
    - name: ended
      when: { end_date: { before: run_date, format: DD.MM.YYYY } }
      group: ALUMNI
    - name: this year's hires
      when: { start: { on_or_after: 2026-01-01, before: 2027-01-01 } }
      group: NEW
  default: STAFF
`);
  test('before the run date (in the column format), a range of fixed dates; an empty cell holds no date', () => {
    assert.deepEqual(
      groups(mapping, [
        { id: '1', end_date: '20.11.2026', start: '' },
        { id: '2', end_date: '21.11.2026', start: '' },
        { id: '3', end_date: '', start: '2026-01-01' },
        { id: '4', end_date: '', start: '2027-01-01' },
        { id: '5', end_date: '', start: '' },
      ]),
      ['ALUMNI', 'STAFF', 'NEW', 'STAFF', 'STAFF'],
    );
  });

  test('a cell that is not a date rejects the row, naming the column and the value', () => {
    const row = rejected(mapRows(mapping, [{ id: '1', end_date: '31.02.2026', start: '' }])[0]!);
    assert.deepEqual(
      row.problems.map((p) => [p.code, p.column, p.value, p.message]),
      [['bad_date', 'end_date', '31.02.2026', "Field (end_date) is not a date in the form DD.MM.YYYY: '31.02.2026'"]],
    );
  });

  test('not_a_date: holds or fails, as the mapping chooses', () => {
    const m = (outcome: string) =>
      mappingOf(`user_group:
  rules:
    - { when: { end_date: { after: 2026-06-30, not_a_date: ${outcome} } }, group: CURRENT }
  default: OLD
`);
    assert.deepEqual(groups(m('holds'), [{ id: '1', end_date: 'open' }, { id: '2', end_date: '2026-06-30' }]), ['CURRENT', 'OLD']);
    assert.deepEqual(groups(m('fails'), [{ id: '1', end_date: 'open' }, { id: '2', end_date: '2026-07-01' }]), ['OLD', 'CURRENT']);
  });
});

describe('conditions: one column against another', () => {
  const mapping = mappingOf(`user_group:
  rules:
    - { when: { email: { equals_column: work_email } }, group: SAME }
    - { when: { email: { equals_column: work_email, ignore_case: true } }, group: SAME_NOCASE }
    - { when: { netid: { not_equals_column: login } }, group: DIFFERENT }
  default: OTHER
`);
  test('equals_column counts case unless ignore_case; not_equals_column', () => {
    assert.deepEqual(
      groups(mapping, [
        { id: '1', email: 'a@x.edu', work_email: 'a@x.edu ', netid: 'a', login: 'a' },
        { id: '2', email: 'A@x.edu', work_email: 'a@x.edu', netid: 'a', login: 'a' },
        { id: '3', email: 'a@x.edu', work_email: 'b@x.edu', netid: 'a', login: 'b' },
        { id: '4', email: 'a@x.edu', work_email: 'b@x.edu', netid: 'a', login: 'a' },
      ]),
      ['SAME', 'SAME_NOCASE', 'DIFFERENT', 'OTHER'],
    );
  });
});

describe('conditions: the input file a row came from', () => {
  const mapping = mappingOf(`user_group:
  rules:
    - { name: staff export, when: { input_file: employees.csv }, group: STAFF }
    - { name: student exports, when: { input_file: [students-*.csv, "grad?.csv"] }, group: STUDENT }
  default: GUEST
`);
  test('the base name of the file, or a glob (without case); decided once per file', () => {
    const row = [{ id: 'u1' }];
    assert.deepEqual(groups(mapping, row, '/srv/exports/employees.csv'), ['STAFF']);
    assert.deepEqual(groups(mapping, row, 'Employees.CSV'), ['STAFF']);
    assert.deepEqual(groups(mapping, row, '/srv/students-2026.csv'), ['STUDENT']);
    assert.deepEqual(groups(mapping, row, 'grad1.csv'), ['STUDENT']);
    assert.deepEqual(groups(mapping, row, 'grad12.csv'), ['GUEST']);
    assert.deepEqual(groups(mapping, row, '/srv/employees.csv.old'), ['GUEST']);
    assert.deepEqual(groups(mapping, row), ['GUEST']);
  });

  test('inside not and any, and in value rules', () => {
    const m = mappingOf(`fields:
  primary_id: "{id}"
  job_category:
    rules:
      - { when: { not: { input_file: students.csv } }, value: "{job}" }
      - { when: { any: [{ input_file: students.csv }, { job: X }] }, value: STUDENT }
`);
    assert.equal(written(mapRows(m, [{ id: 'u1', job: 'Librarian' }], 'staff.csv')[0]!).user.job_category, 'Librarian');
    assert.equal(written(mapRows(m, [{ id: 'u1', job: 'Librarian' }], 'students.csv')[0]!).user.job_category, 'STUDENT');
  });
});

describe('conditions: a column named like a condition word', () => {
  test('"column:any" is the column any; any: is the condition', () => {
    const m = mappingOf(`user_group:
  rules:
    - { when: { "column:any": true, "column:not": X }, group: COLUMNS }
    - { when: { any: [{ not: { "column:any": Y } }] }, group: WORDS }
  default: OTHER
`);
    assert.deepEqual(
      groups(m, [
        { id: '1', any: 'Y', not: 'x' },
        { id: '2', any: 'N', not: 'x' },
      ]),
      ['COLUMNS', 'WORDS'],
    );
  });
});

describe('mapping check: conditions, skip and reject', () => {
  test('each problem at its line and column, with did you mean where a name is involved', () => {
    assert.deepEqual(
      problemsOf(`user_group:
  rules:
    - when:
        end: { before: 2026-02-30 }
        start: { format: DD.MM.YYYY }
        email: { ignore_case: true }
        input_file: /srv/employees.csv
      group: STAFF
  unmapped: omit
  default: GUEST
skip:
  - name: retired
    when: { status: RET }
  - name: retired
    when: { status: { equals: RET, matches: R.* } }
`),
      [
        '5:24: user_group.rules[0].when.end.before: 2026-02-30 is not a date',
        '6:26: user_group.rules[0].when.start.format: format goes with a date comparison: before, after, on_or_before or on_or_after',
        '7:31: user_group.rules[0].when.email.ignore_case: ignore_case goes with equals_column or not_equals_column',
        '8:21: user_group.rules[0].when.input_file: input_file names a file without its folder (found "/srv/employees.csv"): write employees.csv',
        '10:3: user_group.unmapped: unmapped: omit has no effect with a default: every row no rule maps gets the default group',
        '15:11: skip[1].name: another skip rule is named "retired" (skip[0]); names tell the rules apart in the report',
        '16:21: skip[1].when.status: one test per column (found equals, matches); write two rules, use one_of, or all:',
      ],
    );
    assert.deepEqual(
      problemsOf(`skip:
  - name: retired
    wehn: { status: RET }
reject:
  - name: no term
    when: { term: { empty: true } }
  - name: no term
    when: { term: { emty: true } }
    message: x
`),
      [
        '3:5: skip[0]: missing "when"',
        '4:5: skip[0].wehn: unknown key "wehn"; did you mean "when"?',
        '6:5: reject[0]: missing "message": why, as the rejects file and the report say it',
        '9:21: reject[1].when.term.emty: unknown key "emty"; did you mean "empty"?',
      ],
    );
  });

  test('a condition word with a test where conditions belong: one problem, where it is', () => {
    assert.deepEqual(
      problemsOf(`user_group:
  rules:
    - { when: { not: Y, any: { a: 1 } }, group: STAFF }
    - { when: [{ a: 1 }, 5], group: STAFF }
`),
      [
        '4:22: user_group.rules[0].when.not: expected a mapping (key: value) or a list, found "Y"',
        '4:30: user_group.rules[0].when.any: expected a list, found a mapping',
        '5:26: user_group.rules[1].when[1]: expected a mapping (key: value), found 5',
      ],
    );
  });

  test('a key that looks like a condition word is read as a column, with a warning that says how to write either', () => {
    const file = writeMapping(`user_group:
  rules:
    - { when: { ANY: [x], input-file: a.csv }, group: STAFF }
`);
    const result = checkMapping(file);
    assert.deepEqual(result.problems, []);
    assert.deepEqual(
      result.warnings.map((p) => `${p.line}:${p.column}: ${p.message}`),
      [
        '4:17: "ANY" is read as a column; did you mean "any"? (a column of that name is written "column:ANY")',
        '4:27: "input-file" is read as a column; did you mean "input_file"? (a column of that name is written "column:input-file")',
      ],
    );
  });
});

describe('required values from rules', () => {
  test('the rejection names the empty column of the rule that held, not the first condition', () => {
    const m = mappingOf(`fields:
  primary_id: "{id}"
  job_category:
    required: true
    rules:
      - { when: { a: X }, value: "{b}" }
`);
    const row = rejected(mapRows(m, [{ id: 'u1', a: 'X', b: '' }])[0]!);
    assert.deepEqual(
      row.problems.map((p) => [p.code, p.column, p.message]),
      [['missing_value', 'b', 'Field (b) is required but empty']],
    );
    const none = rejected(mapRows(m, [{ id: 'u1', a: 'Y', b: 'v' }])[0]!);
    assert.deepEqual(
      none.problems.map((p) => [p.code, p.column, p.message]),
      [['missing_value', undefined, 'Field (job_category) is required but empty']],
    );
  });
});

describe('skip and reject lists', () => {
  const mapping = mappingOf(`skip:
  - name: retirees
    when: { hr_status: RET }
  - name: expired jobs
    when: { end_date: { before: run_date } }
reject:
  - name: no registration term
    when: { input_file: "students*.csv", term: { empty: true } }
    message: a student needs a registration term
`);
  test('a skipped row: ok false, skipped with the rule name, its primary id, no problems (the contract mapping test relies on)', () => {
    const [retiree, expired, kept] = mapRows(mapping, [
      { id: 'u1', hr_status: 'ret', end_date: '', term: '' },
      { id: 'u2', hr_status: '', end_date: '2026-11-20', term: '' },
      { id: 'u3', hr_status: '', end_date: '2026-11-21', term: '' },
    ]);
    assert.deepEqual(retiree, { ok: false, skipped: 'retirees', primary_id: 'u1', problems: [], warnings: [] });
    assert.deepEqual(expired, { ok: false, skipped: 'expired jobs', primary_id: 'u2', problems: [], warnings: [] });
    assert.equal(written(kept!).user.primary_id, 'u3');
  });

  test('a reject rule rejects with the mapping\'s message and the rule name, only for the files it names', () => {
    const [student] = mapRows(mapping, [{ id: 'u1', hr_status: '', end_date: '', term: '' }], 'students-2026.csv');
    assert.deepEqual(
      rejected(student!).problems.map((p) => [p.code, p.column, p.message]),
      [['rejected_by_rule', 'term', 'a student needs a registration term (reject rule "no registration term")']],
    );
    assert.ok(mapRows(mapping, [{ id: 'u1', hr_status: '', end_date: '', term: '' }], 'staff.csv')[0]!.ok);
  });
});

describe('user_group.unmapped: omit', () => {
  const blocks = `user_group:
  rules:
    - { when: { type: FAC }, group: FACULTY }
  unmapped: omit
  priority: [FACULTY]
expiry:
  FACULTY: { after_run: 5 years }
  default: { after_run: 1 year }
`;
  test('a row no rule maps is written without a group, with a warning and the default expiry', () => {
    const result = written(mapRows(mappingOf(blocks), [{ id: 'u1', type: 'CONTRACTOR' }])[0]!);
    assert.equal(result.user.user_group, undefined);
    assert.equal(result.user.expiry_date, '2027-11-21');
    assert.deepEqual(
      result.warnings.map((w) => [w.kind, w.message]),
      [['user_group_omitted', "No user group rule maps this row (type = 'CONTRACTOR'); written without a user group, so Alma keeps the group the user has"]],
    );
  });

  test('without an expiry default, no expiry date; merged with a row that has a group, the group wins', () => {
    const m = mappingOf(blocks.replace('  default: { after_run: 1 year }\n', ''));
    const [none, fac] = mapRows(m, [
      { id: 'u1', type: 'X' },
      { id: 'u1', type: 'FAC' },
    ]);
    assert.equal(written(none!).user.expiry_date, undefined);
    const members = [none!, fac!].map((r, i) => ({ ordinal: i + 1, label: String(i + 1), user: written(r).user, warnings: [] }));
    const decision = mergeUsers(members, m.userGroup);
    assert.equal(decision.user.user_group, 'FACULTY');
    assert.equal(decision.reason, 'FACULTY wins over no user group by priority');
    const alone = mergeUsers([members[0]!, { ...members[0]!, ordinal: 3, label: '3' }], m.userGroup);
    assert.equal(alone.user.user_group, undefined);
    assert.equal(alone.reason, 'no row has a user group');
  });
});

describe('skip, reject and omit through convert, explain and diff', () => {
  const dir = makeTempDir('sis2alma-outcomes-');
  const staff = path.join(dir, 'employees.csv');
  const students = path.join(dir, 'students.csv');
  writeFileSync(
    staff,
    toCsv([
      ['netid', 'type', 'hr_status', 'term'],
      ['a1', 'FAC', 'ACTIVE', ''],
      ['b2', 'STAFF', 'RET', ''], // a retiree who is also a student: the student row makes the user
      ['c3', 'STAFF', 'RET', ''], // a retiree only: skipped
      ['d4', 'TEMP', 'ACTIVE', ''], // no rule: written without a group
    ]),
  );
  writeFileSync(
    students,
    toCsv([
      ['netid', 'type', 'hr_status', 'term'],
      ['b2', 'STUDENT', '', '2026FA'],
      ['e5', 'STUDENT', '', ''], // no term: rejected by the mapping's rule
      ['f6', 'STUDENT', 'RET', '2026FA'], // every row of f6 skipped
    ]),
  );
  const mappingFile = writeMapping(`fields:
  primary_id: "{netid}"
  last_name: "{netid}"
user_group:
  rules:
    - { when: { type: FAC }, group: FACULTY }
    - { when: { type: STAFF }, group: STAFF }
    - { when: { all: [{ type: STUDENT }, { input_file: students.csv }] }, group: STUDENT }
  unmapped: omit
expiry:
  default: { date: 2027-06-30 }
skip:
  - name: retirees
    when: { hr_status: RET }
reject:
  - name: no registration term
    when: { input_file: students.csv, term: { empty: true } }
    message: a student needs a registration term
`);

  test('convert: counts, skips by rule, the details, the rejects file, the XML', async () => {
    const run = await convertCli({ mapping: mappingFile, inputs: [staff, students], args: ['--max-rejected', '1'] });
    assert.equal(run.code, 0, run.stderr);
    const report = run.outputs.report!;
    assert.deepEqual(report.counts, { rows: 7, users: 3, merged: 0, rejected: 1, skipped: 3, warnings: 1 });
    assert.equal(report.summary, '7 rows processed. 3 users written. 0 rows merged. 1 row failed. 3 rows skipped. 1 warning.');
    assert.deepEqual(report.skips, { retirees: { count: 3, examples: ['employees.csv:2', 'employees.csv:3', 'students.csv:3'] } });
    assert.deepEqual(report.rejections, { rejected_by_rule: { count: 1, examples: ['students.csv:2'] } });
    assert.deepEqual(report.warnings.user_group_omitted, { count: 1, examples: ['employees.csv:4'] });
    assert.equal(report.details!['employees.csv:2'], 'Skipped: retirees');
    assert.equal(report.details!['students.csv:3'], 'Skipped: retirees');
    assert.equal(report.details!['students.csv:2'], 'Rejected: a student needs a registration term (reject rule "no registration term")');
    assert.deepEqual(
      run.outputs.rejects!.map((r) => r.slice(0, 4)),
      [
        ['source_file', 'row', 'reason', 'netid'],
        [students, '2', 'a student needs a registration term (reject rule "no registration term")', 'e5'],
      ],
    );
    const xml = run.outputs.xml.map((x) => x.text).join('');
    const users = [...xml.matchAll(/<primary_id>(.*?)<\/primary_id>/g)].map((m) => m[1]);
    assert.deepEqual(users.sort(), ['a1', 'b2', 'd4']);
    const d4 = /<user>(?:(?!<\/user>)[\s\S])*<primary_id>d4<\/primary_id>[\s\S]*?<\/user>/.exec(xml)![0];
    assert.doesNotMatch(d4, /<user_group>/);
    assert.match(d4, /<expiry_date>2027-06-30Z?<\/expiry_date>/);
    assert.match(xml, /<primary_id>b2<\/primary_id>[\s\S]*?<user_group>STUDENT<\/user_group>/);
  });

  test('run: the last line counts the skipped rows', async () => {
    const config = path.join(dir, 'config.yaml');
    writeFileSync(config, `mapping: ${mappingFile}\ninputs: [employees.csv, students.csv]\noutput_dir: out\nguards: { max_rejected: 1 }\ndelivery: { target: dir, dir: drop, create_dir: true }\n`);
    const result = await runJob(loadRunConfig(config), { now: new Date(Date.UTC(2026, 10, 21, 3, 15, 0)), log: silentLogger });
    assert.equal(result.exitCode, 0);
    assert.match(result.summary, /^3 users from 7 rows, 1 rejected, 3 skipped \(first night: no earlier state\); delivered users_test_20261121-031500\.zip to dir /);
  });

  test('skipped rows do not count toward max_rejected, nor into its share', async () => {
    const run = await convertCli({ mapping: mappingFile, inputs: [staff, students], args: ['--max-rejected', '0'] });
    assert.equal(run.code, 5);
    assert.equal(run.outputs.report!.guard?.message, '1 of 4 rows were rejected (25.0%, not counting 3 skipped), over the limit of 0 (max_rejected)');
  });

  test('explain counts skipped rows by rule and the rows written without a group', async () => {
    const mapping = checkMapping(mappingFile).mapping!;
    const x = await explainMapping(mapping, [staff, students], { runDate: RUN_DATE });
    assert.deepEqual(x.rows, { total: 7, mapped: 3, rejected: 1, skipped: 3 });
    assert.deepEqual(x.skips, { retirees: { rows: 3, examples: ['employees.csv:2', 'employees.csv:3', 'students.csv:3'] } });
    assert.deepEqual(x.users.by_group, { '(none)': 1, FACULTY: 1, STUDENT: 1 });
    assert.deepEqual(x.unmapped, [{ field: 'user_group', value: "type = 'TEMP'", outcome: 'omitted', rows: 1, examples: ['employees.csv:4'] }]);
    const text = formatExplanation(x);
    assert.ok(text.includes('7 rows: 3 mapped, 1 rejected, 3 skipped; 3 users would be written.'), text.join('\n'));
    assert.ok(text.includes('  retirees: 3 rows, e.g. rows employees.csv:2, employees.csv:3, students.csv:3'), text.join('\n'));
    assert.ok(text.includes("  user group: type = 'TEMP': 1 row written without a user group (rows employees.csv:4)"), text.join('\n'));
    assert.ok(text.includes('  a student needs a registration term (reject rule "no registration term"): 1 row, e.g. row students.csv:2'), text.join('\n'));
  });

  test('diff: users now skipped, and the rows each skip rule leaves out', async () => {
    const before = checkMapping(mappingFile).mapping!;
    const withoutSkip = writeMapping(
      `fields:\n  primary_id: "{netid}"\nuser_group:\n  rules:\n    - { when: { type: FAC }, group: FACULTY }\n    - { when: { type: STAFF }, group: STAFF }\n    - { when: { type: STUDENT }, group: STUDENT }\n  unmapped: omit\nskip:\n  - name: everyone but faculty\n    when: { not: { type: FAC } }\n`,
    );
    const after = checkMapping(withoutSkip).mapping!;
    const d = await diffMappings(before, after, [staff, students], { runDate: RUN_DATE });
    assert.deepEqual(d.rows_skipped, { old: 3, new: 6, by_rule: { retirees: { old: 3, new: 0 }, 'everyone but faculty': { old: 0, new: 6 } } });
    const text = formatDiff(d);
    assert.deepEqual(text.slice(4, 10), [
      '1 user gets a new expiry date, e.g. *** (2027-06-30 → none)',
      '1 user gets a new purge date, e.g. *** (2027-12-27 → none)',
      '2 users are now skipped (written with the old mapping), e.g. *** (rows employees.csv:4), *** (rows employees.csv:2, students.csv:1)',
      '1 fewer row is rejected (1 → 0)',
      'skip rule "retirees": 3 → 0 rows skipped',
      'skip rule "everyone but faculty": 0 → 6 rows skipped',
    ]);
    const back = formatDiff(await diffMappings(after, before, [staff, students], { runDate: RUN_DATE }));
    assert.ok(back.includes('2 users are now written (skipped with the old mapping), e.g. ***, ***'), back.join('\n'));
  });
});
