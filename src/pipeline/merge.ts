// One person, several rows: a student who is also an employee appears in two exports (or twice
// in one). Alma must get one user. This module holds
//  - IdIndex: a compact index of ids (64-bit hashes in typed arrays), so that a million people
//    cost tens of megabytes, not a million JavaScript objects;
//  - mergeUsers: the pure decision of which row wins and what the merged user carries.
import type { AlmaUser } from '../shared/alma.js';
import type { RowWarning } from '../shared/errors.js';
import { DEFAULT_MERGE, type GroupPolicy, type MergePolicy } from '../mapping/model.js';
import { enforceAlmaRulesWithinUser } from '../mapping/map.js';

let h1 = 0;
let h2 = 0;
/** Two independent 32-bit hashes of a string (cyrb53's mixing), left in h1/h2 to avoid allocation. */
function hash(s: string): void {
  let a = 0xdeadbeef;
  let b = 0x41c6ce57;
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    a = Math.imul(a ^ ch, 2654435761);
    b = Math.imul(b ^ ch, 1597334677);
  }
  a = Math.imul(a ^ (a >>> 16), 2246822507) ^ Math.imul(b ^ (b >>> 13), 3266489909);
  b = Math.imul(b ^ (b >>> 16), 2246822507) ^ Math.imul(a ^ (a >>> 13), 3266489909);
  h1 = a >>> 0;
  h2 = b >>> 0 || 1; // 0 marks an empty slot
}

/** Writes the two hashes of key at out[at] and out[at + 1] (for keys hashed in one thread and indexed in another). */
export function hashInto(key: string, out: Uint32Array, at: number): void {
  hash(key);
  out[at] = h1;
  out[at + 1] = h2;
}

/**
 * An open-addressing hash table from a string key to one or two unsigned 32-bit numbers. Keys are
 * kept only as 64-bit hashes: two different ids collide with a chance of about 1 in 10^12 even at
 * several million ids; the merge step compares the real ids before it joins two rows. A slot is
 * three or four words of one array (hash, hash, first[, second]), so that the table can live in
 * shared memory and be read by the mapping threads. It is kept at most three-quarters full, and
 * is either sized once (reserve) or grows by half as it fills: at 1,000,000 ids it takes about
 * 21 MB sized once, 21 to 32 MB grown (bench/RESULTS.md).
 */
export class IdIndex {
  private table: Uint32Array;
  private slots: number;
  private used = 0;
  private readonly width: number;
  private readonly shared: boolean;

  constructor(capacity = 1 << 16, options: { shared?: boolean; values?: 1 | 2 } = {}) {
    this.shared = options.shared ?? false;
    this.width = 2 + (options.values ?? 2);
    this.slots = Math.max(16, Math.ceil(capacity / LOAD));
    this.table = this.allocate(this.slots);
  }

  /** A read-only view of an index another thread built in shared memory. */
  static view(memory: { table: Uint32Array; used: number; width: number }): IdIndex {
    const index = new IdIndex(1, { values: memory.width === 3 ? 1 : 2 });
    index.table = memory.table;
    index.slots = memory.table.length / memory.width;
    index.used = memory.used;
    return index;
  }

  /** What another thread needs to read this index (call when it is complete). */
  get memory(): { table: Uint32Array; used: number; width: number } {
    return { table: this.table, used: this.used, width: this.width };
  }

  get size(): number {
    return this.used;
  }

  /** The slot holding key, or -1. */
  find(key: string): number {
    hash(key);
    return this.findHashed(h1, h2);
  }

  findHashed(a: number, b: number): number {
    const t = this.table;
    const w = this.width;
    const slots = this.slots;
    // Stryker disable next-line ArithmeticOperator: slot - 1 === slots visits one slot past the end before wrapping; it reads undefined there, which is neither empty nor a match, so the probe goes on as before
    for (let slot = a % slots; ; slot = slot + 1 === slots ? 0 : slot + 1) {
      const at = slot * w;
      if (t[at + 1] === 0) return -1;
      if (t[at] === a && t[at + 1] === b) return slot;
    }
  }

  /** The slot for key, inserting it (with values 0, 0) when absent; `isNew` says which. */
  upsert(key: string): { slot: number; isNew: boolean } {
    hash(key);
    return this.upsertHashed(h1, h2);
  }

  upsertHashed(a: number, b: number): { slot: number; isNew: boolean } {
    if (this.used + 1 > this.slots * LOAD) this.grow();
    const t = this.table;
    const w = this.width;
    const slots = this.slots;
    // Stryker disable next-line ArithmeticOperator: slot - 1 === slots visits one slot past the end before wrapping; it reads undefined there, which is neither empty nor a match, so the probe goes on as before
    for (let slot = a % slots; ; slot = slot + 1 === slots ? 0 : slot + 1) {
      const at = slot * w;
      if (t[at + 1] === 0) {
        t[at] = a;
        t[at + 1] = b;
        this.used++;
        return { slot, isNew: true };
      }
      if (t[at] === a && t[at + 1] === b) return { slot, isNew: false };
    }
  }

  first(slot: number): number {
    return this.table[slot * this.width + 2]!;
  }
  second(slot: number): number {
    return this.width === 4 ? this.table[slot * 4 + 3]! : 0;
  }
  set(slot: number, first: number, second: number): void {
    this.table[slot * this.width + 2] = first;
    if (this.width === 4) this.table[slot * 4 + 3] = second;
  }

  /** Bytes held, for the benchmark's memory account. */
  get bytes(): number {
    return this.table.byteLength;
  }

  private allocate(slots: number): Uint32Array {
    const bytes = slots * this.width * 4;
    return new Uint32Array(this.shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
  }

  /**
   * Makes room for `capacity` keys in one step, while the table is still small: growing by half
   * at a time held the old table and the new one at once, 40 MB at 1,000,000 ids.
   */
  reserve(capacity: number): void {
    const slots = Math.ceil(capacity / LOAD);
    if (slots > this.slots) this.grow(slots);
  }

  private grow(slots = Math.ceil(this.slots * 1.5)): void {
    const old = this.table;
    const w = this.width;
    const t = (this.table = this.allocate(slots));
    this.slots = slots;
    for (let at = 0; at < old.length; at += w) {
      // Stryker disable next-line ConditionalExpression: copying an empty slot (all zeros) writes zeros into an empty slot of the new table: the same table
      if (old[at + 1] === 0) continue;
      let slot = old[at]! % slots;
      // Stryker disable next-line ArithmeticOperator: slot - 1 === slots visits one slot past the end before wrapping; undefined there is not 0, so it is skipped as a full one
      while (t[slot * w + 1] !== 0) slot = slot + 1 === slots ? 0 : slot + 1;
      const to = slot * w;
      for (let k = 0; k < w; k++) t[to + k] = old[at + k]!;
    }
  }
}

/**
 * The rows of multi-role people while they wait for each other. A person is a slot of the
 * primary-id index, which counted their rows in the first pass; they are complete once that many
 * rows have come in the second. convert and explain both gather people so.
 */
export class PeopleInWaiting<T> {
  private readonly people = new Map<number, { remaining: number; rows: T[] }>();

  /**
   * One row of the person in `slot`, who has `expected` rows, has come: kept unless undefined (a
   * rejected row counts, but is not merged). Returns the rows kept, once the person is complete.
   */
  arrive(slot: number, expected: number, row: T | undefined): T[] | undefined {
    let person = this.people.get(slot);
    if (!person) this.people.set(slot, (person = { remaining: expected, rows: [] }));
    if (row !== undefined) person.rows.push(row);
    if (--person.remaining > 0) return undefined;
    this.people.delete(slot);
    return person.rows;
  }

  /** The people still waiting at the end: there are none unless a file changed between the two passes. */
  incomplete(): T[][] {
    return [...this.people.values()].map((person) => person.rows);
  }
}

/**
 * A complete person's rows, by their real primary id: the index keeps hashes only, so the rows
 * of one slot may, once in 10^12, belong to two people. Rows of one id stay in their order.
 */
export function byRealId<T>(rows: T[], id: (row: T) => string): T[][] {
  const groups = new Map<string, T[]>();
  for (const row of rows) {
    const key = idKey(id(row));
    const group = groups.get(key);
    if (group) group.push(row);
    else groups.set(key, [row]);
  }
  return [...groups.values()];
}

/** How full an index may get before it grows. */
const LOAD = 0.75;

/** The key Alma compares primary ids and identifier values by: without case. */
export function idKey(value: string): string {
  return value.toLowerCase();
}

export interface MergeMember {
  /** A run-wide row number, for ordering and the report. */
  ordinal: number;
  /** How the report names the row ("3" or "staff.csv:3"). */
  label: string;
  /** The name of the input file the row came from (without folder), for merge.order. */
  input?: string;
  user: AlmaUser;
  warnings: RowWarning[];
}

export interface MergeDecision<M extends MergeMember = MergeMember> {
  user: AlmaUser;
  winner: M;
  /** Why the winner won, for the report. */
  reason: string;
  warnings: RowWarning[];
}

const rank = (policy: GroupPolicy, group: string | undefined) => (group === undefined ? Infinity : policy.priority.get(group) ?? policy.priority.size);
const isActive = (u: AlmaUser) => u.status?.toUpperCase() !== 'INACTIVE';

/**
 * Joins the rows of one person into one user.
 * The winner is chosen among the active rows first (a staff member who has left but is still a
 * student must not be loaded as inactive), then by the mapping's group priority, then by the
 * earliest row. A named exception (e.g. "staff who are undergraduates get UNDERGRAD") overrides
 * the group when the person has all of its groups. The winner's values come first; the other
 * rows fill fields the winner leaves empty and add their identifiers, emails, phones, addresses,
 * statistics and notes, because Alma replaces the external ones it holds with those in the file.
 * The expiry and purge dates are the latest of the rows, so that no role is cut short.
 */
export function mergeUsers<M extends MergeMember>(members: M[], policy: GroupPolicy, merge: MergePolicy = DEFAULT_MERGE): MergeDecision<M> {
  const ordered = [...members].sort(
    (x, y) => Number(isActive(y.user)) - Number(isActive(x.user)) || rank(policy, x.user.user_group) - rank(policy, y.user.user_group) || x.ordinal - y.ordinal,
  );
  if (merge.policy === 'first_wins_whole') return wholeWinner(ordered, policy, merge);
  let winner = ordered[0]!;
  const groups = new Set(members.map((m) => m.user.user_group).filter((g): g is string => !!g));
  // A row written without a group (user_group.unmapped: omit) ranks after every group.
  const named = (group: string | undefined) => group ?? 'no user group';
  let reason = members.every((m) => m.user.user_group === winner.user.user_group)
    ? winner.user.user_group === undefined
      ? 'no row has a user group'
      : `same group ${winner.user.user_group}`
    : !isActive(ordered[ordered.length - 1]!.user) && isActive(winner.user)
      ? `${named(winner.user.user_group)} (the active row) wins`
      : `${named(winner.user.user_group)} wins over ${[...groups].filter((g) => g !== winner.user.user_group).join(', ') || 'no user group'} by priority`;
  let group = winner.user.user_group;
  const exception = policy.exceptions.find((e) => e.groups.every((g) => groups.has(g)));
  if (exception) {
    group = exception.group;
    winner = ordered.find((m) => m.user.user_group === exception.group) ?? winner;
    reason = `exception "${exception.name}" gives ${exception.group}`;
  }
  // Stryker disable next-line MethodExpression,ConditionalExpression: with the winner among the rest, it fills nothing (its own fields), adds only repeats, no later date, and is the keeper or has no preferred item: the same user and warnings
  const rest = ordered.filter((m) => m !== winner);
  const user = structuredClone(winner.user);
  user.user_group = group;
  const fields = user as unknown as Record<string, unknown>;
  for (const other of rest) {
    for (const [key, value] of Object.entries(other.user)) {
      // The winner was chosen for being active: a row with no status is active, and must not take
      // a losing row's INACTIVE (a student who has left a job would be loaded as inactive).
      if (key === 'status' && !isActive(other.user)) continue;
      // Only strings: the optional lists (blocks, resource-sharing libraries, notices) are joined
      // below, into a list of the user's own, so that no other row's list is shared and changed.
      if (typeof value === 'string' && fields[key] === undefined) fields[key] = value;
    }
  }
  // One set of keys a list, made once: a person of n rows costs n steps, not n² (a set rebuilt
  // for every row took 20,000 rows of one id past two minutes).
  const identifiers = unique(user.user_identifiers, (i) => `${i.id_type}\u0000${idKey(i.value)}`);
  // Stryker disable next-line MethodExpression: toUpperCase compares emails without case just as well (the key is never shown)
  const emails = unique(user.contact_info.emails, (e) => e.email_address.toLowerCase());
  const phones = unique(user.contact_info.phones, (p) => p.phone_number.replace(/\D/g, '') || p.phone_number);
  // Stryker disable next-line MethodExpression: toUpperCase compares addresses without case just as well (the key is never shown)
  const addresses = unique(user.contact_info.addresses, (a) => `${a.line1}\u0000${a.postal_code ?? ''}`.toLowerCase());
  const statistics = unique(user.user_statistics, (s) => `${s.statistic_category}\u0000${s.category_type ?? ''}`);
  const notes = unique(user.user_notes, (n) => `${n.note_type}\u0000${n.note_text}`);
  const blocks = unique((user.user_blocks ??= []), (b) => `${b.block_type ?? ''}\u0000${b.block_description}`);
  const rsLibraries = unique((user.rs_libraries ??= []), (code) => code.toLowerCase());
  // One answer a notice: the winner's, then the first other row's.
  const notices = unique((user.library_notices ??= []), (n) => n.code);
  for (const other of rest) {
    // Stryker disable next-line EqualityOperator: >= differs only for an equal date, which it replaces by the same date
    if (other.user.expiry_date && (!user.expiry_date || other.user.expiry_date > user.expiry_date)) user.expiry_date = other.user.expiry_date;
    // Stryker disable next-line EqualityOperator: >= differs only for an equal date, which it replaces by the same date
    if (other.user.purge_date && (!user.purge_date || other.user.purge_date > user.purge_date)) user.purge_date = other.user.purge_date;
    identifiers.add(other.user.user_identifiers);
    emails.add(other.user.contact_info.emails);
    phones.add(other.user.contact_info.phones);
    addresses.add(other.user.contact_info.addresses);
    statistics.add(other.user.user_statistics);
    notes.add(other.user.user_notes);
    blocks.add(other.user.user_blocks ?? []);
    rsLibraries.add(other.user.rs_libraries ?? []);
    notices.add(other.user.library_notices ?? []);
  }
  // Lists nobody has stay absent, as in a user of one row.
  if (!user.user_blocks.length) delete user.user_blocks;
  if (!user.rs_libraries.length) delete user.rs_libraries;
  if (!user.library_notices.length) delete user.library_notices;
  const warnings: RowWarning[] = [];
  // Alma takes one preferred address, email and phone: the winner's (or, if it has none, the
  // first row's that has one) keeps the flag; say which other rows lose theirs.
  const kinds = [
    ['address', (u: AlmaUser) => u.contact_info.addresses.map((a) => a.line1 ?? '')],
    ['email', (u: AlmaUser) => u.contact_info.emails.map((e) => e.email_address)],
    ['phone', (u: AlmaUser) => u.contact_info.phones.map((p) => p.phone_number)],
  ] as const;
  for (const [kind, values] of kinds) {
    const preferredOf = (m: M) => {
      const list = kind === 'address' ? m.user.contact_info.addresses : kind === 'email' ? m.user.contact_info.emails : m.user.contact_info.phones;
      const i = list.findIndex((x) => x.preferred);
      // Stryker disable next-line ConditionalExpression: values(m.user)[-1] is undefined too
      return i < 0 ? undefined : values(m.user)[i];
    };
    const keeper = [winner, ...rest].find((m) => preferredOf(m) !== undefined);
    for (const other of rest) {
      const value = preferredOf(other);
      // Stryker disable next-line ConditionalExpression,LogicalOperator: with no keeper no row has a preferred value (value is undefined), and the keeper's value equals its own: the next line skips what this one does
      if (!keeper || other === keeper) continue;
      if (value === undefined || value.toLowerCase() === preferredOf(keeper)!.toLowerCase()) continue;
      warnings.push({
        kind: 'extra_preferred',
        message: `row ${other.label}'s preferred ${kind} '${value}' is kept but not preferred: row ${keeper.label}'s is (Alma takes one preferred ${kind})`,
        value,
      });
    }
  }
  enforceAlmaRulesWithinUser(user, warnings);
  return { user, winner, reason, warnings };
}

/**
 * merge.policy first_wins_whole: one row is the user, as it was mapped; the person's other rows
 * are dropped (the report counts them as merged, with this reason). The winner is the row of the
 * first input file in merge.order (files not listed come after those listed); without an order,
 * or among rows of one file, the row chosen as for a combined user (active first, then the
 * group's priority, then the earliest row).
 */
function wholeWinner<M extends MergeMember>(ordered: M[], policy: GroupPolicy, merge: MergePolicy): MergeDecision<M> {
  const fileRank = (m: M) => {
    const i = m.input === undefined ? -1 : merge.order.indexOf(m.input);
    return i < 0 ? merge.order.length : i;
  };
  const byFile = merge.order.length ? [...ordered].sort((x, y) => fileRank(x) - fileRank(y)) : ordered;
  const winner = byFile[0]!;
  const losers = byFile.slice(1);
  const dropped = `${losers.length} other row${losers.length === 1 ? '' : 's'} dropped`;
  const groups = [...new Set(losers.map((m) => m.user.user_group).filter((g) => g && g !== winner.user.user_group))];
  const reason =
    merge.order.length && fileRank(winner) < fileRank(byFile[byFile.length - 1]!)
      ? `${winner.input} wins whole by merge.order; ${dropped}`
      : groups.length && rank(policy, winner.user.user_group) < rank(policy, byFile[byFile.length - 1]!.user.user_group)
        ? `${winner.user.user_group} wins whole over ${groups.join(', ')} by priority; ${dropped}`
        : `the first row wins whole; ${dropped}`;
  const user = structuredClone(winner.user);
  const warnings: RowWarning[] = [];
  enforceAlmaRulesWithinUser(user, warnings);
  return { user, winner, reason, warnings };
}

/** A list that takes items whose key it does not hold yet. */
function unique<T>(into: T[], key: (x: T) => string): { add(from: T[]): void } {
  const seen = new Set(into.map(key));
  return {
    add(from: T[]): void {
      for (const item of from) {
        const k = key(item);
        if (seen.has(k)) continue;
        seen.add(k);
        // Copies, so that clearing a second "preferred" flag never changes the other row's user.
        into.push(structuredClone(item));
      }
    },
  };
}
