// `sis2alma mapping test FILE.yaml` through the real CLI: the shipped university test file passes;
// wrong expectations fail with exit 1, each naming the case, the field, expected and actual at its
// file:line:column; a broken test file is exit 3 with mapping-check-quality messages. The cases run
// convert's own steps, so a case and a convert of the same rows agree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT } from '../src/shared/paths.js';
import { runCli, tempDir } from './helpers/run-cli.js';
import { convert } from '../src/pipeline/convert.js';
import { checkMappingTest, runCase } from '../src/review/mapping-test.js';
import { AlmaSchema } from '../src/pipeline/validate.js';
import { readZip } from './helpers/zip.js';

const UNIVERSITY_TEST = path.join(PACKAGE_ROOT, 'mappings', 'university.test.yaml');

/** A folder with the university mapping (and its tables) and a test file beside it. */
function beside(testYaml: string): string {
  const dir = tempDir('sis2alma-mapping-test-');
  cpSync(path.join(PACKAGE_ROOT, 'mappings', 'university.yaml'), path.join(dir, 'university.yaml'));
  cpSync(path.join(PACKAGE_ROOT, 'mappings', 'university'), path.join(dir, 'university'), { recursive: true });
  const file = path.join(dir, 'case.test.yaml');
  writeFileSync(file, testYaml);
  return file;
}

test('the shipped university test file passes: exit 0, a line a case and the count', async () => {
  const r = await runCli(['mapping', 'test', UNIVERSITY_TEST]);
  assert.equal(r.stderr, '');
  assert.equal(r.code, 0, r.stdout);
  const lines = r.stdout.trimEnd().split('\n');
  const cases = (readFileSync(UNIVERSITY_TEST, 'utf8').match(/^ {2}- name: /gm) ?? []).length;
  assert.equal(lines.length, cases + 1);
  assert.ok(lines.slice(0, -1).every((l) => l.startsWith('ok      ')), r.stdout);
  assert.equal(lines.at(-1), `${cases} cases (run date 2026-09-01): ${cases} passed, 0 failed`);
});

const WRONG = `mapping: university.yaml
run_date: 2026-09-01
cases:
  - name: a graduate student
    rows:
      - { file: students.csv, netid: gr1, level: GR, email: gr1@example.edu, barcode: "29001" }
    expect:
      user_group: UNDERGRAD
      expiry_date: 2027-06-30
      emails: [other@example.edu]
      identifiers: { BARCODE: "29002" }
  - name: a retiree is skipped
    rows: [ { file: employees.csv, netid: r1, employee_type: STAFF, active: 1 } ]
    expect: skipped
  - name: an unknown level is rejected
    rows: [ { file: students.csv, netid: x1, level: XX } ]
    expect: { rejected: "level = 'YY'" }
  - name: an undergraduate
    rows: [ { file: students.csv, netid: u1, level: UG } ]
    expect: { user_group: UNDERGRAD }
`;

test('wrong expectations: exit 1, each failure with the case, the field, expected and actual at its place', async () => {
  const file = beside(WRONG);
  const r = await runCli(['mapping', 'test', file]);
  assert.equal(r.code, 1);
  assert.equal(
    r.stdout,
    [
      `FAILED  a graduate student (${file}:4:5)`,
      `  ${file}:8:19: user_group: expected UNDERGRAD, actual GRAD`,
      `  ${file}:10:15: emails: expected [other@example.edu], actual [gr1@example.edu]`,
      `  ${file}:11:31: identifiers.BARCODE: expected 29002, actual 29001`,
      `FAILED  a retiree is skipped (${file}:12:5)`,
      `  ${file}:14:13: skipped: expected a skipped row, actual a user r1 (STAFF)`,
      `FAILED  an unknown level is rejected (${file}:15:5)`,
      `  ${file}:17:25: rejected: expected a row rejected with "level = 'YY'", actual row students.csv:1 rejected: No user group rule maps this row (level = 'XX')`,
      'ok      an undergraduate',
      '4 cases (run date 2026-09-01): 1 passed, 3 failed',
      '',
    ].join('\n'),
  );
});

test('a broken test file: exit 3, every problem at file:line:column, with "did you mean"', async () => {
  const broken = `mapping: university.yaml
run_date: 2026-9-01
cases:
  - name: typos
    rows: [ { netid: a1, level: UG } ]
    expect: { user_gruop: GRAD }
  - name: a word it does not know
    rows: [ { netid: a2 } ]
    expect: skiped
`;
  const file = beside(broken);
  const r = await runCli(['mapping', 'test', file]);
  assert.equal(r.code, 3);
  assert.equal(
    r.stdout,
    [
      `${file}:2:11: run_date: "2026-9-01" is not in the expected form (YYYY-MM-DD: the date the cases run as; default today)`,
      `${file}:6:15: cases[0].expect.user_gruop: unknown key "user_gruop"; did you mean "user_group"?`,
      `${file}:9:13: cases[1].expect: expected one of "skipped", "rejected", found "skiped"`,
      `${file}: 3 problem(s); the cases cannot run until they are fixed`,
      '',
    ].join('\n'),
  );
});

// An unknown key alone leaves a file the schema would take once the key is gone: it must still stop
// the cases, or a misspelt expectation (user_gruop) makes a case pass that checks nothing.
test('an unknown key alone, in a case or its expect, is a problem: exit 3, no case runs', async () => {
  const file = beside(`mapping: university.yaml
run_date: 2026-09-01
cases:
  - name: a misspelt expectation beside a right one
    rows: [ { file: students.csv, netid: a1, level: UG } ]
    expect: { user_group: UNDERGRAD, user_gruop: NOBODY }
  - name: a key a case does not have
    rows: [ { file: students.csv, netid: a2, level: UG } ]
    run_date: 2027-01-01
    expect: { user_group: UNDERGRAD }
`);
  const r = await runCli(['mapping', 'test', file]);
  assert.equal(r.code, 3);
  assert.equal(
    r.stdout,
    [
      `${file}:6:38: cases[0].expect.user_gruop: unknown key "user_gruop"; did you mean "user_group"?`,
      `${file}:9:5: cases[1].run_date: unknown key "run_date"; expected one of: name, rows, expect`,
      `${file}: 2 problem(s); the cases cannot run until they are fixed`,
      '',
    ].join('\n'),
  );
});

test('names the test file cannot know are checked against the mapping: identifier types, columns, merge.order files', async () => {
  const file = beside(`mapping: university.yaml
run_date: 2026-09-01
cases:
  - name: typos against the mapping
    rows: [ { file: students.csv, netid: a1, levle: UG } ]
    expect: { identifiers: { BARCOD: "1" } }
`);
  const r = await runCli(['mapping', 'test', file]);
  assert.equal(r.code, 3);
  assert.equal(
    r.stdout,
    [
      `${file}:6:30: cases[0].expect.identifiers.BARCOD: the mapping gives no identifier of type "BARCOD"; did you mean "BARCODE"?`,
      `${file}:5:46: cases[0].rows[0].levle: the mapping reads no column "levle"; did you mean "level"? (warning)`,
      `${file}: 1 problem(s); the cases cannot run until they are fixed`,
      '',
    ].join('\n'),
  );
  // A mapping the test file names that has problems of its own: they are listed, exit 3.
  const missing = beside('mapping: nowhere.yaml\ncases:\n  - { name: x, rows: [ { netid: a } ], expect: rejected }\n');
  const m = await runCli(['mapping', 'test', missing]);
  assert.equal(m.code, 3);
  assert.match(m.stdout, new RegExp(`^${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:1:10: mapping: cannot read mapping file .*nowhere\\.yaml: ENOENT\\n`));
});

test('a case and convert agree on the same rows: the user a case sees is the user convert writes', async () => {
  const checked = checkMappingTest(UNIVERSITY_TEST, '2026-09-01');
  assert.deepEqual(checked.problems, []);
  const mapping = checked.test!.mapping;
  // The graduate student who works in the library, as two exports.
  const dir = tempDir('sis2alma-mapping-test-convert-');
  writeFileSync(path.join(dir, 'students.csv'), 'netid,student_id,first_name,last_name,level,enrolled\ngw5,100000005,Flo,Kim,GR,Y\n');
  writeFileSync(path.join(dir, 'employees.csv'), 'netid,employee_id,first_name,last_name,employee_type,active,end_date\nGW5,E0000005,Flo,Kim,STAFF,1,20271231\n');
  const result = await convert({ mappingFile: mapping.file, inputs: [path.join(dir, 'students.csv'), path.join(dir, 'employees.csv')], outDir: path.join(dir, 'out'), now: new Date('2026-09-01T12:00:00') });
  const xml = (await Promise.all(result.zips.map(readZip))).flat().map((e) => e.text).join('');
  const outcome = runCase(
    mapping,
    [
      { file: 'students.csv', netid: 'gw5', student_id: '100000005', first_name: 'Flo', last_name: 'Kim', level: 'GR', enrolled: 'Y' },
      { file: 'employees.csv', netid: 'GW5', employee_id: 'E0000005', first_name: 'Flo', last_name: 'Kim', employee_type: 'STAFF', active: 1, end_date: '20271231' },
    ],
    '2026-09-01',
    AlmaSchema.load(),
  );
  assert.equal(outcome.users.length, 1);
  const { usersDocument } = await import('../src/pipeline/xml.js');
  const caseXml = usersDocument([outcome.users[0]!.user]);
  assert.equal(xml.replace(/<!--.*-->\n/, ''), caseXml);
});

test('skip rules: a skipped row is expected as skipped (by its rule), never as rejected; input_file holds for the case\'s file', async () => {
  const file = beside(`mapping: university.yaml
run_date: 2026-09-01
cases:
  - name: a retiree is skipped by its rule
    rows: [ { file: employees.csv, netid: r1, employee_type: STAFF, active: 1, hr_status: RET } ]
    expect: { skipped: retirees }
  - name: a student row with the same status is not an employee row
    rows: [ { file: students.csv, netid: s1, level: UG, hr_status: RET } ]
    expect: { user_group: UNDERGRAD }
  - name: wrong rule named
    rows: [ { file: employees.csv, netid: r2, employee_type: STAFF, active: 1, hr_status: RET } ]
    expect: { skipped: ex-staff }
  - name: a skipped row is not a rejected one
    rows: [ { file: employees.csv, netid: r3, employee_type: STAFF, active: 1, hr_status: RET } ]
    expect: rejected
`);
  const mapping = path.join(path.dirname(file), 'university.yaml');
  writeFileSync(mapping, readFileSync(mapping, 'utf8') + '\nskip:\n  - name: retirees\n    when: { input_file: employees.csv, hr_status: RET }\n');
  const r = await runCli(['mapping', 'test', file]);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(
    r.stdout,
    [
      'ok      a retiree is skipped by its rule',
      'ok      a student row with the same status is not an employee row',
      `FAILED  wrong rule named (${file}:10:5)`,
      `  ${file}:12:24: skipped: expected a row skipped by "ex-staff", actual row employees.csv:1 skipped by "retirees"`,
      `FAILED  a skipped row is not a rejected one (${file}:13:5)`,
      `  ${file}:15:13: rejected: expected a rejected row, actual row employees.csv:1 skipped by "retirees"`,
      '4 cases (run date 2026-09-01): 2 passed, 2 failed',
      '',
    ].join('\n'),
  );
});

test('schemas/mapping-test.schema.json is the JSON of test-shape.ts; an editor using it accepts the shipped test file', async () => {
  const { MAPPING_TEST_JSON_SCHEMA } = await import('../src/shared/paths.js');
  const { jsonSchemaText } = await import('../src/config/json-schema.js');
  const { mappingTestSchema } = await import('../src/mapping/test-shape.js');
  const { Ajv } = await import('ajv');
  const { parse } = await import('yaml');
  assert.equal(readFileSync(MAPPING_TEST_JSON_SCHEMA, 'utf8'), jsonSchemaText(mappingTestSchema));
  const validate = new Ajv({ allErrors: true, strict: false }).compile(JSON.parse(readFileSync(MAPPING_TEST_JSON_SCHEMA, 'utf8')) as object);
  assert.equal(validate(parse(readFileSync(UNIVERSITY_TEST, 'utf8'))), true, JSON.stringify(validate.errors));
  assert.match(readFileSync(UNIVERSITY_TEST, 'utf8'), /^# yaml-language-server: \$schema=\.\.\/schemas\/mapping-test\.schema\.json$/m);
});

test('--json: the result for machines, with each failure\'s field, expected, actual and place', async () => {
  const file = beside(WRONG);
  const r = await runCli(['mapping', 'test', file, '--json']);
  assert.equal(r.code, 1);
  const result = JSON.parse(r.stdout) as { passed: number; failed: number; runDate: string; cases: { name: string; failures: { field: string; expected: string; actual: string; at: { line: number; column: number } }[] }[] };
  assert.deepEqual([result.passed, result.failed, result.runDate], [1, 3, '2026-09-01']);
  assert.deepEqual(
    result.cases[0]!.failures.map((f) => [f.field, f.expected, f.actual, f.at.line, f.at.column]),
    [
      ['user_group', 'UNDERGRAD', 'GRAD', 8, 19],
      ['emails', '[other@example.edu]', '[gr1@example.edu]', 10, 15],
      ['identifiers.BARCODE', '29002', '29001', 11, 31],
    ],
  );
});
