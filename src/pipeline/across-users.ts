// Alma's rules across users: every identifier value is unique in the whole feed, and no
// identifier repeats another user's primary id. The first row to carry a value keeps it; a later
// user loses it, with a warning that names the row that keeps it. Convert applies them to every
// user it writes, and explain and diff to every user they count, in the same order (the order of
// each person's first row, or of their last row for a person of several rows), so that all three
// say the same.
import type { AlmaUser, UserIdentifier } from '../shared/alma.js';
import type { RowWarning } from '../shared/errors.js';
import { IdIndex, hashInto, idKey } from './merge.js';
import type { MapPieceResult } from './map-worker.js';
import { idsText } from './map-pool.js';
import { identifiersXml } from './xml.js';

export class AcrossUsers {
  /** identifier value (without case) → ordinal of the row that keeps it; numbers, so memory does not grow with labels. */
  private readonly identifiers: IdIndex;
  private readonly hashes = new Uint32Array(4);
  constructor(
    private readonly primaryIds: IdIndex,
    private readonly labelOf: (ordinal: number) => string,
    /** How many identifier values to expect (counted in pass 1), so that the index is made once, not grown. */
    capacity: number,
  ) {
    this.identifiers = new IdIndex(capacity, { values: 1 });
  }

  /** Bytes held by the index of identifiers. */
  get indexBytes(): number {
    return this.identifiers.bytes;
  }

  /** For a user built in this thread (a merged one, or any in explain): drops the identifiers it may not keep. */
  check(user: AlmaUser, ordinal: number, warnings: RowWarning[]): void {
    const hashes = this.hashes;
    hashInto(idKey(user.primary_id), hashes, 0);
    const identifiers = user.user_identifiers;
    let kept: UserIdentifier[] | undefined;
    for (let j = 0; j < identifiers.length; j++) {
      const identifier = identifiers[j]!;
      hashInto(idKey(identifier.value), hashes, 2);
      const taken = this.takenBy(hashes[0]!, hashes[1]!, hashes[2]!, hashes[3]!, ordinal);
      if (taken) {
        warnings.push(this.warning(taken, identifier.id_type, identifier.value));
        kept ??= identifiers.slice(0, j);
      } else kept?.push(identifier);
    }
    if (kept) user.user_identifiers = kept;
  }

  /**
   * For the user a mapping thread wrote as row i of a piece, from the hashes of its ids (the
   * strings are read only for a user that loses an identifier). Returns its XML, written again
   * without the identifiers it may not keep.
   */
  checkWritten(result: MapPieceResult, i: number, xml: Buffer, ordinal: number, warnings: RowWarning[]): Buffer {
    const pa = result.primaryHashes[2 * i]!;
    const pb = result.primaryHashes[2 * i + 1]!;
    const first = result.idStarts[i]!;
    let taken: (Taken | undefined)[] | undefined;
    for (let k = first; k < result.idStarts[i + 1]!; k++) {
      const by = this.takenBy(pa, pb, result.idHashes[2 * k]!, result.idHashes[2 * k + 1]!, ordinal);
      if (by) (taken ??= [])[k - first] = by;
    }
    if (!taken) return xml;
    const ids = idsText(result, i);
    const all: UserIdentifier[] = [];
    for (let j = 1; j < ids.length; j += 4) all.push({ id_type: ids[j]!, value: ids[j + 1]!, ...(ids[j + 2] ? { note: ids[j + 2] } : {}), ...(ids[j + 3] ? { status: ids[j + 3] } : {}) });
    for (const [j, identifier] of all.entries()) {
      const by = taken[j];
      if (by) warnings.push(this.warning(by, identifier.id_type, identifier.value));
    }
    const text = xml.toString('utf8');
    const block = identifiersXml(all);
    const at = text.indexOf(block);
    // Stryker disable next-line EqualityOperator: a user's XML starts with <user>, so its identifiers are never at 0 and <= 0 is < 0
    if (at < 0) throw new Error(`the XML of user ${ids[0]} has no <user_identifiers> as written: cannot leave an identifier out`);
    return Buffer.from(text.slice(0, at) + identifiersXml(all.filter((_, j) => !taken[j])) + text.slice(at + block.length));
  }

  /**
   * Who keeps an identifier (hashes a, b) that the user with primary id (hashes pa, pb) in row
   * `ordinal` carries: undefined when this user does (it is recorded as theirs), else the user
   * whose primary id it is, or the row that carried it first.
   */
  private takenBy(pa: number, pb: number, a: number, b: number, ordinal: number): Taken | undefined {
    const holder = a === pa && b === pb ? -1 : this.primaryIds.findHashed(a, b);
    if (holder >= 0) return { by: 'primary_id', ordinal: this.primaryIds.first(holder) };
    const { slot, isNew } = this.identifiers.upsertHashed(a, b);
    if (isNew) {
      this.identifiers.set(slot, ordinal, 0);
      return undefined;
    }
    // Stryker disable next-line StringLiteral: warning() tells only 'primary_id' apart; any other value of by words the warning the same
    return { by: 'identifier', ordinal: this.identifiers.first(slot) };
  }

  private warning(taken: Taken, idType: string, value: string): RowWarning {
    const row = this.labelOf(taken.ordinal);
    const message =
      taken.by === 'primary_id'
        ? `identifier ${idType} '${value}' is the primary id of the user in row ${row}, which keeps it; left out here`
        : `identifier ${idType} '${value}' is already used by row ${row}, which keeps it; left out here`;
    return { kind: 'duplicate_identifier', message, value };
  }
}

interface Taken {
  by: 'primary_id' | 'identifier';
  /** The row of the user that keeps the value. */
  ordinal: number;
}
