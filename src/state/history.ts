// What `sis2alma history` reads from a run state: the delivered runs, one run, and what was sent
// for one person run by run, and why (the user group rule, the merge). Read only: nothing here
// writes the file, and a missing file is an empty history.
import { rmSync, statSync } from 'node:fs';
import { makeRunTempDir } from '../shared/temp.js';
import Database from 'better-sqlite3';
import { RunError } from '../shared/errors.js';
import { currentVersionOf, describe, RecordReader, SCHEMA_VERSION, unreadable } from './store.js';
import type { ChangesReport } from './night.js';

export interface RunRow {
  id: number;
  run_time: string;
  mode: string;
  outcome: string;
  config_file: string;
  config_sha256: string;
  mapping_file: string;
  mapping_sha256: string;
  counts: Record<string, number>;
  changes: ChangesReport;
  files: string[];
  report_file: string | null;
}

export interface PersonNight {
  run: number;
  run_time: string;
  /** new, changed, returned, departed; unchanged for a run that sent the person as before. */
  change: string;
  fields: string[];
  user_group: string;
  group_rule: string;
  merge?: string;
  rows: string[];
  /** The user as sent that night (--json only), when it differed from the night before. */
  record?: string;
}

export interface PersonHistory {
  primary_id: string;
  user_group: string;
  group_rule: string;
  merge?: string;
  expiry_date: string;
  kinds: string[];
  first_seen: string;
  last_seen: string;
  last_run: number;
  /** Whether the person was in the last delivered run. */
  current: boolean;
  record?: string;
  runs: PersonNight[];
}

/**
 * Opens a state to read, with what closes it; undefined when there is none yet. A state of an
 * older version is read through a migrated copy in a private temporary folder (only a delivered
 * run's commit migrates state.db), which closing removes.
 */
function open(file: string): { db: Database.Database; close: () => void } | undefined {
  if (!statSync(file, { throwIfNoEntry: false })) return undefined;
  let db: Database.Database | undefined;
  let temp: string | undefined;
  const close = () => {
    db?.close();
    if (temp) rmSync(temp, { recursive: true, force: true });
  };
  try {
    // Not readonly: after a run killed in its commit, opening rolls the hot journal back, as sqlite3 does.
    db = new Database(file, { fileMustExist: true });
    if (!describe(db, file).exists) {
      close();
      return undefined;
    }
    if ((db.pragma('user_version', { simple: true }) as number) < SCHEMA_VERSION) {
      db.close();
      temp = makeRunTempDir('history');
      db = new Database(currentVersionOf(file, temp), { readonly: true, fileMustExist: true });
    }
    return { db, close };
  } catch (error) {
    close();
    throw error instanceof RunError ? error : unreadable(file, error);
  }
}

function runOf(row: Record<string, unknown>): RunRow {
  return { ...(row as unknown as RunRow), counts: JSON.parse(row.counts as string), changes: JSON.parse(row.changes as string), files: JSON.parse(row.files as string) };
}

export function listRuns(file: string): RunRow[] {
  const state = open(file);
  if (!state) return [];
  try {
    return (state.db.prepare('SELECT * FROM runs ORDER BY id').all() as Record<string, unknown>[]).map(runOf);
  } finally {
    state.close();
  }
}

export function showRun(file: string, id: number): RunRow {
  const state = open(file);
  const db = state?.db;
  try {
    const row = db?.prepare('SELECT * FROM runs WHERE id = ?').get(id) as Record<string, unknown> | undefined;
    if (!row) throw new RunError('usage', `the run state ${file} has no run ${id}${db ? '' : ' (no run has been delivered yet)'}: sis2alma history --config ... lists them`, { file });
    return runOf(row);
  } finally {
    state?.close();
  }
}

export function personHistory(file: string, primaryId: string, withRecords: boolean): PersonHistory {
  const state = open(file);
  const db = state?.db;
  try {
    const key = primaryId.toLowerCase();
    const person = db?.prepare('SELECT * FROM people WHERE key = ?').get(key) as Record<string, unknown> | undefined;
    if (!db || !person) throw new RunError('usage', `no person with primary id '${primaryId}' in the run state ${file}: none was delivered with this run config`, { file });
    const runs = db.prepare('SELECT id, run_time FROM runs ORDER BY id').all() as { id: number; run_time: string }[];
    // The last run whose feed had them: the last one, or the one before they went missing.
    const lastRun = runs[runs.length - 1]?.id;
    const missingSince = person.missing_since as number | null;
    const lastIn = missingSince === null ? runs[runs.length - 1] : [...runs].reverse().find((r) => r.id < missingSince);
    const records = new RecordReader(db);
    const recordOf = (row: Record<string, unknown>): { record?: string } => {
      const record = withRecords ? records.read(row) : undefined;
      return record !== undefined ? { record } : {};
    };
    const sent = new Map<number, Record<string, unknown>[]>();
    // A night may both find a person gone and send their departure ('departed' sorts first).
    for (const s of db.prepare('SELECT * FROM sent WHERE key = ? ORDER BY run, change').all(key) as Record<string, unknown>[]) sent.set(s.run as number, [...(sent.get(s.run as number) ?? []), s]);
    // Only the nights a person changed are kept row by row; a night between them that delivered
    // the person sent the same user again.
    const nights: PersonNight[] = [];
    let present = false;
    let last: PersonNight | undefined;
    for (const run of runs) {
      const changes = sent.get(run.id) ?? [];
      for (const s of changes) {
        last = {
          run: run.id,
          run_time: run.run_time,
          change: s.change as string,
          fields: (s.fields as string) ? (s.fields as string).split(' ') : [],
          user_group: s.user_group as string,
          group_rule: s.group_rule as string,
          ...(s.merge ? { merge: s.merge as string } : {}),
          rows: JSON.parse(s.rows as string),
          ...recordOf(s),
        };
        nights.push(last);
        present = s.change !== 'departed' && s.change !== 'departure sent';
      }
      if (changes.length) continue;
      if (present && last && lastIn && run.id <= lastIn.id) {
        // The rows of such a night are not kept: only that the user sent was the same.
        nights.push({ run: run.id, run_time: run.run_time, change: 'unchanged', fields: [], user_group: last.user_group, group_rule: last.group_rule, ...(last.merge ? { merge: last.merge } : {}), rows: [] });
      }
    }
    return {
      primary_id: person.primary_id as string,
      user_group: person.user_group as string,
      group_rule: person.group_rule as string,
      ...(person.merge ? { merge: person.merge as string } : {}),
      expiry_date: person.expiry_date as string,
      kinds: (person.kinds as string) ? (person.kinds as string).split(' ') : [],
      first_seen: person.first_seen as string,
      last_seen: lastIn?.run_time ?? (person.first_seen as string),
      last_run: lastIn?.id ?? (person.sent_run as number),
      current: missingSince === null && lastIn?.id === lastRun,
      ...recordOf(person),
      runs: nights,
    };
  } finally {
    state?.close();
  }
}
