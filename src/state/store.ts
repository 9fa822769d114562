// The run state: one SQLite file (state.db) per run config, holding what was last delivered for
// every person and a record of every delivered run. It moves forward only after a delivery has
// succeeded, in one transaction (commit, below); until then tonight's users are staged in a file
// of their own (night.ts), so that a dry run, a tripped guard, a failed delivery or a crash leaves
// state.db exactly as it was.
//
// Journal mode: SQLite's rollback journal (DELETE), not WAL. One run writes at a time (the run's
// lock), and once a night; what matters is that state.db is one self-contained file whenever no
// run is committing: `cp state.db` is a whole backup, `sqlite3 state.db` reads it on any file
// system (WAL needs shared memory, which NFS does not give), and no -wal file of patron data sits
// beside it. A commit killed half-way leaves a hot journal that SQLite rolls back on next open.
import { closeSync, constants as fsConstants, mkdirSync, openSync, statSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { RunError } from '../shared/errors.js';
import { packBatch, unpackBatch, unpackRecord } from './user-record.js';

export const STATE_FILE = 'state.db';
/** The schema this version writes; PRAGMA user_version in the file. */
export const SCHEMA_VERSION = 2;

/**
 * Each migration takes the file from the version before it to its own (index + 1): SQL, or a
 * function for what SQL cannot do. They run in the commit's transaction, so that an older state
 * is upgraded only by a run that moves it.
 */
export const MIGRATIONS: readonly (string | ((db: Database.Database) => void))[] = [
  `CREATE TABLE meta (
     name TEXT PRIMARY KEY,
     value TEXT NOT NULL
   ) WITHOUT ROWID;
   CREATE TABLE runs (
     id INTEGER PRIMARY KEY,
     run_time TEXT NOT NULL,
     mode TEXT NOT NULL,
     outcome TEXT NOT NULL,
     config_file TEXT NOT NULL,
     config_sha256 TEXT NOT NULL,
     mapping_file TEXT NOT NULL,
     mapping_sha256 TEXT NOT NULL,
     counts TEXT NOT NULL,
     changes TEXT NOT NULL,
     files TEXT NOT NULL,
     report_file TEXT
   );
   CREATE TABLE people (
     key TEXT NOT NULL UNIQUE,
     primary_id TEXT NOT NULL,
     fingerprint TEXT NOT NULL,
     user_group TEXT NOT NULL,
     group_rule TEXT NOT NULL,
     merge TEXT,
     expiry_date TEXT NOT NULL,
     kinds TEXT NOT NULL,
     record BLOB,
     first_seen TEXT NOT NULL,
     last_seen TEXT NOT NULL,
     last_run INTEGER NOT NULL REFERENCES runs (id),
     departed_run INTEGER REFERENCES runs (id)
   );
   CREATE INDEX people_by_last_run ON people (last_run);
   CREATE TABLE sent (
     key TEXT NOT NULL,
     run INTEGER NOT NULL REFERENCES runs (id),
     change TEXT NOT NULL,
     fields TEXT NOT NULL,
     user_group TEXT NOT NULL,
     group_rule TEXT NOT NULL,
     merge TEXT,
     rows TEXT NOT NULL,
     record BLOB
   );
   CREATE UNIQUE INDEX sent_by_key ON sent (key, run, change);`,
  // Version 2, for a night's cost in proportion to what changed, not to the population:
  // - records kept in batches (table records), people and the nights they were sent pointing into
  //   them, rather than each row holding its own deflated record (people and sent held two copies);
  // - a person present night after night is not written at all: `missing_since` (the first
  //   delivered run whose feed did not have them) replaces `last_seen`/`last_run`, which every
  //   night rewrote for everyone; `sent_run` is the run that last sent them a changed user;
  // - each run counts the people of its feed (`runs.people`);
  // - people's key is unique by an index of its own (people_by_key), not a constraint of the
  //   table, so that a first night can fill the table and build the index after (sorting 1M keys
  //   once took 4 s where inserting them one by one into the index took 9);
  // - people keep their order (rowid): the order they were first delivered in, which a night
  //   reads beside its feed (last-night.ts).
  (db) => {
    db.exec(`CREATE TABLE records (id INTEGER PRIMARY KEY, users BLOB NOT NULL);
      ALTER TABLE runs ADD COLUMN people INTEGER NOT NULL DEFAULT 0;
      UPDATE runs SET people = coalesce(json_extract(counts, '$.users'), 0);
      CREATE TABLE people_v2 (
        key TEXT NOT NULL,
        primary_id TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        user_group TEXT NOT NULL,
        group_rule TEXT NOT NULL,
        merge TEXT,
        expiry_date TEXT NOT NULL,
        kinds TEXT NOT NULL,
        record_batch INTEGER REFERENCES records (id),
        record_at INTEGER,
        record_len INTEGER,
        first_seen TEXT NOT NULL,
        sent_run INTEGER NOT NULL REFERENCES runs (id),
        missing_since INTEGER REFERENCES runs (id),
        departed_run INTEGER REFERENCES runs (id),
        record BLOB
      );
      INSERT INTO people_v2 (key, primary_id, fingerprint, user_group, group_rule, merge, expiry_date, kinds, first_seen, sent_run, missing_since, departed_run, record)
        SELECT key, primary_id, fingerprint, user_group, group_rule, merge, expiry_date, kinds, first_seen,
          coalesce((SELECT max(s.run) FROM sent s WHERE s.key = p.key AND s.change IN ('new', 'changed', 'returned')), last_run),
          (SELECT min(r.id) FROM runs r WHERE r.id > p.last_run), departed_run, record
        FROM people p ORDER BY p.rowid;
      DROP INDEX people_by_last_run;
      DROP TABLE people;
      ALTER TABLE people_v2 RENAME TO people;
      CREATE UNIQUE INDEX people_by_key ON people (key);
      CREATE INDEX people_missing ON people (missing_since) WHERE missing_since IS NOT NULL AND departed_run IS NULL;
      ALTER TABLE sent ADD COLUMN record_batch INTEGER REFERENCES records (id);
      ALTER TABLE sent ADD COLUMN record_at INTEGER;
      ALTER TABLE sent ADD COLUMN record_len INTEGER;`);
    const insert = db.prepare('INSERT INTO records (id, users) VALUES (?, ?)');
    for (const table of ['people', 'sent']) {
      const point = db.prepare(`UPDATE ${table} SET record_batch = ?, record_at = ?, record_len = ? WHERE rowid = ?`);
      // A row points at its batch once the batch is stored (the foreign key).
      const waiting: [rowid: number, at: RecordAt][] = [];
      const nextId = (db.prepare('SELECT coalesce(max(id), 0) + 1 FROM records').pluck().get() as number);
      const batches = new RecordBatches((id, users) => {
        insert.run(id, users);
        for (const [rowid, at] of waiting) point.run(at.batch, at.at, at.len, rowid);
        waiting.length = 0;
      }, nextId);
      const page = db.prepare(`SELECT rowid AS id, record FROM ${table} WHERE record IS NOT NULL AND rowid > ? ORDER BY rowid LIMIT 1000`);
      // A page at a time: the connection cannot write while a query is still reading, and a state
      // of a million people does not fit in memory.
      for (let after = 0; ; ) {
        const rows = page.all(after) as { id: number; record: Buffer }[];
        if (!rows.length) break;
        for (const row of rows) {
          const at = batches.add(Buffer.from(unpackRecord(row.record)));
          waiting.push([row.id, at]);
        }
        after = rows[rows.length - 1]!.id;
      }
      batches.close();
      // The last row of a full batch was added after its batch was stored.
      for (const [rowid, at] of waiting) point.run(at.batch, at.at, at.len, rowid);
      db.exec(`ALTER TABLE ${table} DROP COLUMN record`);
    }
  },
];

/** Where a record is: its batch (records.id), and its byte offset and length in the inflated batch. */
export interface RecordAt {
  batch: number;
  at: number;
  len: number;
}

/**
 * Gathers users' XML into batches and hands each batch, deflated, to `store` with its id (the
 * ids count up from `nextId`). `add` answers where the user will be; the batch is stored when it
 * is full, or by `close`.
 */
export class RecordBatches {
  private buffer = Buffer.allocUnsafe(BATCH_BYTES);
  private used = 0;
  private users = 0;

  constructor(private readonly store: (id: number, users: Buffer) => void, private nextId = 1) {}

  add(xml: Uint8Array): RecordAt {
    if (this.used + xml.byteLength > this.buffer.length) {
      this.close();
      if (xml.byteLength > this.buffer.length) this.buffer = Buffer.allocUnsafe(xml.byteLength);
    }
    const at = { batch: this.nextId, at: this.used, len: xml.byteLength };
    this.buffer.set(xml, this.used);
    this.used += xml.byteLength;
    if (++this.users >= BATCH_USERS) this.close();
    return at;
  }

  /** Stores the batch being gathered, if any. */
  close(): void {
    if (!this.users) return;
    this.store(this.nextId++, packBatch(this.buffer.subarray(0, this.used)));
    this.used = 0;
    this.users = 0;
  }
}

/** Users a batch, and its size at most (a larger user gets a batch of its own). */
const BATCH_USERS = 64;
const BATCH_BYTES = 256 * 1024;

/** The columns of a row (people, sent, departing) that say where its record is. */
export interface RecordColumns {
  record_batch?: number | null;
  record_at?: number | null;
  record_len?: number | null;
}

/**
 * Reads records back from one schema of a connection, keeping the last few batches inflated
 * (users come in much the same order every night, so a night's reads go batch after batch).
 */
export class RecordReader {
  private readonly get: Database.Statement;
  private readonly cache = new Map<number, Buffer>();

  constructor(db: Database.Database, schema = 'main') {
    this.get = db.prepare(`SELECT users FROM ${schema}.records WHERE id = ?`).pluck();
  }

  read(row: RecordColumns): string | undefined {
    return this.readBytes(row)?.toString('utf8');
  }

  /** The record's bytes (a view into the inflated batch, valid until the next read). */
  readBytes(row: RecordColumns): Buffer | undefined {
    const { record_batch: batch, record_at: at, record_len: len } = row;
    if (batch == null || at == null || len == null) return undefined;
    let users = this.cache.get(batch);
    if (users) this.cache.delete(batch);
    // A batch inflated up to an earlier user is inflated again, further.
    if (!users || users.length < at + len) {
      const blob = this.get.get(batch) as Buffer | undefined;
      if (!blob) return undefined;
      users = unpackBatch(blob, at + len);
      if (this.cache.size >= CACHED_BATCHES) this.cache.delete(this.cache.keys().next().value!);
    }
    // Most recently used last.
    this.cache.set(batch, users);
    return users.subarray(at, at + len);
  }
}

const CACHED_BATCHES = 8;

/** What the state held before tonight, as read when the run starts. */
export interface Previous {
  file: string;
  /** false on a first night: no state file, or one no run has committed to. */
  exists: boolean;
  source?: string;
  /** The last delivered run. */
  lastRun?: { id: number; runTime: string };
  /** People in the last delivered run. */
  people: number;
  /** The time of the last run that sent everyone. */
  lastFull?: string;
}

export function stateFileOf(dir: string): string {
  return path.join(dir, STATE_FILE);
}

/**
 * The state folder of one push account of `sis2alma serve`: a folder of its own under the state
 * folder, named after the account. Letters, digits, - and _ stay as they are; any other byte of
 * the name (a dot, a slash, a space, a non-ASCII letter) is written %XX, so that every name is one
 * folder of its own, never `.`, `..` or a path, and never `state.db`.
 */
export function accountStateDir(stateDir: string, account: string): string {
  const name = [...Buffer.from(account, 'utf8')].map((b) => (/[A-Za-z0-9_-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('');
  return path.join(stateDir, name);
}

/** Reads what a state file holds, refusing one that cannot be read or was written by a newer sis2alma. */
export function readPrevious(file: string): Previous {
  if (!statSync(file, { throwIfNoEntry: false })) return { file, exists: false, people: 0 };
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    return describe(db, file);
  } catch (error) {
    if (error instanceof RunError) throw error;
    throw unreadable(file, error);
  } finally {
    db?.close();
  }
}

/** The state's version and source, checked; for a connection to the file (main) or one it is attached to as `prev`. */
export function describe(db: Database.Database, file: string, schema = 'main'): Previous {
  const version = db.pragma(`${schema}.user_version`, { simple: true }) as number;
  if (version > SCHEMA_VERSION)
    throw new RunError('state_invalid', `the run state ${file} was written by a newer sis2alma (state version ${version}; this one reads up to ${SCHEMA_VERSION}): upgrade sis2alma, or move the file away to start again from a first night`, { file });
  if (version === 0) return { file, exists: false, people: 0 };
  const source = (db.prepare(`SELECT value FROM ${schema}.meta WHERE name = 'source'`).get() as { value: string } | undefined)?.value;
  const last = db.prepare(`SELECT id, run_time AS runTime FROM ${schema}.runs ORDER BY id DESC LIMIT 1`).get() as { id: number; runTime: string } | undefined;
  const people = !last ? 0 : version < 2 ? (db.prepare(`SELECT count(*) FROM ${schema}.people WHERE last_run = ?`).pluck().get(last.id) as number) : (db.prepare(`SELECT people FROM ${schema}.runs WHERE id = ?`).pluck().get(last.id) as number);
  const lastFull = db.prepare(`SELECT run_time FROM ${schema}.runs WHERE mode = 'full' ORDER BY id DESC LIMIT 1`).pluck().get() as string | undefined;
  return { file, exists: true, ...(source !== undefined ? { source } : {}), ...(last ? { lastRun: last } : {}), people, ...(lastFull ? { lastFull } : {}) };
}

export function unreadable(file: string, error: unknown): RunError {
  const why = (error as { code?: string }).code === 'SQLITE_NOTADB' ? 'it is not an SQLite database' : (error as Error).message;
  return new RunError('state_invalid', `the run state ${file} cannot be read (${why}); sis2alma will not start again from an empty state on its own: restore the file from a backup, or move it away to make tonight a first night`, { file });
}

/** Opens the state file to write, making it (mode 600, in a folder of mode 700) when it is missing. */
export function openForWriting(file: string): Database.Database {
  try {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    // Made here, empty and private, before SQLite opens it: SQLite would make it with the umask's
    // mode (often 644), and gives its journal the mode of the file.
    closeSync(openSync(file, fsConstants.O_CREAT | fsConstants.O_WRONLY, 0o600));
  } catch (error) {
    throw new RunError('output_failed', `cannot create the run state ${file} (${(error as NodeJS.ErrnoException).code ?? error})`, { file });
  }
  try {
    const db = new Database(file, { fileMustExist: true });
    db.pragma('journal_mode = DELETE');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    return db;
  } catch (error) {
    throw unreadable(file, error);
  }
}

/** Brings a state to SCHEMA_VERSION; call inside the commit's transaction. */
export function migrate(db: Database.Database, file: string): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) throw new RunError('state_invalid', `the run state ${file} was written by a newer sis2alma (state version ${version})`, { file });
  for (let v = version; v < SCHEMA_VERSION; v++) {
    const step = MIGRATIONS[v]!;
    if (typeof step === 'string') db.exec(step);
    else step(db);
  }
  if (version !== SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
}

/**
 * A copy of an older state, migrated, for reading it as this version does without moving the
 * state itself (only a delivered run's commit migrates state.db): made in `dir`, a private
 * temporary folder the caller removes. Answers `file` itself when it is current.
 */
export function currentVersionOf(file: string, dir: string): string {
  const copy = path.join(dir, 'state-migrated.db');
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version === 0 || version >= SCHEMA_VERSION) return file;
    // A consistent copy even while a run commits to the file (VACUUM INTO reads in one transaction).
    db.prepare('VACUUM INTO ?').run(copy);
  } finally {
    db.close();
  }
  const older = new Database(copy);
  try {
    older.pragma('journal_mode = OFF');
    older.pragma('synchronous = OFF');
    older.transaction(() => migrate(older, file))();
  } finally {
    older.close();
  }
  return copy;
}
