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

export const STATE_FILE = 'state.db';
/** The schema this version writes; PRAGMA user_version in the file. */
export const SCHEMA_VERSION = 1;

/**
 * Each migration takes the file from the version before it to its own (index + 1). They run in
 * the commit's transaction, so that an older state is upgraded only by a run that moves it.
 */
export const MIGRATIONS: readonly string[] = [
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
];

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
  const people = last ? (db.prepare(`SELECT count(*) AS n FROM ${schema}.people WHERE last_run = ?`).get(last.id) as { n: number }).n : 0;
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
  for (let v = version; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!);
  if (version !== SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
}
