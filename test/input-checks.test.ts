// The checks on what comes in, through `sis2alma convert` as cron runs it: which addresses are
// well formed, the strict UTF-8 check however the encoding is spelt, and the leading characters
// of a rejects-file cell that a spreadsheet would run (tab and CR as well as = + - @).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { isWellFormedEmail } from '../src/mapping/map.js';
import { spreadsheetSafe } from '../src/pipeline/report.js';
import { convertCli, detailsInOrder, tempDir, toCsv } from './helpers/run-cli.js';

const HEADER = ['username', 'givenname', 'surname', 'emailaddress', 'graduationyear', 'librarybarcode', 'enabled', 'staffmember'];

describe('well-formed email addresses', () => {
  test('a domain without a dot is not well formed; one with a dot is', () => {
    assert.equal(isWellFormedEmail('ana@localhost'), false);
    assert.equal(isWellFormedEmail('ana@school'), false);
    assert.equal(isWellFormedEmail('ana@school.'), false);
    assert.equal(isWellFormedEmail('ana@school.nz'), true);
    assert.equal(isWellFormedEmail('ana.ngata@mail.school.example.nz'), true);
  });

  test('convert rejects the row naming the column and the value, and writes the others', async () => {
    const dir = tempDir();
    const input = path.join(dir, 'in.csv');
    writeFileSync(input, toCsv([HEADER, ['u1', 'Ana', 'Ngata', 'ana@school.example.nz', '2028', 'B1', 'Y', 'N'], ['u2', 'Bo', 'Lee', 'bo@localhost', '2028', 'B2', 'Y', 'N']]));
    const run = await convertCli({ inputs: [input], args: ['--max-rejected', '1'] });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(detailsInOrder(run.outputs.report), [
      ['1', 'User written'],
      ['2', "Rejected: Field (emailaddress) is not a well-formed email address: 'bo@localhost'"],
    ]);
  });
});

describe('the strict UTF-8 check, however the encoding is spelt', () => {
  for (const spelling of ['UTF-8', 'utf8', 'Utf-8']) {
    test(`--encoding ${spelling}: bytes that are not UTF-8 stop the run naming row and column, as the default does`, async () => {
      const dir = tempDir();
      const input = path.join(dir, 'in.csv');
      // Row 2's givenname is "René" in windows-1252: 0xE9 alone is not UTF-8.
      writeFileSync(input, Buffer.concat([Buffer.from(toCsv([HEADER, ['u1', 'Ana', 'Ngata', 'ana@school.example.nz', '2028', 'B1', 'Y', 'N']])), Buffer.from('u2,Ren'), Buffer.from([0xe9]), Buffer.from(',Roux,rene@school.example.nz,2028,B2,Y,N\r\n')]));
      const run = await convertCli({ inputs: [input], args: ['--encoding', spelling] });
      assert.equal(run.stderr, `sis2alma: ${input}, row 2, column givenname: bytes that are not UTF-8 (at character 4 of the value); if the file was exported in another encoding, give it with --encoding (e.g. windows-1252)\n`);
      assert.equal(run.code, 4);
      assert.deepEqual(run.outputs.zips, []);
    });
  }
});

describe('rejects-file cells a spreadsheet would run', () => {
  test('a leading =, +, -, @, tab or CR is neutralised with a quote; the same characters later in a cell are not', () => {
    for (const lead of ['=', '+', '-', '@', '\t', '\r']) assert.equal(spreadsheetSafe(`${lead}SUM(A1)`), `'${lead}SUM(A1)`, JSON.stringify(lead));
    for (const plain of ['SUM(A1)', 'a=b', 'x\ty', 'x\ry', ' =1', "'=1", '']) assert.equal(spreadsheetSafe(plain), plain, JSON.stringify(plain));
  });

  test('in the rejects file convert writes, a tab or CR at the start of a cell comes out quoted', async () => {
    const dir = tempDir();
    const input = path.join(dir, 'in.csv');
    writeFileSync(input, toCsv([HEADER, ['u1', '\tcmd|calc', '\rHYPERLINK', 'not-an-address', '2028', '=1+1', 'Y', 'N']]));
    const run = await convertCli({ inputs: [input], args: ['--max-rejected', '1'] });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.outputs.rejects, [
      ['source_file', 'row', 'reason', ...HEADER],
      [input, '1', "Field (emailaddress) is not a well-formed email address: 'not-an-address'", 'u1', "'\tcmd|calc", "'\rHYPERLINK", 'not-an-address', '2028', "'=1+1", 'Y', 'N'],
    ]);
  });
});
