// The zip Alma picks up: chunked XML files with sortable names, Alma's per-zip limits, and no
// zip under a final name unless the run finished.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { convert } from '../src/pipeline/convert.js';
import { readZip } from './helpers/zip.js';
import { REPO_ROOT, problemsAgainstBoth } from './helpers/schemas.js';
import { makeTempDir } from './helpers/tmp.js';

const MAPPING = path.join(REPO_ROOT, 'mappings', 'infiniti.yaml');
const NOW = new Date('2026-11-21T02:00:00');

function infinitiCsv(people: number): string {
  const lines = ['username,givenname,surname,emailaddress,graduationyear,librarybarcode,enabled,staffmember'];
  for (let i = 1; i <= people; i++) lines.push(`user${i},Given${i},Sur${i},user${i}@school.example,2028,BC${i},Y,N`);
  return lines.join('\n') + '\n';
}

test('users are split into XML files of --chunk-size users, named in order, inside one zip', async () => {
  const dir = makeTempDir('sis2alma-pkg-');
  const input = path.join(dir, 'in.csv');
  writeFileSync(input, infinitiCsv(25));
  const result = await convert({ mappingFile: MAPPING, inputs: [input], outDir: path.join(dir, 'out'), now: NOW, chunkSize: 10 });
  assert.deepEqual(result.zips.map((z) => path.basename(z)), ['users_infiniti_20261121-020000.zip']);
  const entries = await readZip(result.zips[0]!);
  assert.deepEqual(
    entries.map((e) => e.name),
    ['users_infiniti_20261121-020000_0001.xml', 'users_infiniti_20261121-020000_0002.xml', 'users_infiniti_20261121-020000_0003.xml'],
  );
  assert.deepEqual(entries.map((e) => (e.text.match(/<user>/g) ?? []).length), [10, 10, 5]);
  for (const e of entries) assert.deepEqual(problemsAgainstBoth(e.text), []);
  assert.deepEqual(result.report.counts, { rows: 25, users: 25, merged: 0, rejected: 0, skipped: 0, warnings: 0 });
  assert.equal(result.report.summary, '25 rows processed. 25 users written. 0 rows merged. 0 rows failed.');
  assert.equal(result.report.success, true);
  const onDisk = JSON.parse(readFileSync(result.reportFile, 'utf8'));
  assert.deepEqual(onDisk.files, ['users_infiniti_20261121-020000.zip']);
  assert.equal(Object.keys(onDisk.details).length, 25, 'every row is in details');
  assert.equal(onDisk.details['25'], 'User written');
});

test("past Alma's 50 files per zip (here lowered to 2) a second zip starts, sorted after the first", async () => {
  const dir = makeTempDir('sis2alma-pkg-');
  const input = path.join(dir, 'in.csv');
  writeFileSync(input, infinitiCsv(7));
  const result = await convert({ mappingFile: MAPPING, inputs: [input], outDir: path.join(dir, 'out'), now: NOW, chunkSize: 2, maxFilesPerZip: 2 });
  const names = result.zips.map((z) => path.basename(z));
  assert.deepEqual(names, ['users_infiniti_20261121-020000.zip', 'users_infiniti_20261121-020000_02.zip']);
  assert.deepEqual([...names].sort(), names, 'names sort in the order they were written');
  const first = await readZip(result.zips[0]!);
  const second = await readZip(result.zips[1]!);
  assert.deepEqual(first.map((e) => e.name), ['users_infiniti_20261121-020000_0001.xml', 'users_infiniti_20261121-020000_0002.xml']);
  assert.deepEqual(second.map((e) => e.name), ['users_infiniti_20261121-020000_0003.xml', 'users_infiniti_20261121-020000_0004.xml']);
  assert.deepEqual([...first, ...second].map((e) => (e.text.match(/<user>/g) ?? []).length), [2, 2, 2, 1]);
});

test('past the byte limit of a zip (here lowered) a new zip starts, and every zip stays under it', async () => {
  const dir = makeTempDir('sis2alma-pkg-');
  const input = path.join(dir, 'in.csv');
  writeFileSync(input, infinitiCsv(40));
  const limit = 80 * 1024;
  const result = await convert({ mappingFile: MAPPING, inputs: [input], outDir: path.join(dir, 'out'), now: NOW, maxZipBytes: limit });
  assert.ok(result.zips.length >= 2, `several zips: ${result.zips.length}`);
  let users = 0;
  for (const zip of result.zips) {
    const entries = await readZip(zip);
    const bytes = entries.reduce((n, e) => n + Buffer.byteLength(e.text), 0);
    assert.ok(bytes <= limit, `${path.basename(zip)} holds ${bytes} bytes of XML`);
    users += entries.reduce((n, e) => n + (e.text.match(/<user>/g) ?? []).length, 0);
  }
  assert.equal(users, 40);
});

test('an input with no data rows is a successful run that writes no zip', async () => {
  const dir = makeTempDir('sis2alma-pkg-');
  const input = path.join(dir, 'in.csv');
  writeFileSync(input, infinitiCsv(0));
  const result = await convert({ mappingFile: MAPPING, inputs: [input], outDir: path.join(dir, 'out'), now: NOW });
  assert.deepEqual(result.zips, []);
  assert.equal(result.exitCode, 0);
  assert.equal(result.report.success, true);
  assert.deepEqual(readdirSync(path.join(dir, 'out')), ['users_infiniti_20261121-020000.report.json']);
});
