// The example mappings in examples/ (a research university, a small college, a school): each is
// valid without warnings, its mapping test file passes, and its example exports convert into users
// that pass both schemas, with the counts the examples are written to show (rows = users + merged +
// rejected + skipped). Together they use every construct of the mapping language at least once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { PACKAGE_ROOT } from '../src/shared/paths.js';
import { checkMapping, formatProblem } from '../src/mapping/load.js';
import { checkMappingTest, formatMappingTest, runMappingTest } from '../src/review/mapping-test.js';
import { convert } from '../src/pipeline/convert.js';
import { makeTempDir } from './helpers/tmp.js';
import { readZip } from './helpers/zip.js';
import { problemsAgainstBoth } from './helpers/schemas.js';

type Counts = { rows: number; users: number; merged: number; rejected: number; skipped: number };
const EXAMPLES: { dir: string; inputs: string[]; counts: Counts; warnings: Record<string, number> }[] = [
  {
    dir: 'research-university',
    inputs: ['students.csv', 'hr.csv'],
    counts: { rows: 14, users: 9, merged: 1, rejected: 2, skipped: 2 },
    warnings: { invalid_email_dropped: 1, invalid_phone_dropped: 1 },
  },
  {
    dir: 'small-college',
    inputs: ['students.csv', 'staff.csv'],
    counts: { rows: 18, users: 13, merged: 1, rejected: 1, skipped: 3 },
    warnings: { unfit_value_dropped: 2, unknown_code: 2 },
  },
  {
    dir: 'school',
    inputs: ['people.csv'],
    counts: { rows: 12, users: 9, merged: 1, rejected: 1, skipped: 1 },
    warnings: { expiry_in_past: 1, invalid_phone_dropped: 1, user_group_omitted: 1 },
  },
];

async function convertExample(example: (typeof EXAMPLES)[number]) {
  const dir = path.join(PACKAGE_ROOT, 'examples', example.dir);
  const out = makeTempDir('sis2alma-example-');
  const result = await convert({ mappingFile: path.join(dir, 'mapping.yaml'), inputs: example.inputs.map((f) => path.join(dir, f)), outDir: out, now: new Date('2026-09-01T02:00:00'), guards: { maxRejected: '50%' } });
  const xml = (await Promise.all(result.zips.map(readZip))).flat().map((e) => e.text);
  return { result, xml };
}

for (const example of EXAMPLES) {
  const dir = path.join(PACKAGE_ROOT, 'examples', example.dir);

  test(`examples/${example.dir}: the mapping is valid without warnings and its mapping test passes`, () => {
    const checked = checkMapping(path.join(dir, 'mapping.yaml'));
    assert.deepEqual([...checked.problems, ...checked.warnings].map(formatProblem), []);
    const t = checkMappingTest(path.join(dir, 'mapping.test.yaml'), '2000-01-01');
    assert.deepEqual([...t.problems, ...t.warnings].map(formatProblem), []);
    const result = runMappingTest(t.test!);
    assert.equal(result.failed, 0, formatMappingTest(result).join('\n'));
    assert.ok(result.passed >= 10, `${result.passed} cases`);
  });

  test(`examples/${example.dir}: its exports convert into users valid against both schemas, and every row is counted`, async () => {
    const { result, xml } = await convertExample(example);
    const { rows, users, merged, rejected, skipped } = result.report.counts;
    assert.deepEqual({ rows, users, merged, rejected, skipped }, example.counts);
    assert.equal(rows, users + merged + rejected + skipped);
    const warnings = Object.fromEntries(Object.entries((result.report.warnings ?? {}) as Record<string, { count: number }>).map(([kind, w]) => [kind, w.count]));
    assert.deepEqual(warnings, example.warnings);
    assert.equal(xml.length, 1);
    assert.equal(xml[0]!.match(/<user>/g)?.length, users);
    assert.deepEqual(problemsAgainstBoth(xml[0]!), []);
  });
}

// A mapping test compares no blocks: the school's block is pinned here, in the XML convert writes.
test('examples/school: only the pupil whose parents have not signed the library agreement is blocked', async () => {
  const { xml } = await convertExample(EXAMPLES[2]!);
  const blocked = [...xml[0]!.matchAll(/<user>[\s\S]*?<\/user>/g)].filter((u) => u[0].includes('<user_block ')).map((u) => /<primary_id>(.*?)<\/primary_id>/.exec(u[0])![1]);
  assert.deepEqual(blocked, ['noah.d']);
  assert.match(xml[0]!, /<user_block segment_type="External">\s*<block_type>GENERAL<\/block_type>\s*<block_description>01<\/block_description>\s*<block_note>library agreement not signed<\/block_note>\s*<\/user_block>/);
});

// Every key below is a construct of the mapping language the README documents; each must appear in
// one of the three examples, where an institution would use it.
const CONSTRUCTS = [
  // conditions
  'not', 'all', 'any', 'in', 'not_in', 'matches', 'empty', 'before', 'equals_column', 'ignore_case', 'input_file',
  // rows left out or refused
  'skip', 'reject', 'message', 'unmapped',
  // one person, several rows
  'merge', 'policy', 'order', 'priority',
  // reformatting
  'replace', 'must_match', 'split', 'substring', 'pad', 'prefix', 'on_unfit', 'phone', 'unless_same_as',
  // dates
  'rules', 'otherwise', 'run_date', 'next', 'after_run', 'after_expiry', 'term_calendar', 'end_of_year', 'purge',
  // Alma's record
  'note', 'status', 'start_date', 'end_date', 'user_blocks', 'rs_libraries', 'library_notices', 'notes', 'statistics',
];

test('the three examples together use every construct of the mapping language', () => {
  const used = new Set<string>();
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v !== null && typeof v === 'object') for (const [k, inner] of Object.entries(v)) { used.add(k); walk(inner); }
  };
  for (const example of EXAMPLES) walk(parse(readFileSync(path.join(PACKAGE_ROOT, 'examples', example.dir, 'mapping.yaml'), 'utf8'), { merge: true }));
  assert.deepEqual(CONSTRUCTS.filter((c) => !used.has(c)), []);
  // The policies and the value of unmapped: both merge policies, and omit.
  const text = EXAMPLES.map((e) => readFileSync(path.join(PACKAGE_ROOT, 'examples', e.dir, 'mapping.yaml'), 'utf8')).join('\n');
  for (const word of ['policy: combine', 'policy: first_wins_whole', 'unmapped: omit', 'format: e164', 'format: national']) assert.ok(text.includes(word), word);
});
