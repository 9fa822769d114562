// Reading exports in pieces for the mapping threads (src/read.ts): whatever the file holds,
// the pieces, each parsed alone, give the same records as the whole file parsed at once, and
// errors name the same row and line as they would without the cuts.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import path from 'node:path';
import zlib from 'node:zlib';
import fc from 'fast-check';
import { readZipEntries } from './helpers/zip.js';
import { parse } from 'csv-parse/sync';
import { pieces, openPieces } from '../src/pipeline/read.js';
import { csvParseOptions } from '../src/pipeline/read.js';
import { convert } from '../src/pipeline/convert.js';
import { RunError } from '../src/shared/errors.js';
import { BAD_FIXTURES, NOW, convertCli, readOutputs, stackLines, tempDir } from './helpers/run-cli.js';
import { PACKAGE_ROOT } from '../src/shared/paths.js';
import { untimed } from './helpers/log-lines.js';

const SEED = 20261121;
const CHECKS = path.join(BAD_FIXTURES, 'rows', 'checks.yaml');

async function collect(file: string, delimiter: string, size: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const piece of pieces(file, { delimiter, size, limit: 1 << 20 })) out.push(Buffer.from(piece.bytes));
  return out;
}

/** A field as a CSV writer may write it: quoted (with "" inside) or, when it can be, bare. */
const field = fc
  .tuple(fc.array(fc.constantFrom('a', 'é', '😀', '"', ',', ';', '\n', '\r', '\r\n', ' ', 'x"y'), { maxLength: 6 }), fc.boolean())
  .map(([parts, quoted]) => {
    const text = parts.join('');
    if (quoted || /[",;\r\n]/.test(text[0] ?? '') || /[,;\r\n]/.test(text)) return `"${text.replaceAll('"', '""')}"`;
    return text; // bare: may hold a quote that does not start it (read as is, with relax_quotes)
  });

describe('pieces', () => {
  test('random CSV (quoted line breaks, "" escapes, bare quotes, LF, CRLF and lone CR mixed, blank lines), cut at every size: same records as the whole file', async () => {
    const dir = tempDir();
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.array(field, { minLength: 1, maxLength: 4 }), fc.constantFrom('\n', '\r\n', '\r')), { minLength: 1, maxLength: 12 }),
        fc.constantFrom(',', ';', '§'),
        fc.boolean(),
        fc.integer({ min: 1, max: 64 }),
        async (rows, delimiter, blankLine, size) => {
          const lines = rows.map(([r, eol]) => r.join(delimiter) + eol);
          if (blankLine) lines.splice(1, 0, rows[0]![1]);
          const text = lines.join('');
          const file = path.join(dir, 'random.csv');
          writeFileSync(file, text);
          const options = { ...csvParseOptions(delimiter), max_record_size: undefined };
          const whole = parse(Buffer.from(text), options);
          const cut = await collect(file, delimiter, size);
          assert.equal(Buffer.concat(cut).toString('utf8'), text, 'the pieces are the file');
          assert.deepEqual(cut.flatMap((piece) => parse(piece, options)), whole, 'each piece parses to the same records');
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });

  test('a UTF-8 byte order mark is not part of the first piece', async () => {
    const file = path.join(tempDir(), 'bom.csv');
    writeFileSync(file, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('a,b\n1,2\n')]));
    assert.equal(Buffer.concat(await collect(file, ',', 1)).toString(), 'a,b\n1,2\n');
  });

  test('a quote that never closes keeps the rest of the file in one piece, so the parser reports it', async () => {
    const file = path.join(tempDir(), 'open.csv');
    writeFileSync(file, 'a,b\n1,"2\n3,4\n5,6\n');
    assert.deepEqual((await collect(file, ',', 1)).map(String), ['a,b\n', '1,"2\n3,4\n5,6\n']);
  });

  test('openPieces reads the header past blank lines and starts the pieces after it, with their line numbers', async () => {
    const file = path.join(tempDir(), 'blank.csv');
    writeFileSync(file, '\n\nid,"na\nme"\n1,x\n2,y\n');
    const csv = await openPieces(file, { size: 1 });
    assert.deepEqual(csv.header, ['id', 'na\nme']);
    const got: [string, number][] = [];
    for await (const piece of csv.pieces) got.push([String(piece.bytes), piece.line]);
    assert.deepEqual(got, [['1,x\n', 5], ['2,y\n', 6]]);
  });

  test('a lone CR and a CRLF each end a line as an LF does: the pieces start at the lines of the file', async () => {
    const file = path.join(tempDir(), 'endings.csv');
    writeFileSync(file, '\r\nid,"na\rme"\r1,x\r\n\r2,"y\r\nz"\n3,z\r');
    const csv = await openPieces(file, { size: 1 });
    assert.deepEqual(csv.header, ['id', 'na\rme']);
    const got: [string, number][] = [];
    for await (const piece of csv.pieces) got.push([String(piece.bytes), piece.line]);
    assert.deepEqual(got, [['1,x\r\n', 4], ['\r', 5], ['2,"y\r\nz"\n', 6], ['3,z\r', 8]]);
  });
});

describe('convert in pieces', () => {
  test('a file cut into one-record pieces gives the same report, rejects and zip content as in one piece', async () => {
    const dir = path.join(BAD_FIXTURES, 'two-files');
    const inputs = [path.join(dir, 'students.csv'), path.join(dir, 'staff.csv')];
    const run = async (pieceBytes?: number) => {
      const outDir = path.join(tempDir(), 'out');
      await convert({ mappingFile: CHECKS, inputs, outDir, now: new Date(NOW), guards: { maxRejected: '100%' }, pieceBytes });
      return readOutputs(outDir);
    };
    const [whole, cut] = [await run(), await run(1)];
    assert.ok(whole.report && whole.xml.length > 0);
    assert.deepEqual(cut.report, whole.report);
    assert.deepEqual(cut.rejects, whole.rejects);
    const entries = (o: typeof whole) => o.xml.map(({ name, text }) => ({ name, text }));
    assert.deepEqual(entries(cut), entries(whole));
  });

  test('one mapping thread or three: the same report and zip content (threads change speed, never the result)', async (t) => {
    const dir = path.join(BAD_FIXTURES, 'two-files');
    const inputs = [path.join(dir, 'students.csv'), path.join(dir, 'staff.csv')];
    t.after(() => delete process.env.SIS2ALMA_MAP_THREADS);
    const run = async (threads: string) => {
      process.env.SIS2ALMA_MAP_THREADS = threads;
      const outDir = path.join(tempDir(), 'out');
      await convert({ mappingFile: CHECKS, inputs, outDir, now: new Date(NOW), guards: { maxRejected: '100%' }, pieceBytes: 1 });
      return readOutputs(outDir);
    };
    const [one, three] = [await run('1'), await run('3')];
    assert.ok(one.report && one.xml.length > 0);
    assert.deepEqual(three.report, one.report);
    assert.deepEqual(three.xml.map(({ name, text }) => ({ name, text })), one.xml.map(({ name, text }) => ({ name, text })));
  });

  test('bytes that are not UTF-8 are named at their own row, even after a real U+FFFD in an earlier row', async () => {
    const file = path.join(tempDir(), 'fffd.csv');
    const header = readFileSync(path.join(BAD_FIXTURES, 'rows', 'bad-date.csv'), 'utf8').split(/\r?\n/)[0]!;
    const good = (id: string, name: string) => `${id},${name},Smith,,2001-02-03,Y,student,2027,${id}@uni.example,,B${id},U${id},sci\n`;
    writeFileSync(file, Buffer.concat([Buffer.from(header + '\n' + good('s1', 'An\uFFFDa') + good('s2', 'Ben')), Buffer.from('s3,Cy'), Buffer.from([0xe9]), Buffer.from(',Lee,,2001-02-03,Y,student,2027,c@uni.example,,B3,U3,sci\n')]));
    await assert.rejects(
      convert({ mappingFile: CHECKS, inputs: [file], outDir: path.join(tempDir(), 'out'), now: new Date(NOW) }),
      (e: unknown) => e instanceof RunError && e.message === `${file}, row 3, column first: bytes that are not UTF-8 (at character 3 of the value); if the file was exported in another encoding, give it with --encoding (e.g. windows-1252)`,
    );
  });

  test("each zip entry's CRC-32 (computed by zlib in place of yazl's own) matches its content", async () => {
    const outDir = path.join(tempDir(), 'out');
    const result = await convert({ mappingFile: CHECKS, inputs: [path.join(BAD_FIXTURES, 'rows', 'bad-date.csv')], outDir, now: new Date(NOW), guards: { maxRejected: '100%' } });
    assert.equal(result.zips.length, 1);
    const entries = await readZipEntries(result.zips[0]!);
    assert.ok(entries.length > 0 && entries.every((e) => e.data.length > 0));
    for (const e of entries) assert.equal(e.crc32, zlib.crc32(e.data));
  });

  test('without xmllint on the PATH: the same output through libxmljs2, said in the log; SIS2ALMA_VALIDATOR=xmllint then stops with exit 2', async () => {
    const inputs = [path.join(BAD_FIXTURES, 'rows', 'bad-date.csv')];
    const args = ['--max-rejected', '100%'];
    // A PATH with node and nothing else: no xmllint.
    const bin = tempDir();
    symlinkSync(process.execPath, path.join(bin, 'node'));
    const bare = { PATH: bin };
    const [withXmllint, without] = [await convertCli({ mapping: CHECKS, inputs, args }), await convertCli({ mapping: CHECKS, inputs, args, env: bare })];
    assert.equal(withXmllint.code, 0, withXmllint.stderr);
    assert.equal(without.code, 0, without.stderr);
    assert.match(untimed(withXmllint.stdout), /^<time> INFO  sis2alma convert: validating with xmllint --stream$/m);
    assert.match(untimed(without.stdout), /^<time> INFO  sis2alma convert: validating with libxmljs2$/m);
    assert.deepEqual(without.outputs.report, withXmllint.outputs.report);
    assert.deepEqual(without.outputs.xml.map((x) => x.text), withXmllint.outputs.xml.map((x) => x.text));

    const forced = await convertCli({ mapping: CHECKS, inputs, args, env: { ...bare, SIS2ALMA_VALIDATOR: 'xmllint' } });
    assert.equal(forced.code, 2);
    assert.match(forced.stderr, /SIS2ALMA_VALIDATOR is xmllint, but xmllint cannot be started: install it \(Debian: apt-get install libxml2-utils\)/);
    assert.deepEqual(forced.outputs.files, [], 'nothing is written');
  });
});

describe("a run's temporary files", () => {
  const twoFiles = () => ['students.csv', 'staff.csv'].map((f) => path.join(BAD_FIXTURES, 'two-files', f));

  test('batches and waiting rows go to a folder under TMPDIR that is gone when the run ends, however it ends', async () => {
    const tmp = tempDir();
    // Two inputs with a person in both: a row waits (in the temporary folder) for the other.
    const ok = await convertCli({ mapping: CHECKS, inputs: twoFiles(), args: ['--max-rejected', '100%'], env: { TMPDIR: tmp, SIS2ALMA_PIECE_BYTES: '1' } });
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(ok.outputs.report!.counts.merged > 0, 'the fixture merges a person whose rows waited');
    assert.ok(ok.outputs.xml.length > 0);
    assert.deepEqual(readdirSync(tmp), [], 'nothing left in TMPDIR after a run that succeeded');

    // A file that breaks half way (a quote that never closes) stops the run after batches were written.
    const broken = path.join(tempDir(), 'broken.csv');
    const good = readFileSync(twoFiles()[0]!, 'utf8');
    writeFileSync(broken, good + good.split('\n')[1]!.replace(/^([^,]*),/, '$1,"never closed\n'));
    const failed = await convertCli({ mapping: CHECKS, inputs: [broken, twoFiles()[1]!], env: { TMPDIR: tmp, SIS2ALMA_PIECE_BYTES: '1' } });
    assert.equal(failed.code, 4, failed.stderr);
    assert.deepEqual(readdirSync(tmp), [], 'nothing left in TMPDIR after a run that stopped');
  });

  test('a TMPDIR that cannot be written stops the run with exit 8, naming it', async () => {
    const missing = path.join(tempDir(), 'no-such-folder');
    const run = await convertCli({ mapping: CHECKS, inputs: twoFiles(), env: { TMPDIR: missing } });
    assert.equal(run.code, 8, run.stderr);
    assert.match(run.stderr, new RegExp(`cannot create a temporary folder in ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(set TMPDIR to a writable folder\\): ENOENT`));
    assert.equal(stackLines(run.stderr).length, 0, 'no stack trace');
  });

  test('bin/sis2alma (with its glibc and V8 settings) writes what node dist/src/cli.js writes; the report gives the id indexes\' memory', async () => {
    const out = path.join(tempDir(), 'out');
    const args = ['convert', '--mapping', CHECKS, ...twoFiles().flatMap((f) => ['--input', f]), '--out', out, '--now', NOW, '--max-rejected', '100%'];
    const viaBin = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(path.join(PACKAGE_ROOT, 'bin', 'sis2alma'), args, { stdio: 'ignore' });
      child.on('error', reject);
      child.on('close', resolve);
    });
    assert.equal(viaBin, 0);
    const direct = await convertCli({ mapping: CHECKS, inputs: twoFiles(), args: ['--max-rejected', '100%'] });
    const bin = await readOutputs(out);
    assert.deepEqual(bin.report, direct.outputs.report);
    assert.deepEqual(bin.xml.map(({ name, text }) => ({ name, text })), direct.outputs.xml.map(({ name, text }) => ({ name, text })));
    const run = (bin.report as unknown as { run: { id_index_mb: unknown } }).run;
    assert.equal(typeof run.id_index_mb, 'number');
    assert.ok((run.id_index_mb as number) > 0);
  });
});
