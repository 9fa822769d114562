// The people of the last delivered night, read beside tonight's feed a window at a time. A feed
// comes in much the same order every night, and the people are in the state in the order they
// were delivered (the first night inserts them as written; a person keeps their row, and a new
// one is added at the end), so tonight's next user is nearly always among the next few rows of
// the state. A user found in the window with the same fingerprint for the same reasons is
// unchanged and costs one Map look-up; the window moves on with tonight's feed, and never holds
// more than a few thousand people: memory does not grow with the population (a table of every
// fingerprint, the design before, took 16 MB at a million people, bench/RESULTS.md). A user not
// found in the window is looked up in the state by key (Night does that), which also tells the
// window where the feed is. A feed in another order than last night's is as correct, only slower:
// each user is then looked up.
import type Database from 'better-sqlite3';

/** The key of a user in the window: the fingerprint of its XML, and why it got its group. */
export function windowKey(fingerprint: string, groupRule: string, merge: string | null): string {
  return `${fingerprint}\u0000${groupRule}\u0000${merge ?? '\u0001'}`;
}

export interface WindowSize {
  /** Rows read ahead of the last person found. */
  ahead: number;
  /** Rows kept behind it (a user written a little later tonight than last night). */
  behind: number;
  /** Rows read at once. */
  chunk: number;
}

/** Unchanged people found past the window one after another that move it on. */
const RESYNC = 4;

const DEFAULT_SIZE: WindowSize = { ahead: 4096, behind: 4096, chunk: 512 };

export class LastNight {
  private readonly next: Database.Statement;
  /** Key → ordinal (the row's place in the order read) of the people in the window, not yet found. */
  private readonly window = new Map<string, number>();
  /** The keys and rowids of the window, by ordinal - base. */
  private keys: string[] = [];
  private rowids: number[] = [];
  private base = 0;
  /** Rows read so far; the last rowid read. */
  private read = 0;
  private frontier = 0;
  private done = false;
  /** The ordinal of the last person found: the window reaches `ahead` rows past it. */
  private at = 0;
  /** Unchanged people found by look-up past the window, one after another, and the rowid of the last of them. */
  private aheadStreak = 0;
  private aheadAt = 0;
  /** A bit a rowid: the people of the last night found tonight, in the window or by look-up. */
  private readonly seen: Uint8Array;
  /** Rows that left the window unfound: departures, unless found by look-up later (seen). */
  private readonly unfound: number[] = [];
  /** How many people of the last night had each kinds column: filled as the rows are read. */
  readonly kinds = new Map<string, number>();
  /** Users sent as before that were not in the window: each cost a look-up in the state. */
  outOfOrder = 0;

  constructor(db: Database.Database, schema: string, private readonly size: WindowSize = DEFAULT_SIZE) {
    this.next = db.prepare(`SELECT rowid, fingerprint, group_rule, merge, kinds FROM ${schema}.people WHERE rowid > ? AND missing_since IS NULL ORDER BY rowid LIMIT ${size.chunk}`).raw();
    const last = (db.prepare(`SELECT max(rowid) FROM ${schema}.people`).pluck().get() as number | null) ?? 0;
    this.seen = new Uint8Array((last >> 3) + 1);
    this.fill();
  }

  /** The rowid of the person of the last night with this key (fingerprint and reasons), if they are in the window; they count as found. */
  find(key: string): number | undefined {
    const ordinal = this.window.get(key);
    if (ordinal === undefined) return undefined;
    this.window.delete(key);
    this.aheadStreak = 0;
    const rowid = this.rowids[ordinal - this.base]!;
    this.mark(rowid);
    this.moveTo(ordinal);
    return rowid;
  }

  /**
   * A person of the last night found by look-up in the state: `unchanged` when they were sent as
   * before, only not where the window is. A changed user tells nothing of where the feed is (a
   * person whose rows changed is written elsewhere in the feed: one of several rows last night, a
   * single row tonight); a few unchanged ones in a row past the window tell that the feed has gone
   * on without it (more people left at once than the window holds), and it moves on to them.
   */
  found(rowid: number, unchanged: boolean): void {
    this.mark(rowid);
    if (!unchanged) return;
    this.outOfOrder++;
    if (rowid <= this.frontier) {
      this.aheadStreak = 0;
      return;
    }
    this.aheadAt = rowid;
    if (++this.aheadStreak < RESYNC) return;
    this.aheadStreak = 0;
    // The rows up to there are passed by, kept only as unfound (they are checked at the end).
    while (!this.done && this.frontier < this.aheadAt) this.readChunk(this.aheadAt);
    this.moveTo(this.read);
  }

  /** After tonight's last user: the rowids of the people of the last night not found tonight. */
  finish(): number[] {
    while (!this.done) this.readChunk();
    for (let i = 0; i < this.rowids.length; i++) this.unfound.push(this.rowids[i]!);
    this.window.clear();
    this.keys = [];
    this.rowids = [];
    return this.unfound.filter((rowid) => !this.isSeen(rowid));
  }

  private moveTo(ordinal: number): void {
    if (ordinal > this.at) this.at = ordinal;
    this.fill();
    // Rows far behind the feed leave the window.
    const keep = this.at - this.size.behind;
    if (keep - this.base > this.size.chunk) {
      const drop = keep - this.base;
      for (let i = 0; i < drop; i++) {
        const key = this.keys[i]!;
        if (this.window.get(key) === this.base + i) {
          this.window.delete(key);
          this.unfound.push(this.rowids[i]!);
        }
      }
      this.keys = this.keys.slice(drop);
      this.rowids = this.rowids.slice(drop);
      this.base += drop;
    }
  }

  private fill(): void {
    while (!this.done && this.read < this.at + this.size.ahead) this.readChunk();
  }

  /** Reads the next rows into the window; those before `passBy` only count (kinds, unfound). */
  private readChunk(passBy = 0): void {
    const rows = this.next.all(this.frontier) as [number, string, string, string | null, string][];
    for (const [rowid, fingerprint, groupRule, merge, kinds] of rows) {
      this.kinds.set(kinds, (this.kinds.get(kinds) ?? 0) + 1);
      if (rowid < passBy) {
        this.unfound.push(rowid);
        continue;
      }
      const key = windowKey(fingerprint, groupRule, merge);
      this.window.set(key, this.read);
      this.keys.push(key);
      this.rowids.push(rowid);
      this.read++;
    }
    if (rows.length) this.frontier = rows[rows.length - 1]![0];
    if (rows.length < this.size.chunk) this.done = true;
  }

  private mark(rowid: number): void {
    this.seen[rowid >> 3]! |= 1 << (rowid & 7);
  }

  private isSeen(rowid: number): boolean {
    return (this.seen[rowid >> 3]! & (1 << (rowid & 7))) !== 0;
  }
}
