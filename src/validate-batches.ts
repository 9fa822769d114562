// Validation and packaging in batches, the last stage of convert (src/convert.ts): users go to
// the validator (xmllint, or libxmljs2's processes: validate-pool.ts) a batch at a time, each
// batch as a temporary file, and into the zip in row order once it has answered; a user the XSD
// refuses is rejected against its CSV rows and left out.
//
// A batch's XML is copied into one buffer as its users come, written to a temporary file when the
// batch is full, and read back into one buffer for the zip once the validator has answered. Both
// buffers are reused from batch to batch, and the mapping threads' buffers go back to them at
// once: the XML in memory stays a few megabytes whatever the size of the run, and none of it
// waits for V8 to collect it (bench/RESULTS.md).
import { open, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { RunError, type RowProblem, type RowWarning } from './errors.js';
import type { Packager } from './package.js';
import { csvParseOptions } from './read.js';
import type { RunLog } from './report.js';
import type { XmlProblem } from './validate.js';
import type { Validators } from './validate-pool.js';

/** A row as the report accounts for it; `source` gives its values to the rejects file. */
export interface ReportRow {
  label: string;
  warnings: RowWarning[];
  source: { file: string; row: number; header: string[]; values: string[] };
}

/**
 * Where the report finds the values of a piece's rows, should a user be rejected later (by the
 * XSD): the piece is parsed again, only then, and only once.
 */
export interface PieceSource {
  file: string;
  header: string[];
  /** Run-wide ordinal and row number (in its file) of the piece's first row. */
  firstOrdinal: number;
  firstRow: number;
  records: PieceRecords;
}

/** A piece's records, parsed again on first use. */
export class PieceRecords {
  private parsed: string[][] | undefined;
  constructor(
    private readonly bytes: Buffer,
    private readonly delimiter: string,
  ) {}
  records(): string[][] {
    return (this.parsed ??= parse(this.bytes, csvParseOptions(this.delimiter)) as string[][]);
  }
}

/**
 * What the report needs of a user beyond its row: for one with warnings, and for a merged user,
 * whose rows are all listed (rows[0] is the row it is written as).
 */
export interface UserDetail {
  primaryId: string;
  warnings: RowWarning[];
  rows?: ReportRow[];
}

/**
 * A batch's users, as parallel arrays: most users need only their row's ordinal and the piece it
 * came from, and no object of their own. (Holding an object graph per user while its batch was in
 * flight made V8 promote about 1 KB a user to its old generation.)
 */
interface Batch {
  ordinals: number[];
  /** Where each user's XML ends in the batch's document; the first starts after <users>. */
  ends: number[];
  /** The piece a single-row user came from (undefined for a merged user). */
  sources: (PieceSource | undefined)[];
  /** By index in the batch: the users that need more (see UserDetail). */
  details: Map<number, UserDetail>;
}

interface SentBatch extends Batch {
  file: string;
  problems: Promise<XmlProblem[]>;
}

const USERS_OPEN_BYTES = Buffer.from('<users>\n');
const USERS_CLOSE_BYTES = Buffer.from('</users>\n');
const NO_WARNINGS: readonly RowWarning[] = Object.freeze([]);

export class BatchValidator {
  private batch: Batch = newBatch();
  /** The batch being filled: <users>, then each user's XML. */
  private readonly filling: GrowingBuffer;
  /** A validated batch, read back for the zip. */
  private readonly readBack: GrowingBuffer;
  /** Batches sent to the validators, oldest first; written to the zip in this order. */
  private inFlight: SentBatch[] = [];
  private sent = 0;

  constructor(
    private readonly validators: Validators,
    private readonly packager: Packager,
    private readonly runLog: RunLog,
    private readonly schemaPath: string,
    private readonly labelOf: (ordinal: number) => string,
    /** Where the batches' files go. */
    private readonly dir: string,
  ) {
    // Sized for a batch of users of about 2.4 KB (the bench's average is 2.2 KB); they grow if need be.
    this.filling = new GrowingBuffer(validators.batchUsers * 2400);
    this.readBack = new GrowingBuffer(validators.batchUsers * 2400);
    this.filling.append(USERS_OPEN_BYTES);
  }

  /**
   * Takes a user: the XML of the row with this ordinal, from `source`, or of a merged user
   * (`detail.rows`). The XML is copied at once: `xml` may be reused as soon as this is called.
   */
  add(xml: Buffer, ordinal: number, source: PieceSource | undefined, detail?: UserDetail): Promise<void> | undefined {
    const batch = this.batch;
    if (detail) batch.details.set(batch.ordinals.length, detail);
    batch.ordinals.push(ordinal);
    batch.sources.push(source);
    batch.ends.push(this.filling.append(xml));
    // A promise only when the batch is full: most users need no await (see Packager.add).
    return batch.ordinals.length >= this.validators.batchUsers ? this.send() : undefined;
  }

  /** Sends what is left and writes every batch still in flight. */
  async flush(): Promise<void> {
    await this.send();
    while (this.inFlight.length) await this.writeOldest();
  }

  private async send(): Promise<void> {
    if (this.batch.ordinals.length === 0) return;
    const file = path.join(this.dir, `batch-${++this.sent}.xml`);
    this.filling.append(USERS_CLOSE_BYTES);
    try {
      await writeFile(file, this.filling.bytes());
    } catch (error) {
      throw new RunError('output_failed', `cannot write users to be validated to ${file}: ${(error as NodeJS.ErrnoException).code ?? error}`, { file });
    }
    const problems = this.validators.validate(file);
    problems.catch(() => {}); // awaited in order by writeOldest
    this.inFlight.push({ ...this.batch, file, problems });
    this.batch = newBatch();
    this.filling.reset();
    this.filling.append(USERS_OPEN_BYTES);
    // One batch a validator and one waiting keeps every core busy; more would only hold more
    // users in memory.
    if (this.inFlight.length > this.validators.size + 1) await this.writeOldest();
  }

  private async writeOldest(): Promise<void> {
    const { file, ordinals, ends, sources, details, problems } = this.inFlight.shift()!;
    const failures = new Map<number, string[]>();
    for (const problem of await problems) {
      const index = problem.userIndex ?? -1;
      // Outside any user, the fault is in the XML this tool writes, not in the data: an internal error.
      if (index < 0) throw new Error(`the XML written does not fit the schema ${this.schemaPath} outside any user (line ${problem.line}: ${problem.message})`);
      failures.set(index, [...(failures.get(index) ?? []), problem.message]);
    }
    const xml = await this.readBack.readFile(file, ends[ends.length - 1]!);
    await rm(file, { force: true });
    let start = USERS_OPEN_BYTES.length;
    for (let i = 0; i < ordinals.length; i++) {
      const end = ends[i]!;
      const userXml = xml.subarray(start, end);
      start = end;
      const detail = details.get(i);
      const warnings = detail?.warnings ?? (NO_WARNINGS as RowWarning[]);
      const messages = failures.get(i);
      if (messages) {
        const problem: RowProblem = { code: 'schema_invalid', message: `Alma's schema refuses this user: ${messages.join('; ')}` };
        const rows = detail?.rows ?? [this.rowOf(sources[i]!, ordinals[i]!, warnings)];
        for (const row of rows) this.runLog.rejected(row.label, [problem], row === rows[0] ? warnings : row.warnings, row.source);
        continue;
      }
      const wait = this.packager.add(userXml);
      if (wait) await wait;
      const rows = detail?.rows;
      const label = rows ? rows[0]!.label : this.labelOf(ordinals[i]!);
      this.runLog.written(label, warnings);
      if (rows) for (let r = 1; r < rows.length; r++) this.runLog.merged(rows[r]!.label, label, detail!.primaryId, rows[r]!.warnings);
    }
  }

  /** A single-row user's row, as the report gives it: its values parsed again from its piece. */
  private rowOf(piece: PieceSource, ordinal: number, warnings: RowWarning[]): ReportRow {
    const index = ordinal - piece.firstOrdinal;
    return {
      label: this.labelOf(ordinal),
      warnings,
      source: { file: piece.file, row: piece.firstRow + index, header: piece.header, values: piece.records.records()[index] ?? [] },
    };
  }
}

function newBatch(): Batch {
  return { ordinals: [], ends: [], sources: [], details: new Map() };
}

/** Bytes appended into one buffer that grows when it must and is reused, never given up. */
class GrowingBuffer {
  private buffer: Buffer;
  private length = 0;
  constructor(capacity: number) {
    this.buffer = Buffer.allocUnsafeSlow(capacity);
  }
  /** Appends bytes; returns the length so far. */
  append(bytes: Uint8Array): number {
    this.reserve(this.length + bytes.length, this.length);
    this.buffer.set(bytes, this.length);
    return (this.length += bytes.length);
  }
  /** Replaces the content with a file's first `size` bytes, and returns them. */
  async readFile(file: string, size: number): Promise<Buffer> {
    this.reserve(size, 0);
    const handle = await open(file, 'r');
    try {
      const { bytesRead } = await handle.read(this.buffer, 0, size, 0);
      if (bytesRead !== size) throw new Error(`${file}: ${bytesRead} bytes read back of the ${size} written`);
    } finally {
      await handle.close();
    }
    this.length = size;
    return this.bytes();
  }
  bytes(): Buffer {
    return this.buffer.subarray(0, this.length);
  }
  reset(): void {
    this.length = 0;
  }
  private reserve(size: number, keep: number): void {
    if (size <= this.buffer.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(size, Math.ceil(this.buffer.length * 1.5)));
    this.buffer.copy(grown, 0, 0, keep);
    this.buffer = grown;
  }
}
