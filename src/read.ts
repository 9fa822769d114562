// Reading an SIS export: a CSV file as a stream of rows, decoded from its encoding, with the
// header read (and checked) before any row. Everything that is wrong with the file as a whole
// (unreadable, wrong encoding, missing columns, broken quoting) stops the run with a RunError
// naming the file and, where there is one, the row and column.
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { isUtf8 as isUtf8Bytes } from 'node:buffer';
import { Transform, type TransformCallback } from 'node:stream';
import { parse, CsvError } from 'csv-parse';
import iconv from 'iconv-lite';
import { RunError } from './errors.js';

export interface CsvOptions {
  encoding?: string;
  delimiter?: string;
  /** Columns the file must have; compared without case. */
  requiredColumns?: string[];
}

export interface CsvFile {
  file: string;
  /** Column names as the header has them, trimmed. */
  header: string[];
  /** Data rows; `row` counts from 1 = the first row after the header. */
  rows: AsyncGenerator<{ row: number; values: string[] }>;
}

/** The largest record accepted: far above any real row, low enough that a file that is not CSV cannot exhaust memory. */
export const MAX_RECORD_BYTES = 32 * 1024 * 1024;

/** How every reader of an export has csv-parse read it. */
export function csvParseOptions(delimiter = ',') {
  return { delimiter, relax_column_count: true, relax_quotes: true, skip_empty_lines: true, max_record_size: MAX_RECORD_BYTES } as const;
}

export function isUtf8(encoding: string | undefined): boolean {
  return !encoding || /^utf-?8$/i.test(encoding);
}

export function checkEncoding(encoding: string | undefined): void {
  if (encoding && !isUtf8(encoding) && !iconv.encodingExists(encoding))
    throw new RunError('usage', `unknown encoding '${encoding}' (try utf-8, windows-1252, latin1 or utf-16le)`);
}

export async function openCsv(file: string, options: CsvOptions = {}): Promise<CsvFile> {
  checkEncoding(options.encoding);
  await checkReadable(file, options.encoding);
  const decoder = isUtf8(options.encoding) ? new StrictUtf8Decoder() : iconv.decodeStream(options.encoding!, { stripBOM: true });
  const parser = parse({ ...csvParseOptions(options.delimiter), bom: true });
  const source = createReadStream(file);
  source.on('error', (error) => parser.destroy(error));
  decoder.on('error', (error: Error) => parser.destroy(error));
  source.pipe(decoder).pipe(parser);
  const records = parser[Symbol.asyncIterator]() as AsyncIterator<string[]>;

  let count = 0;
  let headerRead = false;
  const next = async (): Promise<IteratorResult<string[]>> => {
    try {
      return await records.next();
    } catch (error) {
      throw csvFailure(error, file, headerRead ? count + 1 : 0);
    }
  };

  const first = await next();
  headerRead = true;
  if (first.done) return { file, header: [], rows: (async function* () {})() };
  const header = first.value.map((name) => name.trim());
  const strict = decoder instanceof StrictUtf8Decoder ? decoder : undefined;
  try {
    checkHeader(file, header, options.requiredColumns ?? [], !!strict?.invalid);
  } catch (error) {
    source.destroy();
    throw error;
  }
  const rows = (async function* () {
    try {
      for (let r = await next(); !r.done; r = await next()) {
        count++;
        // A file declared UTF-8 that is not: name the first row where it shows, never load mojibake.
        if (strict?.invalid) {
          const column = r.value.findIndex((v) => v.includes('\uFFFD'));
          if (column >= 0)
            throw new RunError(
              'input_invalid',
              `${file}, row ${count}, column ${header[column] ?? column + 1}: bytes that are not UTF-8 (at character ${[...r.value[column]!].indexOf('\uFFFD') + 1} of the value); if the file was exported in another encoding, give it with --encoding (e.g. windows-1252)`,
              { file, row: count, column: header[column] ?? column + 1 },
            );
        }
        yield { row: count, values: r.value };
      }
      if (strict?.invalid)
        throw new RunError('input_invalid', `${file}: bytes that are not UTF-8 near the end of the file; give the file's encoding with --encoding (e.g. windows-1252)`, { file });
    } finally {
      source.destroy();
    }
  })();
  return { file, header, rows };
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
}

export async function checkReadable(file: string, encoding: string | undefined): Promise<void> {
  let handle;
  try {
    handle = await open(file, 'r');
    const head = Buffer.alloc(4);
    const { bytesRead } = await handle.read(head, 0, 4, 0);
    if (isUtf8(encoding) && bytesRead >= 2 && ((head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff)))
      throw new RunError('input_invalid', `${file}: the file is UTF-16 (it starts with a UTF-16 byte order mark); run with --encoding ${head[0] === 0xff ? 'utf-16le' : 'utf-16be'}`, { file });
  } catch (error) {
    if (error instanceof RunError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a folder' : code ?? String(error);
    throw new RunError('input_unreadable', `cannot read input ${file}: ${why}`, { file });
  } finally {
    await handle?.close();
  }
}

/** C0 controls other than tab, CR and LF: never in a header a person wrote. */
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F]/;

/** `row` counts data rows from 1; 0 is the header. */
export function csvFailure(error: unknown, file: string, row: number, firstLine = 1): RunError {
  if (error instanceof RunError) return error;
  if (error instanceof CsvError) {
    const lines = (error as CsvError & { lines?: number }).lines;
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

/**
 * Checks that the bytes are UTF-8 and passes them on unchanged: csv-parse works on bytes and
 * decodes each field itself, so decoding here too would convert every byte twice. At the first
 * sequence that is not UTF-8 it records the fact; the parser then shows U+FFFD in its place, and
 * the reader names the row and column where that shows before it stops the run.
 */
class StrictUtf8Decoder extends Transform {
  invalid = false;
  /** The last bytes of a chunk that may begin a character the next chunk ends. */
  private carry: Buffer = Buffer.alloc(0);
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (!this.invalid) {
      const bytes = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
      const end = completeEnd(bytes);
      if (!isUtf8Bytes(bytes.subarray(0, end))) this.invalid = true;
      this.carry = Buffer.from(bytes.subarray(end));
    }
    done(null, chunk);
  }
  override _flush(done: TransformCallback): void {
    if (!this.invalid && this.carry.length && !isUtf8Bytes(this.carry)) this.invalid = true;
    done();
  }
}

/** Where the last complete UTF-8 character of bytes ends (a cut character is at most 3 bytes). */
export function completeEnd(bytes: Buffer): number {
  for (let back = 1; back <= Math.min(3, bytes.length); back++) {
    const b = bytes[bytes.length - back]!;
    if ((b & 0xc0) !== 0x80) {
      // A lead byte: is its character whole?
      const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
      return need > back ? bytes.length - back : bytes.length;
    }
  }
  return bytes.length;
}
