// src/pipeline/read.ts, each of its decisions called in this process (issue 17): Stryker counts a
// mutant as tested only by a test file whose own process reaches it, and the file's paths are
// otherwise reached mostly through the CLI's child processes and the mapping threads. Real files
// in a temporary folder; every outcome exact (records, pieces and their lines, the error's code,
// message and context).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { CsvError } from 'csv-parse';
import {
  MAX_RECORD_BYTES,
  PIECE_BYTES,
  RECORD_DELIMITERS,
  checkEncoding,
  checkHeader,
  checkReadable,
  countLineEnds,
  csvFailure,
  csvParseOptions,
  csvProblem,
  firstRecordEnd,
  isUtf8,
  lastByteOf,
  lastRecordEnd,
  openPieces,
  parsePiece,
  pieces,
  type Piece,
} from '../src/pipeline/read.js';
import { RunError, type ErrorContext, type RunErrorCode } from '../src/shared/errors.js';
import { makeTempDir } from './helpers/tmp.js';

const dir = makeTempDir('sis2alma-read-stages-');
let files = 0;
/** A new file in the test folder holding `content` (text as UTF-8, or bytes). */
function file(content: string | Buffer | number[], name = `f${++files}.csv`): string {
  const at = path.join(dir, name);
  writeFileSync(at, typeof content === 'string' || Buffer.isBuffer(content) ? content : Buffer.from(content));
  return at;
}
const bytes = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

/** The error `run` throws, as [class name, code, message, context]. */
async function failure(run: () => unknown): Promise<[string, RunErrorCode | undefined, string, ErrorContext | undefined]> {
  try {
    await run();
  } catch (error) {
    const e = error as RunError;
    return [e.constructor.name, e.code, e.message, e.context];
  }
  assert.fail('no error');
}

async function allPieces(p: AsyncIterable<Piece>): Promise<[string, number][]> {
  const out: [string, number][] = [];
  for await (const piece of p) out.push([piece.bytes.toString('utf8'), piece.line]);
  return out;
}

describe('the constants and csv-parse options', () => {
  test('limits, the line breaks, and the options every reader parses with', () => {
    assert.equal(MAX_RECORD_BYTES, 33_554_432);
    assert.equal(PIECE_BYTES, 131_072);
    assert.deepEqual(RECORD_DELIMITERS, ['\r\n', '\n', '\r']);
    assert.deepEqual(csvParseOptions(), {
      delimiter: ',',
      record_delimiter: ['\r\n', '\n', '\r'],
      relax_column_count: true,
      relax_quotes: true,
      skip_empty_lines: true,
      max_record_size: 33_554_432,
    });
    const options = csvParseOptions(';', ['\n']);
    assert.equal(options.delimiter, ';');
    assert.deepEqual(options.record_delimiter, ['\n']);
    // A copy: csv-parse may not change the module's own list.
    assert.notEqual(csvParseOptions().record_delimiter, RECORD_DELIMITERS);
  });
});

describe('encodings', () => {
  test('isUtf8: none given, utf8, utf-8 in any case; nothing else', () => {
    for (const yes of [undefined, '', 'utf8', 'UTF-8', 'utf-8', 'Utf8']) assert.equal(isUtf8(yes), true, String(yes));
    for (const no of ['utf-16le', 'latin1', 'xutf-8', 'utf-88', 'utf--8', 'utf 8', 'windows-1252']) assert.equal(isUtf8(no), false, no);
  });

  test('checkEncoding: UTF-8 and what iconv-lite knows pass; another name stops the run (usage)', async () => {
    for (const known of [undefined, '', 'utf-8', 'UTF8', 'windows-1252', 'latin1', 'utf-16le']) assert.equal(checkEncoding(known), undefined);
    assert.deepEqual(await failure(() => checkEncoding('klingon')), [
      'RunError',
      'usage',
      "unknown encoding 'klingon' (try utf-8, windows-1252, latin1 or utf-16le)",
      {},
    ]);
  });
});

describe('checkHeader', () => {
  const f = 'in.csv';
  test('a header with every required column (in any case), tabs, no names or one name: nothing to say', () => {
    assert.equal(checkHeader(f, ['ID', 'Name\there', '', ''], ['id', 'name\tHERE'], false), undefined);
    assert.equal(checkHeader(f, ['a\rb', 'c\nd', ' e '], [], false), undefined);
    // U+FFFD in a file that is UTF-8 is a character like any other; in one that is not, only U+FFFD tells bytes that are not text.
    assert.equal(checkHeader(f, ['id', 'na\uFFFDme'], ['id'], false), undefined);
    assert.equal(checkHeader(f, ['id', 'name'], ['id'], true), undefined);
  });

  test('bytes that are not text: not a CSV header (naming UTF-8 when the file is not)', async () => {
    assert.deepEqual(await failure(() => checkHeader(f, ['id', 'PK\uFFFD'], ['id'], true)), [
      'RunError',
      'input_invalid',
      'in.csv: the first line is not a CSV header (it holds bytes that are not text in UTF-8); is this the SIS export, saved as CSV?',
      { file: f },
    ]);
    // Each C0 control but tab, LF and CR, at both ends of its ranges.
    for (const c of ['\u0000', '\u0001', '\u0008', '\u000B', '\u000C', '\u000E', '\u0015', '\u001F']) {
      assert.deepEqual(await failure(() => checkHeader(f, ['id', `x${c}y`], ['id'], false)), [
        'RunError',
        'input_invalid',
        'in.csv: the first line is not a CSV header (it holds bytes that are not text); is this the SIS export, saved as CSV?',
        { file: f },
      ], JSON.stringify(c));
    }
    // A control in the first column only, before a missing column is looked for.
    assert.equal((await failure(() => checkHeader(f, ['\u0003', 'id'], ['other'], false)))[2], 'in.csv: the first line is not a CSV header (it holds bytes that are not text); is this the SIS export, saved as CSV?');
    assert.equal((await failure(() => checkHeader(f, ['\uFFFD', 'id'], ['other'], true)))[2], 'in.csv: the first line is not a CSV header (it holds bytes that are not text in UTF-8); is this the SIS export, saved as CSV?');
    for (const ok of ['\u0009', '\u0020', '\u007F', '\u0080']) assert.equal(checkHeader(f, ['id', `x${ok}`], ['id'], false), undefined, JSON.stringify(ok));
  });

  test('missing columns: named, with the header as it is (its first 30 names)', async () => {
    assert.deepEqual(await failure(() => checkHeader(f, ['id', 'name'], ['id', 'email'], false)), [
      'RunError',
      'input_invalid',
      'in.csv: the header lacks the required column email (the header has: id, name)',
      { file: f },
    ]);
    const many = Array.from({ length: 32 }, (_, i) => `c${i + 1}`);
    assert.equal(
      (await failure(() => checkHeader(f, many, ['c1', 'x', 'y'], false)))[2],
      `in.csv: the header lacks the required columns x, y (the header has: ${many.slice(0, 30).join(', ')})`,
    );
  });

  test('no required column at all: the header is taken for a row, or for another delimiter', async () => {
    assert.deepEqual(await failure(() => checkHeader(f, ['1234', 'Smith'], ['id', 'name'], false)), [
      'RunError',
      'input_invalid',
      'in.csv: the header lacks the required columns id, name (the first line has 2 fields and none of them is a required column: is the header missing, or is this another export?)',
      { file: f },
    ]);
    assert.equal(
      (await failure(() => checkHeader(f, ['1234'], ['id'], false)))[2],
      'in.csv: the header lacks the required column id (the first line has 1 field and none of them is a required column: is the header missing, or is this another export?)',
    );
    for (const [line, shown] of [['id;name', '";"'], ['id\tname', '"\\t"'], ['id|name', '"|"'], ['a,b|c;d', '"|"']] as const) {
      assert.equal(
        (await failure(() => checkHeader(f, [line], ['id', 'name'], false)))[2],
        `in.csv: the header lacks the required columns id, name (the whole first line is one field: the file seems to be delimited by ${shown}; say so in the mapping with input: { delimiter: ${shown} })`,
        line,
      );
    }
    // One field with a ; but a required column found: the header is shown.
    assert.equal(
      (await failure(() => checkHeader(f, ['id;name'], ['id;name', 'email'], false)))[2],
      'in.csv: the header lacks the required column email (the header has: id;name)',
    );
    // Two fields, one holding a ;: no delimiter is guessed.
    assert.equal(
      (await failure(() => checkHeader(f, ['a;b', 'c'], ['id'], false)))[2],
      'in.csv: the header lacks the required column id (the first line has 2 fields and none of them is a required column: is the header missing, or is this another export?)',
    );
  });

  test('one name twice, in any case: both columns named; names left empty are not compared', async () => {
    assert.deepEqual(await failure(() => checkHeader(f, ['id', 'Name', 'x', 'NAME'], ['id'], false)), [
      'RunError',
      'input_invalid',
      'in.csv: the header has the column Name twice: column 2 (Name) and column 4 (NAME); rename or remove one',
      { file: f },
    ]);
    assert.equal((await failure(() => checkHeader(f, ['a', 'a'], [], false)))[2], 'in.csv: the header has the column a twice: column 1 (a) and column 2 (a); rename or remove one');
    assert.equal(checkHeader(f, ['', 'id', ''], [], false), undefined);
  });
});

describe('checkReadable', () => {
  test('a plain file, UTF-8 or in the encoding given, is readable', async () => {
    assert.equal(await checkReadable(file('id\n1\n'), undefined), undefined);
    assert.equal(await checkReadable(file(''), undefined), undefined);
    // Three bytes: too short to tell UTF-16 without a byte order mark.
    assert.equal(await checkReadable(file([0x61, 0, 0x62]), 'utf-8'), undefined);
    // UTF-16 given as the encoding: not refused.
    assert.equal(await checkReadable(file([0xff, 0xfe, 0x61, 0]), 'utf-16le'), undefined);
    assert.equal(await checkReadable(file([0x61, 0, 0x62, 0]), 'latin1'), undefined);
  });

  test('missing, a folder, a FIFO, a device, a socket: input_unreadable, naming the file and why', async () => {
    const missing = path.join(dir, 'missing.csv');
    assert.deepEqual(await failure(() => checkReadable(missing, undefined)), ['RunError', 'input_unreadable', `cannot read input ${missing}: no such file`, { file: missing }]);
    assert.deepEqual(await failure(() => checkReadable(dir, undefined)), ['RunError', 'input_unreadable', `cannot read input ${dir}: it is a folder`, { file: dir }]);
    const fifo = path.join(dir, 'fifo.csv');
    execFileSync('mkfifo', [fifo]);
    assert.deepEqual(await failure(() => checkReadable(fifo, undefined)), [
      'RunError',
      'input_unreadable',
      `cannot read input ${fifo}: it is a named pipe (FIFO), not a file; sis2alma reads each input twice: save the export to a file and give that`,
      { file: fifo },
    ]);
    assert.deepEqual(await failure(() => checkReadable('/dev/null', undefined)), [
      'RunError',
      'input_unreadable',
      'cannot read input /dev/null: it is a device, not a file; sis2alma reads each input twice: save the export to a file and give that',
      { file: '/dev/null' },
    ]);
    // A Unix socket: open() refuses it (ENXIO) before stat() could.
    const socketPath = path.join(dir, 'socket.csv');
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    try {
      assert.deepEqual(await failure(() => checkReadable(socketPath, undefined)), ['RunError', 'input_unreadable', `cannot read input ${socketPath}: ENXIO`, { file: socketPath }]);
    } finally {
      server.close();
    }
    // A path under a file: the errno's code is the reason.
    const under = path.join(file('x'), 'y.csv');
    assert.deepEqual(await failure(() => checkReadable(under, undefined)), ['RunError', 'input_unreadable', `cannot read input ${under}: ENOTDIR`, { file: under }]);
  });

  test('a file its reader may not read: permission denied', async () => {
    const locked = file('id\n');
    chmodSync(locked, 0);
    // Root reads any file: run as root (CI, a container), the check is made as nobody, as a cron job's own user would meet it.
    const asRoot = process.geteuid?.() === 0;
    if (asRoot) process.seteuid!(65534);
    try {
      assert.deepEqual(await failure(() => checkReadable(locked, undefined)), ['RunError', 'input_unreadable', `cannot read input ${locked}: permission denied`, { file: locked }]);
    } finally {
      if (asRoot) process.seteuid!(0);
    }
  });

  test('UTF-16 and UTF-32 read as UTF-8: refused, naming the encoding to give', async () => {
    const cases: [number[], string][] = [
      [[0xff, 0xfe, 0, 0, 0x61, 0, 0, 0], 'UTF-32 (it starts with a UTF-32 byte order mark); run with --encoding utf-32le'],
      [[0, 0, 0xfe, 0xff, 0, 0, 0, 0x61], 'UTF-32 (it starts with a UTF-32 byte order mark); run with --encoding utf-32be'],
      [[0xff, 0xfe, 0x61, 0, 0x62, 0], 'UTF-16 (it starts with a UTF-16 byte order mark); run with --encoding utf-16le'],
      [[0xfe, 0xff, 0, 0x61, 0, 0x62], 'UTF-16 (it starts with a UTF-16 byte order mark); run with --encoding utf-16be'],
      // A byte order mark alone, shorter than 4 bytes.
      [[0xff, 0xfe], 'UTF-16 (it starts with a UTF-16 byte order mark); run with --encoding utf-16le'],
      [[0xfe, 0xff, 0], 'UTF-16 (it starts with a UTF-16 byte order mark); run with --encoding utf-16be'],
      // UTF-32's mark cut short is UTF-16's.
      [[0xff, 0xfe, 0], 'UTF-16 (it starts with a UTF-16 byte order mark); run with --encoding utf-16le'],
      [[0xff, 0xfe, 0, 0x61], 'UTF-16 (it starts with a UTF-16 byte order mark); run with --encoding utf-16le'],
      [[0x69, 0, 0x64, 0, 0x0a, 0], 'UTF-16 (it has no byte order mark, and every other byte of its first characters is 0); run with --encoding utf-16le'],
      [[0, 0x69, 0, 0x64, 0, 0x0a], 'UTF-16 (it has no byte order mark, and every other byte of its first characters is 0); run with --encoding utf-16be'],
    ];
    for (const [head, said] of cases) {
      const f = file(head);
      assert.deepEqual(await failure(() => checkReadable(f, 'UTF-8')), ['RunError', 'input_invalid', `${f}: the file is ${said}`, { file: f }], said);
    }
    // Zeros elsewhere are not UTF-16: the run goes on (and the rows say what is wrong).
    for (const head of [[0x69, 0, 0, 0x64], [0, 0x69, 0x64, 0], [0x69, 0x64, 0, 0], [0, 0, 0x69, 0x64], [0, 0, 0, 0], [0x69, 0, 0x64, 0x65], [0, 0x69, 0x64, 0x65], [0x69, 0x64, 0, 0x65], [0x61, 0xfe, 0, 0], [0xff, 0x61, 0, 0], [0x61, 0, 0xfe, 0xff], [0, 0x61, 0xfe, 0xff], [0, 0, 0x61, 0xff], [0, 0, 0xfe, 0x61], [0xfe, 0x61, 0x62, 0x63], [0xff, 0x61, 0x62, 0x63]])
      assert.equal(await checkReadable(file(head), undefined), undefined, JSON.stringify(head));
  });
});

describe('csvProblem and csvFailure', () => {
  test('each csv-parse code in words, at the header or at a row, with the line where there is one', () => {
    const said = (e: RunError) => [e.code, e.message, e.context];
    assert.deepEqual(said(csvProblem('CSV_MAX_RECORD_SIZE', 'csv-parse says', 7, 'in.csv', 3)), [
      'input_invalid',
      'in.csv, row 3, line 7: a row is larger than 32 MB: this does not look like a CSV export',
      { file: 'in.csv', row: 3, line: 7 },
    ]);
    assert.deepEqual(said(csvProblem('CSV_INVALID_CLOSING_QUOTE', 'x', 2, 'in.csv', 0)), [
      'input_invalid',
      'in.csv, header, line 2: a closing quote is followed by other characters',
      { file: 'in.csv', line: 2 },
    ]);
    assert.deepEqual(said(csvProblem('CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE', 'x', undefined, 'in.csv', 0)), [
      'input_invalid',
      'in.csv, header: a closing quote is followed by other characters',
      { file: 'in.csv' },
    ]);
    assert.deepEqual(said(csvProblem('CSV_SOMETHING_NEW', 'csv-parse says so', undefined, 'in.csv', 4)), ['input_invalid', 'in.csv, row 4: csv-parse says so', { file: 'in.csv', row: 4 }]);
    // An unclosed quote is found at the file's end: its line is not the row's, so none is named.
    assert.deepEqual(said(csvProblem('CSV_QUOTE_NOT_CLOSED', 'x', 99, 'in.csv', 2)), [
      'input_invalid',
      'in.csv, row 2: a quoted field opens here and is never closed (a " without its closing "; the rest of the file was read into it)',
      { file: 'in.csv', row: 2 },
    ]);
    assert.deepEqual(said(csvProblem('CSV_QUOTE_NOT_CLOSED', 'x', 5, 'in.csv', 0)), [
      'input_invalid',
      'in.csv, header: a quoted field opens here and is never closed (a " without its closing "; the rest of the file was read into it)',
      { file: 'in.csv' },
    ]);
  });

  test("csvFailure: a RunError as it is; csv-parse's error at its line in the file; anything else unreadable", () => {
    const run = new RunError('usage', 'as it is');
    assert.equal(csvFailure(run, 'in.csv', 3), run);
    const csv = new CsvError('CSV_MAX_RECORD_SIZE', 'too big', {} as never, { lines: 4 });
    assert.deepEqual([csvFailure(csv, 'in.csv', 2).message, csvFailure(csv, 'in.csv', 2).context], ['in.csv, row 2, line 4: a row is larger than 32 MB: this does not look like a CSV export', { file: 'in.csv', row: 2, line: 4 }]);
    // Lines counted from the piece's first line.
    assert.deepEqual(csvFailure(csv, 'in.csv', 0, 10).context, { file: 'in.csv', line: 13 });
    const noLines = new CsvError('CSV_MAX_RECORD_SIZE', 'too big', {} as never);
    assert.deepEqual(csvFailure(noLines, 'in.csv', 1, 10).context, { file: 'in.csv', row: 1 });
    const io = Object.assign(new Error('i/o'), { code: 'EIO' });
    assert.deepEqual([csvFailure(io, 'in.csv', 1).code, csvFailure(io, 'in.csv', 1).message, csvFailure(io, 'in.csv', 1).context], ['input_unreadable', 'cannot read input in.csv: EIO', { file: 'in.csv' }]);
    assert.equal(csvFailure(new Error('it broke'), 'in.csv', 1).message, 'cannot read input in.csv: it broke');
  });
});

describe('parsePiece', () => {
  test('records, whatever line breaks the piece mixes, with quoted breaks kept', () => {
    const cases: [string, string[][]][] = [
      ['a,b', [['a', 'b']]],
      ['a,b\nc,d\n', [['a', 'b'], ['c', 'd']]],
      ['a,b\r\nc,d\r\n', [['a', 'b'], ['c', 'd']]],
      ['a,b\rc,d\r', [['a', 'b'], ['c', 'd']]],
      ['a\r\nb\nc\rd', [['a'], ['b'], ['c'], ['d']]],
      ['a\r\nb\nc', [['a'], ['b'], ['c']]],
      ['a\r\nb\rc', [['a'], ['b'], ['c']]],
      ['a\nb\rc', [['a'], ['b'], ['c']]],
      ['a\rb\r\nc', [['a'], ['b'], ['c']]],
      ['a\rb\nc\r\nd\re\n', [['a'], ['b'], ['c'], ['d'], ['e']]],
      ['"x\ry",1\r\n"p\nq",2\n', [['x\ry', '1'], ['p\nq', '2']]],
      ['"x\r\ny"\r\nz\n', [['x\r\ny'], ['z']]],
      ['\n\na\n\r\n\rb', [['a'], ['b']]],
      ['a,"b""c",d"e\n', [['a', 'b"c', 'd"e']]],
      ['\n\r\n', []],
      // A break first in the piece; a bare LF before the piece's only CRLF; CRLF, CR and LF each followed by CR.
      ['\ra\rb', [['a'], ['b']]],
      ['\na\rb\n', [['a'], ['b']]],
      ['a\nb\r\nc', [['a'], ['b'], ['c']]],
      ['x\r\n\ra\n\rb', [['x'], ['a'], ['b']]],
    ];
    for (const [text, records] of cases) assert.deepEqual(parsePiece(Buffer.from(text), ','), { records }, JSON.stringify(text));
    assert.deepEqual(parsePiece(Buffer.from('a;b,c\n'), ';'), { records: [['a', 'b,c']] });
  });

  test("an unclosed quote after CRLFs: each CRLF is one line in csv-parse's count", () => {
    assert.deepEqual(parsePiece(Buffer.from('a\r\nb\r\n"c'), ',').failure, {
      kind: 'csv',
      code: 'CSV_QUOTE_NOT_CLOSED',
      message: 'Quote Not Closed: the parsing is finished with an opening quote at line 3',
      lines: 3,
      records: 2,
    });
  });

  test('an unclosed quote: the code, csv-parse message, lines and records before it', () => {
    assert.deepEqual(parsePiece(Buffer.from('a,b\nc,"d\ne\n'), ','), {
      records: [],
      failure: { kind: 'csv', code: 'CSV_QUOTE_NOT_CLOSED', message: 'Quote Not Closed: the parsing is finished with an opening quote at line 3', lines: 3, records: 1 },
    });
  });

  test('bytes that are not UTF-8: the record (in the piece), column and character of the first', () => {
    const cases: [Buffer, { record: number; column: number; character: number }][] = [
      [bytes('id,name\n1,Jos', [0xe9], '\n'), { record: 1, column: 1, character: 4 }],
      [bytes([0xff], ',a\n'), { record: 0, column: 0, character: 1 }],
      [bytes('é😀', [0xff], ',x\n'), { record: 0, column: 0, character: 3 }],
      // A character cut at the piece's end.
      [bytes('a,b\nc,', [0xc3]), { record: 1, column: 1, character: 1 }],
      [bytes('"a\nb",c\n"d\ne', [0xff], '",f\n'), { record: 1, column: 0, character: 4 }],
      // A real U+FFFD in an earlier record is not the bad byte.
      [bytes('x\uFFFD,y\nz,', [0xff], '\n'), { record: 1, column: 1, character: 1 }],
      // Characters of several bytes before the record: every prefix the search tries ends inside one.
      [bytes('€€€€€€€€€€,x\ny,', [0xff], '\n'), { record: 1, column: 1, character: 1 }],
      [bytes('ßßßßßßßßßßßßß,x\ny,', [0xff], '\n'), { record: 1, column: 1, character: 1 }],
      [bytes('😀😀😀😀😀😀😀😀,x\ny,', [0xff], '\n'), { record: 1, column: 1, character: 1 }],
      // The search's first prefix ends inside a character of 2 or 3 bytes (lead bytes E2, E0, C3): it is cut back to a whole one.
      [bytes('€€€,x\ny,', [0xff], '\n'), { record: 1, column: 1, character: 1 }],
      [bytes('ऄऄऄ,x\ny,', [0xff], '\n'), { record: 1, column: 1, character: 1 }],
      [bytes('éééé,x\ny,', [0xff], '\n'), { record: 1, column: 1, character: 1 }],
      [bytes('a\nb', [0xff]), { record: 1, column: 0, character: 2 }],
      // The bad byte last before a record's line break: that record, not the next.
      [bytes('x,', [0xff], '\ny\n'), { record: 0, column: 1, character: 1 }],
      [bytes('a,b\r\nc,d', [0xfe], '\r\ne,f\r\n'), { record: 1, column: 1, character: 2 }],
      [bytes('a\n', [0x80], 'b\n'), { record: 1, column: 0, character: 1 }],
      [bytes('a\n€', [0x82], 'b\n'), { record: 1, column: 0, character: 2 }],
      [bytes('a\n', [0xe2, 0x82], ',b\n'), { record: 1, column: 0, character: 1 }],
      [bytes('a\n', [0xf0, 0x9f, 0x98], ',b\n'), { record: 1, column: 0, character: 1 }],
    ];
    for (const [piece, where] of cases) {
      const parsed = parsePiece(piece, ',');
      assert.deepEqual(parsed.failure, { kind: 'utf8', ...where }, JSON.stringify(piece.toString('latin1')));
    }
    // The records are given with the failure, the bad byte as U+FFFD.
    assert.deepEqual(parsePiece(bytes('a\nb', [0xff]), ',').records, [['a'], ['b\uFFFD']]);
  });
});

describe('finding where records end', () => {
  test('firstRecordEnd: just past the first break outside quotes (a CRLF whole), or the end', () => {
    const cases: [string, string, number][] = [
      ['a,b', ',', 3],
      ['', ',', 0],
      ['a,b\nc', ',', 4],
      ['a,b\r\nc', ',', 5],
      ['a,b\rc', ',', 4],
      ['a\r', ',', 2],
      ['a\rb\nc', ',', 2],
      ['a\nb\rc', ',', 2],
      ['"a\nb",c\nd', ',', 8],
      ['x,"a\r\nb"\r\nd', ',', 10],
      ['a"b\nc', ',', 4],
      ['a,"b""\n",c\nd', ',', 11],
      ['"a\nb', ',', 4],
      ['\n"a\nb"\n', ',', 1],
      ['a;"b\nc"\nd', ';', 8],
      ['a,"b\nc"\nd', ';', 5],
      ['a§"b\nc"\nd', '§', 9],
      ['"a"\nb', ',', 4],
      ['\ra\nb', ',', 1],
      ['a\n\nb', ',', 2],
    ];
    for (const [text, delimiter, end] of cases) assert.equal(firstRecordEnd(Buffer.from(text), delimiter), end, JSON.stringify(text));
  });

  test('lastRecordEnd: just past the last break outside quotes, never inside a CRLF that may go on', () => {
    const comma = lastByteOf(',');
    const cases: [string, number][] = [
      ['a,b', 0],
      ['', 0],
      ['a\nb\nc', 4],
      ['a\nb\n', 4],
      ['a\r\nb\r\n', 6],
      ['a\rb\rc', 4],
      ['a\nb\r', 2],
      ['a\r', 0],
      ['a\nb\rc\nd', 6],
      ['a\nb\nc\r', 4],
      ['a\n"b\nc', 2],
      ['a\r"b\rc', 2],
      ['a\r\n"b\nc', 3],
      ['a\n"b\nc"\nd', 8],
      ['a\n"b\nc"', 2],
      ['a\n"b\nc""', 2],
      ['a\n"b""\nc"\nd', 10],
      ['a\nx"y\nz', 6],
      ['a,"b\n"\nc\n', 9],
      ['"a\nb"\r', 0],
      ['"x"\n"y"\n', 8],
    ];
    for (const [text, end] of cases) assert.equal(lastRecordEnd(Buffer.from(text), comma), end, JSON.stringify(text));
    assert.equal(lastRecordEnd(Buffer.from('a;"b\nc\nd'), lastByteOf(';')), 0);
    assert.equal(lastRecordEnd(Buffer.from('a,"b\nc\nd'), lastByteOf(';')), 7);
  });

  test("lastByteOf: a delimiter's last byte; countLineEnds: LF, CR and CRLF each one line", () => {
    assert.equal(lastByteOf(','), 0x2c);
    assert.equal(lastByteOf('§'), 0xa7);
    assert.equal(lastByteOf('€'), 0xac);
    const cases: [string, number][] = [
      ['', 0],
      ['abc', 0],
      ['a\nb', 1],
      ['a\r\nb', 1],
      ['a\rb', 1],
      ['\r\r\n\n\r', 4],
      ['a\r\nb\nc\rd\r', 4],
      ['\n\n', 2],
    ];
    for (const [text, n] of cases) assert.equal(countLineEnds(Buffer.from(text)), n, JSON.stringify(text));
  });
});

describe('pieces', () => {
  const read = (f: string, options: Partial<{ encoding: string; delimiter: string; size: number; limit: number }> = {}) =>
    allPieces(pieces(f, { delimiter: ',', size: 1 << 16, limit: 1 << 20, ...options }));

  test('cut after whole records, each with the line it starts at', async () => {
    const f = file('a,b\nc,"d\ne"\r\nf,g\rh,i\n');
    assert.deepEqual(await read(f), [['a,b\nc,"d\ne"\r\nf,g\rh,i\n', 1]]);
    assert.deepEqual(await read(f, { size: 1 }), [['a,b\n', 1], ['c,"d\ne"\r\n', 2], ['f,g\r', 4], ['h,i\n', 5]]);
    assert.deepEqual(await read(f, { size: 6 }), [['a,b\n', 1], ['c,"d\ne"\r\nf,g\r', 2], ['h,i\n', 5]]);
    assert.deepEqual(await read(f, { size: 12 }), [['a,b\n', 1], ['c,"d\ne"\r\nf,g\rh,i\n', 2]]);
  });

  test('a file whose last record has no line break, and an empty file', async () => {
    assert.deepEqual(await read(file('a\nb\nc'), { size: 2 }), [['a\n', 1], ['b\n', 2], ['c', 3]]);
    assert.deepEqual(await read(file('')), []);
  });

  test('a CRLF split between two reads stays one line break', async () => {
    assert.deepEqual(await read(file('ab\r\ncd\r\n'), { size: 3 }), [['ab\r\n', 1], ['cd\r\n', 2]]);
    assert.deepEqual(await read(file('ab\r\ncd\r\n'), { size: 4 }), [['ab\r\n', 1], ['cd\r\n', 2]]);
    assert.deepEqual(await read(file('a\rb\rc'), { size: 2 }), [['a\r', 1], ['b\r', 2], ['c', 3]]);
  });

  test('a UTF-8 byte order mark is dropped, also when it comes in reads of one byte; bytes that only begin like one are kept', async () => {
    const bom = [0xef, 0xbb, 0xbf];
    assert.deepEqual(await read(file(bytes(bom, 'a\nb\n'))), [['a\nb\n', 1]]);
    assert.deepEqual(await read(file(bytes(bom, 'a\nb\n')), { size: 1 }), [['a\n', 1], ['b\n', 2]]);
    assert.deepEqual(await read(file(bytes(bom, 'a\nb\n')), { size: 2 }), [['a\n', 1], ['b\n', 2]]);
    assert.deepEqual(await read(file(bytes(bom)), { size: 1 }), []);
    // Only the first: a second mark is the first record's.
    assert.deepEqual(await read(file(bytes(bom, bom, 'a\n')), { size: 1 }), [['\uFEFFa\n', 1]]);
    // A mark later in the file is data.
    assert.deepEqual(await read(file(bytes('a\n', bom, 'b\n')), { size: 1 }), [['a\n', 1], ['\uFEFFb\n', 2]]);
    const rawPieces = async (content: Buffer, size: number) => {
      const out: string[] = [];
      for await (const piece of pieces(file(content), { delimiter: ',', size, limit: 1 << 20 })) out.push(piece.bytes.toString('hex'));
      return out;
    };
    assert.deepEqual(await rawPieces(bytes([0xef, 0xbb, 0x41], '\n'), 1), ['efbb410a']);
    assert.deepEqual(await rawPieces(bytes([0xef, 0xbb]), 1), ['efbb']);
    assert.deepEqual(await rawPieces(bytes([0xef]), 1), ['ef']);
    assert.deepEqual(await rawPieces(bytes([0xef, 0x0a, 0x41, 0x0a]), 1), ['ef0a', '410a']);
    assert.deepEqual(await rawPieces(bytes([0xbb, 0xbf, 0x0a]), 1), ['bbbf0a']);
  });

  test('a quote that never closes: the rest in one piece, cut at the limit', async () => {
    const f = file('a\n"b\nc\nd\ne\nf\ng\n');
    assert.deepEqual(await read(f, { size: 1 }), [['a\n', 1], ['"b\nc\nd\ne\nf\ng\n', 2]]);
    // Past the limit the piece is cut where it is; what follows goes on as records.
    assert.deepEqual(await read(f, { size: 2, limit: 5 }), [['a\n', 1], ['"b\nc\nd', 2], ['\n', 4], ['e\n', 5], ['f\n', 6], ['g\n', 7]]);
    assert.deepEqual(await read(f, { size: 2, limit: 6 }), [['a\n', 1], ['"b\nc\nd\ne', 2], ['\n', 5], ['f\n', 6], ['g\n', 7]]);
    assert.deepEqual(await read(f, { size: 2, limit: 8 }), [['a\n', 1], ['"b\nc\nd\ne\nf', 2], ['\n', 6], ['g\n', 7]]);
  });

  test('a delimiter of several bytes: a quote after it opens a quoted field', async () => {
    const f = file('a§"b\nc"\nd§e\n');
    assert.deepEqual(await read(f, { delimiter: '§', size: 1 }), [['a§"b\nc"\n', 1], ['d§e\n', 3]]);
    assert.deepEqual(await read(f, { delimiter: ',', size: 1 }), [['a§"b\n', 1], ['c"\n', 2], ['d§e\n', 3]]);
  });

  test('another encoding is decoded to UTF-8, its byte order mark dropped', async () => {
    assert.deepEqual(await read(file(bytes('id,name\n1,Jos', [0xe9], '\n2,M', [0xfc], 'ller\n')), { encoding: 'latin1', size: 4 }), [['id,name\n', 1], ['1,José\n', 2], ['2,Müller\n', 3]]);
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('id\né\n', 'utf16le')]);
    assert.deepEqual(await read(file(utf16), { encoding: 'utf-16le' }), [['id\né\n', 1]]);
    assert.deepEqual(await read(file(utf16), { encoding: 'utf-16le', size: 1 }), [['id\n', 1], ['é\n', 2]]);
    // A surrogate the file ends in: the decoder's end gives what it holds.
    assert.deepEqual(await read(file(Buffer.concat([Buffer.from('a\nb', 'utf16le'), Buffer.from([0x3d, 0xd8])])), { encoding: 'utf-16le' }), [['a\nb\uFFFD', 1]]);
    // UTF-8 given by name: the bytes as they are (a bad byte is found later, by the parser).
    assert.deepEqual((await read(file(bytes('a', [0xe9], '\n')), { encoding: 'utf-8' }))[0]![0], 'a\uFFFD\n');
    assert.deepEqual(await read(file(bytes([0xef, 0xbb, 0xbf], 'a\n')), { encoding: 'UTF8' }), [['a\n', 1]]);
  });
});

describe('openPieces', () => {
  test('the header (trimmed), then the records in pieces after it', async () => {
    const csv = await openPieces(file(' id , Name \n1,x\n2,y\n'), { size: 1, requiredColumns: ['ID', 'name'] });
    assert.deepEqual(csv.header, ['id', 'Name']);
    assert.deepEqual(await allPieces(csv.pieces), [['1,x\n', 2], ['2,y\n', 3]]);
    const whole = await openPieces(file('id\r\n1\r\n2\r\n'), {});
    assert.deepEqual(whole.header, ['id']);
    assert.deepEqual(await allPieces(whole.pieces), [['1\r\n2\r\n', 2]]);
  });

  test('a header in the middle of a piece, after blank lines of every kind; a header cut over several reads', async () => {
    const csv = await openPieces(file('\r\n\n\rid,"a\r\nb"\r\n1,2\r\n'), { size: 1 << 16 });
    assert.deepEqual(csv.header, ['id', 'a\r\nb']);
    assert.deepEqual(await allPieces(csv.pieces), [['1,2\r\n', 6]]);
    const cut = await openPieces(file('\n\nidentifier,name\n1,2\n'), { size: 3 });
    assert.deepEqual(cut.header, ['identifier', 'name']);
    assert.deepEqual(await allPieces(cut.pieces), [['1,2\n', 4]]);
  });

  test('the delimiter given is the one the header and the pieces are cut at', async () => {
    const csv = await openPieces(file('id;"a\nb"\n1;"x\ny"\n'), { delimiter: ';', size: 1 });
    assert.deepEqual(csv.header, ['id', 'a\nb']);
    assert.deepEqual(await allPieces(csv.pieces), [['1;"x\ny"\n', 3]]);
  });

  test('an empty file, blank lines only, a header only: no pieces', async () => {
    for (const [content, header] of [['', []], ['\n\r\n\r', []], ['id,name', ['id', 'name']], ['id,name\n', ['id', 'name']], ['id,name\n\n', ['id', 'name']]] as const) {
      const csv = await openPieces(file(content), { size: 1 });
      assert.deepEqual(csv.header, header, JSON.stringify(content));
      assert.deepEqual(await allPieces(csv.pieces), content === 'id,name\n\n' ? [['\n', 2]] : [], JSON.stringify(content));
    }
  });

  test('SIS2ALMA_PIECE_BYTES sets the size of the pieces when the caller gives none', async () => {
    const content = 'id\n1\n2\n3\n';
    const before = process.env.SIS2ALMA_PIECE_BYTES;
    try {
      process.env.SIS2ALMA_PIECE_BYTES = '1';
      assert.deepEqual(await allPieces((await openPieces(file(content), {})).pieces), [['1\n', 2], ['2\n', 3], ['3\n', 4]]);
      assert.deepEqual(await allPieces((await openPieces(file(content), { size: 1 << 16 })).pieces), [['1\n2\n3\n', 2]]);
      process.env.SIS2ALMA_PIECE_BYTES = 'many';
      assert.deepEqual(await allPieces((await openPieces(file(content), {})).pieces), [['1\n2\n3\n', 2]]);
      delete process.env.SIS2ALMA_PIECE_BYTES;
      assert.deepEqual(await allPieces((await openPieces(file(content), {})).pieces), [['1\n2\n3\n', 2]]);
    } finally {
      if (before === undefined) delete process.env.SIS2ALMA_PIECE_BYTES;
      else process.env.SIS2ALMA_PIECE_BYTES = before;
    }
  });

  test('a quote in the header that never closes: the header is named, not a line', async () => {
    const f = file('\n\nid,"name\n1,2\n');
    assert.deepEqual(await failure(() => openPieces(f, { size: 1 })), [
      'RunError',
      'input_invalid',
      `${f}, header: a quoted field opens here and is never closed (a " without its closing "; the rest of the file was read into it)`,
      { file: f },
    ]);
  });

  test("the header's checks: encoding, readability, required and repeated columns, bytes that are not text", async () => {
    assert.equal((await failure(() => openPieces(file('id\n'), { encoding: 'klingon' })))[1], 'usage');
    const missing = path.join(dir, 'nothing.csv');
    assert.deepEqual(await failure(() => openPieces(missing, {})), ['RunError', 'input_unreadable', `cannot read input ${missing}: no such file`, { file: missing }]);
    const utf16 = file([0xff, 0xfe, 0x69, 0, 0x64, 0]);
    assert.equal((await failure(() => openPieces(utf16, {})))[2], `${utf16}: the file is UTF-16 (it starts with a UTF-16 byte order mark); run with --encoding utf-16le`);
    const lacking = file('\nid,name\n1,x\n');
    assert.deepEqual(await failure(() => openPieces(lacking, { requiredColumns: ['id', 'email'], size: 1 })), [
      'RunError',
      'input_invalid',
      `${lacking}: the header lacks the required column email (the header has: id, name)`,
      { file: lacking },
    ]);
    const twice = file('id,ID\n');
    assert.equal((await failure(() => openPieces(twice, {})))[2], `${twice}: the header has the column id twice: column 1 (id) and column 2 (ID); rename or remove one`);
    // Bytes that are not UTF-8 in the header: said so (only the header's own bytes are looked at).
    const binary = file(bytes('PK', [0xff, 0x03], ',id\n'));
    assert.equal((await failure(() => openPieces(binary, {})))[2], `${binary}: the first line is not a CSV header (it holds bytes that are not text in UTF-8); is this the SIS export, saved as CSV?`);
    const fffd = file('id,x\uFFFD\n1,\xff\n');
    assert.deepEqual((await openPieces(fffd, { requiredColumns: ['id'] })).header, ['id', 'x\uFFFD']);
    const badLater = file(bytes('id,x\uFFFD\n1,', [0xff], '\n'));
    assert.deepEqual((await openPieces(badLater, { requiredColumns: ['id'] })).header, ['id', 'x\uFFFD']);
    // The same header in latin1: decoded, so é is text.
    const latin = file(bytes('id,caf', [0xe9], '\n'));
    assert.deepEqual((await openPieces(latin, { encoding: 'latin1' })).header, ['id', 'café']);
  });
});

// Last: it parses 32 MB (seconds), and Stryker stops a test file at its first failure.
describe('the largest record', () => {
  test('a quote that never closes: the piece is cut past the largest record, which the parser then refuses', async () => {
    const f = file(Buffer.concat([Buffer.from('id\n"'), Buffer.alloc(MAX_RECORD_BYTES + (3 << 20), 0x78)]));
    const csv = await openPieces(f, { size: 1 << 20 });
    const first = (await csv.pieces.next()).value as Piece;
    assert.ok(first.bytes.length > MAX_RECORD_BYTES, `${first.bytes.length} bytes`);
    assert.equal(parsePiece(first.bytes, ',').failure?.kind === 'csv' && (parsePiece(first.bytes, ',').failure as { code: string }).code, 'CSV_MAX_RECORD_SIZE');
    await csv.pieces.return(undefined);
  });

  test('a header larger than the largest record: named at its line', async () => {
    const f = file(Buffer.concat([Buffer.from('\n\n'), Buffer.alloc(MAX_RECORD_BYTES + 16, 0x78), Buffer.from('\n1\n')]));
    assert.deepEqual(await failure(() => openPieces(f, { size: 1 << 20 })), [
      'RunError',
      'input_invalid',
      `${f}, header, line 3: a row is larger than 32 MB: this does not look like a CSV export`,
      { file: f, line: 3 },
    ]);
  });

  test('a piece larger than the largest record holds one too large: CSV_MAX_RECORD_SIZE', () => {
    const big = Buffer.alloc(MAX_RECORD_BYTES + 2, 0x78); // one field, no line break
    assert.deepEqual(parsePiece(big, ','), {
      records: [],
      failure: { kind: 'csv', code: 'CSV_MAX_RECORD_SIZE', message: 'Max Record Size: record exceed the maximum number of tolerated bytes of 33554432 at line 1', lines: 1, records: 0 },
    });
  });
});
