// Reading an SIS export: a CSV file as a stream of rows, decoded from its encoding, with the
// header read (and checked) before any row. Everything that is wrong with the file as a whole
// (unreadable, wrong encoding, missing columns, broken quoting) stops the run with a RunError
// naming the file and, where there is one, the row and column.
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
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
const MAX_RECORD_BYTES = 32 * 1024 * 1024;

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
  const parser = parse({
    bom: true,
    delimiter: options.delimiter ?? ',',
    relax_column_count: true,
    relax_quotes: true,
    skip_empty_lines: true,
    max_record_size: MAX_RECORD_BYTES,
  });
  const source = createReadStream(file);
  source.on('error', (error) => parser.destroy(error));
  decoder.on('error', (error: Error) => parser.destroy(error));
  source.pipe(decoder).pipe(parser);
  const records = parser[Symbol.asyncIterator]() as AsyncIterator<string[]>;

  let count = 0;
  const next = async (): Promise<IteratorResult<string[]>> => {
    try {
      return await records.next();
    } catch (error) {
      throw csvFailure(error, file, count + 1);
    }
  };

  const first = await next();
  if (first.done) return { file, header: [], rows: (async function* () {})() };
  const header = first.value.map((name) => name.trim());
  const missing = (options.requiredColumns ?? []).filter((c) => !header.some((h) => h.toLowerCase() === c.toLowerCase()));
  if (missing.length) {
    source.destroy();
    throw new RunError(
      'input_invalid',
      `${file}: the header lacks the required column${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (the header has: ${header.slice(0, 30).join(', ') || 'nothing'})`,
      { file, row: 0 },
    );
  }
  const strict = decoder instanceof StrictUtf8Decoder ? decoder : undefined;
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
              `${file}: row ${count}, column ${header[column] ?? column + 1}: bytes that are not UTF-8 (${JSON.stringify(r.value[column]!.slice(0, 60))}); if the file was exported in another encoding, give it with --encoding (e.g. windows-1252)`,
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

async function checkReadable(file: string, encoding: string | undefined): Promise<void> {
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

function csvFailure(error: unknown, file: string, row: number): RunError {
  if (error instanceof RunError) return error;
  if (error instanceof CsvError) {
    const line = (error as CsvError & { lines?: number }).lines;
    const reason: Record<string, string> = {
      CSV_QUOTE_NOT_CLOSED: 'a quoted field is never closed (a " without its closing ")',
      CSV_MAX_RECORD_SIZE: `a row is larger than ${MAX_RECORD_BYTES / 1024 / 1024} MB: this does not look like a CSV export`,
      CSV_INVALID_CLOSING_QUOTE: 'a closing quote is followed by other characters',
      CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE: 'a closing quote is followed by other characters',
    };
    return new RunError('input_invalid', `${file}: ${row === 1 ? 'header' : `row ${row - 1}`}${line ? ` (line ${line})` : ''}: ${reason[error.code] ?? error.message}`, { file, row: row - 1, line });
  }
  const code = (error as NodeJS.ErrnoException).code;
  return new RunError('input_unreadable', `cannot read input ${file}: ${code ?? (error as Error).message}`, { file });
}

/**
 * Decodes UTF-8 strictly while it can: at the first byte sequence that is not UTF-8 it records
 * the fact and goes on leniently (with U+FFFD in place of the bad bytes), so that the reader can
 * name the row and column where it shows before it stops the run.
 */
class StrictUtf8Decoder extends Transform {
  invalid = false;
  private decoder = new TextDecoder('utf-8', { fatal: true });
  constructor() {
    // Strings go on to the parser as they are: no second round through a Buffer.
    super({ readableObjectMode: true });
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    const text = this.decode(chunk, true);
    if (text) this.push(text);
    done();
  }
  override _flush(done: TransformCallback): void {
    const text = this.decode(undefined, false);
    if (text) this.push(text);
    done();
  }
  private decode(chunk: Buffer | undefined, stream: boolean): string {
    try {
      return this.decoder.decode(chunk, { stream });
    } catch {
      this.invalid = true;
      this.decoder = new TextDecoder('utf-8');
      return this.decoder.decode(chunk, { stream });
    }
  }
}
