// Validation and packaging in batches, the last stage of convert (src/pipeline/convert.ts): users go to
// the validator (xmllint, or libxmljs2's processes: validate-pool.ts) a batch at a time, each
// batch as a temporary file, and into the zip in row order once it has answered; a user the XSD
// refuses is rejected against its CSV rows and left out.
//
// A batch's XML goes to its temporary file as its users come, through one small buffer, and is
// read back through another for the zip once the validator has answered. Both buffers are reused
// from batch to batch, and the mapping threads' buffers go back to them at once: the XML in
// memory is under a megabyte whatever the size of the run, and none of it waits for V8 to collect
// it (bench/RESULTS.md).
import { closeSync, openSync, writeSync } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { RunError, type RowProblem, type RowWarning } from '../shared/errors.js';
import type { Packager } from './package.js';
import { csvParseOptions } from './read.js';
import type { RunLog } from './report.js';
import type { XmlProblem } from './validate.js';
import type { Validators } from './validate-pool.js';
import type { UserSink } from './user-sink.js';

/** A row as the report accounts for it; `source` gives its values to the rejects file. */
export interface ReportRow {
  /** The row's place in the run's inputs, run-wide: the report lists rows in its order. */
  ordinal: number;
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
  /** For a merged user: the rule that chose the winning row's group, and why that row won. */
  groupRule?: string;
  merge?: string;
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
  /** The code of the user group rule of each single-row user (the mapping threads' groupRules). */
  groupRules: number[];
  /** Each user's fingerprint, when its mapping thread computed it (UserSink.fingerprints). */
  fingerprints: (string | undefined)[];
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
  /** The file of the batch being filled: <users>, then each user's XML. */
  private filling: BatchFile | undefined;
  /** What BatchFile writes through and what a validated batch is read back through, reused for every batch. */
  private readonly writeBuffer = Buffer.allocUnsafeSlow(256 * 1024);
  private readBuffer = Buffer.allocUnsafeSlow(512 * 1024);
  /** Batches sent to the validators, oldest first; written to the zip in this order. */
  private inFlight: SentBatch[] = [];
  private sent = 0;
  /** Users taken, users whose batch the validator has answered, and users put into the zip: for progress. */
  added = 0;
  checked = 0;
  zipped = 0;

  constructor(
    private readonly validators: Validators,
    private readonly packager: Packager,
    private readonly runLog: RunLog,
    private readonly schemaPath: string,
    private readonly labelOf: (ordinal: number) => string,
    /** Where the batches' files go. */
    private readonly dir: string,
    /** Told of each user as it goes into the zip (the run state). */
    private readonly sink?: UserSink,
    /** The names of the user group rules, by code (map-worker.ts's groupRuleNames). */
    private readonly groupRuleNames: readonly string[] = [],
  ) {}

  /**
   * Takes a user: the XML of the row with this ordinal, from `source`, or of a merged user
   * (`detail.rows`). The XML is copied at once: `xml` may be reused as soon as this is called.
   */
  add(xml: Buffer, ordinal: number, source: PieceSource | undefined, detail?: UserDetail, groupRule = 0, fingerprint?: string): Promise<void> | undefined {
    const batch = this.batch;
    if (!this.filling) {
      this.filling = new BatchFile(path.join(this.dir, `batch-${++this.sent}.xml`), this.writeBuffer);
      this.filling.append(USERS_OPEN_BYTES);
    }
    this.added++;
    if (detail) batch.details.set(batch.ordinals.length, detail);
    batch.ordinals.push(ordinal);
    batch.sources.push(source);
    batch.groupRules.push(groupRule);
    batch.fingerprints.push(fingerprint);
    batch.ends.push(this.filling.append(xml));
    // A promise only when the batch is full: most users need no await (see Packager.add).
    return batch.ordinals.length >= this.validators.batchUsers ? this.send() : undefined;
  }

  /** Closes the file of a batch still being filled, when the run stops early. */
  discard(): void {
    this.filling?.abandon();
    this.filling = undefined;
  }

  /** Users validated and zipped so far, as progress shows them. */
  counts(): Record<string, number> {
    return { validated: this.checked, zipped: this.zipped };
  }

  /** Sends what is left and writes every batch still in flight; `onBatch` after each. */
  async flush(onBatch?: () => void): Promise<void> {
    await this.send();
    while (this.inFlight.length) {
      await this.writeOldest();
      onBatch?.();
    }
  }

  private async send(): Promise<void> {
    const filling = this.filling;
    if (!filling) return;
    this.filling = undefined;
    filling.close(USERS_CLOSE_BYTES);
    const problems = this.validators.validate(filling.file);
    problems.catch(() => {}); // awaited in order by writeOldest
    this.inFlight.push({ ...this.batch, file: filling.file, problems });
    this.batch = newBatch();
    // One batch a validator and one waiting keeps every core busy; more would only hold more
    // users in memory.
    if (this.inFlight.length > this.validators.size + 1) await this.writeOldest();
  }

  private async writeOldest(): Promise<void> {
    const { file, ordinals, ends, sources, details, groupRules, fingerprints, problems } = this.inFlight.shift()!;
    const failures = new Map<number, string[]>();
    const answered = await problems;
    this.checked += ordinals.length;
    for (const problem of answered) {
      const index = problem.userIndex ?? -1;
      // Outside any user, the fault is in the XML this tool writes, not in the data: an internal error.
      if (index < 0) throw new Error(`the XML written does not fit the schema ${this.schemaPath} outside any user (line ${problem.line}: ${problem.message})`);
      failures.set(index, [...(failures.get(index) ?? []), problem.message]);
    }
    const handle = await open(file, 'r');
    try {
      await this.writeUsers(handle, { file, ordinals, ends, sources, details, groupRules, fingerprints }, failures);
    } finally {
      await handle.close();
    }
    await rm(file, { force: true });
  }

  /** The users of a validated batch, read back from its file through one window, into the zip or the rejects. */
  private async writeUsers(handle: FileHandle, { file, ordinals, ends, sources, details, groupRules, fingerprints }: Batch & { file: string }, failures: Map<number, string[]>): Promise<void> {
    let windowStart = 0;
    let windowEnd = 0;
    let start = USERS_OPEN_BYTES.length;
    for (let i = 0; i < ordinals.length; i++) {
      const end = ends[i]!;
      if (start < windowStart || end > windowEnd) {
        // The window moves on (once in about 500 KB); a user larger than it gets a larger one.
        if (end - start > this.readBuffer.length) this.readBuffer = Buffer.allocUnsafeSlow(end - start);
        const { bytesRead } = await handle.read(this.readBuffer, 0, this.readBuffer.length, start);
        windowStart = start;
        windowEnd = start + bytesRead;
        if (end > windowEnd) throw new Error(`${file} ends at byte ${windowEnd}, before the user that ends at ${end}`);
      }
      const userXml = this.readBuffer.subarray(start - windowStart, end - windowStart);
      start = end;
      const detail = details.get(i);
      const warnings = detail?.warnings ?? (NO_WARNINGS as RowWarning[]);
      const messages = failures.get(i);
      if (messages) {
        const problem: RowProblem = { code: 'schema_invalid', message: `Alma's schema refuses this user: ${messages.join('; ')}` };
        const rows = detail?.rows ?? [this.rowOf(sources[i]!, ordinals[i]!, warnings)];
        for (const row of rows) this.runLog.rejected(row.ordinal, row.label, [problem], row === rows[0] ? warnings : row.warnings, row.source);
        continue;
      }
      const rows = detail?.rows;
      const label = rows ? rows[0]!.label : this.labelOf(ordinals[i]!);
      // The run state is told first: on a delta night it leaves an unchanged user out of the zip.
      const send = this.sink ? this.sink.written(userXml, rows ? rows.map((r) => r.label) : [label], (rows ? detail!.groupRule : this.groupRuleNames[groupRules[i]!]) ?? '', detail?.merge, fingerprints[i]) : true;
      if (send) {
        const wait = this.packager.add(userXml);
        if (wait) await wait;
        this.zipped++;
      }
      this.runLog.written(rows ? rows[0]!.ordinal : ordinals[i]!, label, warnings, !send);
      if (rows) for (let r = 1; r < rows.length; r++) this.runLog.merged(rows[r]!.ordinal, rows[r]!.label, label, detail!.primaryId, rows[r]!.warnings);
    }
  }

  /** A single-row user's row, as the report gives it: its values parsed again from its piece. */
  private rowOf(piece: PieceSource, ordinal: number, warnings: RowWarning[]): ReportRow {
    const index = ordinal - piece.firstOrdinal;
    return {
      ordinal,
      label: this.labelOf(ordinal),
      warnings,
      source: { file: piece.file, row: piece.firstRow + index, header: piece.header, values: piece.records.records()[index] ?? [] },
    };
  }
}

function newBatch(): Batch {
  return { ordinals: [], ends: [], sources: [], details: new Map(), groupRules: [], fingerprints: [] };
}

/** A batch's document, written to its file as its users come, through one small buffer. */
class BatchFile {
  private readonly fd: number;
  private used = 0;
  /** Bytes written and buffered: where the next user starts. */
  private length = 0;

  constructor(
    readonly file: string,
    private readonly buffer: Buffer,
  ) {
    try {
      this.fd = openSync(file, 'w', 0o600);
    } catch (error) {
      throw writeFailed(file, error);
    }
  }

  /** Appends bytes (copied at once); returns the length of the document so far. */
  append(bytes: Uint8Array): number {
    if (this.used + bytes.length > this.buffer.length) this.flush();
    if (bytes.length > this.buffer.length) this.write(bytes);
    else {
      this.buffer.set(bytes, this.used);
      this.used += bytes.length;
    }
    return (this.length += bytes.length);
  }

  /** Appends the last bytes, writes what is buffered and closes the file (closed also if a write fails). */
  close(last: Uint8Array): void {
    try {
      this.append(last);
      this.flush();
    } finally {
      closeSync(this.fd);
    }
  }

  /** Closes the file as it is (the run has stopped). */
  abandon(): void {
    closeSync(this.fd);
  }

  private flush(): void {
    if (this.used === 0) return;
    this.write(this.buffer.subarray(0, this.used));
    this.used = 0;
  }

  private write(bytes: Uint8Array): void {
    try {
      for (let done = 0; done < bytes.length; ) done += writeSync(this.fd, bytes, done, bytes.length - done);
    } catch (error) {
      throw writeFailed(this.file, error);
    }
  }
}

function writeFailed(file: string, error: unknown): RunError {
  return new RunError('output_failed', `cannot write users to be validated to ${file}: ${(error as NodeJS.ErrnoException).code ?? error}`, { file });
}
