// Privacy: what the operator's terminal and logs get (stdout, stderr) carries counts, row numbers
// and file names, never a patron's name, email or full id. The report files, written to a folder
// the operator controls, may hold them, and do: each test also shows that the patron data was
// there to be leaked, so that an empty log cannot pass for a private one.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { maskId } from '../src/shared/log.js';
import { PACKAGE_ROOT } from '../src/shared/paths.js';
import { BAD_FIXTURES, convertCli, runCli, tempDir } from './helpers/run-cli.js';

const EXAMPLE = path.join(PACKAGE_ROOT, 'examples', 'infiniti-users.csv');
const FILE = path.join(BAD_FIXTURES, 'file');
const ROWS = path.join(BAD_FIXTURES, 'rows');
const CHECKS = path.join(ROWS, 'checks.yaml');

/**
 * The patron values of a CSV fixture: every cell of the data rows (the raw text split at commas,
 * quotes and line ends, so that files a parser refuses count too) long enough to be told apart
 * from a code, less numbers and yes/no words, which a log may well hold for other reasons.
 */
function patronValues(file: string): string[] {
  const text = readFileSync(file, 'utf8').replace(/[\u0000-\u0009\u000b\u000c\u000e-\u001f\ufffd]/g, '');
  const first = text.split(/\r?\n/)[0]!;
  const header = new Set(first.includes('username') || first.includes('id,first') ? first.split(',') : []);
  const body = header.size ? text.slice(first.length) : text;
  const cells = body.match(/[^,"\r\n]+/g) ?? [];
  return [...new Set(cells.map((c) => c.trim()))].filter((c) => c.length >= 4 && !header.has(c) && !/^[\d\s.-]+$/.test(c) && !/^(true|false|yes|Staff|Year \d+)$/i.test(c));
}

function leaked(text: string, values: string[]): string[] {
  return values.filter((v) => text.includes(v));
}

describe('stdout and stderr carry no patron data', { concurrency: 4 }, () => {
  const cases: { name: string; mapping?: string; input: string; args?: string[]; code: number }[] = [
    { name: 'a run with rejected and merged rows', input: EXAMPLE, args: ['--max-rejected', '50%'], code: 0 },
    { name: 'a run whose guard trips', input: EXAMPLE, code: 5 },
    { name: 'a run with --show-pii still logs no row data (convert logs counts only)', input: EXAMPLE, args: ['--max-rejected', '50%', '--show-pii'], code: 0 },
    { name: 'a file with invalid UTF-8 (the error names row and column, not the value)', input: path.join(FILE, 'invalid-utf8.csv'), code: 4 },
    { name: 'an export without its header (the first line is a patron, not echoed)', input: path.join(FILE, 'no-header.csv'), code: 4 },
    { name: 'a row rejected with several reasons', mapping: CHECKS, input: path.join(ROWS, 'several-problems.csv'), code: 5 },
    { name: 'identifiers dropped as duplicates', mapping: CHECKS, input: path.join(ROWS, 'duplicate-identifier.csv'), code: 0 },
    { name: 'an unclosed quote', input: path.join(FILE, 'unclosed-quote.csv'), code: 4 },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const values = patronValues(c.input);
      assert.ok(values.length > 0, 'the fixture holds patron data');
      const run = await convertCli({ mapping: c.mapping, inputs: [c.input], args: c.args });
      assert.equal(run.code, c.code, run.stderr);
      assert.deepEqual(leaked(run.stdout, values), [], `stdout:\n${run.stdout}`);
      assert.deepEqual(leaked(run.stderr, values), [], `stderr:\n${run.stderr}`);
      // The rejects file may hold patron data, and does: the data was there to be leaked.
      if (run.outputs.report?.counts.rejected) assert.ok(leaked(run.outputs.rejectsText ?? '', values).length > 0, 'the rejects file holds the rows');
    });
  }

  test('the rejects file, for the operator, holds the rejected rows in full', async () => {
    const run = await convertCli({ inputs: [EXAMPLE], args: ['--max-rejected', '50%'] });
    const text = run.outputs.rejectsText!;
    assert.ok(text.includes('emma@@school.example.nz'));
    assert.ok(text.includes('Khan, Jr'));
    assert.deepEqual(leaked(run.stdout + run.stderr, ['emma@@school.example.nz', 'Khan, Jr', 'estu4', 'fstu5']), []);
  });

  test('`run` (folder delivery) logs counts and file names only', async () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, 'drop'));
    const config = path.join(dir, 'run.yaml');
    writeFileSync(config, `mapping: ${path.join(PACKAGE_ROOT, 'mappings', 'infiniti.yaml')}\ninputs: [${EXAMPLE}]\noutput_dir: ${path.join(dir, 'out')}\nguards: { max_rejected: 50% }\ndelivery: { target: dir, dir: ${path.join(dir, 'drop')} }\n`);
    const run = await runCli(['run', '--config', config]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /8 rows/);
    assert.deepEqual(leaked(run.stdout + run.stderr, patronValues(EXAMPLE)), []);
  });
});

describe('masked ids', () => {
  test('an id is shown as its first two characters, ***, and its last (as***1); short ids wholly masked', () => {
    assert.equal(maskId('astu1'), 'as***1');
    assert.equal(maskId('S1234567'), 'S1***7');
    assert.equal(maskId('abc'), '***');
    assert.equal(maskId(''), '***');
  });

  test('`validate` masks the primary id of a refused user unless --show-pii', async () => {
    const dir = tempDir();
    const xml = path.join(dir, 'users.xml');
    writeFileSync(xml, '<?xml version="1.0" encoding="UTF-8"?>\n<users>\n<user><primary_id>astu1</primary_id><user_group>STUDENT</user_group><expiry_date>21-11-2027</expiry_date></user>\n</users>\n');
    const masked = await runCli(['validate', xml]);
    assert.notEqual(masked.code, 0);
    const output = masked.stdout + masked.stderr;
    assert.match(output, /as\*\*\*1/);
    assert.doesNotMatch(output, /astu1/);
    const shown = await runCli(['validate', '--show-pii', xml]);
    assert.match(shown.stdout + shown.stderr, /astu1/);
  });
});
