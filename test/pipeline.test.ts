// Issue 12, "No patron lost, nothing left behind", for the conversion pipeline: an export that
// changes between the two readings stops the run; one person with thousands of rows is a broken
// export, rejected row by row, and merging many rows costs as many steps as rows; secrets in the
// export never reach the rejects file or the report, and the output files are the owner's only;
// an id with a character nobody can see is rejected, naming it.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, closeSync, mkdirSync, openSync, readFileSync, readdirSync, statSync, utimesSync, watch, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { emptyUser } from '../src/shared/alma.js';
import { loadMapping } from '../src/mapping/load.js';
import { mergeUsers } from '../src/pipeline/merge.js';
import { explainMapping } from '../src/review/explain.js';
import { RunError } from '../src/shared/errors.js';
import { INFINITI_MAPPING, NOW, convertCli, detailsInOrder, readOutputs, runCli, stackLines, tempDir, toCsv } from './helpers/run-cli.js';

const HEADER = ['username', 'givenname', 'surname', 'middlename', 'preferredname', 'emailaddress', 'graduationyear', 'librarybarcode', 'adminsystemid', 'gender', 'password', 'formclass', 'enabled', 'staffmember', 'presentationgrouplabel'];

/** An Infiniti row; `over` replaces columns by name. */
function row(id: string, n: number, over: Record<string, string> = {}): string[] {
  const base: Record<string, string> = {
    username: id,
    givenname: 'Ann',
    surname: 'Lee',
    middlename: '',
    preferredname: '',
    emailaddress: `ann${n}@school.example.nz`,
    graduationyear: '2028',
    librarybarcode: `B${String(n).padStart(6, '0')}`,
    adminsystemid: `SIS${n}`,
    gender: 'F',
    password: `pw-secret-${n}`,
    formclass: '10A',
    enabled: 'Y',
    staffmember: 'N',
    presentationgrouplabel: 'Year 10',
  };
  return HEADER.map((h) => over[h] ?? base[h]!);
}

function writeExport(rows: string[][]): string {
  const file = path.join(tempDir(), 'export.csv');
  writeFileSync(file, toCsv([HEADER, ...rows]));
  return file;
}

describe('an export that changes between the two readings', () => {
  /**
   * Runs convert and, once the first reading is over (the run opens its row log in the output
   * folder then), calls `change`. Pieces of one record each make the second reading slow, so
   * that it is still at its start when the file changes.
   */
  async function convertWhileChanging(input: string, change: () => void) {
    const out = path.join(tempDir(), 'out');
    const tmp = tempDir('sis2alma-test-tmpdir-');
    mkdirSync(out);
    let changed = false;
    const watcher = watch(out, (_event, name) => {
      if (!changed && name && name.endsWith('.details.tmp')) {
        changed = true;
        change();
      }
    });
    try {
      const run = await convertCli({ inputs: [input], out, args: ['--quiet', '--max-rejected', '100%'], env: { SIS2ALMA_PIECE_BYTES: '1', TMPDIR: tmp } });
      assert.ok(changed, 'the file was changed during the run');
      return { ...run, tmpLeft: readdirSync(tmp) };
    } finally {
      watcher.close();
    }
  }

  test('a row rewritten in place, same size and time, is found by the hash: exit 4, one line, nothing delivered', async () => {
    // The first reading sees u00001 and v00001; the second would see U00001 in place of v00001,
    // which Alma takes for u00001: two users of one id in one zip, as the issue saw.
    const rows = [row('u00001', 0), ...Array.from({ length: 1500 }, (_, i) => row(`p${i}`, i + 1)), row('v00001', 9999)];
    const input = writeExport(rows);
    const time = new Date('2026-11-21T01:00:00Z');
    utimesSync(input, time, time);
    const text = readFileSync(input, 'utf8');
    const at = Buffer.byteLength(text.slice(0, text.lastIndexOf('v00001')));
    const run = await convertWhileChanging(input, () => {
      const fd = openSync(input, 'r+');
      writeSync(fd, 'U', at);
      closeSync(fd);
      utimesSync(input, time, time);
    });
    assert.equal(statSync(input).size, Buffer.byteLength(text), 'the size did not change');
    assert.equal(run.code, 4);
    assert.equal(
      run.stderr,
      `sis2alma: ${input} changed while sis2alma read it (the second reading found other rows than the first): is the export still being written? Nothing was delivered; run again once it is complete\n`,
    );
    assert.deepEqual(run.outputs.files, [], 'no zip, report or rejects file, and nothing half-written');
    assert.deepEqual(run.tmpLeft, [], 'the temporary folder is gone');
  });

  test('rows appended while the run reads (an export still being written): exit 4, nothing delivered', async () => {
    const input = writeExport(Array.from({ length: 1500 }, (_, i) => row(`p${i}`, i)));
    const run = await convertWhileChanging(input, () => appendFileSync(input, toCsv([row('p0', 5000, { username: 'P0' })])));
    assert.equal(run.code, 4);
    assert.deepEqual(stackLines(run.stderr), []);
    assert.match(
      run.stderr,
      new RegExp(
        `^sis2alma: ${input.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} changed while sis2alma read it \\((its size went from \\d+ to \\d+ bytes between the two readings|the second reading found more rows than the first)\\): is the export still being written\\? Nothing was delivered; run again once it is complete\\n$`,
      ),
    );
    assert.deepEqual(run.outputs.files, []);
    assert.deepEqual(run.tmpLeft, []);
  });
});

describe('one person with many rows', () => {
  test('merging n rows of one person takes a bounded number of steps a row (it took n²/2)', () => {
    const mapping = loadMapping(INFINITI_MAPPING);
    const n = 400;
    const members = Array.from({ length: n }, (_, i) => {
      const user = emptyUser('u00001');
      user.user_group = 'STUDENT';
      user.contact_info.emails.push({ preferred: true, email_address: `ann${i}@school.example.nz`, email_types: ['school'] });
      user.user_identifiers.push({ id_type: 'BARCODE', value: `B${i}` });
      return { ordinal: i + 1, label: String(i + 1), user, warnings: [] };
    });
    // The steps: keys put into sets of keys seen (new Set(list) adds through Set.prototype.add
    // once it is replaced).
    const add = Set.prototype.add;
    let adds = 0;
    Set.prototype.add = function (this: Set<unknown>, value: unknown) {
      adds++;
      return add.call(this, value);
    };
    let decision;
    try {
      decision = mergeUsers(members, mapping.userGroup);
    } finally {
      Set.prototype.add = add;
    }
    assert.equal(decision.user.contact_info.emails.length, n, 'every email is kept');
    assert.equal(decision.user.user_identifiers.length, n, 'every identifier is kept');
    assert.equal(decision.user.contact_info.emails.filter((e) => e.preferred).length, 1);
    assert.ok(adds <= 10 * n, `${adds} keys added to sets for ${n} rows`);
  });

  // Each person's rows share an email, so that merging them warns of no second preferred email.
  const over = [
    ...Array.from({ length: 21 }, (_, i) => row('many1', i, { emailaddress: 'many1@school.example.nz' })),
    ...Array.from({ length: 20 }, (_, i) => row('twenty', 100 + i, { emailaddress: 'twenty@school.example.nz', staffmember: i === 3 ? 'Y' : 'N' })),
    row('single', 500),
  ];
  const reason = (id: string, rows: number) =>
    `Rejected: Field (username) '${id}' is the primary id of ${rows} rows, more than one person has (at most 20: input.max_rows_per_person in the mapping); the export repeats rows`;

  test('a primary id of more rows than max_rows_per_person (default 20): every row rejected, with the reason; 20 rows still merge', async () => {
    const input = writeExport(over);
    const run = await convertCli({ inputs: [input], args: ['--quiet', '--max-rejected', '100%'] });
    assert.equal(run.code, 0, run.stderr);
    const report = run.outputs.report!;
    assert.deepEqual(report.counts, { rows: 42, users: 2, merged: 19, rejected: 21, skipped: 0, warnings: 0 });
    const details = detailsInOrder(report);
    assert.deepEqual(details.slice(0, 21), Array.from({ length: 21 }, (_, i) => [String(i + 1), reason('many1', 21)]));
    assert.equal(details[24]![1], 'User written');
    assert.deepEqual(report.rejections.too_many_rows, { count: 21, examples: ['1', '2', '3', '4', '5'] });
    assert.equal(run.outputs.rejects!.length, 22, 'each row is in the rejects file');
    const xml = run.outputs.xml.map((x) => x.text).join('');
    assert.equal((xml.match(/<user>/g) ?? []).length, 2);
    assert.doesNotMatch(xml, /many1/);
  });

  test('mapping explain counts them as convert does, and a mapping may allow more', async () => {
    const input = writeExport(over);
    const explained = await explainMapping(loadMapping(INFINITI_MAPPING), [input], { runDate: '2026-11-21' });
    assert.deepEqual(explained.rejections.too_many_rows, { rows: 21, columns: { username: 21 }, examples: ['1', '2', '3', '4', '5'] });

    const dir = tempDir();
    const mapping = path.join(dir, 'infiniti.yaml');
    writeFileSync(mapping, readFileSync(INFINITI_MAPPING, 'utf8').replace('  sensitive_columns: [password]\n', '  sensitive_columns: [password]\n  max_rows_per_person: 21\n'));
    const run = await convertCli({ mapping, inputs: [input], args: ['--quiet'] });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.outputs.report!.counts, { rows: 42, users: 3, merged: 39, rejected: 0, skipped: 0, warnings: 0 });
  });
});

describe('secrets and the files a run writes', () => {
  test('a sensitive column never reaches the rejects file or the report; the other columns do', async () => {
    const rows = [row('astu1', 1), row('bstu2', 2, { emailaddress: 'b@@school.example.nz' }), [...row('cstu3', 3).slice(0, 2), 'Extra, field', ...row('cstu3', 3).slice(2)]];
    const input = writeExport(rows);
    const run = await convertCli({ inputs: [input], args: ['--quiet', '--max-rejected', '100%'] });
    assert.equal(run.code, 0, run.stderr);
    const [header, bad, ragged] = run.outputs.rejects!;
    assert.deepEqual(header, ['source_file', 'row', 'reason', ...HEADER.filter((h) => h !== 'password')]);
    assert.deepEqual(bad!.slice(3), row('bstu2', 2, { emailaddress: 'b@@school.example.nz' }).filter((_, i) => HEADER[i] !== 'password'));
    // The ragged row's password is one column to the right of its own: both are left out.
    assert.equal(ragged!.length, 3 + 14 + 1);
    const all = readFileSync(input, 'utf8');
    assert.match(all, /pw-secret-2/, 'the secret was there to leak');
    for (const name of run.outputs.files) assert.doesNotMatch(readFileSync(path.join(run.outDir, name), 'latin1'), /pw-secret/, name);
    assert.ok(run.outputs.rejectsText!.includes('b@@school.example.nz'));
  });

  test('zips, reports and rejects files are readable by their owner only, whatever the umask', async () => {
    const input = writeExport([row('astu1', 1), row('bstu2', 2, { emailaddress: 'b@@school.example.nz' })]);
    const out = path.join(tempDir(), 'out');
    mkdirSync(out);
    // An earlier run's files of the same names, readable by all: they are replaced, private.
    for (const name of ['users_infiniti_20261121-020000.report.json.partial', '.users_infiniti_20261121-020000.details.tmp']) writeFileSync(path.join(out, name), '', { mode: 0o644 });
    const old = process.umask(0);
    let run;
    try {
      run = await runCli(['convert', '--mapping', INFINITI_MAPPING, '--input', input, '--out', out, '--now', NOW, '--quiet', '--max-rejected', '100%']);
    } finally {
      process.umask(old);
    }
    assert.equal(run.code, 0, run.stderr);
    const outputs = await readOutputs(out);
    assert.deepEqual(outputs.files, ['users_infiniti_20261121-020000.rejects.csv', 'users_infiniti_20261121-020000.report.json', 'users_infiniti_20261121-020000.zip']);
    for (const name of outputs.files) assert.equal(statSync(path.join(out, name)).mode & 0o777, 0o600, name);
    assert.deepEqual(outputs.files.filter((f) => f.endsWith('.partial') || f.endsWith('.tmp')), [], 'the earlier files are gone');
  });

  test('a mapping that reads a sensitive column is refused, naming it', () => {
    const dir = tempDir();
    const mapping = path.join(dir, 'infiniti.yaml');
    writeFileSync(mapping, readFileSync(INFINITI_MAPPING, 'utf8').replace('middle_name: "{middlename}"', 'middle_name: "{password}"'));
    assert.throws(
      () => loadMapping(mapping),
      (error: unknown) => error instanceof RunError && error.code === 'mapping_invalid' && /input\.sensitive_columns\[0\]: "password" is a sensitive column, which never leaves the input, but the mapping reads it/.test(error.message),
    );
  });
});

describe('characters nobody can see, in ids', () => {
  test('a primary id or identifier with one is rejected, naming the column and the character', async () => {
    const input = writeExport([
      row('a\u200bstu1', 1),
      row('bstu2', 2, { librarybarcode: 'B2\u202e' }),
      row('cstu3', 3, { adminsystemid: 'SIS\ufeff3' }),
      row('dstu4', 4, { surname: 'Lee\u200b' }),
    ]);
    const run = await convertCli({ inputs: [input], args: ['--quiet', '--max-rejected', '100%'] });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(detailsInOrder(run.outputs.report), [
      ['1', "Rejected: Field (username) holds an invisible character, U+200B ZERO WIDTH SPACE, at character 2: 'a<U+200B>stu1' (nobody can see or type it at a login; remove it in the SIS)"],
      ['2', "Rejected: Field (librarybarcode) holds an invisible character, U+202E RIGHT-TO-LEFT OVERRIDE, at character 3: 'B2<U+202E>' (nobody can see or type it at a login; remove it in the SIS)"],
      ['3', "Rejected: Field (adminsystemid) holds an invisible character, U+FEFF ZERO WIDTH NO-BREAK SPACE (byte order mark), at character 4: 'SIS<U+FEFF>3' (nobody can see or type it at a login; remove it in the SIS)"],
      // A name is not an id: nobody signs in with it.
      ['4', 'User written'],
    ]);
    assert.deepEqual(run.outputs.report!.rejections.invisible_character, { count: 3, examples: ['1', '2', '3'] });
  });
});

describe('fingerprints computed by the mapping threads (UserSink.fingerprints)', () => {
  /** convert() with a sink that records what it is told of each user. */
  async function told(input: string, fingerprints: boolean) {
    const { convert } = await import('../src/pipeline/convert.js');
    const { fingerprintOf } = await import('../src/pipeline/user-sink.js');
    const seen: { primaryId: string; given?: string; actual: string }[] = [];
    const sink = {
      fingerprints,
      begin: () => {},
      written: (xml: Uint8Array, _rows: readonly string[], _rule: string, _merge?: string, given?: string) => {
        const text = Buffer.from(xml).toString('utf8');
        seen.push({ primaryId: /<primary_id>([^<]*)</.exec(text)![1]!, ...(given !== undefined ? { given } : {}), actual: fingerprintOf(xml) });
        return true;
      },
      finish: () => ({ key: 'sink', report: {}, trips: [], summary: '' }),
    };
    // Pieces of a few rows each: the fingerprints line up with their rows across pieces too.
    const result = await convert({ mappingFile: INFINITI_MAPPING, inputs: [input], outDir: path.join(tempDir(), 'out'), now: new Date(NOW), users: sink, pieceBytes: 400 });
    assert.equal(result.exitCode, 0);
    return seen;
  }

  test("each single-row user's fingerprint is that of the bytes delivered; a merged user, or one that lost an identifier, has the sink's own", async () => {
    // u3 gives u1's barcode again (it loses it: Alma's identifiers are unique across users); u4 has two rows (merged).
    const input = writeExport([row('u1', 1), row('u2', 2), row('u3', 3, { librarybarcode: 'B000001' }), row('u4', 4), row('u4', 4), row('u5', 5)]);
    const seen = await told(input, true);
    assert.deepEqual(seen.map((s) => s.primaryId).sort(), ['u1', 'u2', 'u3', 'u4', 'u5']);
    for (const s of seen) if (s.given !== undefined) assert.equal(s.given, s.actual, s.primaryId);
    assert.deepEqual(seen.filter((s) => s.given !== undefined).map((s) => s.primaryId).sort(), ['u1', 'u2', 'u5']);
    // Without the sink asking, the threads compute none.
    assert.deepEqual((await told(input, false)).filter((s) => s.given !== undefined), []);
  });
});
