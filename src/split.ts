// Cutting an export into pieces that each end at the end of a record, so that several threads can
// parse and map them at once (csv-parse does the parsing; this module only finds where records
// end). A record ends at a line feed outside a quoted field. A quote opens a quoted field only as
// the first character of a field, as csv-parse reads it with relax_quotes; inside one, "" is a
// quote and the next single " closes it.
//
// The pieces are UTF-8 bytes: a file in another encoding is decoded and encoded again on the way.
import { createReadStream } from 'node:fs';
import { isUtf8 as isUtf8Bytes } from 'node:buffer';
import iconv from 'iconv-lite';
import { parse } from 'csv-parse/sync';
import { checkEncoding, checkHeader, checkReadable, csvFailure, csvParseOptions, isUtf8, MAX_RECORD_BYTES } from './read.js';

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
      throw csvFailure(error, file, 0, piece.line + countLineFeeds(piece.bytes.subarray(0, start)));
    }
    if (records.length) {
      header = records[0]!.map((name) => name.trim());
      checkHeader(file, header, options.requiredColumns ?? [], !isUtf8Bytes(bytes));
    }
    start = end;
  }
  if (header === undefined || !piece) {
    await all.return(undefined);
    return { file, header: header ?? [], pieces: (async function* () {})() };
  }
  const rest = { bytes: piece.bytes.subarray(start), line: piece.line + countLineFeeds(piece.bytes.subarray(0, start)) };
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
    line += countLineFeeds(piece.bytes);
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
    carry = bytes.buffer === chunk.buffer ? Buffer.from(bytes) : bytes;
  }
  if (carry.length) yield cut(carry, carry.length);
}

/** Just past the first record (its line feed), or the end of bytes when it has none. */
export function firstRecordEnd(bytes: Buffer, delimiter: string): number {
  return scan(bytes, lastByteOf(delimiter), true) || bytes.length;
}

/** Just past the last line feed that ends a record, or 0 when bytes end inside the first record. */
export function lastRecordEnd(bytes: Buffer, delimiter: number): number {
  return scan(bytes, delimiter, false);
}

function scan(bytes: Buffer, delimiter: number, stopAtFirst: boolean): number {
  let safe = 0; // just past the last record-ending line feed found so far
  let pos = 0;
  for (;;) {
    const quote = bytes.indexOf(QUOTE, pos);
    const stretch = quote < 0 ? bytes.length : quote; // unquoted bytes from pos
    if (stopAtFirst) {
      const lf = bytes.indexOf(LF, pos);
      if (lf >= 0 && lf < stretch) return lf + 1;
    } else if (stretch > pos) {
      const lf = bytes.lastIndexOf(LF, stretch - 1);
      if (lf >= pos) safe = lf + 1;
    }
    if (quote < 0) return safe;
    const before = quote === 0 ? LF : bytes[quote - 1]!;
    pos = quote + 1;
    if (before !== delimiter && before !== LF && before !== CR) continue; // a quote inside an unquoted field
    // A quoted field: find its closing quote.
    for (;;) {
      const close = bytes.indexOf(QUOTE, pos);
      // Unclosed here, or a quote that may be the first of "" continued in the next read.
      if (close < 0 || close + 1 >= bytes.length) return safe;
      if (bytes[close + 1] === QUOTE) {
        pos = close + 2;
        continue;
      }
      pos = close + 1;
      break;
    }
  }
}

/** The byte before a field's first character: the delimiter's last byte (it may be a character of several bytes). */
export function lastByteOf(delimiter: string): number {
  const bytes = Buffer.from(delimiter);
  return bytes[bytes.length - 1]!;
}

function countLineFeeds(bytes: Buffer): number {
  let n = 0;
  for (let at = bytes.indexOf(LF); at >= 0; at = bytes.indexOf(LF, at + 1)) n++;
  return n;
}

/** The file's bytes as UTF-8: as they are when the file is UTF-8 (checked later), else decoded. */
async function* readUtf8(file: string, encoding: string | undefined, size: number): AsyncGenerator<Buffer> {
  const stream = createReadStream(file, { highWaterMark: size });
  try {
    if (isUtf8(encoding)) {
      for await (const chunk of stream) yield chunk as Buffer;
      return;
    }
    const decoder = iconv.getDecoder(encoding!, { stripBOM: true });
    for await (const chunk of stream) {
      const text = decoder.write(chunk as Buffer);
      if (text) yield Buffer.from(text, 'utf8');
    }
    const rest = decoder.end();
    if (rest) yield Buffer.from(rest, 'utf8');
  } finally {
    stream.destroy();
  }
}
