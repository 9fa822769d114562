// The nightly job, top-down. Open this file first: it is the design of the pipeline.
//
//   read rows → map → merge multi-role people → write XML → validate → zip → report
//
// The inputs are read twice. The first pass only indexes primary ids (a compact hash index,
// not the users), so that the second pass knows, for each row, whether more rows of the same
// person are still to come. Single-role people (nearly everyone) go straight through; the rows
// of a multi-role person wait only until that person's last row has been read. Users then go to
// the XSD check in batches and into the zip as a stream: memory stays flat as the input grows.
import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { AlmaUser } from './alma.js';
import { RunError, EXIT_CODES, type RowProblem, type RowWarning } from './errors.js';
import { silentLogger, type Logger } from './log.js';
import { loadMapping } from './mapping/load.js';
import type { Mapping } from './mapping/model.js';
import { openCsv } from './read.js';
import { compileMapping, type MapResult } from './map.js';
import { IdIndex, idKey, mergeUsers, type MergeMember } from './merge.js';
import { userXml } from './xml.js';
import { AlmaSchema, type XmlProblem } from './validate.js';
import { ValidationPool } from './validate-pool.js';
import { Packager, timestampForNames, type ZipSummary } from './package.js';
import { RunLog, checkGuards, summarise, type GuardTrip, type Report } from './report.js';
import { localDate } from './dates.js';
import { TOOL_VERSION } from './paths.js';

export type { Report } from './report.js';

export interface Guards {
  /** Stop when more rows than this are rejected: a count ("25") or a share of all rows ("5%"). Default 5%. */
  maxRejected?: string;
  /** Stop when fewer users than this would be written. */
  minUsers?: number;
}

export interface ConvertOptions {
  mappingFile: string;
  inputs: string[];
  outDir: string;
  /** Run time, taken from the clock at the edge (cli) and passed in; fixes expiry dates and file names. */
  now: Date;
  encoding?: string;
  schemaFile?: string;
  chunkSize?: number;
  guards?: Guards;
  log?: Logger;
  /** A name for the output files in place of the mapping's `source`. */
  source?: string;
  /** Alma's limits, lowered only by tests. */
  maxFilesPerZip?: number;
  maxZipBytes?: number;
}

export interface ConvertResult {
  report: Report;
  reportFile: string;
  /** Final paths of the zips written; empty when a guard tripped or no user was written. */
  zips: string[];
  rejectsFile?: string;
  /** The exit code the CLI should end with: 0, or the guard's. */
  exitCode: number;
}

/**
 * Users per document sent to a validator. libxml2's documents live outside V8's heap and are freed
 * only when the validator collects them; small batches, each followed by a collection, keep the
 * validators near Node's own size (bench/RESULTS.md: 500 users, 613 MB → 386 MB at 100k rows, at
 * the same CPU time as 1000).
 */
const VALIDATION_BATCH = 500;
const USER_START = Buffer.from('  <user>\n');
const USERS_CLOSE_BYTES = Buffer.byteLength('</users>\n');

export async function convert(options: ConvertOptions): Promise<ConvertResult> {
  const log = options.log ?? silentLogger;
  const mapping = loadMapping(options.mappingFile);
  const schema = AlmaSchema.load(options.schemaFile);
  const runDate = localDate(options.now);
  const source = options.source ?? mapping.source;
  const stem = `users_${source}_${timestampForNames(options.now)}`;
  await makeOutDir(options.outDir);

  const inputs = await indexPrimaryIds(options.inputs, mapping, options.encoding, runDate);
  const runLog = new RunLog(path.join(options.outDir, `.${stem}.details.tmp`), path.join(options.outDir, `${stem}.rejects.csv.partial`));
  runLog.setRejectsColumns(unionOf(inputs.files.map((f) => f.header)));
  const packager = new Packager({
    outDir: options.outDir,
    stem,
    chunkSize: options.chunkSize ?? 10000,
    maxFilesPerZip: options.maxFilesPerZip,
    maxZipBytes: options.maxZipBytes,
    provenance: { tool: 'sis2alma', version: TOOL_VERSION, mappingFile: path.basename(mapping.file), mappingSha256: mapping.sha256, runTime: options.now.toISOString() },
  });
  const pool = new ValidationPool(schema.path);
  const validator = new BatchValidator(pool, packager, runLog, schema.path);
  const acrossUsers = new AcrossUsers(inputs.primaryIds, (ordinal) => labelOf(inputs.files, ordinal));

  try {
    await mapAndMergeRows(inputs, mapping, options.encoding, runDate, runLog, async (user, rows, mergeWarnings) => {
      const warnings = [...rows[0]!.warnings, ...mergeWarnings];
      acrossUsers.check(user, rows[0]!.ordinal, warnings);
      await validator.add(user, rows, warnings);
    });
    await validator.flush();
    const zipSummaries = await packager.finish();

    const trip = checkGuards(runLog.counts, options.guards ?? {});
    const zips = trip ? [] : zipSummaries.map((z) => z.file);
    const rejectsFile = await runLog.close(path.join(options.outDir, `${stem}.rejects.csv`));
    const reportFile = path.join(options.outDir, `${stem}.report.json`);
    const report = await runLog.writeReport(reportFile, buildReport({ mapping, options, inputs, runLog, runDate, trip, zips, zipSummaries, rejectsFile, schema }));
    // The zips get their final names last, so that no zip is ever there without its report; a
    // tripped guard delivers nothing, and no zip is left under a final name.
    if (trip) await packager.abort();
    else await packager.commit();
    // A rerun under the same run time must not leave an earlier run's files beside this report.
    await removeStale(options.outDir, stem, { zips: !!trip, rejects: !rejectsFile });
    log.info(report.summary);
    if (trip) log.warn(`sis2alma: guard ${trip.guard} tripped: ${trip.message}. Nothing was packaged for delivery; see ${reportFile}`);
    return { report, reportFile, zips, rejectsFile, exitCode: trip ? EXIT_CODES.guard_tripped : EXIT_CODES.ok };
  } catch (error) {
    await packager.abort();
    await runLog.discard();
    throw error;
  } finally {
    await pool.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Pass 1: which primary ids occur, and how often.

interface InputFile {
  file: string;
  label: string;
  header: string[];
  /** Ordinal of this file's row 1, run-wide. */
  firstOrdinal: number;
  rows: number;
  absentColumns: string[];
}

interface IndexedInputs {
  files: InputFile[];
  /** primary id (without case) → first: ordinal of its first row, second: how many rows. */
  primaryIds: IdIndex;
}

export async function indexPrimaryIds(files: string[], mapping: Mapping, encoding: string | undefined, runDate: string): Promise<IndexedInputs> {
  const primaryIds = new IdIndex();
  const out: InputFile[] = [];
  let ordinal = 0;
  const labels = files.length > 1;
  for (const file of files) {
    const csv = await openCsv(file, { encoding, delimiter: mapping.delimiter, requiredColumns: mapping.requiredColumns });
    const mapper = compileMapping(mapping, csv.header, runDate);
    const firstOrdinal = ordinal + 1;
    let rows = 0;
    for await (const { values } of csv.rows) {
      ordinal++;
      rows++;
      const id = mapper.primaryId(values);
      if (id === undefined) continue;
      const { slot, isNew } = primaryIds.upsert(idKey(id));
      primaryIds.set(slot, isNew ? ordinal : primaryIds.first(slot), isNew ? 1 : primaryIds.second(slot) + 1);
    }
    out.push({ file, label: labels ? path.basename(file) : '', header: csv.header, firstOrdinal, rows, absentColumns: mapper.absentColumns });
  }
  return { files: out, primaryIds };
}

// ---------------------------------------------------------------------------------------------
// Pass 2: map every row; emit each person once all of their rows are in.

/** A row on its way to becoming (part of) a user, with what the report needs to account for it. */
interface RowMember extends MergeMember {
  source: { file: string; row: number; header: string[]; values: string[] };
}

/** rows[0] is the row the user is written as; the others were merged into it. */
type EmitUser = (user: AlmaUser, rows: RowMember[], mergeWarnings: RowWarning[]) => Promise<void>;

interface Pending {
  remaining: number;
  members: RowMember[];
}

async function mapAndMergeRows(inputs: IndexedInputs, mapping: Mapping, encoding: string | undefined, runDate: string, runLog: RunLog, emit: EmitUser): Promise<void> {
  const pending = new Map<number, Pending>();
  for (const input of inputs.files) {
    const csv = await openCsv(input.file, { encoding, delimiter: mapping.delimiter, requiredColumns: mapping.requiredColumns });
    const mapper = compileMapping(mapping, csv.header, runDate);
    let ordinal = input.firstOrdinal - 1;
    for await (const { row, values } of csv.rows) {
      ordinal++;
      runLog.row();
      const label = input.label ? `${input.label}:${row}` : String(row);
      const source = { file: input.file, row, header: csv.header, values };
      const result: MapResult = values.length !== csv.header.length ? raggedRow(values.length, csv.header.length, mapper.primaryId(values)) : mapper.map(values);
      const id = result.ok ? result.user.primary_id : result.primary_id;
      const slot = id === undefined ? -1 : inputs.primaryIds.find(idKey(id));
      const expected = slot < 0 ? 1 : inputs.primaryIds.second(slot);

      if (!result.ok) {
        runLog.rejected(label, result.problems, result.warnings, source);
        if (expected > 1) await arrive(pending, slot, expected, undefined, mapping, runLog, emit);
        continue;
      }
      const member: RowMember = { ordinal, label, user: result.user, warnings: result.warnings, source };
      if (expected === 1) await emit(result.user, [member], []);
      else await arrive(pending, slot, expected, member, mapping, runLog, emit);
    }
  }
  // Rows can only be missing here if a file changed between the two passes.
  for (const [, p] of pending) await complete(p.members, mapping, runLog, emit);
}

async function arrive(pending: Map<number, Pending>, slot: number, expected: number, member: RowMember | undefined, mapping: Mapping, runLog: RunLog, emit: EmitUser): Promise<void> {
  let p = pending.get(slot);
  if (!p) pending.set(slot, (p = { remaining: expected, members: [] }));
  if (member) p.members.push(member);
  if (--p.remaining > 0) return;
  pending.delete(slot);
  await complete(p.members, mapping, runLog, emit);
}

async function complete(members: RowMember[], mapping: Mapping, runLog: RunLog, emit: EmitUser): Promise<void> {
  // The index keeps hashes only: group by the real id before joining rows.
  const byId = new Map<string, RowMember[]>();
  for (const m of members) {
    const key = idKey(m.user.primary_id);
    byId.set(key, [...(byId.get(key) ?? []), m]);
  }
  for (const group of byId.values()) {
    if (group.length === 1) {
      await emit(group[0]!.user, group, []);
      continue;
    }
    const decision = mergeUsers(group, mapping.userGroup);
    const rows = [decision.winner, ...group.filter((m) => m !== decision.winner)];
    runLog.mergeDecision(decision.user.primary_id, rows.map((m) => m.label), decision.user.user_group, decision.reason);
    await emit(decision.user, rows, decision.warnings);
  }
}

export function raggedRow(found: number, expected: number, primaryId: string | undefined): MapResult {
  const problem: RowProblem = { code: 'ragged_row', message: `The row has ${found} field${found === 1 ? '' : 's'} but the header has ${expected}; a field may hold an unquoted comma or line break` };
  return { ok: false, primary_id: primaryId, problems: [problem], warnings: [] };
}

// ---------------------------------------------------------------------------------------------
// Alma's rules across users: every identifier value is unique in the whole feed, and no
// identifier repeats another user's primary id. The first row to carry a value keeps it; a later
// user loses it, with a warning that names the row that keeps it.

class AcrossUsers {
  /** identifier value (without case) → ordinal of the row that keeps it; numbers, so memory does not grow with labels. */
  private readonly identifiers = new IdIndex();
  constructor(
    private readonly primaryIds: IdIndex,
    private readonly labelOf: (ordinal: number) => string,
  ) {}

  check(user: AlmaUser, ordinal: number, warnings: RowWarning[]): void {
    const own = idKey(user.primary_id);
    user.user_identifiers = user.user_identifiers.filter((identifier) => {
      const key = idKey(identifier.value);
      const holder = key === own ? -1 : this.primaryIds.find(key);
      if (holder >= 0) {
        const row = this.labelOf(this.primaryIds.first(holder));
        warnings.push({ kind: 'duplicate_identifier', message: `identifier ${identifier.id_type} '${identifier.value}' is the primary id of the user in row ${row}, which keeps it; left out here`, value: identifier.value });
        return false;
      }
      const { slot, isNew } = this.identifiers.upsert(key);
      if (isNew) {
        this.identifiers.set(slot, ordinal, 0);
        return true;
      }
      warnings.push({ kind: 'duplicate_identifier', message: `identifier ${identifier.id_type} '${identifier.value}' is already used by row ${this.labelOf(this.identifiers.first(slot))}, which keeps it; left out here`, value: identifier.value });
      return false;
    });
  }
}

// ---------------------------------------------------------------------------------------------
// XSD validation in batches: a user that fails is rejected against its CSV rows and left out.

interface PendingUser {
  /** The user's XML until the batch is sent; then its bytes, a view into the batch's one buffer. */
  xml: string | Buffer;
  rows: RowMember[];
  warnings: RowWarning[];
}

class BatchValidator {
  private batch: PendingUser[] = [];
  /** Batches sent to the validators, oldest first; written to the zip in this order. */
  private inFlight: { users: PendingUser[]; problems: Promise<XmlProblem[]> }[] = [];

  constructor(
    private readonly pool: ValidationPool,
    private readonly packager: Packager,
    private readonly runLog: RunLog,
    private readonly schemaPath: string,
  ) {}

  async add(user: AlmaUser, rows: RowMember[], warnings: RowWarning[]): Promise<void> {
    this.batch.push({ xml: userXml(user), rows, warnings });
    if (this.batch.length >= VALIDATION_BATCH) await this.send();
  }

  /** Sends what is left and writes every batch still in flight. */
  async flush(): Promise<void> {
    await this.send();
    while (this.inFlight.length) await this.writeOldest();
  }

  private async send(): Promise<void> {
    if (this.batch.length === 0) return;
    const users = this.batch;
    this.batch = [];
    // The batch is encoded to UTF-8 once: the validator parses these bytes and the zip stores
    // views into them. (Holding each user's XML as a string cost more memory than anything
    // else: a rope of a hundred small strings per user.) A user's text starts at "  <user>" at
    // the start of a line, which no escaped value can contain.
    const document = Buffer.from('<users>\n' + users.map((u) => u.xml).join('') + '</users>\n');
    let start = document.indexOf(USER_START);
    for (let i = 0; i < users.length; i++) {
      const next = i + 1 < users.length ? document.indexOf(USER_START, start + USER_START.length) : document.length - USERS_CLOSE_BYTES;
      users[i]!.xml = document.subarray(start, next);
      start = next;
    }
    const problems = this.pool.validate(document);
    problems.catch(() => {}); // awaited in order by writeOldest
    this.inFlight.push({ users, problems });
    // One batch a validator and one waiting keeps every core busy; more would only hold more
    // users in memory.
    if (this.inFlight.length > this.pool.size + 1) await this.writeOldest();
  }

  private async writeOldest(): Promise<void> {
    const { users, problems } = this.inFlight.shift()!;
    const failures = new Map<number, string[]>();
    for (const problem of await problems) {
      const index = problem.userIndex ?? -1;
      // Outside any user, the fault is in the XML this tool writes, not in the data: an internal error.
      if (index < 0) throw new Error(`the XML written does not fit the schema ${this.schemaPath} outside any user (line ${problem.line}: ${problem.message})`);
      failures.set(index, [...(failures.get(index) ?? []), problem.message]);
    }
    for (let i = 0; i < users.length; i++) {
      const { xml, rows, warnings } = users[i]!;
      const [first, ...merged] = rows;
      const messages = failures.get(i);
      if (messages) {
        const problem: RowProblem = { code: 'schema_invalid', message: `Alma's schema refuses this user: ${messages.join('; ')}` };
        for (const row of rows) this.runLog.rejected(row.label, [problem], row === first ? warnings : row.warnings, row.source);
        continue;
      }
      await this.packager.add(xml);
      this.runLog.written(first!.label, warnings);
      for (const row of merged) this.runLog.merged(row.label, first!.label, first!.user.primary_id, row.warnings);
    }
  }
}

// ---------------------------------------------------------------------------------------------

async function makeOutDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (error) {
    throw new RunError('output_failed', `cannot create the output folder ${dir}: ${(error as NodeJS.ErrnoException).code ?? error}`, { file: dir });
  }
}

/** Removes an earlier run's zips (when this run delivers none) or rejects file (when this run has none) of the same stem. */
async function removeStale(dir: string, stem: string, what: { zips: boolean; rejects: boolean }): Promise<void> {
  for (const name of await readdir(dir)) {
    const isZip = name.startsWith(stem) && /^(_\d{2})?\.zip$/.test(name.slice(stem.length));
    if ((what.zips && isZip) || (what.rejects && name === `${stem}.rejects.csv`)) await rm(path.join(dir, name), { force: true });
  }
}

/** How the report names the row with this run-wide ordinal ("3", or "staff.csv:3" when there are several inputs). */
function labelOf(files: InputFile[], ordinal: number): string {
  const input = files.find((f) => ordinal >= f.firstOrdinal && ordinal < f.firstOrdinal + f.rows);
  if (!input) return String(ordinal);
  const row = ordinal - input.firstOrdinal + 1;
  return input.label ? `${input.label}:${row}` : String(row);
}

function unionOf(headers: string[][]): string[] {
  return [...new Set(headers.flat())];
}

function buildReport(p: {
  mapping: Mapping;
  options: ConvertOptions;
  inputs: IndexedInputs;
  runLog: RunLog;
  runDate: string;
  trip?: GuardTrip;
  zips: string[];
  zipSummaries: ZipSummary[];
  rejectsFile?: string;
  schema: AlmaSchema;
}): Omit<Report, 'details'> {
  const { runLog, trip } = p;
  const counts = runLog.counts;
  const absent = [...new Set(p.inputs.files.flatMap((f) => f.absentColumns))].filter((c) => !(c in p.mapping.unusedColumns));
  return {
    success: !trip && counts.rejected === 0,
    summary: summarise(counts, trip),
    counts: { ...counts },
    files: p.zips.map((z) => path.basename(z)),
    ...(trip ? { guard: trip } : {}),
    run: {
      tool: 'sis2alma',
      version: TOOL_VERSION,
      run_time: p.options.now.toISOString(),
      run_date: p.runDate,
      mapping: { file: p.mapping.file, sha256: p.mapping.sha256, source: p.mapping.source },
      schema: p.schema.path,
      inputs: p.inputs.files.map((f) => ({ file: f.file, rows: f.rows, encoding: p.options.encoding ?? 'utf-8' })),
    },
    packages: p.zipSummaries.map((z) => ({ file: path.basename(z.file), xml_files: z.entries.map((e) => ({ name: e.name, users: e.users })) })),
    ...(p.rejectsFile ? { rejects_file: path.basename(p.rejectsFile) } : {}),
    warnings: Object.fromEntries(runLog.warnings),
    rejections: Object.fromEntries(runLog.rejections),
    merges: runLog.merges,
    ...(Object.keys(p.mapping.unusedColumns).length ? { unused_columns: p.mapping.unusedColumns } : {}),
    ...(absent.length ? { absent_columns: absent } : {}),
  };
}
