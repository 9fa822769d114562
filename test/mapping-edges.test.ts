// The edges of the mapping language that a review found, each through `convert` (or `mapping
// check` / `mapping test`): values that reformatting empties, split parts with spaces, a comparison
// value that cannot be had, two empty columns compared, padding with an emoji, and a case whose
// file is named with a folder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { checkMappingText } from '../src/mapping/load.js';
import { formatProblem } from '../src/shared/yaml-check.js';
import { convertCli, runCli, tempDir } from './helpers/run-cli.js';

const BASE = `source: edges
fields:
  primary_id: { from: netid, required: true }
  last_name: { from: surname, replace: { pattern: "[^A-Za-z]", with: "" }, required: true }
  first_name: { from: name, split: { by: ",", part: 2 } }
  pref_first_name: { from: preferred, unless_same_as: { from: name, split: { by: ",", part: 3 } }, ignore_case: true }
  job_description: { from: code, pad: { width: 4, with: "😀" }, otherwise: { value: none } }
  user_title: { from: title, replace: { pattern: "n/?a", with: "" }, otherwise: { value: Dr } }
user_group:
  rules:
    - group: PATRON
skip:
  - name: same login as netid
    when: { netid: { equals_column: login } }
purge: { days_after_expiry: 30 }
`;

const CSV = ['netid,surname,name,preferred,code,title', 'u1,Lee,"Lee, Ann",Annie,ab,n/a', 'u2,123,"Ng, Bo",,,Prof', ''].join('\n');

function write(dir: string, name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

function field(xml: string, name: string): string | undefined {
  return new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1];
}

test('convert: emptied values, trimmed split parts, a comparison that cannot be had, empty columns compared, emoji padding', async () => {
  const dir = tempDir('sis2alma-edges-');
  const run = await convertCli({ mapping: write(dir, 'mapping.yaml', BASE), inputs: [write(dir, 'people.csv', CSV)], args: ['--max-rejected', '1'] });
  assert.equal(run.code, 0, run.stderr);
  const report = run.outputs.report!;
  // Neither column of the skip rule is in this export: two empty cells are not equal, nobody is skipped.
  assert.deepEqual(report.counts, { rows: 2, users: 1, merged: 0, rejected: 1, skipped: 0, warnings: 0 });
  // A surname that replace empties is empty: required rejects the row, naming the column.
  assert.deepEqual(run.outputs.rejects!.slice(1).map((r) => [r[1], r[2]]), [['2', 'Field (surname) is required but empty']]);
  const xml = run.outputs.xml[0]!.text;
  // "Lee, Ann" split by "," is "Ann", not " Ann".
  assert.equal(field(xml, 'first_name'), 'Ann');
  // The comparison value (part 3 of "Lee, Ann") cannot be had: the preferred name is written, the row not rejected.
  assert.equal(field(xml, 'pref_first_name'), 'Annie');
  // Padded to 4 characters with a whole emoji, never half of one.
  assert.equal(field(xml, 'job_description'), '😀😀ab');
  // "n/a" that replace empties falls to the otherwise.
  assert.equal(field(xml, 'user_title'), 'Dr');
});

test('equals_column holds for two equal values, and not for two empty ones', async () => {
  const dir = tempDir('sis2alma-edges-');
  const csv = ['netid,surname,name,login', 'u1,Lee,"Lee, Ann",u1', 'u2,Ng,"Ng, Bo",', 'u3,Ode,"Ode, Cy",x3', ''].join('\n');
  const run = await convertCli({ mapping: write(dir, 'mapping.yaml', BASE), inputs: [write(dir, 'people.csv', csv)] });
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(run.outputs.report!.counts, { rows: 3, users: 2, merged: 0, rejected: 0, skipped: 1, warnings: 0 });
  assert.deepEqual(run.outputs.report!.details, { '1': 'Skipped: same login as netid', '2': 'User written', '3': 'User written' });
});

test('mapping check refuses prefix or unless_same_as beside boolean, which writes its word as it is', () => {
  const text = BASE + 'identifiers:\n  - id_type: FLAG\n    from: flag\n    boolean: { true: Y, false: N }\n    prefix: X\n';
  assert.deepEqual(checkMappingText(text, 'm.yaml').problems.map(formatProblem), [
    'm.yaml:20:5: identifiers[0].prefix: prefix does not apply to a yes/no value: boolean writes its true or false word as it is',
  ]);
});

test('mapping test: a case file named with a folder is the export of that name, for merge.order as in convert', async () => {
  const dir = tempDir('sis2alma-edges-');
  write(dir, 'mapping.yaml', BASE + 'merge: { policy: first_wins_whole, order: [staff.csv, students.csv] }\n');
  const file = write(
    dir,
    'mapping.test.yaml',
    `mapping: mapping.yaml
run_date: 2026-09-01
cases:
  - name: the staff export wins whole, its file named with a folder
    rows:
      - { file: exports/students.csv, netid: p1, surname: Lee, title: Student }
      - { file: exports/staff.csv, netid: p1, surname: Lee, title: Librarian }
    expect: { user_title: Librarian }
`,
  );
  const r = await runCli(['mapping', 'test', file]);
  assert.equal(r.stderr, '');
  assert.equal(r.code, 0, r.stdout);
  assert.equal(r.stdout, 'ok      the staff export wins whole, its file named with a folder\n1 case (run date 2026-09-01): 1 passed, 0 failed\n');
});
