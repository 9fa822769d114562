// Generated input: Infiniti-layout CSV files, correctly quoted, whose every column holds random
// strings with control characters (U+0000–U+001F, U+001A), U+FFFE/U+FFFF, lone and paired
// surrogates, quotes, commas, CR/LF, formula starters and very long values. Whatever comes in:
// no crash (the exit code is 0 or 5, never 1), the counts reconcile, every row is accounted for,
// and every XML file written validates against Ex Libris' rest_users.xsd and ours.
// Seeded and bounded, so a failure is reproducible and the suite stays well under a minute.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { convert } from '../src/pipeline/convert.js';
import { RunError, EXIT_CODES } from '../src/shared/errors.js';
import { AlmaSchema } from '../src/pipeline/validate.js';
import { PROJECT_XSD } from '../src/shared/paths.js';
import { EXLIBRIS_XSD, INFINITI_MAPPING, NOW, convertCli, readOutputs, stackLines, tempDir, toCsv, type Outputs } from './helpers/run-cli.js';
import { IdIndex } from '../src/pipeline/merge.js';
import { pythonDataRows } from './helpers/python-csv.js';

const SEED = 20261121;
const exlibris = AlmaSchema.load(EXLIBRIS_XSD);
const project = AlmaSchema.load(PROJECT_XSD);

const HEADER = ['username', 'givenname', 'surname', 'middlename', 'preferredname', 'emailaddress', 'graduationyear', 'librarybarcode', 'adminsystemid', 'gender', 'password', 'formclass', 'enabled', 'staffmember', 'presentationgrouplabel'];

// ---- Generators ------------------------------------------------------------------------------

const controls = Array.from({ length: 32 }, (_, i) => String.fromCharCode(i));
/** The characters that break naive CSV, XML and spreadsheet handling. */
const nasty = fc.constantFrom(
  ...controls,
  '\u001A',
  '\uFFFE',
  '\uFFFF',
  '\uD800', // lone high surrogate
  '\uDFFF', // lone low surrogate
  '\uD83D\uDE00', // a paired surrogate (😀)
  '\uD834\uDD1E', // 𝄞
  '"',
  '""',
  ',',
  '\r',
  '\n',
  '\r\n',
  "'",
  '=',
  '+',
  '-',
  '@',
  '<',
  '>',
  '&',
  ']]>',
  '\u00A0',
  '\u2028',
  '\uFEFF',
  ' ',
  '\t',
  'é',
  'Ω',
  'Иван',
);
const plain = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._'.split(''));
const junk = fc.string({ unit: fc.oneof({ weight: 3, arbitrary: plain }, { weight: 2, arbitrary: nasty }), maxLength: 24 });
const long = fc.tuple(fc.integer({ min: 200, max: 700 }), fc.oneof(plain, nasty)).map(([n, ch]) => ch.repeat(n));

/**
 * A value that is plausible, plausible with hostile characters inside, junk, very long, or empty.
 * Free text (names, labels) is mostly hostile, since it goes into the XML as it is; a checked
 * value (id, email, yes/no, year, code) is mostly plausible, so that enough rows pass every check
 * for their hostile free text to reach the XML at all.
 */
function column(plausible: fc.Arbitrary<string>, kind: 'free' | 'checked'): fc.Arbitrary<string> {
  const free = kind === 'free';
  return fc.oneof(
    { weight: free ? 2 : 16, arbitrary: plausible },
    { weight: free ? 4 : 1, arbitrary: fc.tuple(plausible, junk, plausible).map(([a, b, c]) => a + b + c) },
    { weight: free ? 2 : 1, arbitrary: junk },
    { weight: 1, arbitrary: long },
    { weight: 1, arbitrary: fc.constant('') },
  );
}

const word = fc.string({ unit: plain, minLength: 1, maxLength: 10 });
const id = fc.tuple(fc.constantFrom('astu', 'bstu', 'ASTU', 'staff', 'x'), fc.integer({ min: 1, max: 12 })).map(([p, n]) => `${p}${n}`);
const email = fc.tuple(word, fc.constantFrom('school.example.nz', 'example.org', 'uni.example')).map(([u, d]) => `${u}@${d}`);
const year = fc.integer({ min: 2015, max: 2035 }).map(String);
const yesNo = fc.constantFrom('Y', 'N', 'yes', 'no', '1', '0', 'true', 'false');

const row = fc.tuple(
  column(id, 'checked'), // username
  column(word, 'free'), // givenname
  column(word, 'free'), // surname
  column(word, 'free'), // middlename
  column(word, 'free'), // preferredname
  column(email, 'checked'), // emailaddress
  column(year, 'checked'), // graduationyear
  column(id.map((s) => `B${s}`), 'free'), // librarybarcode
  column(id, 'free'), // adminsystemid: sometimes another row's username
  column(fc.constantFrom('M', 'F', 'm', 'f'), 'checked'), // gender
  column(word, 'free'), // password
  column(word, 'free'), // formclass
  column(yesNo, 'checked'), // enabled
  column(yesNo, 'checked'), // staffmember
  column(word, 'free'), // presentationgrouplabel
);
const file = fc.array(row, { minLength: 1, maxLength: 12 });

// ---- The property -----------------------------------------------------------------------------

/** The Infiniti mapping, and a copy that truncates the names (a cut may fall inside a surrogate pair). */
function mappings(dir: string): string[] {
  const text = readFileSync(INFINITI_MAPPING, 'utf8');
  const truncating = path.join(dir, 'infiniti-truncate.yaml');
  const changed = text.replace('first_name: "{givenname}"', 'first_name: { from: givenname, truncate: true }').replace('last_name: "{surname}"', 'last_name: { from: surname, truncate: true }');
  assert.notEqual(changed, text);
  writeFileSync(truncating, changed);
  return [INFINITI_MAPPING, truncating];
}

function assertAccounted(outputs: Outputs, label: string): number {
  const report = outputs.report;
  assert.ok(report, `${label}: a report is written`);
  const c = report.counts;
  assert.equal(c.rows, c.users + c.merged + c.rejected + c.skipped, `${label}: counts reconcile ${JSON.stringify(c)}`);
  assert.equal(Object.keys(report.details ?? {}).length, c.rows, `${label}: every row has its line in details`);
  assert.deepEqual(
    outputs.files.filter((f) => f.endsWith('.partial') || f.endsWith('.tmp')),
    [],
    `${label}: nothing half-written is left`,
  );
  let users = 0;
  for (const x of outputs.xml) {
    assert.deepEqual(exlibris.validate(x.text), [], `${label}: ${x.name} fits Ex Libris' rest_users.xsd`);
    assert.deepEqual(project.validate(x.text), [], `${label}: ${x.name} fits schemas/alma_users.xsd`);
    users += (x.text.match(/<user>/g) ?? []).length;
  }
  if (report.guard) assert.deepEqual(outputs.zips, [], `${label}: a tripped guard leaves no zip`);
  else assert.equal(users, c.users, `${label}: the zip holds the users written`);
  return users;
}

describe('generated CSV files with hostile characters in every column', () => {
  test('convert(): exit 0 or 5, never a crash; counts reconcile; the XML validates', async () => {
    const dir = tempDir('sis2alma-property-');
    const [infiniti, truncating] = mappings(dir);
    let run = 0;
    let usersWritten = 0;
    let rowsSeen = 0;
    await fc.assert(
      fc.asyncProperty(file, fc.boolean(), fc.integer({ min: 0, max: 3 }), async (rows, truncate, guard) => {
        run++;
        const input = path.join(dir, `in-${run}.csv`);
        writeFileSync(input, toCsv([HEADER, ...rows]));
        const outDir = path.join(dir, `out-${run}`);
        let exitCode: number;
        try {
          const result = await convert({ mappingFile: truncate ? truncating! : infiniti!, inputs: [input], outDir, now: new Date(NOW), guards: { maxRejected: guard === 0 ? '5%' : '100%' } });
          exitCode = result.exitCode;
        } catch (error) {
          // Only a RunError has a documented exit code; anything else is the CLI's exit 1.
          exitCode = error instanceof RunError ? error.exitCode : EXIT_CODES.internal;
          assert.fail(`run ${run}: convert threw ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        }
        assert.ok(exitCode === 0 || exitCode === 5, `run ${run}: exit code ${exitCode}`);
        const outputs = await readOutputs(outDir);
        assert.equal(outputs.report?.counts.rows, rows.length, `run ${run}: every generated row was read as one row`);
        usersWritten += assertAccounted(outputs, `run ${run}`);
        rowsSeen += rows.length;
      }),
      { seed: SEED, numRuns: 60, endOnFailure: true },
    );
    // The generator must reach the XML: a property over files that all fail would prove little.
    assert.ok(usersWritten > rowsSeen / 5, `users in the zips: ${usersWritten} of ${rowsSeen} rows`);
  });

  test('the CLI: exit 0 or 5 and never a stack trace, on a few generated files', async () => {
    const dir = tempDir('sis2alma-property-cli-');
    const samples = fc.sample(file, { seed: SEED + 1, numRuns: 3 });
    for (const [i, rows] of samples.entries()) {
      const input = path.join(dir, `in-${i}.csv`);
      writeFileSync(input, toCsv([HEADER, ...rows]));
      const run = await convertCli({ inputs: [input], args: ['--quiet'] });
      assert.ok(run.code === 0 || run.code === 5, `sample ${i}: exit ${run.code}: ${run.stderr}`);
      assert.deepEqual(stackLines(run.stderr), []);
      assert.doesNotMatch(run.stderr, /internal error/);
      assertAccounted(run.outputs, `sample ${i}`);
    }
  });
});

// Line endings: LF, CRLF and lone CR at random after each record and inside quoted values, blank
// lines between records, the pieces cut small (down to a record each) so that cuts fall at and
// inside line breaks. Every record is read: the count is the one Python's csv module gives.
describe('generated CSV files with random line endings', () => {
  const eol = fc.constantFrom('\n', '\r\n', '\r');
  const value = fc.string({ unit: fc.oneof({ weight: 6, arbitrary: plain }, { weight: 1, arbitrary: fc.constantFrom('\n', '\r\n', '\r', ',', '"', ' ', 'é') }), maxLength: 12 });
  const record = fc.tuple(fc.tuple(id, word, word), fc.array(value, { minLength: 12, maxLength: 12 }), eol, fc.constantFrom('', '', '', '\n', '\r\n', '\r'));
  const quoted = (v: string) => (/[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);

  test("convert(): as many rows as Python's csv module reads, whatever the endings and wherever the pieces are cut", async () => {
    const dir = tempDir('sis2alma-property-eol-');
    let run = 0;
    await fc.assert(
      fc.asyncProperty(eol, fc.array(record, { minLength: 1, maxLength: 30 }), fc.oneof(fc.constant(undefined), fc.integer({ min: 1, max: 400 })), async (headerEnd, records, pieceBytes) => {
        run++;
        const input = path.join(dir, `eol-${run}.csv`);
        const text = HEADER.join(',') + headerEnd + records.map(([[username, first, last], rest, end, blank]) => [username, first, last, ...rest].map(quoted).join(',') + end + blank).join('');
        writeFileSync(input, text);
        const expected = pythonDataRows(input);
        assert.equal(expected, records.length, `run ${run}: Python reads every generated record`);
        const outDir = path.join(dir, `out-eol-${run}`);
        const result = await convert({ mappingFile: INFINITI_MAPPING, inputs: [input], outDir, now: new Date(NOW), guards: { maxRejected: '100%' }, pieceBytes });
        assert.equal(result.exitCode, 0, `run ${run}`);
        const outputs = await readOutputs(outDir);
        assert.equal(outputs.report?.counts.rows, expected, `run ${run} (pieces of ${pieceBytes ?? 'default'} bytes): ${JSON.stringify(text)}`);
        assertAccounted(outputs, `run ${run}`);
      }),
      { seed: SEED, numRuns: 80, endOnFailure: true },
    );
  });
});

test('IdIndex: every key is found with its values, whether the index grew by half as it filled or was reserved in one step; other keys are not found', () => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.string({ minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 400 }), fc.nat(2000), (keys, reserveAt) => {
      const grown = new IdIndex(1);
      const reserved = new IdIndex(1, { shared: true });
      keys.forEach((key, i) => {
        if (i === Math.min(reserveAt, keys.length - 1)) reserved.reserve(keys.length);
        for (const index of [grown, reserved]) {
          const { slot, isNew } = index.upsert(key);
          assert.ok(isNew, `${JSON.stringify(key)} is new`);
          index.set(slot, i + 1, keys.length - i);
        }
      });
      for (const index of [grown, reserved]) {
        assert.equal(index.size, keys.length);
        keys.forEach((key, i) => {
          const slot = index.find(key);
          assert.ok(slot >= 0, `${JSON.stringify(key)} is found`);
          assert.deepEqual([index.first(slot), index.second(slot)], [i + 1, keys.length - i]);
        });
        assert.equal(index.find(keys.join('|') + '\u0000absent'), -1);
      }
    }),
    { numRuns: 200 },
  );
});
