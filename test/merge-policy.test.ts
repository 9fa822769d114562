// merge.policy through convert(): one person in a staff export and a student export becomes one
// user, either combined (the default: the winner's values, the others fill and add) or whole from
// one row (first_wins_whole: by merge.order of the input files, or by group priority), the other
// rows dropped and counted as merged with the reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { convert } from '../src/pipeline/convert.js';
import { checkMappingText, formatProblem } from '../src/mapping/load.js';
import { makeTempDir } from './helpers/tmp.js';
import { readZip } from './helpers/zip.js';

const NOW = '2026-09-01T12:00:00Z';

const BASE = `source: merge
fields:
  primary_id: "{id}"
  first_name: "{first}"
  job_description: "{job}"
user_group:
  rules:
    - { when: { kind: STAFF }, group: STAFF }
    - { when: { kind: STUDENT }, group: GRAD }
  priority: [GRAD, STAFF]
emails:
  - { email_type: work, from: work_email }
  - { email_type: school, from: school_email }
`;

// S1 is in both exports; the staff row has no first name, the student row no job.
const EMPLOYEES = 'id,first,job,kind,work_email\nS1,,Library assistant,STAFF,s1@staff.example.edu\nE2,Bo,Cataloger,STAFF,e2@staff.example.edu\n';
const STUDENTS = 'id,first,kind,school_email\nS1,Sam,STUDENT,s1@student.example.edu\n';

async function run(mapping: string) {
  const dir = makeTempDir('sis2alma-merge-policy-');
  writeFileSync(path.join(dir, 'mapping.yaml'), mapping);
  writeFileSync(path.join(dir, 'employees.csv'), EMPLOYEES);
  writeFileSync(path.join(dir, 'students.csv'), STUDENTS);
  // The students come first on the command line: the order of the inputs does not decide.
  const result = await convert({ mappingFile: path.join(dir, 'mapping.yaml'), inputs: [path.join(dir, 'students.csv'), path.join(dir, 'employees.csv')], outDir: path.join(dir, 'out'), now: new Date(NOW) });
  const xml = (await Promise.all(result.zips.map(readZip))).flat().map((e) => e.text).join('');
  const s1 = /  <user>\n    <primary_id>S1<\/primary_id>\n[\s\S]*?  <\/user>\n/.exec(xml)![0];
  const details = (JSON.parse(readFileSync(result.reportFile, 'utf8')) as { details: Record<string, string> }).details;
  const merges = result.report.merges as { count: number; examples: { primary_id: string; rows: string[]; user_group?: string; reason: string }[] };
  return { result, s1, details, merges };
}

const fieldsOf = (user: string) => [...user.matchAll(/^ {4}<(first_name|job_description|user_group)>([^<]*)</gm)].map((m) => `${m[1]}=${m[2]}`);
const emailsOf = (user: string) => [...user.matchAll(/<email_address>([^<]*)</g)].map((m) => m[1]);

test('by default (combine) the winner by priority takes the other row\'s empty fields and emails', async () => {
  const { result, s1, merges } = await run(BASE);
  assert.deepEqual([result.report.counts.users, result.report.counts.merged], [2, 1]);
  assert.deepEqual(fieldsOf(s1), ['first_name=Sam', 'job_description=Library assistant', 'user_group=GRAD']);
  assert.deepEqual(emailsOf(s1), ['s1@student.example.edu', 's1@staff.example.edu']);
  assert.deepEqual(merges.examples, [{ primary_id: 'S1', rows: ['students.csv:1', 'employees.csv:1'], user_group: 'GRAD', reason: 'GRAD wins over STAFF by priority' }]);
});

test('first_wins_whole with an order: the first listed file\'s row is the user as it is; the other row is dropped, counted as merged', async () => {
  const { result, s1, details, merges } = await run(BASE + 'merge: { policy: first_wins_whole, order: [employees.csv, students.csv] }\n');
  assert.deepEqual([result.report.counts.rows, result.report.counts.users, result.report.counts.merged, result.report.counts.rejected], [3, 2, 1, 0]);
  assert.deepEqual(fieldsOf(s1), ['job_description=Library assistant', 'user_group=STAFF']);
  assert.deepEqual(emailsOf(s1), ['s1@staff.example.edu']);
  assert.deepEqual(merges.examples, [{ primary_id: 'S1', rows: ['employees.csv:1', 'students.csv:1'], user_group: 'STAFF', reason: 'employees.csv wins whole by merge.order; 1 other row dropped' }]);
  assert.equal(details['students.csv:1'], 'Merged into row employees.csv:1 (S1)');
});

test('first_wins_whole without an order: the group priority picks the row that is written whole', async () => {
  const { s1, merges } = await run(BASE + 'merge:\n  policy: first_wins_whole\n');
  assert.deepEqual(fieldsOf(s1), ['first_name=Sam', 'user_group=GRAD']);
  assert.deepEqual(emailsOf(s1), ['s1@student.example.edu']);
  assert.equal(merges.examples[0]!.reason, 'GRAD wins whole over STAFF by priority; 1 other row dropped');
});

const PURGE = 'purge: { days_after_expiry: 180 }\n';

test('mapping check: a policy it does not know, an order without first_wins_whole, a path in the order; exceptions are a warning', () => {
  const check = (extra: string) => {
    // With a purge date, so that check's warning about a mapping without one is not among these.
    const r = checkMappingText(BASE + extra + PURGE, 'm.yaml');
    return { problems: r.problems.map(formatProblem), warnings: r.warnings.map(formatProblem) };
  };
  assert.deepEqual(check('merge: { policy: first_wins }\n').problems, ['m.yaml:14:18: merge.policy: expected one of "combine", "first_wins_whole", found "first_wins"']);
  assert.deepEqual(check('merge: { order: [employees.csv] }\n').problems, ['m.yaml:14:10: merge.order: order goes with policy: first_wins_whole (a combined user takes every row)']);
  assert.deepEqual(check('merge: { policy: first_wins_whole, order: [exports/employees.csv] }\n').problems, [
    'm.yaml:14:44: merge.order[0]: "exports/employees.csv": name the file without its folder (employees.csv)',
  ]);
  const withExceptions = BASE.replace('  priority: [GRAD, STAFF]\n', '  priority: [GRAD, STAFF]\n  exceptions:\n    - { name: staff students, groups: [GRAD, STAFF], group: STAFF }\n');
  const r = checkMappingText(withExceptions + 'merge: { policy: first_wins_whole }\n' + PURGE, 'm.yaml');
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.warnings.map(formatProblem), ['m.yaml:11:3: user_group.exceptions: exceptions do not apply under merge.policy first_wins_whole: the winning row keeps its own group']);
});

test('combine keeps the blocks, resource sharing libraries and library notices of every row (a notice once, the winner\'s answer)', async () => {
  const { mergeUsers } = await import('../src/pipeline/merge.js');
  const { emptyUser } = await import('../src/shared/alma.js');
  const row = (ordinal: number, group: string, extra: object) => ({ ordinal, label: String(ordinal), user: { ...emptyUser('p1'), user_group: group, ...extra }, warnings: [] });
  const policy = { rules: [], priority: new Map([['STAFF', 0], ['GRAD', 1]]), exceptions: [] };
  const decision = mergeUsers(
    [
      row(1, 'GRAD', { user_blocks: [{ block_description: '03' }], rs_libraries: ['MAIN'], library_notices: [{ code: 'Overdue', value: false }] }),
      row(2, 'STAFF', { rs_libraries: ['main', 'LAW'], library_notices: [{ code: 'Overdue', value: true }, { code: 'Borrowing', value: true }] }),
    ],
    policy,
  );
  assert.deepEqual(decision.user.user_blocks, [{ block_description: '03' }]);
  assert.deepEqual(decision.user.rs_libraries, ['main', 'LAW']);
  assert.deepEqual(decision.user.library_notices, [{ code: 'Overdue', value: true }, { code: 'Borrowing', value: true }]);
  // Nobody has any: the lists stay absent, as in a user of one row.
  const none = mergeUsers([row(1, 'GRAD', {}), row(2, 'STAFF', {})], policy);
  assert.deepEqual([none.user.user_blocks, none.user.rs_libraries, none.user.library_notices], [undefined, undefined, undefined]);
});
