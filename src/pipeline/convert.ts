// The nightly job, top-down. Open this file first: it is the design of the pipeline.
//
//   read rows → map → merge multi-role people → write XML → validate → zip → report
//
// The inputs are read twice. The first pass only indexes primary ids (a compact hash index,
// not the users), so that the second pass knows, for each row, whether more rows of the same
// person are still to come. Single-role people (nearly everyone) go straight through; the rows
// of a multi-role person wait (in a temporary file) only until that person's last row has been
// read. Users then go to the XSD check in batches and into the zip as a stream
// (validate-batches.ts): memory stays flat as the input grows, but for the id indexes.
//
// Both cores work: the exports are cut into pieces (read.ts) that mapping threads parse and map
// (map-pool.ts, map-worker.ts); this thread keeps the rows in order and does everything that
// spans rows: the merge, the identifier rules across users, validation (xmllint in a process of
// its own, validate-xmllint.ts), the zip and the report.
import { closeSync, openSync, readSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { createHash, type Hash } from 'node:crypto';
import path from 'node:path';
import type { AlmaUser } from '../shared/alma.js';
import { RunError, EXIT_CODES, type RowProblem, type RowWarning } from '../shared/errors.js';
import { silentLogger, type Logger } from '../shared/log.js';
import { loadMapping } from '../mapping/load.js';
import type { Mapping } from '../mapping/model.js';
import { csvProblem, openPieces, type Piece, type PieceFailure } from './read.js';
import { compileMapping } from '../mapping/map.js';
import { MapPool, idsText, threadCounts } from './map-pool.js';
import { groupRuleNames } from './map-separators.js';
import { AcrossUsers } from './across-users.js';
import { IdIndex, PeopleInWaiting, byRealId, mergeUsers, type MergeMember } from './merge.js';
import { userXml } from './xml.js';
import { AlmaSchema } from './validate.js';
import { BatchValidator, PieceRecords, type PieceSource, type ReportRow } from './validate-batches.js';
import { startValidators, type Validators } from './validate-pool.js';
import { Packager, timestampForNames, type ZipSummary } from './package.js';
import { RunLog, checkGuards, secretPositions, summarise, type GuardTrip, type Report } from './report.js';
import { localDate } from '../shared/dates.js';
import { TOOL_VERSION } from '../shared/paths.js';
import { onStop } from '../shared/on-stop.js';
import { makeRunTempDir } from '../shared/temp.js';
import { noProgress, type Progress, type ProgressStage } from '../shared/progress.js';
import { FINGERPRINT_CHARS, type SinkVerdict, type UserSink } from './user-sink.js';

export type { Report } from './report.js';
export type { UserSink, SinkVerdict } from './user-sink.js';

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
  /** Bytes of input a mapping thread takes at a time, lowered only by tests (so that small files are cut too). */
  pieceBytes?: number;
  /** Told how far each stage has come (per piece and batch); the command decides what to show. */
  progress?: Progress;
  /** Told of every user written, in write order, and asked for its guards before the run's (the run state, src/state/). */
  users?: UserSink;
  /** Warnings about the run rather than a row (a stale line of the run config), added to the report's warnings by kind. */
  runWarnings?: Record<string, { count: number; examples: string[]; message: string }>;
}

export interface ConvertResult {
  report: Report;
  reportFile: string;
  /** Final paths of the zips written; empty when a guard tripped or no user was written. */
  zips: string[];
  rejectsFile?: string;
  /** The exit code the CLI should end with: 0, or the guard's. */
  exitCode: number;
  /** The mapping the run converted with (its purge rules date the departures, src/state/departures.ts). */
  mapping: Mapping;
}

export async function convert(options: ConvertOptions): Promise<ConvertResult> {
  const log = options.log ?? silentLogger;
  const progress = options.progress ?? noProgress;
  const mapping = loadMapping(options.mappingFile);
  const schema = AlmaSchema.load(options.schemaFile);
  const runDate = localDate(options.now);
  const source = options.source ?? mapping.source;
  const stem = `users_${source}_${timestampForNames(options.now)}`;
  options.users?.begin({ source, mappingFile: mapping.file, mappingSha256: mapping.sha256 });
  await makeOutDir(options.outDir);
  // Batches on their way to the validator and rows that wait for the rest of their person.
  const temp = makeRunTempDir(stem);
  // On a signal (src/shared/on-stop.ts), newest first: the validators end, then their folder goes, and
  // the partial files in the output folder (registered below).
  const removeTemp = () => rmSync(temp, { recursive: true, force: true });
  const forgetTemp = onStop(removeTemp);
  const dropTemp = () => {
    forgetTemp();
    removeTemp();
  };

  let validators: Validators;
  try {
    validators = startValidators(schema);
  } catch (error) {
    dropTemp();
    throw error;
  }
  const forgetValidators = onStop(() => validators.kill());
  log.info(`validating with ${validators.name}`);
  const threads = new MapPool();
  let inputs: IndexedInputs;
  let runLog: RunLog;
  try {
    inputs = await indexPrimaryIds(options.inputs, mapping, options.encoding, runDate, threads, { pieceBytes: options.pieceBytes, progress });
    await threads.shrink(threadCounts().second);
    runLog = new RunLog(path.join(options.outDir, `.${stem}.details.tmp`), path.join(options.outDir, `${stem}.rejects.csv.partial`), mapping.sensitiveColumns);
  } catch (error) {
    await threads.close();
    await validators.close();
    forgetValidators();
    dropTemp();
    throw error;
  }
  // RunLog opens its partial files synchronously above: no signal can come between them and this.
  const forgetPartials = onStop(() => removePartials(options.outDir, stem));
  runLog.setRejectsColumns(unionOf(inputs.files.map((f) => f.header)));
  const packager = new Packager({
    outDir: options.outDir,
    stem,
    chunkSize: options.chunkSize ?? 10000,
    maxFilesPerZip: options.maxFilesPerZip,
    maxZipBytes: options.maxZipBytes,
    provenance: { tool: 'sis2alma', version: TOOL_VERSION, mappingFile: path.basename(mapping.file), mappingSha256: mapping.sha256, runTime: options.now.toISOString() },
  });
  const validator = new BatchValidator(validators, packager, runLog, schema.path, (ordinal) => labelOf(inputs.files, ordinal), temp, options.users, groupRuleNames(mapping));
  const waiting = new WaitingValues(temp);
  const acrossUsers = new AcrossUsers(inputs.primaryIds, (ordinal) => labelOf(inputs.files, ordinal), inputs.identifiers);

  try {
    const rows = inputs.files.reduce((n, f) => n + f.rows, 0);
    const pass2 = progress.stage('pass 2 (map)', 'rows', rows);
    await mapAndMergeRows(inputs, mapping, options, runDate, threads, runLog, acrossUsers, validator, waiting, pass2);
    pass2.end(rows, validator.counts());
    // Every row is mapped: the thread's memory is given back before the last batches are packaged.
    await threads.close();
    const last = progress.stage('validate the last users', 'users', validator.added);
    await validator.flush(() => last.update(validator.checked, { zipped: validator.zipped }));
    const zipSummaries = await packager.finish();
    last.end(validator.checked, { zipped: validator.zipped });

    // The run's own guards first; then the night against the last delivered one (the run state).
    const verdict = options.users?.finish(runLog.counts);
    const trip = checkGuards(runLog.counts, options.guards ?? {}) ?? verdict?.trips[0];
    const zips = trip ? [] : zipSummaries.map((z) => z.file);
    const rejectsFile = await runLog.close(path.join(options.outDir, `${stem}.rejects.csv`));
    const reportFile = path.join(options.outDir, `${stem}.report.json`);
    const idIndexBytes = inputs.primaryIds.bytes + acrossUsers.indexBytes;
    const writing = progress.stage('write the report', 'rows', rows);
    const report = await runLog.writeReport(reportFile, buildReport({ mapping, options, inputs, runLog, runDate, trip, zips, zipSummaries, rejectsFile, schema, idIndexBytes, verdict }));
    writing.end(rows);
    // The zips get their final names last, so that no zip is ever there without its report; a
    // tripped guard delivers nothing, and no zip is left under a final name.
    if (trip) await packager.abort();
    else await packager.commit();
    // A rerun under the same run time must not leave an earlier run's files beside this report.
    await removeStale(options.outDir, stem, { zips: !!trip, rejects: !rejectsFile });
    log.info(report.summary);
    if (trip) log.warn(`guard ${trip.guard} tripped: ${trip.message}. Nothing was packaged for delivery; see ${reportFile}`);
    return { report, reportFile, zips, rejectsFile, exitCode: trip ? EXIT_CODES.guard_tripped : EXIT_CODES.ok, mapping };
  } catch (error) {
    await packager.abort();
    await runLog.discard();
    throw error;
  } finally {
    await threads.close();
    await validators.close();
    validator.discard();
    waiting.close();
    forgetPartials();
    forgetValidators();
    dropTemp();
  }
}

// ---------------------------------------------------------------------------------------------
// Pass 1: which primary ids occur, and how often. The mapping threads parse the pieces and hash
// each row's primary id; this thread only counts the hashes.

interface InputFile {
  file: string;
  label: string;
  header: string[];
  /** Ordinal of this file's row 1, run-wide. */
  firstOrdinal: number;
  rows: number;
  absentColumns: string[];
  /** What the first pass read of it, which the second must read again. */
  read: FileRead;
}

export interface IndexedInputs {
  files: InputFile[];
  /** primary id (without case) → first: ordinal of its first row, second: how many rows. In shared memory: the mapping threads read it in pass 2. */
  primaryIds: IdIndex;
  /** How many identifier values the rows give, at most: the index of identifiers is made this size once. */
  identifiers: number;
}

/** Pass 1: indexes the primary ids of every file's rows and counts their identifier values (the index of identifiers is sized by that count). */
export async function indexPrimaryIds(
  files: string[],
  mapping: Mapping,
  encoding: string | undefined,
  runDate: string,
  threads: MapPool,
  { pieceBytes, progress = noProgress }: { pieceBytes?: number; progress?: Progress } = {},
): Promise<IndexedInputs> {
  const primaryIds = new IdIndex(1 << 16, { shared: true });
  // Once the first piece says how long rows are, the index is sized for the rows of all the files
  // (the pieces are UTF-8: in an encoding of two bytes or more a character, files are larger than
  // their rows, and the index grows as it fills instead).
  const totalBytes = (await Promise.all(files.map((f) => stat(f).then((s) => s.size, () => 0)))).reduce((a, b) => a + b, 0);
  let sized = /^(utf-?16|ucs-?2|utf-?32)/i.test(encoding ?? '');
  const out: InputFile[] = [];
  let identifiers = 0;
  let ordinal = 0;
  const labels = files.length > 1;
  // Pieces are UTF-8: for a file in another encoding the bytes read differ a little from its size.
  const stage = progress.stage('pass 1 (index ids)', 'bytes', totalBytes);
  let bytesRead = 0;
  for (const file of files) {
    const csv = await openPieces(file, { encoding, delimiter: mapping.delimiter, requiredColumns: mapping.requiredColumns, size: pieceBytes });
    const before = await statOf(file);
    const reading = new Reading(csv.header);
    const absentColumns = compileMapping(mapping, csv.header, runDate, file).absentColumns;
    threads.startFile(mapping, csv.header, runDate, file);
    const firstOrdinal = ordinal + 1;
    let rows = 0;
    for await (const { piece, result } of threads.inOrder(reading.of(csv.pieces), (p) => threads.ids(p))) {
      if (result.failure) throw pieceFailure(result.failure, file, csv.header, piece, rows);
      if (!sized && result.rows > 0) {
        primaryIds.reserve(Math.ceil(((totalBytes / piece.bytes.length) * result.rows) * 1.05));
        sized = true;
      }
      const hashes = result.hashes;
      for (let i = 0; i < result.rows; i++) {
        ordinal++;
        const a = hashes[2 * i]!;
        const b = hashes[2 * i + 1]!;
        if (b === 0) continue; // no primary id
        const { slot, isNew } = primaryIds.upsertHashed(a, b);
        primaryIds.set(slot, isNew ? ordinal : primaryIds.first(slot), isNew ? 1 : primaryIds.second(slot) + 1);
      }
      rows += result.rows;
      identifiers += result.identifiers;
      bytesRead += piece.bytes.length;
      stage.update(bytesRead, { rows: ordinal });
    }
    const read = { ...before, ...reading.done() };
    sameFile(file, before, await statOf(file), 'while it was read');
    out.push({ file, label: labels ? path.basename(file) : '', header: csv.header, firstOrdinal, rows, absentColumns, read });
  }
  // The files are read whole (their headers are not in the pieces).
  stage.end(Math.max(bytesRead, totalBytes), { rows: ordinal });
  return { files: out, primaryIds, identifiers };
}

/** A piece the mapping threads could not read, as the RunError that names the file, row, line and column. */
export function pieceFailure(failure: PieceFailure, file: string, header: string[], piece: Piece, rowsBefore: number): Error {
  if (failure.kind === 'csv') return csvProblem(failure.code, failure.message, failure.lines === undefined ? undefined : failure.lines + piece.line - 1, file, rowsBefore + failure.records + 1);
  if (failure.kind === 'utf8') {
    const row = rowsBefore + failure.record + 1;
    const column = header[failure.column] ?? String(failure.column + 1);
    return new RunError(
      'input_invalid',
      `${file}, row ${row}, column ${column}: bytes that are not UTF-8 (at character ${failure.character} of the value); if the file was exported in another encoding, give it with --encoding (e.g. windows-1252)`,
      { file, row, column },
    );
  }
  const error = new Error(`mapping ${file} failed: ${failure.message}`);
  if (failure.stack) error.stack = failure.stack;
  return error;
}

// ---------------------------------------------------------------------------------------------
// Pass 2: the mapping threads map every row and write the XML of every user that needs no merge;
// this thread merges the rows of multi-role people (each person is emitted once all of their rows
// are in), applies the rules that span users, and sends users on to validation, in row order.

/** A row of a multi-role person, mapped, in the merge. */
interface RowMember extends MergeMember, ReportRow {
  /** The user group rule that gave the row its group. */
  groupRule: string;
}

/**
 * A row of a multi-role person while it waits for the person's other rows (a student's row waits
 * for the staff export). Its values wait in a temporary file (WaitingValues), and the row is
 * mapped again once the person is complete: memory does not grow with the share of multi-role
 * people. (Holding the mapped users cost more than 100 MB at 1,000,000 rows, bench/RESULTS.md.)
 */
interface WaitingRow {
  ordinal: number;
  /** Index of its file in inputs.files. */
  input: number;
  /** Where WaitingValues keeps its values. */
  at: number;
  length: number;
}

/** Rows' values, as JSON, in a temporary file of their own, made when the first row waits. */
class WaitingValues {
  private fd: number | undefined;
  private size = 0;

  constructor(private readonly dir: string) {}

  put(values: string[]): { at: number; length: number } {
    const file = path.join(this.dir, 'waiting-rows.json');
    try {
      this.fd ??= openSync(file, 'w+', 0o600);
    } catch (error) {
      throw new RunError('output_failed', `cannot write rows that wait for the rest of their person to ${file}: ${(error as NodeJS.ErrnoException).code ?? error}`, { file });
    }
    const at = this.size;
    const length = writeSync(this.fd, JSON.stringify(values), at);
    this.size += length;
    return { at, length };
  }

  get(at: number, length: number): string[] {
    const bytes = Buffer.allocUnsafe(length);
    const read = readSync(this.fd!, bytes, 0, length, at);
    if (read !== length) throw new Error(`the waiting rows' file ended early (${read} of ${length} bytes at ${at})`);
    return JSON.parse(bytes.toString('utf8')) as string[];
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

async function mapAndMergeRows(
  inputs: IndexedInputs,
  mapping: Mapping,
  options: Pick<ConvertOptions, 'encoding' | 'pieceBytes' | 'users'>,
  runDate: string,
  threads: MapPool,
  runLog: RunLog,
  acrossUsers: AcrossUsers,
  validator: BatchValidator,
  waiting: WaitingValues,
  stage: ProgressStage,
): Promise<void> {
  threads.shareIndex(inputs.primaryIds);
  const fingerprints = options.users?.fingerprints === true;
  const people = new PeopleInWaiting<WaitingRow>();
  // A merged user: the rules across users, then XML written here.
  const emitMerged = async (user: AlmaUser, rows: RowMember[], mergeWarnings: RowWarning[], merge?: string) => {
    const warnings = [...rows[0]!.warnings, ...mergeWarnings];
    acrossUsers.check(user, rows[0]!.ordinal, warnings);
    await validator.add(Buffer.from(userXml(user)), rows[0]!.ordinal, undefined, { primaryId: user.primary_id, rows, warnings, groupRule: rows[0]!.groupRule, ...(merge ? { merge } : {}) });
  };
  const mappers = inputs.files.map((f) => compileMapping(mapping, f.header, runDate, f.file));
  const revive = (w: WaitingRow): RowMember => {
    const input = inputs.files[w.input]!;
    const row = w.ordinal - input.firstOrdinal + 1;
    const values = waiting.get(w.at, w.length);
    const result = mappers[w.input]!.map(values);
    if (!result.ok) throw new Error(`${input.file}, row ${row}: mapped once, refused the second time`);
    return { ordinal: w.ordinal, label: labelOf(inputs.files, w.ordinal), input: path.basename(input.file), user: result.user, groupRule: result.groupRule, warnings: result.warnings, source: { file: input.file, row, header: input.header, values } };
  };
  const arrive = async (slot: number, expected: number, waiting: WaitingRow | undefined) => {
    const rows = people.arrive(slot, expected, waiting);
    if (rows) await complete(rows.map(revive), mapping, runLog, emitMerged);
  };
  const primaryColumn = mapping.fields.find((f) => f.field === 'primary_id')?.value.columns[0] ?? 'primary_id';
  for (const [fileIndex, input] of inputs.files.entries()) {
    sameFile(input.file, input.read, await statOf(input.file), 'between the two readings');
    const csv = await openPieces(input.file, { encoding: options.encoding, delimiter: mapping.delimiter, requiredColumns: mapping.requiredColumns, size: options.pieceBytes });
    const reading = new Reading(csv.header, input);
    // A waiting row sits in a temporary file until its person is complete: the sensitive columns,
    // which the mapping may not read, are left out of it as they are of the rejects file.
    const secret = secretPositions(csv.header, csv.header.length, new Set(mapping.sensitiveColumns.map((c) => c.toLowerCase())));
    const withoutSecrets = (values: string[]) => (secret.size ? values.map((v, i) => (secret.has(i) ? '' : v)) : values);
    threads.startFile(mapping, csv.header, runDate, input.file, fingerprints);
    let ordinal = input.firstOrdinal - 1;
    let row = 0;
    for await (const { piece, result } of threads.inOrder(reading.of(csv.pieces), (p) => threads.map(p))) {
      if (result.failure) throw pieceFailure(result.failure, input.file, csv.header, piece, row);
      const xml = Buffer.from(result.xml.buffer, result.xml.byteOffset, result.xml.byteLength);
      const source: PieceSource = { file: input.file, header: csv.header, firstOrdinal: ordinal + 1, firstRow: row + 1, records: new PieceRecords(piece.bytes, mapping.delimiter) };
      let xmlStart = 0;
      let next = 0;
      for (let i = 0; i < result.rows; i++) {
        ordinal++;
        row++;
        runLog.row();
        const outcome = result.others[next]?.i === i ? result.others[next++]! : undefined;
        if (outcome === undefined || outcome.k === 'u') {
          // A user the thread wrote.
          const warnings = outcome?.warnings ?? [];
          const end = result.ends[i]!;
          const written = xml.subarray(xmlStart, end);
          const userBytes = acrossUsers.checkWritten(result, i, written, ordinal, warnings);
          xmlStart = end;
          // The thread's fingerprint is of the XML it wrote: not of one that lost an identifier here.
          const fingerprint = result.fingerprints !== undefined && userBytes === written ? result.fingerprints.slice(i * FINGERPRINT_CHARS, (i + 1) * FINGERPRINT_CHARS) : undefined;
          const wait = validator.add(userBytes, ordinal, source, warnings.length ? { primaryId: idsText(result, i)[0]!, warnings } : undefined, result.groupRules[i], fingerprint);
          if (wait) await wait;
        } else if (outcome.k === 'r' && outcome.skipped !== undefined) {
          // Left out on purpose by the mapping's skip list. Its person's other rows go on without it.
          runLog.skipped(ordinal, labelOf(inputs.files, ordinal), outcome.skipped, outcome.warnings);
          if (outcome.expected > 1) await arrive(outcome.slot, outcome.expected, undefined);
        } else if (outcome.k === 'r' || outcome.expected > mapping.maxRowsPerPerson) {
          // A person with more rows than one person has is a broken export: each row is
          // rejected as it comes, so that none of them waits or is merged.
          const tooMany = outcome.expected > mapping.maxRowsPerPerson ? [tooManyRows(primaryColumn, outcome.k === 'r' ? outcome.primary_id : outcome.values[csv.header.indexOf(primaryColumn)]?.trim(), outcome.expected, mapping.maxRowsPerPerson)] : [];
          const problems = outcome.k === 'r' ? [...outcome.problems, ...tooMany] : tooMany;
          runLog.rejected(ordinal, labelOf(inputs.files, ordinal), problems, outcome.k === 'r' ? outcome.warnings : [], { file: input.file, row, header: csv.header, values: outcome.values });
          if (outcome.expected > 1) await arrive(outcome.slot, outcome.expected, undefined);
        } else {
          await arrive(outcome.slot, outcome.expected, { ordinal, input: fileIndex, ...waiting.put(withoutSecrets(outcome.values)) });
        }
      }
      // Every user of the piece has been copied into its batch.
      threads.recycle(result.xml);
      stage.update(ordinal, validator.counts());
    }
    reading.done();
    sameFile(input.file, input.read, await statOf(input.file), 'between the two readings');
  }
  // Rows can only be missing here if a file changed between the two passes, which Reading stops.
  for (const rows of people.incomplete()) await complete(rows.map(revive), mapping, runLog, emitMerged);
}

/** The reason of every row of a primary id that has more rows than one person has. */
export function tooManyRows(column: string, id: string | undefined, rows: number, max: number): RowProblem {
  return {
    code: 'too_many_rows',
    message: `Field (${column}) '${id ?? ''}' is the primary id of ${rows} rows, more than one person has (at most ${max}: input.max_rows_per_person in the mapping); the export repeats rows`,
    column,
    ...(id !== undefined ? { value: id } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// A file that changes between the two passes (an export still being written when cron starts)
// would merge and index different rows than the second pass writes: a person of two rows in one
// pass and three in the other, or written twice. The second pass must read exactly what the
// first read, or the run stops before anything is delivered.

/** What a pass read of a file. */
interface FileRead {
  size: number;
  mtimeMs: number;
  /** Bytes of the records, after the header (UTF-8, as the pieces hold them). */
  bytes: number;
  /** SHA-1 of the header and those bytes: a check that they are the same, not a signature. */
  sha1: string;
}

async function statOf(file: string): Promise<Pick<FileRead, 'size' | 'mtimeMs'>> {
  try {
    const s = await stat(file);
    return { size: s.size, mtimeMs: s.mtimeMs };
  } catch (error) {
    throw changed(file, `it could no longer be read: ${(error as NodeJS.ErrnoException).code ?? error}`);
  }
}

/** Stops the run when a file's size or modification time is not what the first pass saw. */
function sameFile(file: string, was: Pick<FileRead, 'size' | 'mtimeMs'>, now: Pick<FileRead, 'size' | 'mtimeMs'>, when: string): void {
  if (now.size !== was.size) throw changed(file, `its size went from ${was.size} to ${now.size} bytes ${when}`);
  if (now.mtimeMs !== was.mtimeMs) throw changed(file, `it was modified ${when} (at ${new Date(now.mtimeMs).toISOString()})`);
}

function changed(file: string, what: string): RunError {
  return new RunError('input_changed', `${file} changed while sis2alma read it (${what}): is the export still being written? Nothing was delivered; run again once it is complete`, { file });
}

/**
 * The bytes of a file's pieces as they go by, hashed (node's SHA-1 costs about 1.5 ms a
 * megabyte here). Given the first pass's reading, stops as soon as the second reads more, and at
 * the end when it read other bytes.
 */
class Reading {
  private readonly hash: Hash;
  private bytes = 0;

  constructor(
    header: string[],
    private readonly first?: { file: string; read: FileRead },
  ) {
    this.hash = createHash('sha1').update(JSON.stringify(header));
  }

  async *of(pieces: AsyncIterable<Piece>): AsyncGenerator<Piece> {
    for await (const piece of pieces) {
      this.hash.update(piece.bytes);
      this.bytes += piece.bytes.length;
      if (this.first && this.bytes > this.first.read.bytes) throw changed(this.first.file, `the second reading found more rows than the first`);
      yield piece;
    }
  }

  done(): Pick<FileRead, 'bytes' | 'sha1'> {
    const read = { bytes: this.bytes, sha1: this.hash.digest('hex') };
    if (this.first && (read.bytes !== this.first.read.bytes || read.sha1 !== this.first.read.sha1)) throw changed(this.first.file, 'the second reading found other rows than the first');
    return read;
  }
}

type EmitMerged = (user: AlmaUser, rows: RowMember[], mergeWarnings: RowWarning[], merge?: string) => Promise<void>;

async function complete(members: RowMember[], mapping: Mapping, runLog: RunLog, emit: EmitMerged): Promise<void> {
  for (const group of byRealId(members, (m) => m.user.primary_id)) {
    if (group.length === 1) {
      await emit(group[0]!.user, group, []);
      continue;
    }
    const decision = mergeUsers(group, mapping.userGroup, mapping.merge);
    const rows = [decision.winner, ...group.filter((m) => m !== decision.winner)];
    runLog.mergeDecision(decision.user.primary_id, rows.map((m) => m.label), decision.user.user_group, decision.reason);
    await emit(decision.user, rows, decision.warnings, decision.reason);
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

/** The files of this run still being written in the output folder (zips, rejects, details, report). */
function removePartials(dir: string, stem: string): void {
  for (const name of readdirSync(dir)) {
    if ((name.startsWith(stem) || name.startsWith(`.${stem}`)) && (name.endsWith('.partial') || name.endsWith('.tmp'))) rmSync(path.join(dir, name), { force: true });
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
export function labelOf(files: InputFile[], ordinal: number): string {
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
  idIndexBytes: number;
  verdict?: SinkVerdict;
}): Omit<Report, 'details'> {
  const { runLog, trip } = p;
  const counts = runLog.counts;
  const absent = [...new Set(p.inputs.files.flatMap((f) => f.absentColumns))].filter((c) => !(c in p.mapping.unusedColumns));
  return {
    success: !trip && counts.rejected === 0,
    summary: p.verdict ? `${summarise(counts, trip)} ${p.verdict.summary}` : summarise(counts, trip),
    counts: { ...counts },
    files: p.zips.map((z) => path.basename(z)),
    ...(trip ? { guard: trip } : {}),
    ...(p.verdict ? { [p.verdict.key]: p.verdict.report } : {}),
    run: {
      tool: 'sis2alma',
      version: TOOL_VERSION,
      run_time: p.options.now.toISOString(),
      run_date: p.runDate,
      mapping: { file: p.mapping.file, sha256: p.mapping.sha256, source: p.mapping.source },
      schema: p.schema.path,
      // The memory that grows with the rows: the indexes of primary ids and identifiers.
      id_index_mb: Math.round((10 * p.idIndexBytes) / 1024 / 1024) / 10,
      inputs: p.inputs.files.map((f) => ({ file: f.file, rows: f.rows, encoding: p.options.encoding ?? 'utf-8' })),
    },
    packages: p.zipSummaries.map((z) => ({ file: path.basename(z.file), xml_files: z.entries.map((e) => ({ name: e.name, users: e.users })) })),
    ...(p.rejectsFile ? { rejects_file: path.basename(p.rejectsFile) } : {}),
    warnings: { ...Object.fromEntries(runLog.warnings), ...p.options.runWarnings },
    rejections: Object.fromEntries(runLog.rejections),
    ...(runLog.skips.size ? { skips: Object.fromEntries(runLog.skips) } : {}),
    merges: runLog.merges,
    ...(Object.keys(p.mapping.unusedColumns).length ? { unused_columns: p.mapping.unusedColumns } : {}),
    ...(absent.length ? { absent_columns: absent } : {}),
  };
}
