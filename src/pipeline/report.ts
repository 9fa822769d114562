// The run's account of itself: what happened to every row (written, merged into another row's
// user, rejected with reasons, or skipped by a rule of the mapping's skip list), counted so that
// rows = users + merged + rejected + skipped always holds.
// Row outcomes go to a temporary file as they happen, not into memory, so that a million-row run
// can still list every row in report.json. The rejected rows, as they came in, go to a
// spreadsheet-safe <stem>.rejects.csv.
import { closeSync, createReadStream, createWriteStream, fchmodSync, openSync, writeFileSync, type WriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { RunError, type RowProblem, type RowWarning, type WarningKind } from '../shared/errors.js';

export interface Counts {
  rows: number;
  users: number;
  merged: number;
  rejected: number;
  /** Rows the mapping's skip list left out on purpose: not rejections. */
  skipped: number;
  warnings: number;
}

export interface GuardTrip {
  /** max_rejected and min_users here; the run state's guards (src/state/) name their own. */
  guard: 'max_rejected' | 'min_users' | (string & {});
  limit: string;
  actual: number;
  message: string;
  /** Up to five primary ids it concerns (whole in the report; logs give only the message). */
  examples?: string[];
}

export interface Report {
  success: boolean;
  summary: string;
  counts: Counts;
  files: string[];
  details?: Record<string, string>;
  [more: string]: unknown;
}

const EXAMPLES = 5;
/** Bytes of row details sorted in memory at a time (about 13,000 rows); at 1,000,000 rows the report merges some 80 runs. */
const RUN_BYTES = 1 << 20;

function ordinalOf(line: string): number {
  return Number(line.slice(0, line.indexOf('\t')));
}

async function* arrayLines(lines: string[]): AsyncGenerator<string> {
  yield* lines;
}

/** Lines of runs each sorted by ordinal, merged into one sequence in ordinal order. */
async function* mergeRuns(runs: AsyncIterable<string>[]): AsyncGenerator<string> {
  const its = runs.map((r) => r[Symbol.asyncIterator]());
  // Stryker disable next-line ArrayDeclaration: every index read is written first, by advance()
  const heads: (string | undefined)[] = [];
  // Stryker disable next-line ArrayDeclaration: as above
  const keys: number[] = [];
  const advance = async (i: number) => {
    let next = await its[i]!.next();
    // Stryker disable next-line ConditionalExpression: the runs hold no empty line (each line is a row's detail; readline gives none after the last line break)
    while (!next.done && !next.value) next = await its[i]!.next();
    heads[i] = next.done ? undefined : next.value;
    keys[i] = next.done ? Infinity : ordinalOf(next.value);
  };
  for (let i = 0; i < its.length; i++) await advance(i);
  for (;;) {
    let best = -1;
    // Stryker disable next-line EqualityOperator: heads[its.length] is undefined, and no two rows share an ordinal
    for (let i = 0; i < its.length; i++) if (heads[i] !== undefined && (best < 0 || keys[i]! < keys[best]!)) best = i;
    if (best < 0) return;
    yield heads[best]!;
    await advance(best);
  }
}

/** A whole file of patron data at once, readable by its owner only. */
function writeOwnerOnly(file: string, text: string): void {
  const fd = openOwnerOnly(file);
  try {
    writeFileSync(fd, text);
  } catch (error) {
    closeSync(fd);
    throw new RunError('output_failed', `cannot write ${file}: ${(error as NodeJS.ErrnoException).code ?? error}`, { file });
  }
  closeSync(fd);
}

export class RunLog {
  readonly counts: Counts = { rows: 0, users: 0, merged: 0, rejected: 0, skipped: 0, warnings: 0 };
  readonly warnings = new Map<WarningKind, { count: number; examples: string[] }>();
  readonly merges: { count: number; examples: { primary_id: string; rows: string[]; user_group?: string; reason: string }[] } = { count: 0, examples: [] };
  readonly rejections = new Map<string, { count: number; examples: string[] }>();
  /** Skipped rows by the name of the skip rule that left them out. */
  readonly skips = new Map<string, { count: number; examples: string[] }>();
  /**
   * Row details, `ordinal<TAB>"label":"text"` a line, gathered until about RUN_BYTES, then sorted
   * by ordinal (when they came out of order) and written to a file of their own, a run;
   * writeReport merges the runs into row order. Memory holds one run's text at most.
   */
  private pendingDetails = '';
  /** The gathered details of the current run, as bytes: off V8's heap, which many small strings held for a while would grow. */
  private pendingPieces: Buffer[] = [];
  private pendingBytes = 0;
  // Stryker disable next-line BooleanLiteral: sorting lines already in order leaves them so
  private pendingInOrder = true;
  private lastOrdinal = 0;
  private readonly runs: string[] = [];
  /** The last run, sorted, kept in memory by close(). */
  // Stryker disable next-line ArrayDeclaration: close() sets it before writeReport() reads it
  private lastRun: string[] = [];
  private rejects?: WriteStream;
  private rejectsColumns: string[] = [];
  /** The mapping's sensitive columns, without case. */
  private readonly sensitive: Set<string>;

  constructor(
    private readonly detailsTemp: string,
    private readonly rejectsTemp: string,
    // Stryker disable next-line ArrayDeclaration: only a column named "Stryker was here" would tell
    sensitiveColumns: string[] = [],
  ) {
    this.sensitive = new Set(sensitiveColumns.map((c) => c.toLowerCase()));
    // The first run's file, made now (empty, private): the second pass has begun.
    writeOwnerOnly(detailsTemp, '');
  }

  /** Columns of the rejects file: where the row came from and why, then every input column but the sensitive ones. */
  setRejectsColumns(columns: string[]): void {
    this.rejectsColumns = columns.filter((c) => !this.sensitive.has(c.toLowerCase()));
  }

  row(): void {
    this.counts.rows++;
  }

  /** `ordinal` is the row's place in the run's inputs (1 for the first file's row 1): the details are written in its order. */
  /** `leftOut`: a valid user not put into the zip because it is unchanged since the last delivery (a delta night). */
  written(ordinal: number, label: string, warnings: RowWarning[], leftOut = false): void {
    this.counts.users++;
    this.warn(label, warnings);
    const what = leftOut ? 'User unchanged since the last delivery, not sent (delta)' : 'User written';
    this.detail(ordinal, label, warnings.length ? `${what} (${warnings.map((w) => w.message).join('; ')})` : what);
  }

  merged(ordinal: number, label: string, into: string, primaryId: string, warnings: RowWarning[]): void {
    this.counts.merged++;
    this.warn(label, warnings);
    this.detail(ordinal, label, `Merged into row ${into} (${primaryId})`);
  }

  mergeDecision(primaryId: string, rows: string[], group: string | undefined, reason: string): void {
    this.merges.count++;
    if (this.merges.examples.length < 20) this.merges.examples.push({ primary_id: primaryId, rows, user_group: group, reason });
  }

  rejected(ordinal: number, label: string, problems: RowProblem[], warnings: RowWarning[], source: { file: string; row: number; header: string[]; values: string[] }): void {
    this.counts.rejected++;
    this.warn(label, warnings);
    const reason = problems.map((p) => p.message).join('; ');
    this.detail(ordinal, label, `Rejected: ${reason}`);
    for (const p of problems) {
      const entry = this.rejections.get(p.code) ?? { count: 0, examples: [] };
      entry.count++;
      if (entry.examples.length < EXAMPLES) entry.examples.push(label);
      this.rejections.set(p.code, entry);
    }
    this.rejects ??= this.openRejects();
    const secret = this.sensitive.size ? secretPositions(source.header, source.values.length, this.sensitive) : undefined;
    const byName = new Map(source.header.map((h, i) => [h, secret?.has(i) ? '' : (source.values[i] ?? '')]));
    const extra =
      // Stryker disable next-line ConditionalExpression,EqualityOperator: slice() at or past the end gives [] all the same
      source.values.length > source.header.length
        ? source.values.slice(source.header.length).map((v, i) => (secret?.has(source.header.length + i) ? '' : v))
        : [];
    this.rejects.write(csvLine([source.file, String(source.row), reason, ...this.rejectsColumns.map((c) => byName.get(c) ?? ''), ...extra]));
  }

  /** A row the mapping's skip list left out: counted by rule, not in the rejects file. */
  skipped(ordinal: number, label: string, rule: string, warnings: RowWarning[]): void {
    this.counts.skipped++;
    this.warn(label, warnings);
    this.detail(ordinal, label, `Skipped: ${rule}`);
    const entry = this.skips.get(rule) ?? { count: 0, examples: [] };
    entry.count++;
    if (entry.examples.length < EXAMPLES) entry.examples.push(label);
    this.skips.set(rule, entry);
  }

  private openRejects(): WriteStream {
    const stream = ownerOnlyStream(this.rejectsTemp);
    stream.write('\uFEFF' + csvLine(['source_file', 'row', 'reason', ...this.rejectsColumns]));
    return stream;
  }

  warn(label: string, warnings: RowWarning[]): void {
    for (const w of warnings) {
      this.counts.warnings++;
      const entry = this.warnings.get(w.kind) ?? { count: 0, examples: [] };
      entry.count++;
      if (entry.examples.length < EXAMPLES && !entry.examples.includes(label)) entry.examples.push(label);
      this.warnings.set(w.kind, entry);
    }
  }

  private detail(ordinal: number, label: string, text: string): void {
    // Gathered into one string: a write a row queued an object a row in a stream until the file
    // had taken it, often long enough for V8 to move it to its old generation. Rows come nearly
    // in order (a rejected row before the users of its batch, which wait for the validator); the
    // rows of a person of several rows come when the person's last row is read.
    // Stryker disable next-line ConditionalExpression,EqualityOperator: sorting lines in order leaves them so, and no two rows share an ordinal (">=" is killed by the rows given last to first)
    if (ordinal < this.lastOrdinal) this.pendingInOrder = false;
    this.lastOrdinal = ordinal;
    this.pendingDetails += ordinal + '\t' + JSON.stringify(label) + ':' + JSON.stringify(text) + '\n';
    // Stryker disable next-line ConditionalExpression,EqualityOperator: gathering sooner or later moves only where a run is cut ("false", never gathering, never spills: killed by the spill tests)
    if (this.pendingDetails.length >= 65536) this.gatherPending();
    // Stryker disable next-line EqualityOperator: a run cut one row later holds the same rows
    if (this.pendingBytes >= RUN_BYTES) this.spillRun();
  }

  private gatherPending(): void {
    // Stryker disable next-line ConditionalExpression: an empty piece adds nothing to the run
    if (!this.pendingDetails) return;
    const bytes = Buffer.from(this.pendingDetails);
    this.pendingPieces.push(bytes);
    this.pendingBytes += bytes.length;
    this.pendingDetails = '';
  }

  /** The details gathered, in row order, as lines. */
  private sortedPending(): string[] {
    this.gatherPending();
    const lines = Buffer.concat(this.pendingPieces).toString('utf8').split('\n');
    lines.pop();
    this.pendingPieces = [];
    this.pendingBytes = 0;
    const inOrder = this.pendingInOrder;
    // Stryker disable next-line BooleanLiteral: sorting lines in order leaves them so
    this.pendingInOrder = true;
    this.lastOrdinal = 0;
    // Stryker disable next-line ConditionalExpression: as above
    if (inOrder) return lines;
    const keys = lines.map(ordinalOf);
    const order = Array.from(lines.keys()).sort((a, b) => keys[a]! - keys[b]!);
    return order.map((i) => lines[i]!);
  }

  private spillRun(): void {
    const file = this.runs.length === 0 ? this.detailsTemp : this.detailsTemp.replace(/(\.tmp)?$/, `.${this.runs.length + 1}.tmp`);
    this.runs.push(file);
    writeOwnerOnly(file, `${this.sortedPending().join('\n')}\n`);
  }

  /** Ends the temporary files; the rejects file gets its final name if any row was rejected. */
  async close(rejectsFile: string): Promise<string | undefined> {
    this.lastRun = this.sortedPending();
    if (!this.rejects) return undefined;
    this.rejects.end();
    await once(this.rejects, 'close');
    await rename(this.rejectsTemp, rejectsFile);
    return rejectsFile;
  }

  /** Writes report.json (under a temporary name, then renamed), streaming the row details in. */
  async writeReport(file: string, report: Omit<Report, 'details'>): Promise<Report> {
    // Every row is accounted for, even on a clean run: a row written with a warning says which.
    const withDetails = this.counts.rows > 0;
    const temp = `${file}.partial`;
    const out = ownerOnlyStream(temp);
    // A write that fails (a full disk) stops the report with the file named, and takes the
    // half-written report away: it holds patron data.
    const failure = failureOf(out, temp);
    const { failed } = failure;
    try {
      const body = JSON.stringify(report, null, 2);
      if (!withDetails) out.write(body + '\n');
      else {
        out.write(body.slice(0, body.lastIndexOf('}')).trimEnd() + ',\n  "details": {');
        let first = true;
        const runs = [...this.runs.map((f) => createInterface({ input: createReadStream(f), crlfDelay: Infinity })), arrayLines(this.lastRun)];
        for await (const line of mergeRuns(runs)) {
          if (!out.write((first ? '\n    ' : ',\n    ') + line.slice(line.indexOf('\t') + 1))) await Promise.race([once(out, 'drain'), failed]);
          first = false;
        }
        out.write('\n  }\n}\n');
      }
      out.end();
      await Promise.race([once(out, 'close'), failed]);
    } catch (error) {
      out.destroy();
      await rm(temp, { force: true });
      throw failure.error() ?? error;
    }
    await rename(temp, file);
    await this.removeRuns();
    return report as Report;
  }

  private async removeRuns(): Promise<void> {
    for (const run of [this.detailsTemp, ...this.runs]) await rm(run, { force: true });
    // Stryker disable next-line ArrayDeclaration: nothing reads lastRun after the report is written
    this.lastRun = [];
  }

  async discard(): Promise<void> {
    this.rejects?.destroy();
    await this.removeRuns();
    await rm(this.rejectsTemp, { force: true });
  }
}

/**
 * Adds top-level fields (ones it does not have yet) to a report.json that writeReport wrote, in one
 * step: a temporary file, then renamed. The new fields follow `files` (the zips they tell of), so
 * that the report still opens with `success`, `summary` and `counts`. Only the head of the report,
 * before its row details, is read into memory (it is small: examples are capped); the details (at
 * a million rows tens of megabytes) are copied as they are.
 */
export async function addToReport(file: string, fields: Record<string, unknown>): Promise<void> {
  const temp = `${file}.tmp`;
  const out = ownerOnlyStream(temp);
  const failure = failureOf(out, temp);
  const { failed } = failure;
  const write = async (bytes: Buffer | string) => {
    if (!out.write(bytes)) await Promise.race([once(out, 'drain'), failed]);
  };
  try {
    let head: Buffer | undefined = Buffer.alloc(0);
    for await (const chunk of createReadStream(file)) {
      if (!head) {
        await write(chunk as Buffer);
        continue;
      }
      head = Buffer.concat([head, chunk as Buffer]);
      // Stryker disable next-line ConditionalExpression,EqualityOperator: an early way out while reading; withFields refuses the same head
      if (head.length >= 2 && head.toString('utf8', 0, 2) !== '{\n') throw notReport(file);
      const at = head.indexOf(DETAILS_MARK);
      // Stryker disable next-line EqualityOperator: the mark is never at 0 (a report starts with "{")
      if (at < 0) {
        if (head.length > MAX_HEAD_BYTES) throw notReport(file);
        continue;
      }
      const body = withFields(head.toString('utf8', 0, at) + '\n}', fields, file);
      await write(body.slice(0, body.lastIndexOf('}')).trimEnd());
      await write(head.subarray(at));
      head = undefined;
    }
    if (head) await write(withFields(head.toString('utf8'), fields, file) + '\n');
    out.end();
    await Promise.race([once(out, 'close'), failed]);
    await rename(temp, file);
  } catch (error) {
    out.destroy();
    // Stryker disable next-line ObjectLiteral,BooleanLiteral: the temporary file is there (made before the try), so force is never needed
    await rm(temp, { force: true });
    throw failure.error() ?? error;
  }
}

/**
 * A write stream's first error as a RunError naming its file (output_failed): `failed` rejects
 * with it, and `error()` gives it once it has come (once() may see the stream's error first).
 */
function failureOf(out: WriteStream, file: string): { failed: Promise<never>; error: () => RunError | undefined } {
  let error: RunError | undefined;
  const failed = new Promise<never>((_, reject) =>
    out.on('error', (e: NodeJS.ErrnoException) => reject((error = new RunError('output_failed', `cannot write ${file}: ${e.code ?? e.message}`, { file })))),
  );
  failed.catch(() => {});
  return { failed, error: () => error };
}

/** Where writeReport's row details begin: the rest of the report. */
const DETAILS_MARK = Buffer.from(',\n  "details": {');
/** More than any head writeReport writes (its examples are capped): a file past it without details is not a report. */
const MAX_HEAD_BYTES = 64 * 1024 * 1024;

function notReport(file: string): Error {
  return new Error(`${file} does not start as sis2alma writes a report`);
}

/** A report's head (JSON) with the fields added after `files`, pretty-printed as writeReport prints it. */
function withFields(json: string, fields: Record<string, unknown>, file: string): string {
  // Stryker disable next-line ConditionalExpression,StringLiteral: addToReport's early check refuses the same; what it lets by (under 2 bytes) JSON.parse or the test below refuses
  if (!json.startsWith('{\n')) throw notReport(file);
  let report: Record<string, unknown>;
  // Stryker disable BlockStatement: either block emptied leaves report undefined, which the test below refuses
  try {
    report = JSON.parse(json) as Record<string, unknown>;
  } catch {
    throw notReport(file);
  }
  // Stryker restore BlockStatement
  // Stryker disable next-line ConditionalExpression,LogicalOperator: what starts with "{\n" and parses is an object (the checks above); kept for what a change of them lets by
  if (typeof report !== 'object' || report === null || Array.isArray(report)) throw notReport(file);
  const keys = Object.keys(report);
  const after = keys.includes('files') ? 'files' : keys.includes('counts') ? 'counts' : undefined;
  const out: Record<string, unknown> = {};
  if (after === undefined) Object.assign(out, fields);
  for (const key of keys) {
    if (key in fields) continue;
    out[key] = report[key];
    if (key === after) Object.assign(out, fields);
  }
  return JSON.stringify(out, null, 2);
}

/**
 * Where a row's values may hold a sensitive column's value. A ragged row's fields are shifted by
 * the fields it has too many or too few, so the value may sit anywhere from its own column to
 * that many columns away: those are left out too.
 */
export function secretPositions(header: string[], fields: number, sensitive: Set<string>): Set<number> {
  const positions = new Set<number>();
  const shift = fields - header.length;
  header.forEach((name, at) => {
    if (!sensitive.has(name.toLowerCase())) return;
    for (let i = Math.min(at, at + shift); i <= Math.max(at, at + shift); i++) positions.add(i);
  });
  return positions;
}

/**
 * A file of patron data, opened for writing: readable by its owner only, whatever the umask, and
 * also when an earlier run left a file of that name (open's mode applies only to a file it creates).
 */
function openOwnerOnly(file: string): number {
  let fd: number;
  try {
    fd = openSync(file, 'w', 0o600);
  } catch (error) {
    throw new RunError('output_failed', `cannot write ${file}: ${(error as NodeJS.ErrnoException).code ?? error}`, { file });
  }
  try {
    fchmodSync(fd, 0o600);
  } catch (error) {
    closeSync(fd);
    throw new RunError('output_failed', `cannot make ${file} private (mode 600): ${(error as NodeJS.ErrnoException).code ?? error}`, { file });
  }
  return fd;
}

/** A stream to a file of patron data, readable by its owner only (openOwnerOnly). */
export function ownerOnlyStream(file: string): WriteStream {
  return createWriteStream(file, { fd: openOwnerOnly(file) });
}

function plural(n: number, one: string, many = one + 's'): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** One sentence for people and for the push endpoint's JSON, in the Infiniti import's manner. */
export function summarise(counts: Counts, trip?: GuardTrip): string {
  const parts = [`${plural(counts.rows, 'row')} processed.`, `${plural(counts.users, 'user')} written.`, `${plural(counts.merged, 'row')} merged.`, `${plural(counts.rejected, 'row')} failed.`];
  if (counts.skipped) parts.push(`${plural(counts.skipped, 'row')} skipped.`);
  if (counts.warnings) parts.push(`${plural(counts.warnings, 'warning')}.`);
  if (trip) parts.push(`Not delivered: ${trip.message}.`);
  return parts.join(' ');
}

/** A rejected row must be safe to open in a spreadsheet: a cell that could run as a formula is neutralised. */
export function spreadsheetSafe(value: string): string {
  return /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
}

function csvLine(values: string[]): string {
  return (
    values
      .map((raw) => {
        const v = spreadsheetSafe(raw);
        return /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
      })
      .join(',') + '\r\n'
  );
}

/** Reads a guard limit: "25" (rows) or "5%" (of all rows). */
export function parseMaxRejected(text: string): { count?: number; percent?: number } | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$/.exec(text);
  if (!m) return undefined;
  return m[2] ? { percent: Number(m[1]) } : Number.isInteger(Number(m[1])) ? { count: Number(m[1]) } : undefined;
}

export function checkGuards(counts: Counts, guards: { maxRejected?: string; minUsers?: number }): GuardTrip | undefined {
  const max = parseMaxRejected(guards.maxRejected ?? '5%');
  if (max) {
    // Skipped rows were left out on purpose: a share is of the rows that were not.
    const rows = counts.rows - (counts.skipped ?? 0);
    const limit = max.count ?? Math.floor(((max.percent ?? 0) / 100) * rows);
    if (counts.rejected > limit) {
      const share = rows ? ((100 * counts.rejected) / rows).toFixed(1) : '0';
      const skipped = counts.skipped ? `, not counting ${counts.skipped} skipped` : '';
      return {
        guard: 'max_rejected',
        limit: guards.maxRejected ?? '5%',
        actual: counts.rejected,
        message: `${counts.rejected} of ${rows} rows were rejected (${share}%${skipped}), over the limit of ${guards.maxRejected ?? '5%'} (max_rejected)`,
      };
    }
  }
  if (counts.users < (guards.minUsers ?? 0)) {
    return { guard: 'min_users', limit: String(guards.minUsers), actual: counts.users, message: `only ${counts.users} users would be written, fewer than the minimum of ${guards.minUsers} (min_users)` };
  }
  return undefined;
}
