// Reading an SIS export. The header is read and checked first; the records after it are cut
// into pieces that each end at the end of a record, so that the mapping threads can parse them at
// once (csv-parse does the parsing; this module only finds where records end). Everything that is
// wrong with the file as a whole (unreadable, wrong encoding, missing columns, broken quoting)
// stops the run with a RunError naming the file and, where there is one, the row, line and column.
//
// A record ends at a line break outside a quoted field: LF, CRLF or a lone CR (old Mac exports),
// mixed in any way in one file, as Python's csv module reads them; each ends a line. A quote
// opens a quoted field only as the first character of a field, as csv-parse reads it with
// relax_quotes; inside one, "" is a quote and the next single " closes it. The pieces are UTF-8 bytes: a file in another encoding is
// decoded and encoded again on the way; a file declared UTF-8 is checked, never decoded twice.
import { constants, createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { isUtf8 as isUtf8Bytes } from 'node:buffer';
import { parse } from 'csv-parse/sync';
import { CsvError } from 'csv-parse';
import { createRequire } from 'node:module';
import { RunError } from '../shared/errors.js';

/**
 * iconv-lite, loaded on first use: only exports in another encoding than UTF-8 need it, and the
 * mapping threads, which import this module for parsePiece, would otherwise each load its tables.
 */
let iconvModule: typeof import('iconv-lite') | undefined;
function iconv(): typeof import('iconv-lite') {
  return (iconvModule ??= createRequire(import.meta.url)('iconv-lite') as typeof import('iconv-lite'));
}

/** The largest record accepted: far above any real row, low enough that a file that is not CSV cannot exhaust memory. */
export const MAX_RECORD_BYTES = 32 * 1024 * 1024;

/**
 * Every line break that ends a record, CRLF before CR so that a CRLF is one break. Left to itself
 * csv-parse takes the first break it meets for the only one, per piece: after a CRLF, LF rows were
 * glued into one, and a CR-only file was one record.
 */
export const RECORD_DELIMITERS: readonly string[] = ['\r\n', '\n', '\r'];

/** How every reader of an export has csv-parse read it. */
export function csvParseOptions(delimiter = ',', recordDelimiters: readonly string[] = RECORD_DELIMITERS) {
  return { delimiter, record_delimiter: [...recordDelimiters], relax_column_count: true, relax_quotes: true, skip_empty_lines: true, max_record_size: MAX_RECORD_BYTES };
}

export function isUtf8(encoding: string | undefined): boolean {
  return !encoding || /^utf-?8$/i.test(encoding);
}

export function checkEncoding(encoding: string | undefined): void {
  if (isUtf8(encoding)) return;
  if (!iconv().encodingExists(encoding!))
    throw new RunError('usage', `unknown encoding '${encoding}' (try utf-8, windows-1252, latin1 or utf-16le)`);
}

/**
 * Stops the run when the header is not a CSV header (a zip, a PDF, a spreadsheet saved as .csv) or
 * lacks a required column. `notUtf8`: the file holds bytes that are not UTF-8.
 */
export function checkHeader(file: string, header: string[], requiredColumns: string[], notUtf8: boolean): void {
  // A header that is not text (a zip, a PDF, a spreadsheet saved as .csv) says so at once, rather
  // than as a list of missing columns spelled in binary.
  if ((notUtf8 && header.some((h) => h.includes('\uFFFD'))) || header.some((h) => CONTROL.test(h))) {
    throw new RunError('input_invalid', `${file}: the first line is not a CSV header (it holds bytes that are not text${notUtf8 ? ' in UTF-8' : ''}); is this the SIS export, saved as CSV?`, { file });
  }
  const missing = requiredColumns.filter((c) => !header.some((h) => h.toLowerCase() === c.toLowerCase()));
  if (missing.length) {
    // When no required column is there at all, the first line is most likely a patron's row (an
    // export without its header): stderr is a log, so its cells are not echoed.
    const none = missing.length === requiredColumns.length;
    throw new RunError(
      'input_invalid',
      `${file}: the header lacks the required column${missing.length > 1 ? 's' : ''} ${missing.join(', ')} ` +
        (none && header.length === 1 && /[;\t|]/.test(header[0]!)
          ? `(the whole first line is one field: the file seems to be delimited by ${JSON.stringify(/[;\t|]/.exec(header[0]!)![0])}; say so in the mapping with input: { delimiter: ${JSON.stringify(/[;\t|]/.exec(header[0]!)![0])} })`
          : none
          ? `(the first line has ${header.length} field${header.length === 1 ? '' : 's'} and none of them is a required column: is the header missing, or is this another export?)`
          : `(the header has: ${header.slice(0, 30).join(', ')})`),
      { file },
    );
  }
  // One name twice (or in two cases, which the required columns do not tell apart): which of the
  // two a mapping would read is chance. A column with no name is read by none.
  const first = new Map<string, number>();
  header.forEach((name, i) => {
    if (!name) return;
    const seen = first.get(name.toLowerCase());
    if (seen === undefined) return first.set(name.toLowerCase(), i);
    throw new RunError(
      'input_invalid',
      `${file}: the header has the column ${header[seen]} twice: column ${seen + 1} (${header[seen]}) and column ${i + 1} (${name}); rename or remove one`,
      { file },
    );
  });
}

export async function checkReadable(file: string, encoding: string | undefined): Promise<void> {
  let handle;
  try {
    // Without O_NONBLOCK, opening a FIFO waits for a writer, for ever when none comes.
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
    const stats = await handle.stat();
    if (stats.isDirectory()) throw new RunError('input_unreadable', `cannot read input ${file}: it is a folder`, { file });
    // The inputs are read twice (once to index the primary ids, once to convert): a pipe or a
    // device would give its bytes once, or never end.
    if (!stats.isFile()) {
      let kind = 'a device';
      // Stryker disable next-line ConditionalExpression,StringLiteral: opening a Unix socket fails (ENXIO) before stat() could tell it, so on Linux this never holds
      if (stats.isSocket()) kind = 'a socket';
      if (stats.isFIFO()) kind = 'a named pipe (FIFO)';
      throw new RunError('input_unreadable', `cannot read input ${file}: it is ${kind}, not a file; sis2alma reads each input twice: save the export to a file and give that`, { file });
    }
    const head = Buffer.alloc(4);
    const { bytesRead } = await handle.read(head, 0, 4, 0);
    if (isUtf8(encoding)) {
      const unicode = wideUnicode(head.subarray(0, bytesRead));
      if (unicode) throw new RunError('input_invalid', `${file}: the file is ${unicode.name} (${unicode.why}); run with --encoding ${unicode.encoding}`, { file });
    }
  } catch (error) {
    if (error instanceof RunError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    const reasons: Record<string, string> = {
      ENOENT: 'no such file',
      EACCES: 'permission denied',
      // Stryker disable next-line StringLiteral: open() with O_RDONLY opens a folder on Linux, and stat() above names it; EISDIR comes from other systems
      EISDIR: 'it is a folder',
    };
    const why = reasons[code as string] ?? code ?? String(error);
    throw new RunError('input_unreadable', `cannot read input ${file}: ${why}`, { file });
  } finally {
    await handle?.close();
  }
}

/**
 * UTF-16 or UTF-32, from the first 4 bytes of a file: a byte order mark (UTF-32's before UTF-16's,
 * which begins it), or, for UTF-16 without one, two characters of a header (ASCII) each with a
 * zero byte.
 */
function wideUnicode(head: Buffer): { name: string; why: string; encoding: string } | undefined {
  const [a, b, c, d] = [head[0], head[1], head[2], head[3]];
  const bom = (name: string, encoding: string) => ({ name, why: `it starts with a ${name} byte order mark`, encoding });
  // d is undefined in a head shorter than 4 bytes: neither mark of UTF-32 matches it.
  if (a === 0xff && b === 0xfe && c === 0 && d === 0) return bom('UTF-32', 'utf-32le');
  if (a === 0 && b === 0 && c === 0xfe && d === 0xff) return bom('UTF-32', 'utf-32be');
  if (a === 0xff && b === 0xfe) return bom('UTF-16', 'utf-16le');
  if (a === 0xfe && b === 0xff) return bom('UTF-16', 'utf-16be');
  if (head.length < 4) return undefined;
  const why = 'it has no byte order mark, and every other byte of its first characters is 0';
  if (a && !b && c && !d) return { name: 'UTF-16', why, encoding: 'utf-16le' };
  if (!a && b && !c && d) return { name: 'UTF-16', why, encoding: 'utf-16be' };
  return undefined;
}

/** C0 controls other than tab, CR and LF: never in a header a person wrote. */
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F]/;

/** `row` counts data rows from 1; 0 is the header. */
export function csvFailure(error: unknown, file: string, row: number, firstLine = 1): RunError {
  if (error instanceof RunError) return error;
  if (error instanceof CsvError) {
    const lines = (error as CsvError & { lines?: number }).lines;
    // Stryker disable next-line ConditionalExpression: "false" gives NaN for no line, which csvProblem names as it does undefined (no line)
    return csvProblem(error.code, error.message, lines === undefined ? undefined : lines + firstLine - 1, file, row);
  }
  const code = (error as NodeJS.ErrnoException).code;
  return new RunError('input_unreadable', `cannot read input ${file}: ${code ?? (error as Error).message}`, { file });
}

/** csv-parse's error `code` at `line` of the file (row 0: the header), as a RunError naming the file, row and line. */
export function csvProblem(code: string, message: string, line: number | undefined, file: string, row: number): RunError {
  // An unclosed quote is found only at the end of the file: the line then is the file's last,
  // not the row's, so only the row (where the quote opened) is named.
  if (code === 'CSV_QUOTE_NOT_CLOSED') line = undefined;
  const reason: Record<string, string> = {
    CSV_QUOTE_NOT_CLOSED: 'a quoted field opens here and is never closed (a " without its closing "; the rest of the file was read into it)',
    CSV_MAX_RECORD_SIZE: `a row is larger than ${MAX_RECORD_BYTES / 1024 / 1024} MB: this does not look like a CSV export`,
    CSV_INVALID_CLOSING_QUOTE: 'a closing quote is followed by other characters',
    CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE: 'a closing quote is followed by other characters',
  };
  const where = row === 0 ? `${file}, header${line ? `, line ${line}` : ''}` : `${file}, row ${row}${line ? `, line ${line}` : ''}`;
  return new RunError('input_invalid', `${where}: ${reason[code] ?? message}`, row === 0 ? { file, ...(line ? { line } : {}) } : { file, row, ...(line ? { line } : {}) });
}

const QUOTE = 0x22;
const LF = 0x0a;
const CR = 0x0d;
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/**
 * Bytes a piece is cut at (at the next record's end): big enough that sending one to a thread
 * costs little beside its parsing, small enough that the pieces in flight, and their XML (about
 * 13 times their size), hold little memory (bench/RESULTS.md: 256 KB → 128 KB, 557 → 486 MB at
 * 1,000,000 rows, at the same speed).
 */
export const PIECE_BYTES = 128 * 1024;

export interface PiecedCsv {
  file: string;
  /** Column names as the header has them, trimmed; [] for an empty file. */
  header: string[];
  /** The data records, in pieces; the first starts just after the header. */
  pieces: AsyncGenerator<Piece>;
}

/**
 * Opens an export for reading in pieces: reads and checks its header (as openCsv does) and cuts
 * the rest. The pieces are parsed by the mapping threads.
 */
export async function openPieces(file: string, options: { encoding?: string; delimiter?: string; requiredColumns?: string[]; size?: number }): Promise<PiecedCsv> {
  checkEncoding(options.encoding);
  await checkReadable(file, options.encoding);
  const delimiter = options.delimiter ?? ',';
  // SIS2ALMA_PIECE_BYTES is for tests: pieces of one record each exercise every cut.
  const size = options.size ?? (Number(process.env.SIS2ALMA_PIECE_BYTES) || PIECE_BYTES);
  const all = pieces(file, { encoding: options.encoding, delimiter, size, limit: MAX_RECORD_BYTES + size });
  const next = async (): Promise<Piece | undefined> => {
    try {
      return (await all.next()).value as Piece | undefined;
    } catch (error) {
      throw csvFailure(error, file, 0);
    }
  };
  // The header is the first record that is not an empty line (csv-parse skips those).
  let header: string[] | undefined;
  let piece = await next();
  let start = 0;
  while (piece && header === undefined) {
    if (start >= piece.bytes.length) {
      piece = await next();
      start = 0;
      continue;
    }
    const end = start + firstRecordEnd(piece.bytes.subarray(start), delimiter);
    const bytes = piece.bytes.subarray(start, end);
    let records: string[][];
    try {
      records = parse(bytes, csvParseOptions(delimiter)) as string[][];
    } catch (error) {
      throw csvFailure(error, file, 0, piece.line + countLineEnds(piece.bytes.subarray(0, start)));
    }
    // One record: the scan above and csv-parse must agree on where it ends, or rows would be lost.
    // Stryker disable next-line ConditionalExpression,StringLiteral: never true (the property tests of test/read.test.ts cut random CSV at every size); a guard against rows lost without a word
    if (records.length > 1) throw new Error(`${file}: the header was read as ${records.length} records (sis2alma cut the file where csv-parse does not)`);
    if (records.length) {
      header = records[0]!.map((name) => name.trim());
      checkHeader(file, header, options.requiredColumns ?? [], !isUtf8Bytes(bytes));
    }
    start = end;
  }
  // Without a header the file has ended (and piece with it); with one, piece is where it ended.
  if (header === undefined) {
    await all.return(undefined);
    return { file, header: [], pieces: (async function* () {})() };
  }
  const rest = { bytes: piece!.bytes.subarray(start), line: piece!.line + countLineEnds(piece!.bytes.subarray(0, start)) };
  return {
    file,
    header,
    pieces: (async function* () {
      if (rest.bytes.length) yield rest;
      try {
        yield* all;
      } catch (error) {
        throw csvFailure(error, file, 0);
      }
    })(),
  };
}

export interface Piece {
  bytes: Buffer;
  /** Line (1-based, in the file) of the piece's first byte. */
  line: number;
}

/** Why a piece could not be read: convert.ts's pieceFailure turns it into a RunError naming the file. */
export type PieceFailure =
  | { kind: 'csv'; code: string; message: string; lines?: number; records: number }
  | { kind: 'utf8'; record: number; column: number; character: number }
  | { kind: 'internal'; message: string; stack?: string };

export interface Parsed {
  records: string[][];
  failure?: PieceFailure;
}

/** Parses a piece with csv-parse; a piece that is not UTF-8 fails, naming the row and column of the first bad byte. */
export function parsePiece(bytes: Buffer, delimiter: string): Parsed {
  let records: string[][];
  try {
    // csv-parse's max_record_size costs it about a tenth of its time; only a piece cut at the
    // limit because no record ended in it (pieces, above) can hold a record that large.
    const options = csvParseOptions(delimiter, breaksIn(bytes));
    // Stryker disable next-line ConditionalExpression,EqualityOperator: the limit checked in a piece of at most MAX_RECORD_BYTES changes only the time (no record in it can pass the limit)
    records = parse(bytes, bytes.length > MAX_RECORD_BYTES ? options : { ...options, max_record_size: undefined }) as string[][];
  } catch (error) {
    const e = error as { code?: string; message?: string; lines?: number; records?: number };
    // Stryker disable next-line all: csv-parse's errors all carry a code; this keeps any other error from being taken for a CSV problem
    if (!e.code) return { records: [], failure: { kind: 'internal', message: e.message ?? String(error) } };
    return { records: [], failure: { kind: 'csv', code: e.code, message: e.message ?? String(error), lines: e.lines, records: e.records ?? 0 } };
  }
  // Bytes beyond line breaks always make a record: none here would be rows lost without a word.
  // Stryker disable next-line ConditionalExpression,MethodExpression,ArrowFunction: never true (csv-parse skips only empty lines: bytes other than line breaks make a record); a guard against rows lost without a word
  if (!records.length && bytes.some((b) => b !== CR && b !== LF))
    // Stryker disable next-line ObjectLiteral,StringLiteral: as above, never reached
    return { records, failure: { kind: 'internal', message: `a piece of ${bytes.length} bytes was read as no row` } };
  // A file declared UTF-8 that is not: name the row and column of the first byte that is not.
  if (!isUtf8Bytes(bytes)) return { records, failure: notUtf8(bytes, records, delimiter) };
  return { records };
}

/**
 * The line breaks a piece holds (quoted or not), for csv-parse: a break the piece does not hold
 * changes nothing, and each one more to try costs the parser about 5% of its time, at every
 * character (a file of one kind of break reads as fast as before they were all accepted).
 */
// Stryker disable next-line BlockStatement: no list is every break (csvParseOptions' default), which costs only time
function breaksIn(bytes: Buffer): readonly string[] {
  // Stryker disable next-line BooleanLiteral: a superset of the breaks a piece holds costs only time
  let crlf = false;
  // Stryker disable next-line BooleanLiteral: a superset of the breaks a piece holds costs only time
  let cr = false;
  // Stryker disable next-line ConditionalExpression: scanning past the point where both kinds are known changes nothing
  for (let at = bytes.indexOf(CR); at >= 0 && !(crlf && cr); at = bytes.indexOf(CR, at + 1)) {
    if (bytes[at + 1] === LF) crlf = true;
    else cr = true;
  }
  // Stryker disable next-line ConditionalExpression,LogicalOperator: a superset of the breaks a piece holds costs only time
  let lf = !crlf && bytes.indexOf(LF) >= 0;
  // Stryker disable next-line ConditionalExpression,EqualityOperator: a superset of the breaks a piece holds costs only time (whatever the loop leaves, a file with CRLF and LF gets LF)
  if (crlf) for (let at = bytes.indexOf(LF); at >= 0 && !lf; at = bytes.indexOf(LF, at + 1)) lf = bytes[at - 1] !== CR;
  // Stryker disable next-line ConditionalExpression,LogicalOperator: a superset of the breaks a piece holds costs only time; with all three, the list below is the same
  if (crlf && lf && cr) return RECORD_DELIMITERS;
  // Stryker disable next-line ArrayDeclaration: a break of "Stryker was here" is one more to try (a field holding that text would be cut)
  const breaks: string[] = [];
  // Stryker disable next-line ConditionalExpression: a superset of the breaks a piece holds costs only time
  if (crlf) breaks.push('\r\n');
  // Stryker disable next-line ConditionalExpression: a superset of the breaks a piece holds costs only time
  if (lf) breaks.push('\n');
  // Stryker disable next-line ConditionalExpression: a superset of the breaks a piece holds costs only time
  if (cr) breaks.push('\r');
  // Stryker disable next-line ArrayDeclaration: a piece with no line break is one record, whatever breaks csv-parse looks for
  return breaks.length ? breaks : ['\n'];
}

/** Where the first byte that is not UTF-8 is: its row (0-based in the piece), column and character. */
function notUtf8(bytes: Buffer, records: string[][], delimiter: string): PieceFailure {
  // The longest prefix that is UTF-8 (cut after a whole character): whatever holds a bad byte is not.
  let lo = 0;
  let hi = bytes.length;
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    const prefix = bytes.subarray(0, mid);
    if (isUtf8Bytes(prefix.subarray(0, completeEnd(prefix)))) lo = mid;
    else hi = mid;
  }
  const bad = hi - 1;
  // Record ends, from the parser (asked only now: they cost it a fifth of its time).
  const ends = (parse(bytes, { ...csvParseOptions(delimiter), info: true }) as unknown as { info: { bytes: number } }[]).map((r) => r.info.bytes);
  let record = ends.findIndex((end) => end > bad);
  // Stryker disable next-line all: the bad byte is always inside a record (a line break is UTF-8), so some record ends after it
  if (record < 0) record = records.length - 1;
  // Stryker disable next-line ArrayDeclaration: as above, records[record] is always there
  const values = records[record] ?? [];
  const column = Math.max(0, values.findIndex((v) => v.includes('\uFFFD')));
  // Stryker disable next-line StringLiteral: values[column] is always there (column is 0 or a found one)
  return { kind: 'utf8', record, column, character: [...(values[column] ?? '')].indexOf('\uFFFD') + 1 };
}

/**
 * The file's records, in pieces of about `size` bytes (a piece holds at least one whole record,
 * unless the file's last record has no line break). A quoted field that never closes makes the
 * rest of the file one piece, up to `limit` bytes; past that the piece is cut there, and the
 * parser reports the field as too large.
 */
export async function* pieces(file: string, options: { encoding?: string; delimiter: string; size: number; limit: number }): AsyncGenerator<Piece> {
  const delimiter = lastByteOf(options.delimiter);
  let carry: Buffer = Buffer.alloc(0);
  let line = 1;
  let bomChecked = false;
  const cut = (bytes: Buffer, at: number): Piece => {
    const piece = { bytes: bytes.subarray(0, at), line };
    line += countLineEnds(piece.bytes);
    return piece;
  };
  for await (const chunk of readUtf8(file, options.encoding, options.size)) {
    let bytes: Buffer = carry.length ? Buffer.concat([carry, chunk]) : chunk;
    if (!bomChecked) {
      if (bytes.length < BOM.length && BOM.subarray(0, bytes.length).equals(bytes)) {
        carry = Buffer.from(bytes);
        continue;
      }
      bomChecked = true;
      if (bytes.subarray(0, BOM.length).equals(BOM)) bytes = bytes.subarray(BOM.length);
    }
    if (bytes.length < options.size) {
      carry = bytes;
      continue;
    }
    const end = lastRecordEnd(bytes, delimiter);
    if (end > 0) {
      yield cut(bytes, end);
      bytes = bytes.subarray(end);
    } else if (bytes.length > options.limit) {
      yield cut(bytes, bytes.length);
      bytes = Buffer.alloc(0);
    }
    // The read stream's own buffer is copied from; a buffer of our own concat is kept as it is
    // (copying it again on every read would make a long unclosed quote cost quadratic time).
    // Stryker disable next-line all: copying or not changes memory and time only (Node 20's read stream gives each read a buffer of its own)
    carry = bytes.buffer === chunk.buffer ? Buffer.from(bytes) : bytes;
  }
  if (carry.length) yield cut(carry, carry.length);
}

/** Just past the first record (its line break), or the end of bytes when it has none. */
export function firstRecordEnd(bytes: Buffer, delimiter: string): number {
  return scan(bytes, lastByteOf(delimiter), true) || bytes.length;
}

/**
 * Just past the last line break that ends a record, or 0 when bytes end inside the first record.
 * A CR that is the last byte may be the first half of a CRLF whose LF is still to be read: it is
 * not taken for a break, so that a CRLF is never cut in two (its halves would be two lines).
 */
export function lastRecordEnd(bytes: Buffer, delimiter: number): number {
  return scan(bytes[bytes.length - 1] === CR ? bytes.subarray(0, bytes.length - 1) : bytes, delimiter, false);
}

function scan(bytes: Buffer, delimiter: number, stopAtFirst: boolean): number {
  let safe = 0; // just past the last record-ending line break found so far
  let pos = 0;
  for (;;) {
    const quote = bytes.indexOf(QUOTE, pos);
    const stretch = quote < 0 ? bytes.length : quote; // unquoted bytes from pos
    if (stopAtFirst) {
      const end = firstBreakEnd(bytes, pos, stretch);
      if (end > 0) return end;
    } else if (
      // Stryker disable next-line ConditionalExpression,EqualityOperator: with no byte to look at (stretch === pos) no break found can be at or after pos: the test below keeps safe as it is
      stretch > pos
    ) {
      const lf = bytes.lastIndexOf(LF, stretch - 1);
      // A CR after the last LF is a lone CR: it ends a record too.
      const cr = bytes.lastIndexOf(CR, stretch - 1);
      const end = Math.max(lf, cr);
      if (end >= pos) safe = end + 1;
    }
    if (quote < 0) return safe;
    const before = quote === 0 ? LF : bytes[quote - 1]!;
    pos = quote + 1;
    if (before !== delimiter && before !== LF && before !== CR) continue; // a quote inside an unquoted field
    // A quoted field: find its closing quote.
    for (;;) {
      const close = bytes.indexOf(QUOTE, pos);
      // Unclosed here, or a quote that may be the first of "" continued in the next read.
      // Stryker disable next-line EqualityOperator: close is never 0 (it is searched for from pos, past a quote)
      if (close < 0) return safe;
      // Stryker disable next-line ConditionalExpression,EqualityOperator,ArithmeticOperator: a quote last in bytes, taken as closing, leaves nothing after it to scan: safe is returned all the same
      if (close + 1 >= bytes.length) return safe;
      if (bytes[close + 1] === QUOTE) {
        pos = close + 2;
        continue;
      }
      pos = close + 1;
      break;
    }
  }
}

/** Just past the first line break in bytes[from, to) (a CRLF whole), or 0 when there is none. */
function firstBreakEnd(bytes: Buffer, from: number, to: number): number {
  const lf = bytes.indexOf(LF, from);
  const cr = bytes.indexOf(CR, from);
  const at = lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr);
  // Stryker disable next-line EqualityOperator,ConditionalExpression: at is never to (bytes[to] is a quote, or to is the end); with no break (at -1) the line below gives 0 too
  if (at < 0 || at >= to) return 0;
  return bytes[at] === CR && bytes[at + 1] === LF ? at + 2 : at + 1;
}

/** The byte before a field's first character: the delimiter's last byte (it may be a character of several bytes). */
export function lastByteOf(delimiter: string): number {
  const bytes = Buffer.from(delimiter);
  return bytes[bytes.length - 1]!;
}

/** Lines ended in bytes: at each LF, and at each CR not followed by LF (a CRLF is one). */
export function countLineEnds(bytes: Buffer): number {
  let n = 0;
  for (let at = bytes.indexOf(LF); at >= 0; at = bytes.indexOf(LF, at + 1)) n++;
  for (let at = bytes.indexOf(CR); at >= 0; at = bytes.indexOf(CR, at + 1)) if (bytes[at + 1] !== LF) n++;
  return n;
}

/** The file's bytes as UTF-8: as they are when the file is UTF-8 (checked later), else decoded. */
async function* readUtf8(file: string, encoding: string | undefined, size: number): AsyncGenerator<Buffer> {
  const stream = createReadStream(file, { highWaterMark: size });
  // Stryker disable BlockStatement: for await destroys the stream when the loop ends or is left, so the finally block only repeats it (the try block emptied reads nothing: killed, but covered by this mark)
  try {
    if (isUtf8(encoding)) {
      for await (const chunk of stream) yield chunk as Buffer;
      return;
    }
    // Stryker disable next-line ObjectLiteral,BooleanLiteral: a byte order mark kept here is UTF-8's after encoding, which pieces() drops
    const decoder = iconv().getDecoder(encoding!, { stripBOM: true });
    for await (const chunk of stream) {
      const text = decoder.write(chunk as Buffer);
      // Stryker disable next-line ConditionalExpression,StringLiteral: an empty read changes no piece; Buffer.from's default encoding is UTF-8
      if (text) yield Buffer.from(text, 'utf8');
    }
    const rest = decoder.end();
    // Stryker disable next-line ConditionalExpression,StringLiteral: as above
    if (rest) yield Buffer.from(rest, 'utf8');
  } finally {
    stream.destroy();
  }
  // Stryker restore BlockStatement
}

/** Where the last complete UTF-8 character of bytes ends (a cut character is at most 3 bytes). */
function completeEnd(bytes: Buffer): number {
  // Stryker disable next-line MethodExpression: past 3 bytes back any lead byte gives need <= back (the whole length), as the loop's end does
  for (let back = 1; back <= Math.min(3, bytes.length); back++) {
    const b = bytes[bytes.length - back]!;
    if ((b & 0xc0) !== 0x80) {
      // A lead byte: is its character whole?
      // Stryker disable next-line ConditionalExpression: a need too large cuts a whole character more, which only moves the bad byte found later, never past its record's line break (ASCII); the need too small for E0, C3 and E2 is killed
      const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
      // Stryker disable next-line ConditionalExpression,EqualityOperator: as above, cutting a whole character more
      return need > back ? bytes.length - back : bytes.length;
    }
  }
  return bytes.length;
}
