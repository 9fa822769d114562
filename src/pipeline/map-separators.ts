// What the mapping threads and the main thread agree on: the two separators of what the threads
// send back (map-worker.ts writes them, map-pool.ts splits on them) and the codes of the user
// group rules: a file of their own, so that the thread and its pool share them without importing
// each other.
import type { Mapping } from '../mapping/model.js';

/** The separator of fields in MapPieceResult.idText: a character XML forbids, so no value holds it. */
export const ID_TEXT_SEPARATOR = '\u0001';

/** The separator of a record's fields in ParsedPiece.records (a record whose values hold it comes as an array). */
export const FIELD_SEPARATOR = '\u0000';

/** The names a user group rule code stands for (MapPieceResult.groupRules): 0 the mapping's default, then its rules in order. */
export function groupRuleNames(mapping: Mapping): string[] {
  return ['default', ...mapping.userGroup.rules.map((r) => r.name)];
}

/** The code of a user whose group came from no rule of the mapping. */
export const NO_RULE = 0xffff;
