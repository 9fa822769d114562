// Bad input: every case from the "bad input gets a clear answer and nothing is lost" issue, one
// fixture each (test/fixtures/bad), through the real CLI and through convert(). Each asserts the
// exact outcome and reason of every row, that the rows reconcile, that no stack trace reaches
// stderr, that nothing half-written or undeliverable is left in the output folder, and that every
// XML file written validates against Ex Libris' rest_users.xsd and the project's schema.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { convert } from '../src/pipeline/convert.js';
import { RunError } from '../src/shared/errors.js';
import { AlmaSchema } from '../src/pipeline/validate.js';
import { PROJECT_XSD } from '../src/shared/paths.js';
import {
  BAD_FIXTURES,
  EXLIBRIS_XSD,
  INFINITI_MAPPING,
  NOW,
  convertCli,
  detailsInOrder,
  leftovers,
  readOutputs,
  stackLines,
  tempDir,
  type Outputs,
} from './helpers/run-cli.js';
import { pythonDataRows } from './helpers/python-csv.js';

const FILE = path.join(BAD_FIXTURES, 'file');
const ROWS = path.join(BAD_FIXTURES, 'rows');
const CHECKS = path.join(ROWS, 'checks.yaml');
const exlibris = AlmaSchema.load(EXLIBRIS_XSD);
const project = AlmaSchema.load(PROJECT_XSD);

/** What must hold after any run, good or bad. */
function assertSound(outputs: Outputs, stderr = ''): void {
  assert.deepEqual(stackLines(stderr), [], `no stack trace on stderr:\n${stderr}`);
  assert.deepEqual(
    outputs.files.filter((f) => f.endsWith('.partial') || f.endsWith('.tmp')),
    [],
    'no half-written file is left',
  );
  const report = outputs.report;
  if (report) {
    const c = report.counts;
    assert.equal(c.rows, c.users + c.merged + c.rejected, `rows = users + merged + rejected in ${JSON.stringify(c)}`);
    const details = detailsInOrder(report);
    assert.deepEqual(
      details.map(([row]) => row),
      Array.from({ length: c.rows }, (_, i) => String(i + 1)),
      'every data row has a line in details',
    );
    assert.equal(details.filter(([, d]) => d.startsWith('Rejected: ')).length, c.rejected);
    assert.equal(details.filter(([, d]) => d.startsWith('Merged into row ')).length, c.merged);
    assert.equal(details.filter(([, d]) => d.startsWith('User written')).length, c.users);
    const users = outputs.xml.reduce((n, x) => n + (x.text.match(/<user>/g) ?? []).length, 0);
    assert.equal(users, report.guard ? 0 : c.users, 'the zip holds exactly the users written');
    if (!report.guard && c.rejected) assert.equal((outputs.rejects?.length ?? 1) - 1, c.rejected, 'one line per rejected row in rejects.csv');
  }
  for (const x of outputs.xml) {
    assert.deepEqual(exlibris.validate(x.text), [], `${x.name} fits Ex Libris' rest_users.xsd`);
    assert.deepEqual(project.validate(x.text), [], `${x.name} fits schemas/alma_users.xsd`);
  }
}

// ---------------------------------------------------------------------------------------------
// Files that are bad as a whole: a clear one-line error (exit 4) or a valid empty run.

interface FileCase {
  name: string;
  fixture: string;
  args?: string[];
  code: number;
  /** stderr, exactly, with <file> standing for the fixture's path. */
  stderr?: string;
  stderrMatch?: RegExp;
  details?: Record<string, string>;
}

const fileCases: FileCase[] = [
  { name: 'an empty (0-byte) file is a valid empty run: success, no users, no zip', fixture: 'empty.csv', code: 0, stderr: '', details: {} },
  { name: 'a header-only file is a valid empty run: success, no users, no zip', fixture: 'header-only.csv', code: 0, stderr: '', details: {} },
  {
    name: 'a file missing required columns: one error naming them, before any row is read',
    fixture: 'missing-columns.csv',
    code: 4,
    stderr: 'sis2alma: <file>: the header lacks the required columns enabled, staffmember (the header has: username, givenname, surname, emailaddress)\n',
  },
  {
    name: 'an export without its header: the first line (a patron) is not echoed',
    fixture: 'no-header.csv',
    code: 4,
    stderr:
      'sis2alma: <file>: the header lacks the required columns username, enabled, staffmember (the first line has 15 fields and none of them is a required column: is the header missing, or is this another export?)\n',
  },
  {
    name: 'a file delimited by semicolons: the error names the delimiter to set',
    fixture: 'semicolons.csv',
    code: 4,
    stderr: 'sis2alma: <file>: the header lacks the required columns username, enabled, staffmember (the whole first line is one field: the file seems to be delimited by ";"; say so in the mapping with input: { delimiter: ";" })\n',
  },
  {
    name: 'an unclosed quote: the run stops naming the row where the quote opens',
    fixture: 'unclosed-quote.csv',
    code: 4,
    stderr: 'sis2alma: <file>, row 2: a quoted field opens here and is never closed (a " without its closing "; the rest of the file was read into it)\n',
  },
  {
    name: 'invalid UTF-8: the run stops naming row and column, suggests --encoding, and does not echo the value',
    fixture: 'invalid-utf8.csv',
    code: 4,
    stderr: 'sis2alma: <file>, row 2, column givenname: bytes that are not UTF-8 (at character 3 of the value); if the file was exported in another encoding, give it with --encoding (e.g. windows-1252)\n',
  },
  {
    name: 'a file that is not CSV at all (gzip bytes): one clear line',
    fixture: 'not-csv.csv',
    code: 4,
    stderr: 'sis2alma: <file>: the first line is not a CSV header (it holds bytes that are not text in UTF-8); is this the SIS export, saved as CSV?\n',
  },
  {
    name: 'a UTF-16 file read as UTF-8: the run stops and names the --encoding to use',
    fixture: 'utf16.csv',
    code: 4,
    stderr: 'sis2alma: <file>: the file is UTF-16 (it starts with a UTF-16 byte order mark); run with --encoding utf-16le\n',
  },
  {
    name: 'a UTF-16 file without a byte order mark: the run stops and names the --encoding to use',
    fixture: 'utf16-no-bom.csv',
    code: 4,
    stderr: 'sis2alma: <file>: the file is UTF-16 (it has no byte order mark, and every other byte of its first characters is 0); run with --encoding utf-16le\n',
  },
  { name: 'the UTF-16 file without a byte order mark, with --encoding utf-16le, converts', fixture: 'utf16-no-bom.csv', args: ['--encoding', 'utf-16le'], code: 0, stderr: '', details: { '1': 'User written' } },
  {
    name: 'a UTF-32 file (its byte order mark begins with UTF-16\'s) is called UTF-32',
    fixture: 'utf32.csv',
    code: 4,
    stderr: 'sis2alma: <file>: the file is UTF-32 (it starts with a UTF-32 byte order mark); run with --encoding utf-32le\n',
  },
  { name: 'the UTF-32 file with --encoding utf-32le converts', fixture: 'utf32.csv', args: ['--encoding', 'utf-32le'], code: 0, stderr: '', details: { '1': 'User written' } },
  {
    name: 'a header with one column name twice: the run stops naming both columns',
    fixture: 'duplicate-column.csv',
    code: 4,
    stderr: 'sis2alma: <file>: the header has the column username twice: column 1 (username) and column 4 (username); rename or remove one\n',
  },
  {
    name: 'a header with one column name in two cases: the run stops naming both columns',
    fixture: 'duplicate-column-case.csv',
    code: 4,
    stderr: 'sis2alma: <file>: the header has the column username twice: column 1 (username) and column 15 (USERNAME); rename or remove one\n',
  },
  { name: 'an input that does not exist: exit 4 naming it', fixture: 'no-such-file.csv', code: 4, stderr: 'sis2alma: cannot read input <file>: no such file\n' },
  { name: 'an input that is a folder: exit 4 naming it', fixture: '.', code: 4, stderr: 'sis2alma: cannot read input <file>: it is a folder\n' },
  { name: 'the same UTF-16 file with --encoding utf-16le converts', fixture: 'utf16.csv', args: ['--encoding', 'utf-16le'], code: 0, stderr: '', details: { '1': 'User written' } },
  {
    name: 'ragged rows (too few and too many fields) are rejected one by one; the rest is written',
    fixture: 'ragged-row.csv',
    args: ['--max-rejected', '100%'],
    code: 0,
    stderr: '',
    details: {
      '1': 'User written',
      '2': 'Rejected: The row has 7 fields but the header has 15; a field may hold an unquoted comma or line break',
      '3': 'User written',
      '4': 'Rejected: The row has 17 fields but the header has 15; a field may hold an unquoted comma or line break',
    },
  },
  {
    name: 'a NUL byte and U+001A are stripped with a warning naming the column; the row is written',
    fixture: 'nul-byte.csv',
    code: 0,
    stderr: '',
    details: {
      '1': 'User written',
      '2': 'User written (Field (givenname) had 1 character(s) that XML cannot carry (U+0000); removed; Field (surname) had 1 character(s) that XML cannot carry (U+001A); removed)',
      '3': 'User written',
    },
  },
];

// Each case twice: as the file comes, and cut into pieces of one record each for the mapping
// threads (src/read.ts), so that row and line numbers hold across pieces.
for (const [cut, env] of [['', {}], [' (one record a piece)', { SIS2ALMA_PIECE_BYTES: '1' }]] as const) describe(`bad files through the CLI${cut}`, { concurrency: 4 }, () => {
  for (const c of fileCases) {
    test(c.name, async () => {
      const input = path.join(FILE, c.fixture);
      const run = await convertCli({ inputs: [input], args: ['--quiet', ...(c.args ?? [])], env });
      assert.equal(run.code, c.code, `exit code; stderr: ${run.stderr}`);
      if (c.stderr !== undefined) assert.equal(run.stderr, c.stderr.replaceAll('<file>', input));
      if (c.stderrMatch) assert.match(run.stderr, c.stderrMatch);
      assertSound(run.outputs, run.stderr);
      if (c.code !== 0) {
        assert.deepEqual(leftovers(run.outputs.files), [], 'a stopped run leaves no zip');
        assert.equal(run.outputs.report, undefined, 'a file that stops the run gets no report of rows it never read');
        return;
      }
      assert.ok(run.outputs.report, 'a report is written');
      assert.deepEqual(Object.fromEntries(detailsInOrder(run.outputs.report)), c.details);
      const written = Object.values(c.details ?? {}).filter((d) => d.startsWith('User written')).length;
      assert.equal(run.outputs.zips.length, written ? 1 : 0, 'a zip only when a user was written');
      assert.equal(run.outputs.report.success, !Object.values(c.details ?? {}).some((d) => d.startsWith('Rejected')));
    });
  }

  test('a named pipe (FIFO) as input: refused at once, exit 4, since the inputs are read twice', { timeout: 120_000 }, async () => {
    const fifo = path.join(tempDir(), 'export.csv');
    execFileSync('mkfifo', [fifo]);
    // No writer ever opens it: opening it for reading alone would wait for one for ever.
    const run = await convertCli({ inputs: [fifo], args: ['--quiet'], env });
    assert.equal(run.code, 4, run.stderr);
    assert.equal(run.stderr, `sis2alma: cannot read input ${fifo}: it is a named pipe (FIFO), not a file; sis2alma reads each input twice: save the export to a file and give that\n`);
    assertSound(run.outputs, run.stderr);
    assert.deepEqual(run.outputs.files, []);
  });

  test('an output folder that cannot be made: exit 8 naming it, before any row is read', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'a-file'), '');
    const out = path.join(dir, 'a-file', 'out');
    const run = await convertCli({ inputs: [path.join(FILE, 'nul-byte.csv')], out, args: ['--quiet'] });
    assert.equal(run.code, 8);
    assert.equal(run.stderr, `sis2alma: cannot create the output folder ${out}: ENOTDIR\n`);
  });

  test('the ragged rows go to rejects.csv as they came in, the surplus fields after the columns', async () => {
    const input = path.join(FILE, 'ragged-row.csv');
    const { outputs } = await convertCli({ inputs: [input], args: ['--quiet', '--max-rejected', '100%'] });
    const [header, short, long] = outputs.rejects!;
    assert.deepEqual(header!.slice(0, 4), ['source_file', 'row', 'reason', 'username']);
    assert.deepEqual(short!.slice(0, 2), [input, '2']);
    // Its 7 fields may be shifted by up to 8 columns: every cell the password (column 11, a
    // sensitive column) could have moved into is left empty.
    assert.deepEqual(short!.slice(3, 10), ['bstu2', 'Bjorn', '', '', '', '', '']);
    assert.deepEqual(short!.slice(10), Array(7).fill(''));
    assert.deepEqual(long!.slice(-3), ['Year 11', 'extra', 'fields']);
  });

  test('the NUL row: the XML carries the names without the characters', async () => {
    const { outputs } = await convertCli({ inputs: [path.join(FILE, 'nul-byte.csv')], args: ['--quiet'] });
    const xml = outputs.xml.map((x) => x.text).join('');
    assert.match(xml, /<first_name>Bjorn<\/first_name>/);
    assert.match(xml, /<last_name>Olafsson<\/last_name>/);
    assert.deepEqual(outputs.report!.warnings, { stripped_characters: { count: 2, examples: ['2'] } });
  });

  test('a 1 MB field is a per-row rejection naming the column and the limit, not a crash', async () => {
    const dir = tempDir();
    const input = path.join(dir, 'huge-field.csv');
    const good = readFileSync(path.join(FILE, 'header-only.csv'), 'utf8') + 'astu1,Aroha,Ngata,,Ro,aroha.ngata@school.example.nz,2027,B100001,SIS1001,F,,10A,Y,N,Year 10\r\n';
    writeFileSync(input, good + `bstu2,${'x'.repeat(1024 * 1024)},Olafsson,,,bjorn@school.example.nz,2028,B100002,SIS1002,M,,9B,Y,N,Year 9\r\n`);
    const run = await convertCli({ inputs: [input], args: ['--quiet', '--max-rejected', '1'] });
    assert.equal(run.code, 0, run.stderr);
    assertSound(run.outputs, run.stderr);
    assert.deepEqual(Object.fromEntries(detailsInOrder(run.outputs.report)), {
      '1': 'User written',
      '2': 'Rejected: Field (givenname) is 1048576 characters; Alma takes at most 255 for first_name',
    });
    assert.equal(run.outputs.rejects![1]![4]!.length, 1024 * 1024, 'the rejected row is kept whole');
  });
});

// ---------------------------------------------------------------------------------------------
// Row checks: each fixture is a good row 1 and the case in row 2 (and 3), with test/fixtures/bad/
// rows/checks.yaml, which uses every check. Run through convert() itself.

interface RowCase {
  fixture: string;
  details: Record<string, string>;
  rejections?: Record<string, number>;
  warnings?: Record<string, number>;
}

const rowCases: RowCase[] = [
  { fixture: 'missing-primary-id', details: { '2': 'Rejected: Field (id) is required but empty' }, rejections: { missing_value: 1 } },
  { fixture: 'bad-email', details: { '2': "Rejected: Field (email) is not a well-formed email address: 'ben@@uni.example'" }, rejections: { bad_email: 1 } },
  { fixture: 'bad-date', details: { '2': "Rejected: Field (dob) is not a date in the form YYYY-MM-DD: '2002-02-30'" }, rejections: { bad_date: 1 } },
  { fixture: 'bad-integer', details: { '2': "Rejected: Field (grad) is not a year: '20x8'" }, rejections: { bad_integer: 1 } },
  {
    fixture: 'bad-boolean',
    details: { '2': "Rejected: Field (active) is not a yes/no value: 'maybe' (expected y, yes, true, 1, n, no, false or 0)" },
    rejections: { bad_boolean: 1 },
  },
  { fixture: 'too-long', details: { '2': 'Rejected: Field (job) is 256 characters; Alma takes at most 255 for job_description' }, rejections: { too_long: 1 } },
  { fixture: 'truncated', details: { '2': 'User written (Field (last) was cut to 255 characters for last_name)' }, warnings: { truncated: 1 } },
  {
    fixture: 'code-not-allowed',
    details: { '2': "Rejected: user_group 'VISITOR' is not one of the codes this Alma has (allowed_codes.user_group)" },
    rejections: { code_not_allowed: 1 },
  },
  {
    fixture: 'unknown-statistic-code',
    details: { '2': "User written (Field (dept) value 'music' is not in the map at statistics[0].statistic_category; OTHER used)" },
    warnings: { unknown_code: 1 },
  },
  { fixture: 'expiry-in-past', details: { '2': 'User written (expiry date 2020-12-31 is before the run date 2026-11-21)' }, warnings: { expiry_in_past: 1 } },
  {
    fixture: 'stripped-characters',
    details: { '2': 'User written (Field (first) had 2 character(s) that XML cannot carry (U+0001, U+001A); removed)' },
    warnings: { stripped_characters: 1 },
  },
  {
    fixture: 'duplicate-identifier',
    details: { '2': "User written (identifier BARCODE 'b001' is already used by row 1, which keeps it; left out here)" },
    warnings: { duplicate_identifier: 1 },
  },
  {
    fixture: 'identifier-repeats-primary-id',
    details: { '2': "User written (identifier UNIV_ID 'S002' repeats this user's primary_id and was left out)" },
    warnings: { duplicate_identifier: 1 },
  },
  {
    fixture: 'identifier-is-other-primary-id',
    details: { '2': "User written (identifier UNIV_ID 's001' is the primary id of the user in row 1, which keeps it; left out here)" },
    warnings: { duplicate_identifier: 1 },
  },
  {
    fixture: 'duplicate-primary-id',
    // S001 and s001 are one person to Alma: one user, written as the staff row (priority).
    // Each row had a preferred email and phone: the written row's keep the flag, and the report says so.
    details: {
      '1': 'Merged into row 2 (S001)',
      '2': "User written (row 1's preferred email 'ana@uni.example' is kept but not preferred: row 2's is (Alma takes one preferred email); row 1's preferred phone '021 555 0101' is kept but not preferred: row 2's is (Alma takes one preferred phone))",
    },
    warnings: { extra_preferred: 2 },
  },
  {
    fixture: 'several-problems',
    details: {
      '2': "Rejected: Field (dob) is not a date in the form YYYY-MM-DD: 'yesterday'; Field (active) is not a yes/no value: 'perhaps' (expected y, yes, true, 1, n, no, false or 0); Field (email) is not a well-formed email address: 'not-an-email'",
    },
    rejections: { bad_date: 1, bad_boolean: 1, bad_email: 1 },
  },
  { fixture: 'formula-injection', details: { '2': "Rejected: Field (email) is not a well-formed email address: '@SUM(A1)'" }, rejections: { bad_email: 1 } },
];

async function convertFixture(fixture: string, extra: { schemaFile?: string } = {}) {
  const outDir = path.join(tempDir(), 'out');
  const input = path.join(ROWS, `${fixture}.csv`);
  const result = await convert({ mappingFile: CHECKS, inputs: [input], outDir, now: new Date(NOW), guards: { maxRejected: '100%' }, ...extra });
  return { input, result, outputs: await readOutputs(outDir) };
}

describe('row checks through convert()', () => {
  for (const c of rowCases) {
    test(`${c.fixture}: ${Object.values(c.details).join(' / ')}`, async () => {
      const { input, result, outputs } = await convertFixture(c.fixture);
      assertSound(outputs);
      assert.equal(result.exitCode, 0);
      const expected = { '1': 'User written', ...c.details };
      assert.deepEqual(Object.fromEntries(detailsInOrder(outputs.report)), expected);
      const count = (kinds: Record<string, { count: number }>) => Object.fromEntries(Object.entries(kinds).map(([k, v]) => [k, v.count]));
      assert.deepEqual(count(outputs.report!.rejections), c.rejections ?? {});
      assert.deepEqual(count(outputs.report!.warnings), c.warnings ?? {});
      for (const entry of [...Object.values(outputs.report!.rejections), ...Object.values(outputs.report!.warnings)])
        assert.deepEqual((entry as { examples: string[] }).examples, ['2'], 'each kind names its example row');

      // The rejected rows, as they came in, with their row number and reason.
      const rejected = Object.entries(expected).filter(([, d]) => d.startsWith('Rejected: '));
      if (rejected.length === 0) {
        assert.equal(outputs.rejects, undefined, 'no rejects file when nothing was rejected');
        assert.equal(result.rejectsFile, undefined);
        return;
      }
      const [header, ...lines] = outputs.rejects!;
      const source = readFileSync(input, 'utf8').trimEnd().split('\r\n');
      assert.deepEqual(header, ['source_file', 'row', 'reason', ...source[0]!.split(',')]);
      assert.deepEqual(
        lines.map((l) => l.slice(0, 3)),
        rejected.map(([row, d]) => [input, row, d.slice('Rejected: '.length)]),
      );
    });
  }

  test('a cell that starts with =, +, - or @ is neutralised in rejects.csv; the other cells are as they came in', async () => {
    const { outputs } = await convertFixture('formula-injection');
    const row = outputs.rejects![1]!;
    assert.deepEqual(row.slice(3), ['s002', `'=HYPERLINK("http://evil.example","x")`, "'+SUM(1)", "'-2", '2002-03-04', 'Y', 'student', '2028', "'@SUM(A1)", '021 555 0102', 'B002', 'U002', 'art']);
    assert.match(outputs.rejectsText!, /^\uFEFF/, 'a BOM, so that spreadsheets read UTF-8');
  });

  test('one person in two rows: one user with one preferred email and one preferred phone', async () => {
    const { outputs } = await convertFixture('duplicate-primary-id');
    const xml = outputs.xml.map((x) => x.text).join('');
    assert.equal((xml.match(/<user>/g) ?? []).length, 1);
    assert.match(xml, /<primary_id>S001<\/primary_id>/);
    assert.match(xml, /<user_group>STAFF<\/user_group>/);
    assert.equal((xml.match(/<email preferred="true"/g) ?? []).length, 1);
    assert.equal((xml.match(/<email preferred="false"/g) ?? []).length, 1);
    assert.equal((xml.match(/<phone preferred="true"/g) ?? []).length, 1);
    assert.equal((xml.match(/<phone preferred="false"/g) ?? []).length, 1);
    assert.equal((xml.match(/<value>U001<\/value>/g) ?? []).length, 1, 'the identifier both rows carry is written once');
    const merges = outputs.report!.merges as { count: number; examples: { primary_id: string; rows: string[]; reason: string }[] };
    assert.deepEqual(merges, { count: 1, examples: [{ primary_id: 'S001', rows: ['2', '1'], user_group: 'STAFF', reason: 'STAFF wins over STUDENT by priority' }] });
  });

  test("length limits count characters as Alma does: 200 emoji fit in 255, 256 do not, and a cut never splits one", async () => {
    const { outputs } = await convertFixture('characters-not-units');
    assertSound(outputs);
    assert.deepEqual(Object.fromEntries(detailsInOrder(outputs.report)), {
      '1': 'User written',
      '2': 'User written (Field (last) was cut to 255 characters for last_name)',
      '3': 'User written',
      '4': 'Rejected: Field (job) is 256 characters; Alma takes at most 255 for job_description',
    });
    const xml = outputs.xml.map((x) => x.text).join('');
    const last = /<last_name>(ab\u{1F600}+)<\/last_name>/u.exec(xml);
    assert.ok(last, 'the cut name is there, whole emoji only');
    assert.equal([...last[1]!].length, 255);
    assert.ok(!xml.includes('\uFFFD'), 'no replacement character');
    assert.match(xml, new RegExp(`<job_description>${'\u{1F600}'.repeat(200)}</job_description>`, 'u'));
  });

  for (const validator of ['xmllint', 'libxmljs2']) test(`an XSD failure is reported against the CSV rows of that user (both rows of a merged user), validated by ${validator}`, async (t) => {
    process.env.SIS2ALMA_VALIDATOR = validator;
    t.after(() => delete process.env.SIS2ALMA_VALIDATOR);
    // The project's schema with last_name held to 50 characters: the 60-character name passes the
    // mapping's checks (255) and fails only the XSD.
    const dir = tempDir();
    const xsd = path.join(dir, 'narrow.xsd');
    const text = readFileSync(PROJECT_XSD, 'utf8');
    assert.ok(text.includes('<xs:element name="last_name" type="text255"'));
    writeFileSync(xsd, text.replace('<xs:element name="last_name" type="text255"', '<xs:element name="last_name" type="text50"'));
    const { outputs, result } = await convertFixture('schema-refuses', { schemaFile: xsd });
    assertSound(outputs);
    const reason = `Rejected: Alma's schema refuses this user: Element 'last_name': The value has a length of '60'; this exceeds the allowed maximum length of '50'.`;
    assert.deepEqual(Object.fromEntries(detailsInOrder(outputs.report)), { '1': 'User written', '2': reason, '3': reason, '4': 'User written', '5': reason });
    assert.deepEqual(outputs.report!.rejections, { schema_invalid: { count: 3, examples: ['3', '2', '5'] } });
    assert.equal(result.report.counts.users, 2);
    // The rejects file has each refused row's own values, the single-role user's too (its record is read again for it).
    assert.deepEqual(
      outputs.rejects!.slice(1).map((line) => [line[1], line[3]]),
      [['3', 'S002'], ['2', 's002'], ['5', 's005']],
    );
  });

  test('two exports: rows are named file:row, a person in both is merged, the row that keeps an identifier is named', async () => {
    const dir = path.join(BAD_FIXTURES, 'two-files');
    const outDir = path.join(tempDir(), 'out');
    const inputs = [path.join(dir, 'students.csv'), path.join(dir, 'staff.csv')];
    const result = await convert({ mappingFile: CHECKS, inputs, outDir, now: new Date(NOW), guards: { maxRejected: '100%' } });
    const outputs = await readOutputs(outDir);
    assert.equal(result.exitCode, 0);
    assert.deepEqual(outputs.report!.counts, { rows: 5, users: 3, merged: 1, rejected: 1, skipped: 0, warnings: 3 });
    assert.deepEqual(outputs.report!.details, {
      'students.csv:1': 'Merged into row staff.csv:1 (S001)',
      'students.csv:2': 'User written',
      'staff.csv:1': "User written (row students.csv:1's preferred email 'ana@uni.example' is kept but not preferred: row staff.csv:1's is (Alma takes one preferred email))",
      'staff.csv:2':
        "User written (identifier BARCODE 'b002' is already used by row students.csv:2, which keeps it; left out here; identifier UNIV_ID 's002' is the primary id of the user in row students.csv:2, which keeps it; left out here)",
      'staff.csv:3': "Rejected: Field (email) is not a well-formed email address: 'fay@@work.example'",
    });
    assert.deepEqual(outputs.report!.warnings, { extra_preferred: { count: 1, examples: ['staff.csv:1'] }, duplicate_identifier: { count: 2, examples: ['staff.csv:2'] } });
    // The rejects file has the columns of both exports; the row is under its own file's columns.
    const [header, line] = outputs.rejects!;
    assert.deepEqual(header, ['source_file', 'row', 'reason', 'id', 'first', 'last', 'job', 'dob', 'active', 'group', 'grad', 'email', 'phone', 'barcode', 'univ', 'dept']);
    assert.deepEqual(line, [inputs[1], '3', "Field (email) is not a well-formed email address: 'fay@@work.example'", 's006', 'Fay', 'Ray', 'Clerk', '', 'Y', 'staff', '', 'fay@@work.example', '', 'B906', 'U906', '']);
    for (const x of outputs.xml) assert.deepEqual(exlibris.validate(x.text), []);
  });

  test('a file that stops the run throws a RunError with its file and row, and leaves nothing behind', async () => {
    const outDir = path.join(tempDir(), 'out');
    mkdirSync(outDir);
    const input = path.join(FILE, 'unclosed-quote.csv');
    await assert.rejects(convert({ mappingFile: INFINITI_MAPPING, inputs: [input], outDir, now: new Date(NOW) }), (error: unknown) => {
      assert.ok(error instanceof RunError);
      assert.equal(error.code, 'input_invalid');
      assert.equal(error.exitCode, 4);
      assert.deepEqual(error.context, { file: input, row: 2 });
      return true;
    });
    assert.deepEqual((await readOutputs(outDir)).files, []);
  });

  test('several inputs: a bad file stops the run even after a good one, and no zip of the good one is left', async () => {
    const outDir = path.join(tempDir(), 'out');
    const good = path.join(FILE, 'nul-byte.csv');
    const bad = path.join(FILE, 'invalid-utf8.csv');
    await assert.rejects(convert({ mappingFile: INFINITI_MAPPING, inputs: [good, bad], outDir, now: new Date(NOW) }), { name: 'RunError', code: 'input_invalid' });
    assert.deepEqual((await readOutputs(outDir)).files, []);
  });
});

// ---------------------------------------------------------------------------------------------
// Line endings: LF, CRLF and lone CR (old Mac exports, some report writers), mixed in any way in
// one file, each end a record; every row is read whatever the mix and wherever the pieces are
// cut, as Python's csv module reads the same file.

describe('line endings through the CLI', { concurrency: 2 }, () => {
  const header = 'username,givenname,surname,middlename,preferredname,emailaddress,graduationyear,librarybarcode,adminsystemid,gender,password,formclass,enabled,staffmember,presentationgrouplabel';
  const row = (i: number) => `stu${i},Aroha,Ngata,,Ro,stu${i}@school.example.nz,2027,B${100000 + i},SIS${1000 + i},F,,10A,Y,N,Year 10`;
  const ROWS = 400;
  /** The header and ROWS rows, line i ending in endings[i] (0: the header). */
  const write = (endings: string[]) => {
    const file = path.join(tempDir(), 'endings.csv');
    writeFileSync(file, [header, ...Array.from({ length: ROWS }, (_, i) => row(i + 1))].map((line, i) => line + endings[i]!).join(''));
    return file;
  };
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const lines = (eol: (i: number) => string) => Array.from({ length: ROWS + 1 }, (_, i) => eol(i));
  const cases: [string, string[]][] = [
    ['LF, the second line alone in CRLF', lines((i) => (i === 1 ? '\r\n' : '\n'))],
    ['LF, one line in 20 in CRLF', lines(() => (random() < 0.05 ? '\r\n' : '\n'))],
    ['CRLF, one line in 20 in LF', lines(() => (random() < 0.05 ? '\n' : '\r\n'))],
    ['a lone CR (old Mac)', lines(() => '\r')],
    ['LF, CRLF and lone CR at random', lines(() => ['\n', '\r\n', '\r'][Math.floor(random() * 3)]!)],
  ];
  for (const [name, endings] of cases) {
    for (const pieceBytes of ['', '1', '700']) {
      test(`${name}${pieceBytes ? `, in pieces of ${pieceBytes} bytes` : ''}: all ${ROWS} rows are read and written`, async () => {
        const input = write(endings);
        assert.equal(pythonDataRows(input), ROWS, "Python's csv module reads every row");
        const run = await convertCli({ inputs: [input], args: ['--quiet'], env: pieceBytes ? { SIS2ALMA_PIECE_BYTES: pieceBytes } : {} });
        assert.equal(run.code, 0, run.stderr);
        assertSound(run.outputs, run.stderr);
        assert.deepEqual(run.outputs.report!.counts, { rows: ROWS, users: ROWS, merged: 0, rejected: 0, skipped: 0, warnings: 0 });
        const xml = run.outputs.xml.map((x) => x.text).join('');
        assert.equal((xml.match(/<primary_id>stu\d+<\/primary_id>/g) ?? []).length, ROWS);
        assert.match(xml, new RegExp(`<primary_id>stu${ROWS}</primary_id>`));
      });
    }
  }
});
