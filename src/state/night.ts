// Tonight against the last delivered night. Convert tells the Night of every user it writes (the
// pipeline's UserSink). A user sent as before is recognised among the last night's
// people read beside tonight's feed (last-night.ts) and costs nothing more; any other is looked
// up in the state, compared, and staged in a file of its own (never in memory: a batch at a time,
// in transactions). At the end of convert the Night finds who left and checks the guards against
// the last night; after a successful delivery the job commits the staged night into state.db in
// one transaction with the run's record (commit()).
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { makeRunTempDir } from '../shared/temp.js';
import { createHash } from 'node:crypto';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Counts, GuardTrip } from '../pipeline/report.js';
import { parseMaxRejected } from '../pipeline/report.js';
import { fingerprintOf, type SinkVerdict, type UserSink } from '../pipeline/user-sink.js';
import { fieldLossLimit, type ChangeGuards, type StateConfig } from '../config/run-config.js';
import { RunError } from '../shared/errors.js';
import { onStop } from '../shared/on-stop.js';
import { changedFields, kindName, summarise } from './user-record.js';
import { currentVersionOf, describe, migrate, openForWriting, readPrevious, RecordBatches, RecordReader, stateFileOf, unreadable, type Previous, type RecordAt, type RecordColumns } from './store.js';
import { LastNight } from './last-night.js';
import { departureXml, type Departures } from './departures.js';
import { AlmaSchema } from '../pipeline/validate.js';
import { Packager, timestampForNames } from '../pipeline/package.js';
import { TOOL_VERSION } from '../shared/paths.js';
import { localDate } from '../shared/dates.js';

const EXAMPLES = 5;
/** Users staged a transaction at a time. */
const BATCH = 1000;

export type Change = 'new' | 'changed' | 'unchanged' | 'returned';

export interface NightOptions {
  guards: ChangeGuards;
  /** full: every user goes into the zip; delta: an unchanged one is left out. */
  mode?: RunMode;
  /** --accept-changes: the guards against the last night are checked and reported, but trip nothing. */
  acceptChanges?: boolean;
  /** What accepted them, for the report and the summary, when not --accept-changes: "guards.accept_changes_on: 2026-12-02". */
  acceptedBy?: string;
}

export interface RunMode {
  mode: 'full' | 'delta';
  /** Why: "mode: delta", "first night", "--full", "full_every: sunday", "full_every: 7 (days since the last full run: 7)". */
  why: string;
}

/**
 * Whether tonight sends everyone or only what changed: delta only with mode: delta, an earlier
 * delivery to compare with, no --full, and not a full_every night.
 */
export function runModeOf(config: StateConfig, previous: Previous, now: Date, full: boolean): RunMode {
  if (config.mode !== 'delta') return { mode: 'full', why: 'mode: full' };
  if (!previous.lastRun) return { mode: 'full', why: 'first night' };
  if (full) return { mode: 'full', why: '--full' };
  const every = config.fullEvery;
  if (typeof every === 'string' && WEEKDAYS[now.getDay()] === every) return { mode: 'full', why: `full_every: ${every}` };
  if (typeof every === 'number') {
    const days = previous.lastFull ? Math.round((Date.parse(localDate(now)) - Date.parse(localDate(new Date(previous.lastFull)))) / 86_400_000) : Infinity;
    if (days >= every) return { mode: 'full', why: `full_every: ${every} (${previous.lastFull ? `${days} days since the last full run` : 'no full run yet'})` };
  }
  return { mode: 'delta', why: 'mode: delta' };
}

const WEEKDAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];

/** What the report's `changes` holds. */
export interface ChangesReport {
  /** Which mode ran and why; in delta mode, how many users went into the zip. */
  mode: RunMode & { sent?: number; left_out?: number };
  first_night: boolean;
  state_file: string;
  last_run?: { id: number; run_time: string; people: number };
  new: { count: number; examples: string[] };
  changed: { count: number; fields: Record<string, number>; examples: { primary_id: string; fields: string[] }[] };
  /** out_of_order: of them, the users not where the last night had them in the feed, found by a look-up in the state each. */
  unchanged: { count: number; out_of_order?: number };
  departed: { count: number; examples: { primary_id: string; user_group: string }[] };
  returned: { count: number; examples: string[] };
  group_moves: { from: string; to: string; count: number; examples: string[] }[];
  field_loss: Record<string, { had: number; lost: number; examples: string[] }>;
  /** Guards that tripped, or that would have, with --accept-changes. */
  guards: GuardTrip[];
  accepted?: boolean;
  /** What accepted them: --accept-changes, or the run config's guards.accept_changes_on line. */
  accepted_by?: string;
}

interface Before extends RecordColumns {
  fingerprint: string;
  user_group: string;
  group_rule: string;
  merge: string | null;
  kinds: string;
  missing_since: number | null;
  /** Their rowid in the state. */
  person: number;
}

/** The run state of one run config, open for one run: what the last delivered night was, and tonight staged beside it. */
export class RunState {
  readonly file: string;
  readonly previous: Previous;

  /** Reads the state (refusing one that is unreadable or of a newer version); a missing one is a first night. */
  constructor(dir: string) {
    this.file = stateFileOf(dir);
    this.previous = readPrevious(this.file);
  }

  night(options: NightOptions): Night {
    return new Night(this.file, this.previous, options);
  }
}

export class Night implements UserSink {
  private readonly temp: string;
  private readonly staged: Database.Database;
  private readonly forgetTemp: () => void;
  private readonly insert: Database.Statement;
  private readonly lookup: Database.Statement | undefined;
  /**
   * The people of the last delivered night, read a chunk at a time beside tonight's feed: a user
   * found near the cursor with the same fingerprint for the same reasons (group rule, merge) is
   * unchanged, and is counted without asking the state (a look-up cost about 10 µs,
   * bench/RESULTS.md); the ones never found are the departures.
   */
  private readonly last: LastNight | undefined;
  /** The last night's records (prev.records), for the fields that changed and for departures. */
  private readonly previousRecords: RecordReader | undefined;
  /** Tonight's records, gathered into batches staged with the users that point into them. */
  private readonly records: RecordBatches;
  private pending: unknown[][] = [];
  private pendingRecords: [id: number, users: Buffer][] = [];
  private readonly stage: (rows: unknown[][], records: [number, Buffer][]) => void;
  private run: { source: string; mappingFile: string; mappingSha256: string } | undefined;
  private report: ChangesReport;
  private readonly had = new Map<string, number>();
  private readonly moves = new Map<string, { from: string; to: string; count: number; examples: string[] }>();
  private verdict: SinkVerdict | undefined;

  constructor(
    private readonly file: string,
    private readonly previous: Previous,
    private readonly options: NightOptions,
  ) {
    this.temp = makeRunTempDir('night');
    const removeTemp = () => rmSync(this.temp, { recursive: true, force: true });
    this.forgetTemp = onStop(removeTemp);
    this.staged = new Database(path.join(this.temp, 'night.db'));
    // Tonight's staging is thrown away whenever the run does not commit: no journal, no fsync.
    this.staged.pragma('journal_mode = OFF');
    this.staged.pragma('synchronous = OFF');
    // SQLite's default page cache (16 MB) a schema would count against the run's memory; the
    // staging is written in order, and the last night is read by key only for changed users.
    this.staged.pragma('cache_size = -2048');
    // Appended in write order, its index on key made once at finish(): an insert into a keyed
    // table of records this size cost 50 µs a user, most of the state's time (bench/RESULTS.md).
    this.staged.exec(`CREATE TABLE night (
      key TEXT NOT NULL, primary_id TEXT NOT NULL, fingerprint TEXT NOT NULL, user_group TEXT, group_rule TEXT NOT NULL, merge TEXT,
      expiry_date TEXT, kinds TEXT, record_batch INTEGER, record_at INTEGER, record_len INTEGER, change TEXT NOT NULL, fields TEXT NOT NULL, rows TEXT NOT NULL)`);
    // Numbered from 1 here; commit() renumbers them after the state's own.
    this.staged.exec('CREATE TABLE records (id INTEGER PRIMARY KEY, users BLOB NOT NULL)');
    this.staged.exec('CREATE TABLE departing (key TEXT PRIMARY KEY, record_batch INTEGER NOT NULL, record_at INTEGER NOT NULL, record_len INTEGER NOT NULL) WITHOUT ROWID');
    // The people of the last night not in tonight's feed (finish()).
    this.staged.exec('CREATE TABLE departed (key TEXT PRIMARY KEY, primary_id TEXT NOT NULL, user_group TEXT NOT NULL, group_rule TEXT NOT NULL, kinds TEXT NOT NULL) WITHOUT ROWID');
    this.insert = this.staged.prepare('INSERT INTO night VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    const insertRecords = this.staged.prepare('INSERT INTO records (id, users) VALUES (?, ?)');
    this.stage = this.staged.transaction((rows: unknown[][], records: [number, Buffer][]) => {
      for (const row of rows) this.insert.run(row);
      for (const [id, users] of records) insertRecords.run(id, users);
    });
    this.records = new RecordBatches((id, users) => this.pendingRecords.push([id, users]));
    if (previous.exists) {
      try {
        // An older state is read through a migrated copy: only a delivered run's commit moves state.db.
        this.staged.prepare('ATTACH DATABASE ? AS prev').run(currentVersionOf(file, this.temp));
        describe(this.staged, file, 'prev');
      } catch (error) {
        this.close();
        throw error instanceof RunError ? error : unreadable(file, error);
      }
      this.staged.pragma('prev.cache_size = -2048');
      this.previousRecords = new RecordReader(this.staged, 'prev');
      if (previous.lastRun) this.last = new LastNight(this.staged, 'prev');
      this.lookup = this.staged.prepare(`SELECT p.rowid AS person, p.fingerprint, p.user_group, p.group_rule, p.merge, p.kinds, p.missing_since, p.record_batch, p.record_at, p.record_len FROM prev.people p WHERE p.key = ?`);
    }
    this.report = {
      mode: options.mode ?? { mode: 'full', why: 'mode: full' },
      first_night: !previous.lastRun,
      state_file: file,
      ...(previous.lastRun ? { last_run: { id: previous.lastRun.id, run_time: previous.lastRun.runTime, people: previous.people } } : {}),
      new: { count: 0, examples: [] },
      changed: { count: 0, fields: {}, examples: [] },
      unchanged: { count: 0 },
      departed: { count: 0, examples: [] },
      returned: { count: 0, examples: [] },
      group_moves: [],
      field_loss: {},
      guards: [],
    };
  }

  begin(run: { source: string; mappingFile: string; mappingSha256: string }): void {
    if (this.previous.source !== undefined && this.previous.source !== run.source)
      throw new RunError(
        'state_invalid',
        `the run state ${this.file} belongs to the source "${this.previous.source}", and this run's is "${run.source}": each run config needs a state of its own (state.dir in the run config); nothing was converted`,
        { file: this.file },
      );
    this.run = run;
  }

  /** The mapping threads compute each user's fingerprint as they write it (UserSink.fingerprints). */
  readonly fingerprints = true;

  written(xml: Uint8Array, rows: readonly string[], groupRule: string, merge?: string, given?: string): boolean {
    const fingerprint = given ?? fingerprintOf(xml);
    const r = this.report;
    if (this.last?.find(fingerprint, groupRule, merge ?? null) !== undefined) {
      // The same XML (it holds the primary id) for the same reasons as a person of the last
      // night: nothing to compare, nothing to stage, nothing for commit() to write.
      r.unchanged.count++;
      // A delta night sends what changed: an unchanged user stays as Alma has it.
      return r.mode.mode !== 'delta';
    }
    const bytes = Buffer.from(xml.buffer, xml.byteOffset, xml.byteLength);
    const user = summarise(bytes, fingerprint);
    const before = this.lookup?.get(user.key) as Before | undefined;
    if (before) {
      // Sent as before, for the same reasons, only out of last night's order: as unchanged as one found near the cursor.
      const asBefore = before.missing_since === null && before.fingerprint === user.fingerprint && before.group_rule === groupRule && before.merge === (merge ?? null);
      this.last?.found(before.person, asBefore);
      if (asBefore) {
        r.unchanged.count++;
        return r.mode.mode !== 'delta';
      }
    }
    let change: Change;
    let fields: string[] = [];
    if (!before) {
      change = 'new';
      r.new.count++;
      if (r.new.examples.length < EXAMPLES) r.new.examples.push(user.primaryId);
    } else {
      const wasThere = before.missing_since === null;
      if (!wasThere) {
        change = 'returned';
        r.returned.count++;
        if (r.returned.examples.length < EXAMPLES) r.returned.examples.push(user.primaryId);
      } else if (before.fingerprint === user.fingerprint) {
        change = 'unchanged';
        r.unchanged.count++;
      } else {
        change = 'changed';
        r.changed.count++;
      }
      if (before.fingerprint !== user.fingerprint) {
        const record = this.previousRecords!.readBytes(before);
        fields = record !== undefined ? changedFields(record, bytes) : [];
        if (change === 'changed') {
          for (const f of fields) r.changed.fields[f] = (r.changed.fields[f] ?? 0) + 1;
          if (r.changed.examples.length < EXAMPLES) r.changed.examples.push({ primary_id: user.primaryId, fields });
        }
      }
      if (before.user_group !== user.userGroup) this.moved(before.user_group, user.userGroup, user.primaryId);
      // What Alma would delete: a kind of value the user had at the last delivery and has not tonight.
      if (wasThere && before.kinds) {
        for (const kind of before.kinds.split(' ')) {
          if (!user.kinds.includes(kind)) {
            const loss = (r.field_loss[kind] ??= { had: 0, lost: 0, examples: [] });
            loss.lost++;
            if (loss.examples.length < EXAMPLES) loss.examples.push(user.primaryId);
          }
        }
      }
    }
    // An unchanged person keeps the record the state has; commit() leaves it in place.
    const at: Partial<RecordAt> = change === 'unchanged' ? {} : this.records.add(bytes);
    this.pending.push([user.key, user.primaryId, user.fingerprint, user.userGroup, groupRule, merge ?? null, user.expiryDate, user.kinds.join(' '), at.batch ?? null, at.at ?? null, at.len ?? null, change, fields.join(' '), JSON.stringify(rows)]);
    if (this.pending.length >= BATCH) this.flush();
    // A delta night sends what changed: an unchanged user stays as Alma has it.
    return !(change === 'unchanged' && this.report.mode.mode === 'delta');
  }

  /** Adds (or takes away) people's kinds of value to `had`, from counts by the kinds column. */
  private countKinds(counts: Map<string, number>, sign: 1 | -1): void {
    for (const [kinds, count] of counts) for (const kind of kinds.split(' ')) if (kind) this.had.set(kind, (this.had.get(kind) ?? 0) + sign * count);
  }

  private moved(from: string, to: string, primaryId: string): void {
    const key = `${from}\u0000${to}`;
    let move = this.moves.get(key);
    if (!move) this.moves.set(key, (move = { from, to, count: 0, examples: [] }));
    move.count++;
    if (move.examples.length < EXAMPLES) move.examples.push(primaryId);
  }

  private flush(): void {
    if (!this.pending.length && !this.pendingRecords.length) return;
    this.stage(this.pending, this.pendingRecords);
    this.pending = [];
    this.pendingRecords = [];
  }

  finish(): SinkVerdict {
    this.records.close();
    this.flush();
    // One user per key (the merge makes one user of a person's rows, and Alma's rules across users one user of an id).
    this.staged.exec('CREATE UNIQUE INDEX night_key ON night (key)');
    const r = this.report;
    const last = this.previous.lastRun;
    if (last && this.last) {
      // Who was delivered last time and is not in tonight's feed: of the people never found
      // tonight, those not staged tonight either (changed, returned or new). CROSS JOIN keeps
      // SQLite to this order (unseen first): the other way round reads every person of the state.
      const unseen = this.last.finish();
      this.countKinds(this.last.kinds, +1);
      r.unchanged.out_of_order = this.last.outOfOrder;
      this.staged.exec('CREATE TEMP TABLE unseen (person INTEGER PRIMARY KEY)');
      const insert = this.staged.prepare('INSERT INTO unseen (person) VALUES (?)');
      this.staged.transaction(() => {
        for (const person of unseen) insert.run(person);
      })();
      this.staged.exec(`INSERT INTO departed (key, primary_id, user_group, group_rule, kinds)
        SELECT p.key, p.primary_id, p.user_group, p.group_rule, p.kinds FROM unseen u CROSS JOIN prev.people p ON p.rowid = u.person WHERE NOT EXISTS (SELECT 1 FROM night n WHERE n.key = p.key)`);
      r.departed.count = this.staged.prepare('SELECT count(*) FROM departed').pluck().get() as number;
      r.departed.examples = this.staged.prepare(`SELECT primary_id, user_group FROM departed ORDER BY primary_id LIMIT ${EXAMPLES}`).all() as { primary_id: string; user_group: string }[];
      // Who departed had what they had, but is not tonight's to lose.
      this.countKinds(new Map(this.staged.prepare('SELECT kinds, count(*) FROM departed GROUP BY kinds').raw().all() as [string, number][]), -1);
    }
    r.group_moves = [...this.moves.values()].sort((a, b) => b.count - a.count || a.from.localeCompare(b.from) || a.to.localeCompare(b.to));
    for (const [kind, had] of this.had) if (r.field_loss[kind]) r.field_loss[kind]!.had = had;
    r.guards = last ? this.checkGuards() : [];
    if (r.mode.mode === 'delta') r.mode = { ...r.mode, sent: r.new.count + r.changed.count + r.returned.count, left_out: r.unchanged.count };
    if (this.options.acceptChanges && r.guards.length) {
      r.accepted = true;
      r.accepted_by = this.options.acceptedBy ?? '--accept-changes';
    }
    this.verdict = { key: 'changes', report: r as unknown as Record<string, unknown>, trips: r.accepted ? [] : r.guards, summary: sentence(r) };
    return this.verdict;
  }

  private checkGuards(): GuardTrip[] {
    const r = this.report;
    const g = this.options.guards;
    const trips: GuardTrip[] = [];
    const known = r.changed.count + r.unchanged.count + r.returned.count;
    const departures = over(g.maxDepartures, r.departed.count, this.previous.people);
    if (departures)
      trips.push({
        guard: 'max_departures',
        limit: g.maxDepartures,
        actual: r.departed.count,
        message: `${n(r.departed.count)} of ${n(this.previous.people)} people of the last delivered run (${departures}) are not in tonight's feed, over the limit of ${g.maxDepartures} (max_departures)`,
        examples: r.departed.examples.map((d) => d.primary_id),
      });
    const moves = r.group_moves.reduce((sum, m) => sum + m.count, 0);
    const moved = over(g.maxGroupChanges, moves, known);
    if (moved)
      trips.push({
        guard: 'max_group_changes',
        limit: g.maxGroupChanges,
        actual: moves,
        message: `${n(moves)} of ${n(known)} users known from the last run (${moved}) would change user group (${r.group_moves.slice(0, 3).map((m) => `${m.from || '(none)'} → ${m.to || '(none)'}: ${n(m.count)}`).join(', ')}), over the limit of ${g.maxGroupChanges} (max_group_changes)`,
        examples: r.group_moves.flatMap((m) => m.examples).slice(0, EXAMPLES),
      });
    for (const [kind, loss] of Object.entries(r.field_loss).sort(([a], [b]) => a.localeCompare(b))) {
      // One limit for every kind, or the kind's own (max_field_loss.email), or the map's default.
      const { limit, key } = fieldLossLimit(g.maxFieldLoss, kind);
      const share = over(limit, loss.lost, loss.had);
      if (share)
        trips.push({
          guard: 'max_field_loss',
          limit,
          actual: loss.lost,
          message: `${kindName(kind)}: ${n(loss.lost)} of ${n(loss.had)} users (${share}) would lose their ${kindName(kind)}, over the limit of ${limit} (${key})`,
          examples: loss.examples,
        });
    }
    const fresh = over(g.maxNewUsers, r.new.count, this.previous.people);
    if (fresh)
      trips.push({
        guard: 'max_new_users',
        limit: g.maxNewUsers,
        actual: r.new.count,
        message: `${n(r.new.count)} new users, against ${n(this.previous.people)} people of the last delivered run (${fresh}), over the limit of ${g.maxNewUsers} (max_new_users)`,
        examples: r.new.examples,
      });
    return trips;
  }

  /**
   * The departures of a healthy night, as a zip of their own beside tonight's: each person missing
   * for config.afterMissingRuns delivered nights (tonight included) whose departure was not sent
   * yet, their last delivered record changed as the config says and checked against the XSD.
   * None on a night a guard tripped (even one accepted with --accept-changes), as FOLIO does.
   */
  async departures(config: Departures, p: { outDir: string; now: Date; schemaFile?: string }): Promise<DeparturesResult> {
    const base = { action: config.action, after_missing_runs: config.afterMissingRuns };
    if (!this.run || !this.verdict) throw new Error('departures before the night was converted');
    if (this.report.guards.length) return { report: { ...base, sent: 0, examples: [], not_sent: 'a guard against the last night tripped: departures are sent only on a healthy night' } };
    const last = this.previous.lastRun;
    if (!last) return { report: { ...base, sent: 0, examples: [] } };
    // Missing tonight and on the nights before, after_missing_runs in all: missing since the
    // (after_missing_runs - 1)th last delivered run at the latest; after one night, everyone
    // missing whose departure was not sent yet.
    const ids = this.staged.prepare('SELECT id FROM prev.runs ORDER BY id DESC LIMIT ?').pluck().all(config.afterMissingRuns) as number[];
    const bound = config.afterMissingRuns === 1 ? Number.MAX_SAFE_INTEGER : ids[config.afterMissingRuns - 2];
    if (bound === undefined) return { report: { ...base, sent: 0, examples: [] } };
    this.staged.exec('CREATE TEMP TABLE leaving (key TEXT PRIMARY KEY, last_seen TEXT NOT NULL) WITHOUT ROWID');
    if (config.afterMissingRuns === 1) this.staged.prepare('INSERT INTO leaving SELECT key, ? FROM departed').run(last.runTime);
    this.staged
      .prepare(
        `INSERT INTO leaving SELECT p.key, (SELECT r.run_time FROM prev.runs r WHERE r.id < p.missing_since ORDER BY r.id DESC LIMIT 1) FROM prev.people p
          WHERE p.missing_since IS NOT NULL AND p.missing_since <= ? AND p.departed_run IS NULL AND NOT EXISTS (SELECT 1 FROM night n WHERE n.key = p.key)`,
      )
      .run(bound);
    const runDate = localDate(p.now);
    const stem = `users_${this.run.source}_${timestampForNames(p.now)}_departures`;
    let packager: Packager | undefined;
    let schema: AlmaSchema | undefined;
    const examples: string[] = [];
    const refused: { primary_id: string; problem: string }[] = [];
    let sent = 0;
    const keep = this.staged.prepare('INSERT INTO departing (key, record_batch, record_at, record_len) VALUES (?, ?, ?, ?)');
    const previousRecords = this.previousRecords!;
    const leaving = this.staged.prepare(
      `SELECT l.key, p.primary_id, p.record_batch, p.record_at, p.record_len, l.last_seen FROM leaving l JOIN prev.people p ON p.key = l.key
        WHERE l.key > ? ORDER BY l.key LIMIT ${BATCH}`,
    );
    // A batch at a time, in key order (the connection cannot write while a query is still reading).
    type Leaving = RecordColumns & { key: string; primary_id: string; last_seen: string };
    async function* everyone(): AsyncGenerator<Leaving> {
      for (let after = ''; ; ) {
        const batch = leaving.all(after) as Leaving[];
        if (!batch.length) return;
        yield* batch;
        after = batch[batch.length - 1]!.key;
      }
    }
    try {
      for await (const person of everyone()) {
        const record = previousRecords.read(person);
        if (record === undefined) {
          // Never a record without its identifiers and contacts: that would wipe them in Alma.
          if (refused.length < EXAMPLES) refused.push({ primary_id: person.primary_id, problem: 'the run state holds no record of what was last sent for this person' });
          continue;
        }
        const xml = departureXml(record, config, runDate, person.last_seen);
        schema ??= AlmaSchema.load(p.schemaFile);
        const problems = schema.validate(`<?xml version="1.0" encoding="UTF-8"?>\n<users>\n${xml}</users>\n`);
        if (problems.length) {
          if (refused.length < EXAMPLES) refused.push({ primary_id: person.primary_id, problem: problems[0]!.message });
          continue;
        }
        packager ??= new Packager({ outDir: p.outDir, stem, chunkSize: 10000, provenance: { tool: 'sis2alma', version: TOOL_VERSION, mappingFile: path.basename(this.run.mappingFile), mappingSha256: this.run.mappingSha256, runTime: p.now.toISOString() } });
        const wait = packager.add(xml);
        if (wait) await wait;
        const at = this.records.add(Buffer.from(xml));
        keep.run(person.key, at.batch, at.at, at.len);
        sent++;
        if (examples.length < EXAMPLES) examples.push(person.primary_id);
      }
      this.records.close();
      this.flush();
      const files = packager ? (await packager.finish(), await packager.commit()) : [];
      return { files, report: { ...base, sent, examples, ...(files.length ? { files: files.map((f) => path.basename(f)) } : {}), ...(refused.length ? { refused } : {}) } };
    } catch (error) {
      await packager?.abort();
      throw error;
    }
  }

  /**
   * Moves the staged night into the state, with the run's record, in one transaction: after a
   * successful delivery only. Returns the run's id in the state.
   */
  commit(run: { runTime: Date; configFile: string; reportFile: string; files: string[]; counts: Counts }): number {
    if (!this.run || !this.verdict) throw new Error('commit before the night was converted');
    const db = openForWriting(this.file);
    try {
      db.prepare('ATTACH DATABASE ? AS staged').run(path.join(this.temp, 'night.db'));
      const time = run.runTime.toISOString();
      const apply = db.transaction(() => {
        migrate(db, this.file);
        const now = describe(db, this.file);
        if (now.source !== undefined && now.source !== this.run!.source) throw new RunError('state_invalid', `the run state ${this.file} belongs to the source "${now.source}", not "${this.run!.source}"`, { file: this.file });
        const meta = db.prepare('INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING');
        meta.run('source', this.run!.source);
        meta.run('created', time);
        const id = Number(
          db
            .prepare('INSERT INTO runs (run_time, mode, outcome, config_file, config_sha256, mapping_file, mapping_sha256, counts, changes, files, report_file, people) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
            .run(time, this.report.mode.mode, run.files.length === 0 ? 'nothing to deliver' : this.report.accepted ? 'delivered, changes accepted' : 'delivered', run.configFile, sha256Of(run.configFile), this.run!.mappingFile, this.run!.mappingSha256, JSON.stringify(run.counts), JSON.stringify(this.report), JSON.stringify(run.files), run.reportFile, this.people()).lastInsertRowid,
        );
        // Tonight's record batches, numbered after the state's own.
        const base = db.prepare('SELECT coalesce(max(id), 0) FROM records').pluck().get() as number;
        db.prepare('INSERT INTO records (id, users) SELECT id + ?, users FROM staged.records ORDER BY id').run(base);
        // Every user staged has a night of their own in `sent`: new, changed, returned, or
        // unchanged with a renamed group rule (for history to say why run by run).
        // Into an empty state (a first night), everyone is new: the rows go in as they were staged
        // and the keys' indexes are built after, by one sort (4 s at 1M people, against 9 s for
        // inserting them one by one; bench/RESULTS.md).
        const empty = db.prepare('SELECT NOT EXISTS (SELECT 1 FROM people) AND NOT EXISTS (SELECT 1 FROM sent)').pluck().get() === 1;
        if (empty) db.exec('DROP INDEX people_by_key; DROP INDEX sent_by_key');
        db.prepare(`INSERT INTO sent (key, run, change, fields, user_group, group_rule, merge, rows, record_batch, record_at, record_len) SELECT key, @run, change, fields, user_group, group_rule, merge, rows, record_batch + @base, record_at, record_len FROM staged.night${empty ? '' : ' ORDER BY key'}`).run({ run: id, base });
        db.prepare(`INSERT INTO sent (key, run, change, fields, user_group, group_rule, merge, rows) SELECT key, ?, 'departed', '', user_group, group_rule, NULL, '[]' FROM staged.departed ORDER BY key`).run(id);
        db.prepare('UPDATE people SET missing_since = ? WHERE key IN (SELECT key FROM staged.departed)').run(id);
        // A person sent as before is not written: only one whose XML was the same but whose group
        // rule or merge reason changed (a mapping edit) is staged, for `history` to say why.
        db.prepare(
          `UPDATE people SET group_rule = n.group_rule, merge = n.merge
             FROM (SELECT key, group_rule, merge FROM staged.night WHERE change = 'unchanged') AS n WHERE people.key = n.key`,
        ).run();
        db.prepare(
          `INSERT INTO people (key, primary_id, fingerprint, user_group, group_rule, merge, expiry_date, kinds, record_batch, record_at, record_len, first_seen, sent_run)
             SELECT key, primary_id, fingerprint, user_group, group_rule, merge, expiry_date, kinds, record_batch + @base, record_at, record_len, @time, @run FROM staged.night WHERE change <> 'unchanged'${
               empty
                 ? ''
                 : ` ORDER BY key
           ON CONFLICT (key) DO UPDATE SET primary_id = excluded.primary_id, fingerprint = excluded.fingerprint, user_group = excluded.user_group,
             group_rule = excluded.group_rule, merge = excluded.merge, expiry_date = excluded.expiry_date, kinds = excluded.kinds,
             record_batch = excluded.record_batch, record_at = excluded.record_at, record_len = excluded.record_len, sent_run = excluded.sent_run,
             missing_since = NULL, departed_run = NULL`
             }`,
        ).run({ time, run: id, base });
        if (empty) db.exec('CREATE UNIQUE INDEX people_by_key ON people (key); CREATE UNIQUE INDEX sent_by_key ON sent (key, run, change)');
        db.prepare(`INSERT INTO sent (key, run, change, fields, user_group, group_rule, merge, rows, record_batch, record_at, record_len) SELECT p.key, @run, 'departure sent', '', p.user_group, p.group_rule, NULL, '[]', d.record_batch + @base, d.record_at, d.record_len FROM staged.departing d JOIN people p ON p.key = d.key`).run({ run: id, base });
        db.prepare('UPDATE people SET departed_run = ? WHERE key IN (SELECT key FROM staged.departing)').run(id);
        pauseForTests(this.file);
        return id;
      });
      return apply.immediate();
    } catch (error) {
      if (error instanceof RunError) throw error;
      throw new RunError('output_failed', `cannot record tonight in the run state ${this.file} (${(error as Error).message}); it is left as it was, and the next run compares with the last night recorded`, { file: this.file });
    } finally {
      db.close();
    }
  }

  /**
   * Whether a night with nobody to send has something for the state all the same (after
   * finish()): people who left the feed, or users sent as before whose group rule was renamed.
   */
  hasChangesToRecord(): boolean {
    return this.report.departed.count > 0 || (this.staged.prepare('SELECT count(*) FROM night').pluck().get() as number) > 0;
  }

  /** The people of tonight's feed: every user written. */
  private people(): number {
    const r = this.report;
    return r.new.count + r.changed.count + r.unchanged.count + r.returned.count;
  }

  /** Throws the staged night away (also after a commit). */
  close(): void {
    this.staged.close();
    this.forgetTemp();
    rmSync(this.temp, { recursive: true, force: true });
  }
}

export interface DeparturesResult {
  /** The zip of the departures, when any was sent. */
  files?: string[];
  /** What report.json says under `departures`. */
  report: Record<string, unknown>;
}

/** The share `actual` is of `base`, as text, when it is over the limit (a count or a share of base); undefined when it is not. */
function over(limit: string, actual: number, base: number): string | undefined {
  const max = parseMaxRejected(limit);
  if (!max) return undefined;
  const allowed = max.count ?? Math.floor(((max.percent ?? 0) / 100) * base);
  if (actual <= allowed) return undefined;
  return base ? `${((100 * actual) / base).toFixed(1)}%` : 'all';
}

function n(value: number): string {
  return value.toLocaleString('en-US');
}

/** The night's changes in one sentence for the summary. */
function sentence(r: ChangesReport): string {
  if (r.first_night) return `First night: no earlier delivery in the run state to compare with; tonight's users become the state once delivered.`;
  const moves = r.group_moves.reduce((sum, m) => sum + m.count, 0);
  const mode = r.mode.mode === 'delta' ? ` Delta run (${r.mode.why}): ${n(r.mode.sent ?? 0)} users sent, ${n(r.mode.left_out ?? 0)} unchanged left out.` : r.mode.why === 'mode: full' ? '' : ` Full run (${r.mode.why}).`;
  return `Since the last delivery: ${n(r.new.count)} new, ${n(r.changed.count)} changed, ${n(r.unchanged.count)} unchanged, ${n(r.departed.count)} departed, ${n(r.returned.count)} returned, ${n(moves)} changed user group.${r.accepted ? ` Changes over the guards accepted (${r.accepted_by ?? '--accept-changes'}).` : ''}${mode}`;
}

function sha256Of(file: string): string {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex');
  } catch {
    return '';
  }
}

/**
 * Fault injection for the tests that kill a run while it commits: with SIS2ALMA_TEST_STATE_PAUSE
 * set to a file name, the commit writes that file and waits inside its transaction, so that the
 * test can SIGKILL the process there. Never set in production.
 */
function pauseForTests(stateFile: string): void {
  const marker = process.env.SIS2ALMA_TEST_STATE_PAUSE;
  if (!marker) return;
  writeFileSync(marker, stateFile);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 30_000);
}
