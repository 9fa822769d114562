// The two separators of what the mapping threads send back (map-worker.ts writes them, map-pool.ts
// splits on them): a file of their own, so that the thread and its pool share them without
// importing each other.

/** The separator of fields in MapPieceResult.idText: a character XML forbids, so no value holds it. */
export const ID_TEXT_SEPARATOR = '\u0001';

/** The separator of a record's fields in ParsedPiece.records (a record whose values hold it comes as an array). */
export const FIELD_SEPARATOR = '\u0000';
