// Guards: --max-rejected N|P% (default 5%) and --min-users N. When one trips, nothing is
// delivered and no zip is left in the output folder; the report is still written and says which
// guard tripped with the figures; the exit code is 5. Through the real CLI, and `run` with a
// folder as the delivery target.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { EXIT_CODES } from '../src/shared/errors.js';
import { convert } from '../src/pipeline/convert.js';
import { BAD_FIXTURES, NOW, convertCli, leftovers, readOutputs, runCli, stackLines, tempDir } from './helpers/run-cli.js';
import { PACKAGE_ROOT } from '../src/shared/paths.js';
import { untimed } from './helpers/log-lines.js';

const ROWS = path.join(BAD_FIXTURES, 'rows');
const CHECKS = path.join(ROWS, 'checks.yaml');
/** Row 1 good, row 2 rejected: 50% of the rows fail. */
const HALF_BAD = path.join(ROWS, 'bad-email.csv');
const HEADER_ONLY = path.join(BAD_FIXTURES, 'file', 'header-only.csv');
const EXAMPLE = path.join(PACKAGE_ROOT, 'examples', 'infiniti-users.csv');

function assertNothingDelivered(files: string[]): void {
  assert.deepEqual(leftovers(files), [], `no zip and no partial file in ${files.join(', ')}`);
}

describe('guards through the CLI', { concurrency: 4 }, () => {
  test('default --max-rejected 5%: 1 of 2 rows rejected trips it; exit 5, report says so, no zip', async () => {
    const run = await convertCli({ mapping: CHECKS, inputs: [HALF_BAD] });
    assert.equal(run.code, EXIT_CODES.guard_tripped);
    assert.equal(run.code, 5);
    assertNothingDelivered(run.outputs.files);
    const report = run.outputs.report!;
    assert.deepEqual(report.guard, {
      guard: 'max_rejected',
      limit: '5%',
      actual: 1,
      message: '1 of 2 rows were rejected (50.0%), over the limit of 5% (max_rejected)',
    });
    assert.equal(report.success, false);
    assert.deepEqual(report.files, []);
    assert.deepEqual(report.counts, { rows: 2, users: 1, merged: 0, rejected: 1, skipped: 0, warnings: 0 });
    assert.equal(report.summary, '2 rows processed. 1 user written. 0 rows merged. 1 row failed. Not delivered: 1 of 2 rows were rejected (50.0%), over the limit of 5% (max_rejected).');
    assert.deepEqual(report.details, { '1': 'User written', '2': "Rejected: Field (email) is not a well-formed email address: 'ben@@uni.example'" });
    assert.equal(run.outputs.rejects?.length, 2, 'the rejects file is still written, for the fix');
    assert.match(untimed(run.stderr), /^<time> WARN  sis2alma convert: guard max_rejected tripped: 1 of 2 rows were rejected \(50\.0%\), over the limit of 5% \(max_rejected\)\. Nothing was packaged for delivery; see .*\.report\.json\n$/);
    assert.deepEqual(stackLines(run.stderr), []);
  });

  test('--max-rejected 50%: exactly at the limit passes (the guard is "more than")', async () => {
    const run = await convertCli({ mapping: CHECKS, inputs: [HALF_BAD], args: ['--max-rejected', '50%'] });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.outputs.zips.length, 1);
    assert.equal(run.outputs.report!.guard, undefined);
  });

  test('--max-rejected as a count: 1 passes one rejected row, 0 trips on it', async () => {
    const one = await convertCli({ mapping: CHECKS, inputs: [HALF_BAD], args: ['--max-rejected', '1'] });
    assert.equal(one.code, 0, one.stderr);
    assert.equal(one.outputs.zips.length, 1);
    const zero = await convertCli({ mapping: CHECKS, inputs: [HALF_BAD], args: ['--max-rejected', '0'] });
    assert.equal(zero.code, 5);
    assertNothingDelivered(zero.outputs.files);
    assert.deepEqual(zero.outputs.report!.guard, { guard: 'max_rejected', limit: '0', actual: 1, message: '1 of 2 rows were rejected (50.0%), over the limit of 0 (max_rejected)' });
  });

  test('--min-users: a truncated export (header only) with --min-users 1 trips, though nothing was rejected', async () => {
    const run = await convertCli({ inputs: [HEADER_ONLY], args: ['--min-users', '1'] });
    assert.equal(run.code, 5);
    assertNothingDelivered(run.outputs.files);
    assert.deepEqual(run.outputs.report!.guard, { guard: 'min_users', limit: '1', actual: 0, message: 'only 0 users would be written, fewer than the minimum of 1 (min_users)' });
    assert.equal(run.outputs.report!.counts.rows, 0);
  });

  test('--min-users above the users written trips; at the count it passes', async () => {
    // The example: 8 rows, 5 users (one merged, two rejected).
    const over = await convertCli({ inputs: [EXAMPLE], args: ['--max-rejected', '50%', '--min-users', '6'] });
    assert.equal(over.code, 5);
    assertNothingDelivered(over.outputs.files);
    assert.deepEqual(over.outputs.report!.guard, { guard: 'min_users', limit: '6', actual: 5, message: 'only 5 users would be written, fewer than the minimum of 6 (min_users)' });
    const at = await convertCli({ inputs: [EXAMPLE], args: ['--max-rejected', '50%', '--min-users', '5'] });
    assert.equal(at.code, 0, at.stderr);
    assert.equal(at.outputs.zips.length, 1);
  });

  test('a guard value that is not a count or a share is a usage error (exit 2), before anything is read', async () => {
    for (const [flag, value, message] of [
      ['--max-rejected', 'lots', "sis2alma: --max-rejected expects a count (25) or a share (5%), not 'lots'"],
      ['--max-rejected', '2.5', "sis2alma: --max-rejected expects a count (25) or a share (5%), not '2.5'"],
      ['--min-users', '-1', 'sis2alma: --min-users expects a whole number, not -1'],
    ] as const) {
      const run = await convertCli({ inputs: [EXAMPLE], args: [flag, value] });
      assert.equal(run.code, 2, `${flag} ${value}: ${run.stderr}`);
      assert.equal(run.stderr.split('\n')[0], message);
      assert.deepEqual(run.outputs.files, [], 'nothing written');
    }
  });

  test('a rerun at the same time that trips a guard leaves no zip of the earlier run under the same name', async () => {
    const out = path.join(tempDir(), 'out');
    const first = await convertCli({ mapping: CHECKS, inputs: [HALF_BAD], out, args: ['--max-rejected', '100%'] });
    assert.equal(first.code, 0);
    assert.equal(first.outputs.zips.length, 1);
    const second = await convertCli({ mapping: CHECKS, inputs: [HALF_BAD], out });
    assert.equal(second.code, 5);
    assertNothingDelivered(second.outputs.files);
    assert.ok(second.outputs.report!.guard);
  });
});

describe('guards through convert()', () => {
  test('the result says which guard tripped; zips is empty; the exit code is 5', async () => {
    const outDir = path.join(tempDir(), 'out');
    const result = await convert({ mappingFile: CHECKS, inputs: [HALF_BAD], outDir, now: new Date(NOW), guards: { maxRejected: '10%' } });
    assert.equal(result.exitCode, 5);
    assert.deepEqual(result.zips, []);
    assert.equal((result.report.guard as { guard: string }).guard, 'max_rejected');
    assert.equal(readdirSync(outDir).filter((f) => f.endsWith('.zip')).length, 0);
    const onDisk = JSON.parse(readFileSync(result.reportFile, 'utf8')) as { guard: unknown };
    assert.deepEqual(onDisk.guard, result.report.guard);
  });
});

describe('guards in `run` (run config guards:, folder delivery)', () => {
  test('a tripped guard: exit 5, nothing in the delivery folder, no zip in the output folder', async () => {
    const dir = tempDir();
    const drop = path.join(dir, 'drop');
    mkdirSync(drop);
    const config = path.join(dir, 'run.yaml');
    writeFileSync(config, `mapping: ${CHECKS}\ninputs: [${HALF_BAD}]\noutput_dir: ${path.join(dir, 'out')}\nguards: { max_rejected: 10% }\ndelivery: { target: dir, dir: ${drop} }\n`);
    const run = await runCli(['run', '--config', config]);
    assert.equal(run.code, 5, run.stderr + run.stdout);
    assert.deepEqual(readdirSync(drop), [], 'nothing delivered');
    const outputs = await readOutputs(path.join(dir, 'out'));
    assertNothingDelivered(outputs.files);
    assert.equal(outputs.report!.guard?.guard, 'max_rejected');
    assert.deepEqual(stackLines(run.stderr), []);
  });
});

