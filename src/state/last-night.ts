// The people of the last delivered night, read beside tonight's feed. A feed comes in much the
// same order every night, and the people are in the state in the order they were delivered (the
// first night inserts them as written; a person keeps their row, and a new one is added at the
// end), so tonight's next user is nearly always the person after the last one found. A cursor
// follows the feed through the last night's rows: a user whose fingerprint and reasons are those
// of the row at the cursor (or of one a few rows on: people who left, or changed) is unchanged,
// and costs a comparison of two strings. Only the rows around the cursor are held, a chunk at a
// time: memory does not grow with the population (a table of every fingerprint, the design two
// changes before, took 16 MB at a million people; a Map of the few thousand rows around the
// cursor, the design before this one, cost about 4 s of CPU a million users to keep up,
// bench/RESULTS.md).
// A user not found near the cursor is looked up in the state by key (Night does that), which also
// tells the cursor where the feed is: a few unchanged people found so, one after another in the
// last night's order, move it there, forward or back (people who left at once, or a block of people
// first delivered after the others, who are at the end of the table). A feed in another order than
// last night's is as correct, only slower: each user is then looked up. Who was not found is read
// at the end, in one pass over the last night's people with the kinds of value each had.
import type Database from 'better-sqlite3';

export interface WindowSize {
  /** Rows past the cursor a user is looked for in (people who left, or changed, since the last night). */
  ahead: number;
  /** Rows before the cursor a user is looked for in (two users written in the other order tonight). */
  behind: number;
  /** Rows read at once. */
  chunk: number;
}

/** Unchanged people found by look-up one after another, each a little after the one before in the last night's order, that move the cursor to them. */
const RESYNC = 4;

const DEFAULT_SIZE: WindowSize = { ahead: 64, behind: 64, chunk: 1024 };

/** Rows read at once by the pass at the end. */
const FINISH_CHUNK = 4096;

export class LastNight {
  private readonly next: Database.Statement;
  private readonly everyone: Database.Statement;
  /** The rows read and still held, in the last night's order, and the cursor among them: the next row tonight's feed should meet. */
  private fingerprints: string[] = [];
  private groupRules: string[] = [];
  private merges: (string | null)[] = [];
  private rowids: number[] = [];
  private cursor = 0;
  /** The last rowid read, and whether every row after it has been. */
  private frontier = 0;
  private done = false;
  /** Unchanged people found by look-up away from the cursor, one after another in the last night's order, and the rowid of the last of them. */
  private streak = 0;
  private streakAt = 0;
  /** A bit a rowid: the people of the last night found tonight, near the cursor or by look-up. */
  private readonly seen: Uint8Array;
  /** How many people of the last night had each kinds column: filled by finish(). */
  readonly kinds = new Map<string, number>();
  /** Users sent as before that were not near the cursor: each cost a look-up in the state. */
  outOfOrder = 0;

  constructor(db: Database.Database, schema: string, private readonly size: WindowSize = DEFAULT_SIZE) {
    this.next = db.prepare(`SELECT rowid, fingerprint, group_rule, merge FROM ${schema}.people WHERE rowid > ? AND missing_since IS NULL ORDER BY rowid LIMIT ${size.chunk}`).raw();
    this.everyone = db.prepare(`SELECT rowid, kinds FROM ${schema}.people WHERE rowid > ? AND missing_since IS NULL ORDER BY rowid LIMIT ${FINISH_CHUNK}`).raw();
    const last = (db.prepare(`SELECT max(rowid) FROM ${schema}.people`).pluck().get() as number | null) ?? 0;
    this.seen = new Uint8Array((last >> 3) + 1);
  }

  /**
   * The rowid of the person of the last night with this fingerprint and these reasons (group rule,
   * merge), if they are at the cursor or a few rows from it; they count as found, and a cursor
   * behind them moves past them.
   */
  find(fingerprint: string, groupRule: string, merge: string | null): number | undefined {
    const { ahead, behind } = this.size;
    if (this.fingerprints.length - this.cursor < ahead) this.readAhead();
    const end = Math.min(this.fingerprints.length, this.cursor + ahead);
    for (let i = this.cursor; i < end; i++) {
      // A fingerprint is one person's (the XML holds the primary id): the row is theirs or no one's.
      if (this.fingerprints[i] !== fingerprint) continue;
      const rowid = this.take(i, groupRule, merge);
      if (rowid !== undefined) {
        this.cursor = i + 1;
        this.streak = 0;
      }
      return rowid;
    }
    // Written a little earlier last night than tonight: among the rows just passed.
    for (let i = this.cursor - 1; i >= 0 && i >= this.cursor - behind; i--) {
      if (this.fingerprints[i] === fingerprint) return this.take(i, groupRule, merge);
    }
    return undefined;
  }

  /** The rowid of the held row i, whose fingerprint matched, marked found: if it was for the same reasons and not found before. */
  private take(i: number, groupRule: string, merge: string | null): number | undefined {
    const rowid = this.rowids[i]!;
    if (this.groupRules[i] !== groupRule || this.merges[i] !== merge || this.isSeen(rowid)) return undefined;
    this.mark(rowid);
    return rowid;
  }

  /**
   * A person of the last night found by look-up in the state: `unchanged` when they were sent as
   * before, only not near the cursor. A changed user tells nothing of where the feed is (a person
   * whose rows changed is written elsewhere in the feed: one of several rows last night, a single
   * row tonight). A few unchanged ones one after another, each a little after the one before in
   * the last night's order, tell that the feed goes on there: the cursor moves to them, forward
   * (people who left at once) or back (after a block of people first delivered after the others,
   * at the end of the table). Users look-ups find in any other order (a feed sorted another way)
   * leave it where it is.
   */
  found(rowid: number, unchanged: boolean): void {
    this.mark(rowid);
    if (!unchanged) return;
    this.outOfOrder++;
    const following = this.streak > 0 && rowid > this.streakAt && rowid - this.streakAt <= this.size.ahead;
    this.streak = following ? this.streak + 1 : 1;
    this.streakAt = rowid;
    if (this.streak < RESYNC) return;
    this.streak = 0;
    this.seek(rowid);
  }

  /** After tonight's last user: the rowids of the people of the last night not found tonight; `kinds` is filled. */
  finish(): number[] {
    // The rows held are no longer needed: dropped as a move of the cursor drops them.
    this.seek(this.frontier);
    const unfound: number[] = [];
    for (let after = 0; ; ) {
      const rows = this.everyone.all(after) as [number, string][];
      let kinds: string | undefined;
      let count = 0;
      for (const [rowid, k] of rows) {
        // Neighbours mostly have the same kinds: counted a run at a time.
        if (k !== kinds) {
          if (kinds !== undefined) this.kinds.set(kinds, (this.kinds.get(kinds) ?? 0) + count);
          kinds = k;
          count = 0;
        }
        count++;
        if (!this.isSeen(rowid)) unfound.push(rowid);
      }
      if (kinds !== undefined) this.kinds.set(kinds, (this.kinds.get(kinds) ?? 0) + count);
      if (rows.length < FINISH_CHUNK) return unfound;
      after = rows[rows.length - 1]![0];
    }
  }

  /** The cursor moves to just after this rowid: the rows held are dropped, and read again from there. */
  private seek(rowid: number): void {
    this.fingerprints = [];
    this.groupRules = [];
    this.merges = [];
    this.rowids = [];
    this.cursor = 0;
    this.frontier = rowid;
    this.done = false;
  }

  /** Keeps `ahead` rows past the cursor (when there are), and `behind` before it. */
  private readAhead(): void {
    const keep = Math.max(0, this.cursor - this.size.behind);
    if (keep >= this.size.chunk) {
      this.fingerprints = this.fingerprints.slice(keep);
      this.groupRules = this.groupRules.slice(keep);
      this.merges = this.merges.slice(keep);
      this.rowids = this.rowids.slice(keep);
      this.cursor -= keep;
    }
    while (!this.done && this.fingerprints.length - this.cursor < this.size.ahead) this.readChunk();
  }

  private readChunk(): void {
    const rows = this.next.all(this.frontier) as [number, string, string, string | null][];
    for (const [rowid, fingerprint, groupRule, merge] of rows) {
      this.fingerprints.push(fingerprint);
      this.groupRules.push(groupRule);
      this.merges.push(merge);
      this.rowids.push(rowid);
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
