// src/pipeline/package.ts and src/pipeline/report.ts, called in this process with exact outcomes
// (issue 17): the zips' names, entries and bytes, the limits, temporary names and abort; the
// report's counts, examples, row details in row order (also past a run spilled to disk), the
// rejects file, the guards and the summary. Fast, so that Stryker's output group kills a mutant
// here before it reaches the files that run convert() or the CLI.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import yauzl from 'yauzl';
import { ALMA_MAX_FILES_PER_ZIP, ALMA_MAX_ZIP_BYTES, Packager, timestampForNames, type PackageOptions } from '../src/pipeline/package.js';
import { RunLog, addToReport, checkGuards, ownerOnlyStream, parseMaxRejected, secretPositions, spreadsheetSafe, summarise, type Counts } from '../src/pipeline/report.js';
import { USERS_CLOSE, USERS_OPEN, XML_DECLARATION, provenanceComment } from '../src/pipeline/xml.js';
import { RunError, type RowProblem, type RowWarning } from '../src/shared/errors.js';
import { readZip, readZipEntries } from './helpers/zip.js';
import { makeTempDir } from './helpers/tmp.js';
import { onSmallDisk } from './helpers/small-disk.js';
import { randomBytes } from 'node:crypto';

const PROVENANCE = { tool: 'sis2alma', version: '0.1.0', mappingFile: 'm.yaml', mappingSha256: 'abc', runTime: '2026-11-21T02:00:00.000Z' };
const head = (n: number) => XML_DECLARATION + provenanceComment({ ...PROVENANCE, part: `file ${n}` }) + USERS_OPEN;
const user = (id: string, pad = 0) => `<user><primary_id>${id}</primary_id>${'x'.repeat(pad)}</user>\n`;

function packager(extra: Partial<PackageOptions> = {}): { dir: string; packager: Packager } {
  const dir = makeTempDir('sis2alma-output-stages-');
  return { dir, packager: new Packager({ outDir: dir, stem: 'users_x', chunkSize: 1000, provenance: PROVENANCE, ...extra }) };
}

/** Each entry's CRC-32 as the zip's directory gives it, and as computed from its content. */
async function crcs(file: string): Promise<[string, number, number][]> {
  return (await readZipEntries(file)).map((e) => [e.name, e.crc32, zlib.crc32(e.data)]);
}

/** Adds each user, awaiting only when add() asks to. */
async function addAll(p: Packager, users: (string | Buffer)[]): Promise<void> {
  for (const u of users) await p.add(u);
}

describe('Packager', () => {
  test("Alma's limits, and the names' timestamp in local time", () => {
    assert.equal(ALMA_MAX_FILES_PER_ZIP, 50);
    assert.equal(ALMA_MAX_ZIP_BYTES, 4_294_967_296);
    assert.equal(timestampForNames(new Date(2026, 0, 5, 3, 4, 5)), '20260105-030405');
    assert.equal(timestampForNames(new Date(2026, 10, 21, 23, 59, 58)), '20261121-235958');
  });

  test('files of chunkSize users each, in one zip under a temporary name until commit; each file exactly its users', async () => {
    const { dir, packager: p } = packager({ chunkSize: 2 });
    const users = ['1', '2', '3', '4', '5'].map((id) => user(id));
    await addAll(p, users);
    const zips = await p.finish();
    const file = path.join(dir, 'users_x.zip');
    assert.deepEqual(readdirSync(dir), ['users_x.zip.partial']);
    assert.equal(statSync(path.join(dir, 'users_x.zip.partial')).mode & 0o777, 0o600);
    const texts = [head(1) + users[0] + users[1] + USERS_CLOSE, head(2) + users[2] + users[3] + USERS_CLOSE, head(3) + users[4] + USERS_CLOSE];
    assert.deepEqual(zips, [
      {
        file,
        entries: [
          { name: 'users_x_0001.xml', users: 2, bytes: Buffer.byteLength(texts[0]!) },
          { name: 'users_x_0002.xml', users: 2, bytes: Buffer.byteLength(texts[1]!) },
          { name: 'users_x_0003.xml', users: 1, bytes: Buffer.byteLength(texts[2]!) },
        ],
      },
    ]);
    assert.deepEqual(await p.commit(), [file]);
    assert.deepEqual(readdirSync(dir), ['users_x.zip']);
    assert.deepEqual(await readZip(file), [
      { name: 'users_x_0001.xml', text: texts[0] },
      { name: 'users_x_0002.xml', text: texts[1] },
      { name: 'users_x_0003.xml', text: texts[2] },
    ]);
  });

  test('users as bytes or text, of characters of several bytes and larger than the write chunk: counted and written as they are', async () => {
    const { dir, packager: p } = packager();
    const big = user('big', 600 * 1024);
    const users: (string | Buffer)[] = [user('é😀'), Buffer.from(user('bytes')), big, Buffer.from(big), user('after')];
    await addAll(p, users);
    const [zip] = await p.finish();
    const text = head(1) + users.map(String).join('') + USERS_CLOSE;
    assert.deepEqual(zip!.entries, [{ name: 'users_x_0001.xml', users: 5, bytes: Buffer.byteLength(text) }]);
    await p.commit();
    assert.deepEqual(await readZip(path.join(dir, 'users_x.zip')), [{ name: 'users_x_0001.xml', text }]);
    // The CRC-32 of an entry written in many chunks (zlib's, in place of yazl's own): Alma refuses a zip whose CRCs are wrong.
    const [[name, crc, computed]] = (await crcs(path.join(dir, 'users_x.zip'))) as [[string, number, number]];
    assert.deepEqual([name, crc], ['users_x_0001.xml', computed]);
    assert.equal(zlib.crc32('hello'), 0x3610a686);
  });

  test('a user of megabytes: the entry waits for the zip to take what it was given, and holds every byte', async () => {
    const { dir, packager: p } = packager();
    const huge = user('huge', 6 * 1024 * 1024);
    await addAll(p, [user('1'), huge, user('2')]);
    await p.finish();
    await p.commit();
    const text = head(1) + user('1') + huge + user('2') + USERS_CLOSE;
    const [entry] = await readZip(path.join(dir, 'users_x.zip'));
    assert.equal(entry!.text.length, text.length);
    assert.ok(entry!.text === text);
    const [[, crc, computed]] = (await crcs(path.join(dir, 'users_x.zip'))) as [[string, number, number]];
    assert.equal(crc, computed);
  });

  test("entries deflated at zlib's level 3, dated at the run's time", async () => {
    const { dir, packager: p } = packager();
    const big = user('1', 0).replace('</user>', 'hello world '.repeat(50_000) + '</user>');
    await addAll(p, [big]);
    await p.finish();
    await p.commit();
    const text = Buffer.from(head(1) + big + USERS_CLOSE);
    const entry = await new Promise<yauzl.Entry>((resolve, reject) =>
      yauzl.open(path.join(dir, 'users_x.zip'), { lazyEntries: true }, (error, zip) => {
        if (error || !zip) return reject(error);
        zip.on('entry', resolve);
        zip.readEntry();
      }),
    );
    assert.equal(entry.compressedSize, zlib.deflateRawSync(text, { level: 3 }).length);
    assert.notEqual(entry.compressedSize, zlib.deflateRawSync(text).length);
    assert.equal(entry.getLastModDate().toISOString(), PROVENANCE.runTime);
  });

  test('a buffer given to add() may be used again at once: its bytes were copied', async () => {
    const { dir, packager: p } = packager();
    const buffer = Buffer.from(user('1'));
    await p.add(buffer);
    buffer.fill(0x20);
    await p.add(user('2'));
    await p.finish();
    await p.commit();
    assert.deepEqual((await readZip(path.join(dir, 'users_x.zip')))[0]!.text, head(1) + user('1') + user('2') + USERS_CLOSE);
  });

  test('past maxFilesPerZip files, a new zip (_02, _03), the file numbers going on', async () => {
    const { dir, packager: p } = packager({ chunkSize: 1, maxFilesPerZip: 2 });
    await addAll(p, ['1', '2', '3', '4', '5'].map((id) => user(id)));
    const zips = await p.finish();
    assert.deepEqual(
      zips.map((z) => [path.basename(z.file), z.entries.map((e) => e.name)]),
      [
        ['users_x.zip', ['users_x_0001.xml', 'users_x_0002.xml']],
        ['users_x_02.zip', ['users_x_0003.xml', 'users_x_0004.xml']],
        ['users_x_03.zip', ['users_x_0005.xml']],
      ],
    );
    assert.deepEqual(readdirSync(dir).sort(), ['users_x.zip.partial', 'users_x_02.zip.partial', 'users_x_03.zip.partial']);
    assert.deepEqual((await p.commit()).map((f) => path.basename(f)), ['users_x.zip', 'users_x_02.zip', 'users_x_03.zip']);
    assert.deepEqual((await readZip(path.join(dir, 'users_x_02.zip'))).map((e) => e.text), [head(3) + user('3') + USERS_CLOSE, head(4) + user('4') + USERS_CLOSE]);
  });

  test('maxZipBytes: 99% of it less 64 KiB of XML a zip, counted before compression; a new file, then a new zip, before a user would pass it', async () => {
    // 100,000 bytes: 99,000 - 65,536 = 33,464 bytes of XML a zip.
    const { dir, packager: p } = packager({ maxZipBytes: 100_000 });
    const h = Buffer.byteLength(head(1));
    const close = USERS_CLOSE.length;
    // Users that fill a zip to the byte: the header, two users, the close.
    const size = Math.floor((33_464 - h - close) / 2);
    const exact = user('1', size - user('1').length);
    const fill = 33_464 - h - close - 2 * size;
    const users = [exact, user('2', size - user('2').length + fill), user('3', 100), user('4', 100)];
    assert.equal(h + Buffer.byteLength(users[0]!) + Buffer.byteLength(users[1]!) + close, 33_464);
    await addAll(p, users);
    const zips = await p.finish();
    assert.deepEqual(
      zips.map((z) => [path.basename(z.file), z.entries.map((e) => [e.name, e.users, e.bytes])]),
      [
        ['users_x.zip', [['users_x_0001.xml', 2, 33_464]]],
        ['users_x_02.zip', [['users_x_0002.xml', 2, Buffer.byteLength(head(2)) + Buffer.byteLength(users[2]!) + Buffer.byteLength(users[3]!) + close]]],
      ],
    );
    await p.commit();
    assert.deepEqual(readdirSync(dir).sort(), ['users_x.zip', 'users_x_02.zip']);
  });

  test('maxZipBytes: one byte over and the user goes to a new file; a new zip only when the file would not leave 1 KiB', async () => {
    const { packager: p } = packager({ maxZipBytes: 100_000 });
    const h = Buffer.byteLength(head(1));
    const close = USERS_CLOSE.length;
    const first = user('1', 20_000);
    // One byte more than what is left beside the first user and the close.
    const room = 33_464 - h - Buffer.byteLength(first) - close;
    const second = user('2', room + 1 - user('2').length);
    await addAll(p, [first, second]);
    const zips = await p.finish();
    // The second user's file: the first file's bytes, the new file's header and the user exceed the
    // zip's limit, so a second zip.
    assert.deepEqual(zips.map((z) => z.entries.map((e) => e.users)), [[1], [1]]);
    // Counted in bytes, not characters: é is two.
    const base = user('2');
    const e = room + 1 - base.length;
    const accented = base.replace('</user>', 'é'.repeat(Math.floor(e / 2)) + 'x'.repeat(e % 2) + '</user>');
    assert.equal(Buffer.byteLength(accented), room + 1);
    for (const given of [accented, Buffer.from(accented)]) {
      const { packager: a } = packager({ maxZipBytes: 100_000 });
      await addAll(a, [first, given]);
      assert.deepEqual((await a.finish()).map((z) => z.entries.map((e) => e.users)), [[1], [1]]);
    }
    // A new file (chunkSize 1) stays in the zip while the zip's bytes, the user and 1 KiB fit.
    const fits = 33_464 - 1024 - (h + Buffer.byteLength(first) + close);
    const { packager: q } = packager({ maxZipBytes: 100_000, chunkSize: 1 });
    await addAll(q, [first, user('2', fits - user('2').length), user('3', fits - user('3').length)]);
    assert.deepEqual((await q.finish()).map((z) => z.entries.map((e) => e.users)), [[1, 1], [1]]);
    const { packager: r } = packager({ maxZipBytes: 100_000, chunkSize: 1 });
    await addAll(r, [first, user('2', fits + 1 - user('2').length)]);
    assert.deepEqual((await r.finish()).map((z) => z.entries.map((e) => e.users)), [[1], [1]]);
  });

  test('nothing added: no zip', async () => {
    const { dir, packager: p } = packager();
    assert.deepEqual(await p.finish(), []);
    assert.deepEqual(await p.commit(), []);
    assert.deepEqual(readdirSync(dir), []);
  });

  test('abort removes every zip of the run, open or finished, under any name', async () => {
    const open = packager({ chunkSize: 1, maxFilesPerZip: 1 });
    await addAll(open.packager, [user('1'), user('2'), user('3', 400 * 1024)]);
    assert.deepEqual(readdirSync(open.dir).sort(), ['users_x.zip.partial', 'users_x_02.zip.partial', 'users_x_03.zip.partial']);
    await open.packager.abort();
    assert.deepEqual(readdirSync(open.dir), []);
    const finished = packager();
    await addAll(finished.packager, [user('1')]);
    await finished.packager.finish();
    await finished.packager.abort();
    assert.deepEqual(readdirSync(finished.dir), []);
    // Twice (a stop during a stop): nothing left to remove is no error.
    await finished.packager.abort();
    assert.deepEqual(readdirSync(finished.dir), []);
  });

  test('a disk that fills up while the zip is written: output_failed naming it, and abort leaves nothing', async (t) => {
    await onSmallDisk(t, 64, async (dir) => {
      const p = new Packager({ outDir: dir, stem: 'users_x', chunkSize: 1000, provenance: PROVENANCE });
      // Random text does not compress: 40 users of 8 KiB are 320 KiB of zip on a 64 KiB disk.
      const users = Array.from({ length: 40 }, (_, i) => user(String(i)).replace('</primary_id>', `</primary_id><job_description>${randomBytes(4096).toString('hex')}</job_description>`));
      const temp = `${dir}/users_x.zip.partial`;
      await assert.rejects(
        (async () => {
          await addAll(p, users);
          await p.finish();
        })(),
        (error: RunError) => {
          assert.deepEqual([error.code, error.message, error.context], ['output_failed', `cannot write ${temp}: ENOSPC`, { file: temp }]);
          return true;
        },
      );
      await p.abort();
      assert.deepEqual(readdirSync(dir), []);
    });
  });

  test('an output folder that cannot be written: output_failed, naming the zip', async () => {
    const dir = path.join(makeTempDir('sis2alma-output-stages-'), 'gone');
    const p = new Packager({ outDir: dir, stem: 'users_x', chunkSize: 10, provenance: PROVENANCE });
    await assert.rejects(Promise.resolve(p.add(user('1'))), (error: RunError) => {
      assert.deepEqual([error.code, error.message, error.context], ['output_failed', `cannot write ${dir}/users_x.zip.partial: ENOENT`, { file: `${dir}/users_x.zip.partial` }]);
      return true;
    });
  });
});

const warning = (kind: string, message: string): RowWarning => ({ kind, message }) as RowWarning;
const problem = (code: string, message: string): RowProblem => ({ code, message }) as RowProblem;

describe('RunLog', () => {
  const files = () => {
    const dir = makeTempDir('sis2alma-output-stages-');
    return { dir, details: path.join(dir, '.details.tmp'), rejects: path.join(dir, 'rejects.partial'), report: path.join(dir, 'report.json'), rejectsFile: path.join(dir, 'x.rejects.csv') };
  };

  test('counts, warnings, rejections and skips with at most five examples each; merges with twenty', () => {
    const f = files();
    const log = new RunLog(f.details, f.rejects);
    assert.equal(statSync(f.details).mode & 0o777, 0o600);
    assert.equal(readFileSync(f.details, 'utf8'), '');
    const source = { file: 'in.csv', row: 1, header: ['id'], values: ['1'] };
    for (let i = 1; i <= 7; i++) {
      log.row();
      log.written(i, `Row ${i}`, i <= 6 ? [warning('trimmed', 'trimmed'), warning('trimmed', 'again')] : []);
    }
    for (let i = 8; i <= 14; i++) log.rejected(i, `Row ${i}`, [problem('bad_email', 'bad email'), ...(i === 8 ? [problem('too_long', 'too long')] : [])], [warning('phone', 'p')], source);
    for (let i = 15; i <= 21; i++) log.skipped(i, `Row ${i}`, i === 21 ? 'alumni' : 'staff', []);
    log.merged(22, 'Row 22', '1', 'u1', [warning('phone', 'p')]);
    for (let i = 0; i < 22; i++) log.mergeDecision(`u${i}`, ['1', '22'], i ? undefined : 'STAFF', 'same id');
    assert.deepEqual(log.counts, { rows: 7, users: 7, merged: 1, rejected: 7, skipped: 7, warnings: 20 });
    assert.deepEqual(Object.fromEntries(log.warnings), {
      trimmed: { count: 12, examples: ['Row 1', 'Row 2', 'Row 3', 'Row 4', 'Row 5'] },
      phone: { count: 8, examples: ['Row 8', 'Row 9', 'Row 10', 'Row 11', 'Row 12'] },
    });
    assert.deepEqual(Object.fromEntries(log.rejections), {
      bad_email: { count: 7, examples: ['Row 8', 'Row 9', 'Row 10', 'Row 11', 'Row 12'] },
      too_long: { count: 1, examples: ['Row 8'] },
    });
    assert.deepEqual(Object.fromEntries(log.skips), { staff: { count: 6, examples: ['Row 15', 'Row 16', 'Row 17', 'Row 18', 'Row 19'] }, alumni: { count: 1, examples: ['Row 21'] } });
    assert.equal(log.merges.count, 22);
    assert.equal(log.merges.examples.length, 20);
    assert.deepEqual(log.merges.examples[0], { primary_id: 'u0', rows: ['1', '22'], user_group: 'STAFF', reason: 'same id' });
    assert.deepEqual(log.merges.examples[19], { primary_id: 'u19', rows: ['1', '22'], user_group: undefined, reason: 'same id' });
  });

  test('report.json: the report, then every row in row order, whatever order the rows came in; the temporary files gone', async () => {
    const f = files();
    const log = new RunLog(f.details, f.rejects);
    const source = { file: 'in.csv', row: 2, header: ['id'], values: ['2'] };
    log.written(3, 'Row 3', [warning('trimmed', 'name trimmed'), warning('phone', 'phone dropped')]);
    log.rejected(2, 'Row 2', [problem('bad_email', 'bad email'), problem('too_long', 'too long')], [], source);
    log.merged(4, 'Row 4', '3', 'u3', []);
    log.skipped(1, 'Row 1 "x"', 'staff', []);
    log.written(5, 'Row 5', [], true);
    log.written(6, 'Row 6', [warning('trimmed', 'trimmed')], true);
    log.rejected(7, 'Row 7', [problem('ragged', 'ragged')], [], { file: 'in.csv', row: 7, header: ['id'], values: ['7', 'x', 'y'] });
    for (let i = 0; i < 7; i++) log.row();
    assert.equal(await log.close(f.rejectsFile), f.rejectsFile);
    const report = { success: true, summary: 's', counts: log.counts, files: ['a.zip'] };
    assert.deepEqual(await log.writeReport(f.report, report), report);
    assert.equal(
      readFileSync(f.report, 'utf8'),
      JSON.stringify(report, null, 2).slice(0, -2) +
        ',\n  "details": {\n' +
        '    "Row 1 \\"x\\"":"Skipped: staff",\n' +
        '    "Row 2":"Rejected: bad email; too long",\n' +
        '    "Row 3":"User written (name trimmed; phone dropped)",\n' +
        '    "Row 4":"Merged into row 3 (u3)",\n' +
        '    "Row 5":"User unchanged since the last delivery, not sent (delta)",\n' +
        '    "Row 6":"User unchanged since the last delivery, not sent (delta) (trimmed)",\n' +
        '    "Row 7":"Rejected: ragged"\n' +
        '  }\n}\n',
    );
    assert.equal(statSync(f.report).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(f.dir).sort(), ['report.json', 'x.rejects.csv']);
    // No rejects columns set: where the row came from and why, only (and the fields past the header's).
    assert.equal(readFileSync(f.rejectsFile, 'utf8'), '\uFEFFsource_file,row,reason\r\nin.csv,2,bad email; too long\r\nin.csv,7,ragged,x,y\r\n');
  });

  test('rows given last to first are written first to last', async () => {
    const f = files();
    const log = new RunLog(f.details, f.rejects);
    for (let i = 5; i >= 1; i--) {
      log.row();
      log.written(i, `Row ${i}`, []);
    }
    await log.close(f.rejectsFile);
    await log.writeReport(f.report, { success: true, summary: 's', counts: log.counts, files: [] });
    assert.deepEqual(Object.keys((JSON.parse(readFileSync(f.report, 'utf8')) as { details: object }).details), ['Row 1', 'Row 2', 'Row 3', 'Row 4', 'Row 5']);
  });

  test('a run of no rows: the report alone, no details, no rejects file', async () => {
    const f = files();
    const log = new RunLog(f.details, f.rejects);
    assert.equal(await log.close(f.rejectsFile), undefined);
    const report = { success: true, summary: 's', counts: log.counts, files: [] };
    await log.writeReport(f.report, report);
    assert.equal(readFileSync(f.report, 'utf8'), JSON.stringify(report, null, 2) + '\n');
    assert.deepEqual(readdirSync(f.dir), ['report.json']);
  });

  test('details past a megabyte go to runs on disk, each sorted, merged back in row order', async () => {
    const f = files();
    const log = new RunLog(f.details, f.rejects);
    const n = 3000;
    const pad = 'p'.repeat(900);
    // Out of order within runs and across them: each even row after the odd one after it.
    const order: number[] = [];
    for (let i = 1; i <= n; i += 2) order.push(i + 1, i);
    order.push(...[n + 2, n + 1]);
    for (const i of order) {
      log.row();
      log.written(i, `Row ${i}`, [warning('w', pad)]);
    }
    const spilled = readdirSync(f.dir).sort();
    assert.deepEqual(spilled, ['.details.2.tmp', '.details.tmp']);
    assert.ok(statSync(f.details).size > 1 << 20);
    await log.close(f.rejectsFile);
    await log.writeReport(f.report, { success: true, summary: 's', counts: log.counts, files: [] });
    const details = Object.keys((JSON.parse(readFileSync(f.report, 'utf8')) as { details: Record<string, string> }).details);
    assert.deepEqual(details, Array.from({ length: n + 2 }, (_, i) => `Row ${i + 1}`));
    assert.deepEqual(readdirSync(f.dir), ['report.json']);
  });

  test('runs whose rows interleave (the even rows in the first, the odd in the next) are merged row by row', async () => {
    const f = files();
    const log = new RunLog(f.details, f.rejects);
    const n = 2400;
    for (let i = 2; i <= n; i += 2) log.written(i, `Row ${i}`, [warning('w', 'w'.repeat(900))]);
    for (let i = 1; i <= n; i += 2) log.written(i, `Row ${i}`, [warning('w', 'w'.repeat(900))]);
    for (let i = 0; i < n; i++) log.row();
    assert.ok(readdirSync(f.dir).includes('.details.2.tmp'));
    await log.close(f.rejectsFile);
    await log.writeReport(f.report, { success: true, summary: 's', counts: log.counts, files: [] });
    const details = Object.keys((JSON.parse(readFileSync(f.report, 'utf8')) as { details: Record<string, string> }).details);
    assert.deepEqual(details, Array.from({ length: n }, (_, i) => `Row ${i + 1}`));
  });

  test('the rejects file: spreadsheet-safe, quoted where needed, sensitive columns blank, extra fields kept', async () => {
    const f = files();
    const log = new RunLog(f.details, f.rejects, ['Birth_Date', 'PIN']);
    log.setRejectsColumns(['id', 'name', 'birth_date', 'pin', 'note', 'other']);
    const header = ['id', 'name', 'birth_date', 'pin', 'note'];
    log.rejected(1, 'Row 1', [problem('bad', 'bad, "very"')], [], { file: 'in.csv', row: 1, header, values: ['=1+1', 'Smith, J', '2001-01-01', '1234', 'line\nbreak'] });
    // A cell holding only a quote, or only a CR, is quoted too.
    log.rejected(4, 'Row 4', [problem('bad', 'say "hi"')], [], { file: 'in.csv', row: 4, header, values: ['a\rb', 'x', '', '', ''] });
    // A ragged row: two fields too many, so the sensitive values may sit up to two further on.
    log.rejected(2, 'Row 2', [problem('ragged', 'too many fields')], [], { file: 'in.csv', row: 2, header, values: ['2', 'Doe', 'x', '1999', '4321', 'note', 'extra'] });
    // One field too few: the sensitive values may sit one before, and missing ones are blank.
    log.rejected(3, 'Row 3', [problem('ragged', 'too few fields')], [], { file: 'in.csv', row: 3, header, values: ['-3', 'Roe', 'y', 'z'] });
    await log.close(f.rejectsFile);
    assert.equal(
      readFileSync(f.rejectsFile, 'utf8'),
      '\uFEFFsource_file,row,reason,id,name,note,other\r\n' +
        'in.csv,1,"bad, ""very""",\'=1+1,"Smith, J","line\nbreak",\r\n' +
        'in.csv,4,"say ""hi""","a\rb",x,,\r\n' +
        'in.csv,2,too many fields,2,Doe,,,,extra\r\n' +
        "in.csv,3,too few fields,'-3,,,\r\n",
    );
    assert.equal(statSync(f.rejectsFile).mode & 0o777, 0o600);
    assert.ok(!existsSync(f.rejects));
  });

  test("a details file not named .tmp: the later runs' names end in .tmp after it", async () => {
    const dir = makeTempDir('sis2alma-output-stages-');
    const log = new RunLog(path.join(dir, 'details'), path.join(dir, 'rejects.partial'));
    for (let i = 1; i <= 3000; i++) log.written(i, `Row ${i}`, [warning('w', 'w'.repeat(900))]);
    assert.deepEqual(readdirSync(dir).sort(), ['details', 'details.2.tmp']);
    await log.discard();
    assert.deepEqual(readdirSync(dir), []);
  });

  test('discard with no row rejected: nothing to close', async () => {
    const f = files();
    const log = new RunLog(f.details, f.rejects);
    log.written(1, 'Row 1', []);
    await log.discard();
    assert.deepEqual(readdirSync(f.dir), []);
  });

  test('discard removes every temporary file, the rejects too', async () => {
    const f = files();
    const log = new RunLog(f.details, f.rejects);
    log.rejected(1, 'Row 1', [problem('bad', 'bad')], [], { file: 'in.csv', row: 1, header: ['id'], values: ['1'] });
    for (let i = 0; i < 3000; i++) log.written(i + 2, `Row ${i + 2}`, [warning('w', 'w'.repeat(900))]);
    assert.deepEqual(readdirSync(f.dir).sort(), ['.details.2.tmp', '.details.tmp', 'rejects.partial']);
    await log.discard();
    assert.deepEqual(readdirSync(f.dir), []);
  });

  test('a disk that fills up when details spill to a run: output_failed naming it, and discard leaves nothing', async (t) => {
    await onSmallDisk(t, 64, async (dir) => {
      const details = path.join(dir, '.details.tmp');
      const log = new RunLog(details, path.join(dir, '.rejects.tmp'));
      const pad = 'p'.repeat(900);
      assert.throws(
        () => {
          for (let i = 1; i <= 3000; i++) {
            log.row();
            log.written(i, `Row ${i}`, [warning('w', pad)]);
          }
        },
        (error: RunError) => {
          assert.deepEqual([error.code, error.message, error.context], ['output_failed', `cannot write ${details}: ENOSPC`, { file: details }]);
          return true;
        },
      );
      await log.discard();
      assert.deepEqual(readdirSync(dir), []);
    });
  });

  test('a disk that fills up while report.json is written: output_failed naming it, the half-written report taken away', async (t) => {
    await onSmallDisk(t, 64, async (dir) => {
      // 800 KiB of details, held in memory (under the megabyte that spills): the report cannot take them.
      const log = await closedLog(dir, 900, 900);
      const partial = path.join(dir, 'report.json.partial');
      await assert.rejects(log.writeReport(path.join(dir, 'report.json'), { success: true, summary: 's', counts: log.counts, files: [] }), (error: RunError) => {
        assert.deepEqual([error.code, error.message, error.context], ['output_failed', `cannot write ${partial}: ENOSPC`, { file: partial }]);
        return true;
    });
    assert.deepEqual(readdirSync(dir), ['.details.tmp']);
    await log.discard();
    assert.deepEqual(readdirSync(dir), []);
    });
  });

  test('a details file that cannot be made: output_failed, naming it', () => {
    const missing = path.join(makeTempDir('sis2alma-output-stages-'), 'gone', '.details.tmp');
    assert.throws(
      () => new RunLog(missing, 'x'),
      (error: RunError) => error.code === 'output_failed' && error.message === `cannot write ${missing}: ENOENT` && error.context.file === missing,
    );
    // A file whose mode cannot be set (procfs refuses chmod, also to root): output_failed, and not written.
    assert.throws(
      () => new RunLog('/proc/self/comm', 'x'),
      (error: RunError) => error.code === 'output_failed' && error.message === 'cannot make /proc/self/comm private (mode 600): EPERM' && error.context.file === '/proc/self/comm',
    );
    // A file left by an earlier run with other permissions is made private too.
    const dir = makeTempDir('sis2alma-output-stages-');
    const left = path.join(dir, 'left.tmp');
    writeFileSync(left, 'old', { mode: 0o644 });
    ownerOnlyStream(left).end();
    assert.equal(statSync(left).mode & 0o777, 0o600);
  });
});

/** A RunLog in dir of `rows` rows, each written with a warning of `size` characters, closed (no rejects). */
async function closedLog(dir: string, rows: number, size: number): Promise<RunLog> {
  const log = new RunLog(path.join(dir, '.details.tmp'), path.join(dir, '.rejects.tmp'));
  for (let i = 1; i <= rows; i++) {
    log.row();
    log.written(i, `Row ${i}`, [warning('w', 'p'.repeat(size))]);
  }
  await log.close(path.join(dir, 'rejects.csv'));
  return log;
}

describe('addToReport', () => {
  async function report(details: boolean, extra: Record<string, unknown> = {}): Promise<string> {
    const dir = makeTempDir('sis2alma-output-stages-');
    const log = new RunLog(path.join(dir, '.d.tmp'), path.join(dir, 'r.partial'));
    if (details) {
      log.row();
      log.written(1, 'Row 1', []);
    }
    await log.close(path.join(dir, 'r.csv'));
    const file = path.join(dir, 'report.json');
    await log.writeReport(file, { success: true, summary: 's', counts: log.counts, files: ['a.zip'], ...extra });
    return file;
  }

  test('a disk too full for the new report: output_failed naming the temporary file, which is removed; the report stays as it was', async (t) => {
    await onSmallDisk(t, 64, async (dir) => {
      // 40 KiB of details: the report fits once on the 64 KiB disk, not twice.
      const log = await closedLog(dir, 40, 1000);
      const file = path.join(dir, 'report.json');
      await log.writeReport(file, { success: true, summary: 's', counts: log.counts, files: [] });
      const before = readFileSync(file, 'utf8');
      await assert.rejects(addToReport(file, { delivery: { ok: true } }), (error: RunError) => {
        assert.deepEqual([error.code, error.message, error.context], ['output_failed', `cannot write ${file}.tmp: ENOSPC`, { file: `${file}.tmp` }]);
        return true;
    });
    assert.deepEqual(readdirSync(dir), ['report.json']);
    assert.equal(readFileSync(file, 'utf8'), before);
    });
  });

  test('the fields go after files, before the details; a field already there is replaced in its new place', async () => {
    const file = await report(true, { delivery: 'old', after: 1 });
    await addToReport(file, { delivery: { to: 'sftp' }, state: 2 });
    const text = readFileSync(file, 'utf8');
    const parsed = JSON.parse(text) as Record<string, unknown>;
    assert.deepEqual(Object.keys(parsed), ['success', 'summary', 'counts', 'files', 'delivery', 'state', 'after', 'details']);
    assert.deepEqual(parsed.delivery, { to: 'sftp' });
    assert.deepEqual(parsed.details, { 'Row 1': 'User written' });
    assert.ok(text.endsWith(',\n  "details": {\n    "Row 1":"User written"\n  }\n}\n'), text);
    assert.ok(text.startsWith('{\n  "success": true,\n'));
    assert.ok(!existsSync(`${file}.tmp`));
  });

  test('a report without details; without files (after counts); without either (first)', async () => {
    const plain = await report(false);
    await addToReport(plain, { state: 1 });
    assert.equal(readFileSync(plain, 'utf8'), JSON.stringify({ success: true, summary: 's', counts: { rows: 0, users: 0, merged: 0, rejected: 0, skipped: 0, warnings: 0 }, files: ['a.zip'], state: 1 }, null, 2) + '\n');
    const dir = makeTempDir('sis2alma-output-stages-');
    const noFiles = path.join(dir, 'a.json');
    writeFileSync(noFiles, JSON.stringify({ success: false, counts: {}, more: 1 }, null, 2) + '\n');
    await addToReport(noFiles, { state: 1 });
    assert.deepEqual(Object.keys(JSON.parse(readFileSync(noFiles, 'utf8'))), ['success', 'counts', 'state', 'more']);
    const neither = path.join(dir, 'b.json');
    writeFileSync(neither, JSON.stringify({ success: false, more: 1 }, null, 2) + '\n');
    await addToReport(neither, { state: 1 });
    assert.deepEqual(Object.keys(JSON.parse(readFileSync(neither, 'utf8'))), ['state', 'success', 'more']);
  });

  test('details longer than a read are copied as they are', async () => {
    const dir = makeTempDir('sis2alma-output-stages-');
    const log = new RunLog(path.join(dir, '.d.tmp'), path.join(dir, 'r.partial'));
    for (let i = 1; i <= 2000; i++) {
      log.row();
      log.written(i, `Row ${i}`, [warning('w', 'w'.repeat(100))]);
    }
    await log.close(path.join(dir, 'r.csv'));
    const file = path.join(dir, 'report.json');
    await log.writeReport(file, { success: true, summary: 's', counts: log.counts, files: [] });
    const before = readFileSync(file, 'utf8');
    await addToReport(file, { state: 1 });
    const after = readFileSync(file, 'utf8');
    const at = before.indexOf(',\n  "details": {');
    assert.equal(after, before.slice(0, at) + ',\n  "state": 1' + before.slice(at));
  });

  test('a file that is not a report: refused, left as it was, no temporary file left', async () => {
    const dir = makeTempDir('sis2alma-output-stages-');
    for (const [name, text] of [['array.json', '[\n1]'], ['compact.json', '{"a":1}'], ['broken.json', '{\n  "a": '], ['list.json', '{\n'.slice(0, 2) + ']'], ['one.json', '{']]) {
      const file = path.join(dir, name);
      writeFileSync(file, text);
      await assert.rejects(addToReport(file, { state: 1 }), { message: `${file} does not start as sis2alma writes a report` }, name);
      assert.equal(readFileSync(file, 'utf8'), text);
      assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
    }
  });
});

describe('the summary, guards and the cells of the rejects file', () => {
  const counts = (c: Partial<Counts>): Counts => ({ rows: 0, users: 0, merged: 0, rejected: 0, skipped: 0, warnings: 0, ...c });

  test('summarise: each count, singular or plural; skips and warnings only when there are some; a trip', () => {
    assert.equal(summarise(counts({ rows: 1, users: 1 })), '1 row processed. 1 user written. 0 rows merged. 0 rows failed.');
    assert.equal(summarise(counts({ rows: 5, users: 2, merged: 1, rejected: 1, skipped: 1, warnings: 1 })), '5 rows processed. 2 users written. 1 row merged. 1 row failed. 1 row skipped. 1 warning.');
    assert.equal(
      summarise(counts({ rows: 9, users: 3, merged: 2, rejected: 2, skipped: 2, warnings: 4 }), { guard: 'min_users', limit: '5', actual: 3, message: 'too few' }),
      '9 rows processed. 3 users written. 2 rows merged. 2 rows failed. 2 rows skipped. 4 warnings. Not delivered: too few.',
    );
  });

  test('spreadsheetSafe: a cell starting =, +, -, @, tab or CR gets a quote before it', () => {
    for (const v of ['=SUM(A1)', '+1', '-1', '@x', '\tx', '\rx']) assert.equal(spreadsheetSafe(v), `'${v}`);
    for (const v of ['', 'a=1', ' =1', '1-', '\nx', 'x@y']) assert.equal(spreadsheetSafe(v), v);
  });

  test('parseMaxRejected: whole rows or a percentage, spaces around', () => {
    assert.deepEqual(parseMaxRejected('25'), { count: 25 });
    assert.deepEqual(parseMaxRejected(' 0 '), { count: 0 });
    assert.deepEqual(parseMaxRejected('5%'), { percent: 5 });
    assert.deepEqual(parseMaxRejected(' 2.5 % '), { percent: 2.5 });
    assert.deepEqual(parseMaxRejected('12.25%'), { percent: 12.25 });
    assert.deepEqual(parseMaxRejected('\t7\t'), { count: 7 });
    for (const no of ['2.5', '', '%', 'x5', '5x', '-1', '5%%', '1.', '.5']) assert.equal(parseMaxRejected(no), undefined, no);
  });

  test('checkGuards: max_rejected (5% unless set, of the rows not skipped) and min_users', () => {
    assert.equal(checkGuards(counts({ rows: 100, users: 95, rejected: 5 }), {}), undefined);
    assert.deepEqual(checkGuards(counts({ rows: 100, users: 94, rejected: 6 }), {}), {
      guard: 'max_rejected',
      limit: '5%',
      actual: 6,
      message: '6 of 100 rows were rejected (6.0%), over the limit of 5% (max_rejected)',
    });
    // 5% of 79 rows not skipped is 3 (rounded down).
    assert.deepEqual(checkGuards(counts({ rows: 100, users: 75, rejected: 4, skipped: 21 }), {}), {
      guard: 'max_rejected',
      limit: '5%',
      actual: 4,
      message: '4 of 79 rows were rejected (5.1%, not counting 21 skipped), over the limit of 5% (max_rejected)',
    });
    assert.equal(checkGuards(counts({ rows: 100, users: 75, rejected: 3, skipped: 22 }), {}), undefined);
    assert.equal(checkGuards(counts({ rows: 10, users: 8, rejected: 2 }), { maxRejected: '2' }), undefined);
    assert.deepEqual(checkGuards(counts({ rows: 10, users: 7, rejected: 3 }), { maxRejected: '2' }), {
      guard: 'max_rejected',
      limit: '2',
      actual: 3,
      message: '3 of 10 rows were rejected (30.0%), over the limit of 2 (max_rejected)',
    });
    // Every row skipped: the share is 0 (no division by zero).
    assert.equal(checkGuards(counts({ rows: 3, rejected: 1, skipped: 3 }), { maxRejected: '0' })!.message, '1 of 0 rows were rejected (0%, not counting 3 skipped), over the limit of 0 (max_rejected)');
    // A limit that cannot be read guards nothing (the config's check refuses it before a run).
    assert.equal(checkGuards(counts({ rows: 10, rejected: 10 }), { maxRejected: 'lots' }), undefined);
    assert.deepEqual(checkGuards(counts({ rows: 10, users: 4 }), { minUsers: 5 }), {
      guard: 'min_users',
      limit: '5',
      actual: 4,
      message: 'only 4 users would be written, fewer than the minimum of 5 (min_users)',
    });
    assert.equal(checkGuards(counts({ rows: 10, users: 5 }), { minUsers: 5 }), undefined);
    // max_rejected is told first.
    assert.equal(checkGuards(counts({ rows: 10, users: 0, rejected: 10 }), { minUsers: 5 })!.guard, 'max_rejected');
  });

  test('secretPositions: a sensitive column, and as far as a ragged row shifts it', () => {
    const header = ['id', 'pin', 'name'];
    const pin = new Set(['pin']);
    assert.deepEqual([...secretPositions(header, 3, pin)], [1]);
    assert.deepEqual([...secretPositions(header, 5, pin)].sort(), [1, 2, 3]);
    assert.deepEqual([...secretPositions(header, 2, pin)].sort(), [0, 1]);
    assert.deepEqual([...secretPositions(['ID', 'PIN'], 2, pin)], [1]);
    assert.deepEqual([...secretPositions(header, 3, new Set())], []);
  });
});
