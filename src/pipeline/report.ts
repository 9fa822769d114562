// The run's account of itself: what happened to every row (written, merged into another row's
// user, or rejected with reasons), counted so that rows = users + merged + rejected always holds.
// Row outcomes go to a temporary file as they happen, not into memory, so that a million-row run
// can still list every row in report.json. The rejected rows, as they came in, go to a
// spreadsheet-safe <stem>.rejects.csv.
import { closeSync, createReadStream, createWriteStream, fchmodSync, openSync, type WriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { RunError, type RowProblem, type RowWarning, type WarningKind } from '../shared/errors.js';

export interface Counts {
  rows: number;
  users: number;
  merged: number;
  rejected: number;
  warnings: number;
}

export interface GuardTrip {
  guard: 'max_rejected' | 'min_users';
  limit: string;
  actual: number;
  message: string;
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

export class RunLog {
  readonly counts: Counts = { rows: 0, users: 0, merged: 0, rejected: 0, warnings: 0 };
  readonly warnings = new Map<WarningKind, { count: number; examples: string[] }>();
  readonly merges: { count: number; examples: { primary_id: string; rows: string[]; user_group?: string; reason: string }[] } = { count: 0, examples: [] };
  readonly rejections = new Map<string, { count: number; examples: string[] }>();
  private details: WriteStream;
  private pendingDetails = '';
  private rejects?: WriteStream;
  private rejectsColumns: string[] = [];
  /** The mapping's sensitive columns, without case. */
  private readonly sensitive: Set<string>;

  constructor(
    private readonly detailsTemp: string,
    private readonly rejectsTemp: string,
    sensitiveColumns: string[] = [],
  ) {
    this.sensitive = new Set(sensitiveColumns.map((c) => c.toLowerCase()));
    this.details = ownerOnlyStream(detailsTemp);
  }

  /** Columns of the rejects file: where the row came from and why, then every input column but the sensitive ones. */
  setRejectsColumns(columns: string[]): void {
    this.rejectsColumns = columns.filter((c) => !this.sensitive.has(c.toLowerCase()));
  }

  row(): void {
    this.counts.rows++;
  }

  written(label: string, warnings: RowWarning[]): void {
    this.counts.users++;
    this.warn(label, warnings);
    this.detail(label, warnings.length ? `User written (${warnings.map((w) => w.message).join('; ')})` : 'User written');
  }

  merged(label: string, into: string, primaryId: string, warnings: RowWarning[]): void {
    this.counts.merged++;
    this.warn(label, warnings);
    this.detail(label, `Merged into row ${into} (${primaryId})`);
  }

  mergeDecision(primaryId: string, rows: string[], group: string | undefined, reason: string): void {
    this.merges.count++;
    if (this.merges.examples.length < 20) this.merges.examples.push({ primary_id: primaryId, rows, user_group: group, reason });
  }

  rejected(label: string, problems: RowProblem[], warnings: RowWarning[], source: { file: string; row: number; header: string[]; values: string[] }): void {
    this.counts.rejected++;
    this.warn(label, warnings);
    const reason = problems.map((p) => p.message).join('; ');
    this.detail(label, `Rejected: ${reason}`);
    for (const p of problems) {
      const entry = this.rejections.get(p.code) ?? { count: 0, examples: [] };
      entry.count++;
      if (entry.examples.length < EXAMPLES) entry.examples.push(label);
      this.rejections.set(p.code, entry);
    }
    this.rejects ??= this.openRejects();
    const secret = this.sensitive.size ? secretPositions(source.header, source.values.length, this.sensitive) : undefined;
    const byName = new Map(source.header.map((h, i) => [h, secret?.has(i) ? '' : (source.values[i] ?? '')]));
    const extra = source.values.length > source.header.length ? source.values.slice(source.header.length).map((v, i) => (secret?.has(source.header.length + i) ? '' : v)) : [];
    this.rejects.write(csvLine([source.file, String(source.row), reason, ...this.rejectsColumns.map((c) => byName.get(c) ?? ''), ...extra]));
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

  private detail(label: string, text: string): void {
    // Gathered into writes of about 64 KB: a write a row queued an object a row in the stream
    // until the file had taken it, often long enough for V8 to move it to its old generation.
    this.pendingDetails += JSON.stringify(label) + ':' + JSON.stringify(text) + '\n';
    if (this.pendingDetails.length >= 65536) this.flushDetails();
  }

  private flushDetails(): void {
    if (this.pendingDetails) this.details.write(this.pendingDetails);
    this.pendingDetails = '';
  }

  /** Ends the temporary files; the rejects file gets its final name if any row was rejected. */
  async close(rejectsFile: string): Promise<string | undefined> {
    this.flushDetails();
    this.details.end();
    await once(this.details, 'close');
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
    const body = JSON.stringify(report, null, 2);
    if (!withDetails) out.write(body + '\n');
    else {
      out.write(body.slice(0, body.lastIndexOf('}')).trimEnd() + ',\n  "details": {');
      let first = true;
      const lines = createInterface({ input: createReadStream(this.detailsTemp), crlfDelay: Infinity });
      for await (const line of lines) {
        if (!line) continue;
        if (!out.write((first ? '\n    ' : ',\n    ') + line)) await once(out, 'drain');
        first = false;
      }
      out.write('\n  }\n}\n');
    }
    out.end();
    await once(out, 'close');
    await rename(temp, file);
    await rm(this.detailsTemp, { force: true });
    return report as Report;
  }

  async discard(): Promise<void> {
    this.details.destroy();
    this.rejects?.destroy();
    await rm(this.detailsTemp, { force: true });
    await rm(this.rejectsTemp, { force: true });
  }
}

/**
 * Adds top-level fields (ones it does not have yet) to a report.json that writeReport wrote, in one
 * step: a temporary file, then renamed. The report is copied as it is, not read into memory (at a
 * million rows its details are tens of megabytes); the new fields come first.
 */
export async function addToReport(file: string, fields: Record<string, unknown>): Promise<void> {
  const temp = `${file}.tmp`;
  const out = ownerOnlyStream(temp);
  const failed = new Promise<never>((_, reject) => out.on('error', reject));
  failed.catch(() => {});
  try {
    const added = Object.entries(fields).map(([key, value]) => `  ${JSON.stringify(key)}: ${JSON.stringify(value, null, 2).replaceAll('\n', '\n  ')}`);
    let first = true;
    for await (const chunk of createReadStream(file)) {
      let bytes = chunk as Buffer;
      if (first) {
        if (bytes.toString('utf8', 0, 2) !== '{\n') throw new Error(`${file} does not start as sis2alma writes a report`);
        bytes = Buffer.concat([Buffer.from(`{\n${added.join(',\n')},\n`), bytes.subarray(2)]);
        first = false;
      }
      if (!out.write(bytes)) await Promise.race([once(out, 'drain'), failed]);
    }
    out.end();
    await Promise.race([once(out, 'close'), failed]);
    await rename(temp, file);
  } catch (error) {
    out.destroy();
    await rm(temp, { force: true });
    throw error;
  }
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
 * A file of patron data: readable by its owner only, whatever the umask, and also when an
 * earlier run left a file of that name (open's mode applies only to a file it creates).
 */
export function ownerOnlyStream(file: string): WriteStream {
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
  return createWriteStream(file, { fd });
}

function plural(n: number, one: string, many = one + 's'): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** One sentence for people and for the push endpoint's JSON, in the Infiniti import's manner. */
export function summarise(counts: Counts, trip?: GuardTrip): string {
  const parts = [`${plural(counts.rows, 'row')} processed.`, `${plural(counts.users, 'user')} written.`, `${plural(counts.merged, 'row')} merged.`, `${plural(counts.rejected, 'row')} failed.`];
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
    const limit = max.count ?? Math.floor(((max.percent ?? 0) / 100) * counts.rows);
    if (counts.rejected > limit) {
      const share = counts.rows ? ((100 * counts.rejected) / counts.rows).toFixed(1) : '0';
      return {
        guard: 'max_rejected',
        limit: guards.maxRejected ?? '5%',
        actual: counts.rejected,
        message: `${counts.rejected} of ${counts.rows} rows were rejected (${share}%), over the limit of ${guards.maxRejected ?? '5%'} (max_rejected)`,
      };
    }
  }
  if (guards.minUsers !== undefined && counts.users < guards.minUsers) {
    return { guard: 'min_users', limit: String(guards.minUsers), actual: counts.users, message: `only ${counts.users} users would be written, fewer than the minimum of ${guards.minUsers} (min_users)` };
  }
  return undefined;
}
