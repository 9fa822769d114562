// The example mappings in examples/ (a research university, a small college, a school): each is
// valid, its mapping test file passes, and its example exports convert into users that pass both
// schemas, with the counts the examples are written to show.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { PACKAGE_ROOT } from '../src/shared/paths.js';
import { checkMapping, formatProblem } from '../src/mapping/load.js';
import { checkMappingTest, formatMappingTest, runMappingTest } from '../src/review/mapping-test.js';
import { convert } from '../src/pipeline/convert.js';
import { makeTempDir } from './helpers/tmp.js';
import { readZip } from './helpers/zip.js';
import { problemsAgainstBoth } from './helpers/schemas.js';

const EXAMPLES: { dir: string; inputs: string[]; counts: { rows: number; users: number; merged: number; rejected: number } }[] = [
  { dir: 'research-university', inputs: ['students.csv', 'hr.csv'], counts: { rows: 8, users: 6, merged: 1, rejected: 1 } },
  { dir: 'small-college', inputs: ['students.csv', 'staff.csv'], counts: { rows: 6, users: 5, merged: 1, rejected: 0 } },
  { dir: 'school', inputs: ['people.csv'], counts: { rows: 4, users: 4, merged: 0, rejected: 0 } },
];

for (const example of EXAMPLES) {
  const dir = path.join(PACKAGE_ROOT, 'examples', example.dir);

  test(`examples/${example.dir}: the mapping is valid and its mapping test passes`, () => {
    const checked = checkMapping(path.join(dir, 'mapping.yaml'));
    assert.deepEqual([...checked.problems, ...checked.warnings].map(formatProblem), []);
    const t = checkMappingTest(path.join(dir, 'mapping.test.yaml'), '2000-01-01');
    assert.deepEqual([...t.problems, ...t.warnings].map(formatProblem), []);
    const result = runMappingTest(t.test!);
    assert.equal(result.failed, 0, formatMappingTest(result).join('\n'));
    assert.ok(result.passed >= 5);
  });

  test(`examples/${example.dir}: its exports convert into users valid against both schemas`, async () => {
    const out = makeTempDir('sis2alma-example-');
    const result = await convert({ mappingFile: path.join(dir, 'mapping.yaml'), inputs: example.inputs.map((f) => path.join(dir, f)), outDir: out, now: new Date('2026-09-01T02:00:00'), guards: { maxRejected: '50%' } });
    const { rows, users, merged, rejected } = result.report.counts;
    assert.deepEqual({ rows, users, merged, rejected }, example.counts);
    const xml = (await Promise.all(result.zips.map(readZip))).flat().map((e) => e.text);
    assert.equal(xml.length, 1);
    assert.deepEqual(problemsAgainstBoth(xml[0]!), []);
  });
}
