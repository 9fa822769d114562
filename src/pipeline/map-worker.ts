// A mapping thread: parses pieces of an export (src/read.ts) with csv-parse and maps their rows,
// so that both cores read and map while the main thread merges, checks and packages. What it
// sends back is small: the hashes of primary ids (the first pass), or the XML of every user that
// needs no merge, already written as UTF-8, with the hashes of its ids, and the other rows'
// outcomes (the second pass). For mapping explain and diff, which map in the main thread, it
// only parses: the piece's records, a string each.
import { parentPort } from 'node:worker_threads';
import type { Mapping } from '../mapping/model.js';
import { compileMapping, type RowMapper } from '../mapping/map.js';
import { IdIndex, hashInto, idKey } from './merge.js';
import { userXml } from './xml.js';
import { parsePiece, type PieceFailure } from './read.js';
import { ID_TEXT_SEPARATOR, FIELD_SEPARATOR, NO_RULE, groupRuleNames } from './map-separators.js';
import type { RowProblem, RowWarning } from '../shared/errors.js';
import { FINGERPRINT_CHARS, fingerprintOf } from './user-sink.js';

export type { PieceFailure } from './read.js';

export type WorkerRequest =
  /** fingerprints: compute each written user's fingerprint (the run state's; user-sink.ts). */
  | { type: 'file'; mapping: Mapping; header: string[]; runDate: string; file: string; fingerprints?: boolean }
  | { type: 'index'; memory: IdIndex['memory'] }
  | { type: 'ids'; id: number; bytes: Uint8Array }
  | { type: 'map'; id: number; bytes: Uint8Array }
  | { type: 'parse'; id: number; bytes: Uint8Array }
  /** A piece's XML buffer, given back once its users are copied: the next pieces write into it. */
  | { type: 'recycle'; buffer: ArrayBuffer };

/** The first pass: per row, the two hashes of its primary id (0, 0 when it has none). */
export interface IdsResult {
  id: number;
  rows: number;
  hashes: Uint32Array;
  /** How many identifier values the piece's rows give (when asked to count them). */
  identifiers: number;
  failure?: PieceFailure;
}

/** A row the mapping thread did not write (or wrote with warnings), by its index in the piece. */
export type RowOutcome =
  /** A user written here (see MapPieceResult), with warnings. */
  | { i: number; k: 'u'; warnings: RowWarning[] }
  /** A row of a person with several rows, mapped: the main thread keeps its values and maps it again for the merge. */
  | { i: number; k: 'm'; slot: number; expected: number; values: string[] }
  /** A rejected row, or (with skipped: the skip rule's name) a row the mapping's skip list left out. */
  | { i: number; k: 'r'; slot: number; expected: number; primary_id?: string; problems: RowProblem[]; warnings: RowWarning[]; values: string[]; skipped?: string };

/**
 * The second pass's answer for a piece. Most rows are users with no other rows: the thread writes
 * their XML and says of them only numbers, in typed arrays, so that sending a piece's answer costs
 * neither thread an object and a dozen strings a row.
 */
export interface MapPieceResult {
  id: number;
  rows: number;
  /** The XML of the users written here, one after another, as UTF-8. */
  xml: Uint8Array;
  /** Per row, where its user's XML ends in `xml`; a row not written here repeats the end before it. */
  ends: Uint32Array;
  /**
   * The ids of the users written here, as the two hashes of merge.ts's indexes: row i's primary
   * id's at [2 i, 2 i + 1] (0, 0 for a row not written here); its identifiers' pairs are
   * idHashes[2 idStarts[i] ... 2 idStarts[i + 1]].
   */
  primaryHashes: Uint32Array;
  idHashes: Uint32Array;
  idStarts: Uint32Array;
  /** The same ids as text, one string for the piece, for the rare user that must lose an identifier (map-pool.ts's idsText reads it). */
  idText: string;
  idTextEnds: Uint32Array;
  /** Per row written here, the user group rule that chose its group: groupRuleCode's code. */
  groupRules: Uint16Array;
  /**
   * When the file was started with fingerprints: each row's user's fingerprint, FINGERPRINT_CHARS
   * characters a row (spaces for a row not written here), one string for the piece.
   */
  fingerprints?: string;
  /** Every row not written here, and every user written with warnings, in row order. */
  others: RowOutcome[];
  failure?: PieceFailure;
}

/**
 * A piece's records for a thread that maps them itself: each one string, its fields joined by
 * FIELD_SEPARATOR (map-pool.ts's recordValues splits it), which costs the receiving thread far
 * less than strings one by one; a record with no fields or with the separator in a value comes
 * as its array of values.
 */
export interface ParsedPiece {
  id: number;
  rows: number;
  records: (string | string[])[];
  failure?: PieceFailure;
}

let mapper: RowMapper | undefined;
let ruleCodes = new Map<string, number>();
let delimiter = ',';
let fingerprints = false;
let index: IdIndex | undefined;
/**
 * XML buffers given back by the main thread. A new 2 MB buffer a piece would be garbage once its
 * users were copied, freed only when V8 next collected: tens of megabytes waited so.
 */
const spares: ArrayBuffer[] = [];
const MAX_SPARES = 4;

parentPort!.on('message', (request: WorkerRequest) => {
  switch (request.type) {
    case 'file':
      mapper = compileMapping(request.mapping, request.header, request.runDate, request.file);
      ruleCodes = new Map(groupRuleNames(request.mapping).map((name, code) => [name, code]));
      delimiter = request.mapping.delimiter;
      fingerprints = request.fingerprints === true;
      return;
    case 'index':
      index = IdIndex.view(request.memory);
      return;
    case 'ids':
      return reply(ids(request.id, Buffer.from(request.bytes.buffer, request.bytes.byteOffset, request.bytes.byteLength)));
    case 'map':
      return reply(mapPiece(request.id, Buffer.from(request.bytes.buffer, request.bytes.byteOffset, request.bytes.byteLength)));
    case 'parse':
      return parentPort!.postMessage(parse(request.id, Buffer.from(request.bytes.buffer, request.bytes.byteOffset, request.bytes.byteLength)));
    case 'recycle':
      if (spares.length < MAX_SPARES && request.buffer.byteLength > 0) spares.push(request.buffer);
      return;
  }
});

function reply(result: IdsResult | MapPieceResult): void {
  const transfer = ('xml' in result ? [result.xml, result.ends, result.primaryHashes, result.idHashes, result.idStarts, result.idTextEnds, result.groupRules] : [result.hashes]).map((a) => a.buffer as ArrayBuffer);
  parentPort!.postMessage(result, transfer);
}

function parse(id: number, bytes: Buffer): ParsedPiece {
  const { records, failure } = parsePiece(bytes, delimiter);
  if (failure) return { id, rows: 0, records: [], failure };
  const joined: (string | string[])[] = new Array(records.length);
  for (let i = 0; i < records.length; i++) {
    const values = records[i]!;
    joined[i] = values.length === 0 || values.some((v) => v.includes(FIELD_SEPARATOR)) ? values : values.join(FIELD_SEPARATOR);
  }
  return { id, rows: records.length, records: joined };
}

function ids(id: number, bytes: Buffer): IdsResult {
  const { records, failure } = parsePiece(bytes, delimiter);
  const hashes = new Uint32Array(records.length * 2);
  if (failure) return { id, rows: 0, hashes, identifiers: 0, failure };
  let identifiers = 0;
  try {
    for (let i = 0; i < records.length; i++) {
      const primaryId = mapper!.primaryId(records[i]!);
      if (primaryId !== undefined) hashInto(idKey(primaryId), hashes, i * 2);
      identifiers += mapper!.identifierCount(records[i]!);
    }
  } catch (error) {
    return { id, rows: 0, hashes, identifiers: 0, failure: internal(error) };
  }
  return { id, rows: records.length, hashes, identifiers };
}

function mapPiece(id: number, bytes: Buffer): MapPieceResult {
  const { records, failure } = parsePiece(bytes, delimiter);
  const n = records.length;
  const result: MapPieceResult = {
    id,
    rows: n,
    xml: new Uint8Array(0),
    ends: new Uint32Array(n),
    primaryHashes: new Uint32Array(2 * n),
    idHashes: new Uint32Array(0),
    idStarts: new Uint32Array(n + 1),
    idText: '',
    idTextEnds: new Uint32Array(n),
    groupRules: new Uint16Array(n),
    others: [],
  };
  if (failure) return { ...result, rows: 0, failure };
  try {
    const xml = new ByteWriter(bytes.length * 16);
    let idHashes = new Uint32Array(8 * n);
    let identifiers = 0;
    let idText = '';
    for (let i = 0; i < n; i++) {
      const values = records[i]!;
      const mapped = mapper!.mapRecord(values);
      const primaryId = mapped.ok ? mapped.user.primary_id : mapped.primary_id;
      const slot = primaryId === undefined ? -1 : index!.find(idKey(primaryId));
      const expected = slot < 0 ? 1 : index!.second(slot);
      if (!mapped.ok) {
        result.others.push({ i, k: 'r', slot, expected, ...(mapped.primary_id !== undefined ? { primary_id: mapped.primary_id } : {}), problems: mapped.problems, warnings: mapped.warnings, values, ...(mapped.skipped !== undefined ? { skipped: mapped.skipped } : {}) });
      } else if (expected > 1) {
        result.others.push({ i, k: 'm', slot, expected, values });
      } else {
        const user = mapped.user;
        xml.write(userXml(user));
        result.groupRules[i] = ruleCodes.get(mapped.groupRule) ?? NO_RULE;
        hashInto(idKey(user.primary_id), result.primaryHashes, 2 * i);
        if (2 * (identifiers + user.user_identifiers.length) > idHashes.length) {
          const grown = new Uint32Array(idHashes.length * 2 + 2 * user.user_identifiers.length);
          grown.set(idHashes);
          idHashes = grown;
        }
        idText += user.primary_id;
        for (const identifier of user.user_identifiers) {
          hashInto(idKey(identifier.value), idHashes, 2 * identifiers++);
          idText += ID_TEXT_SEPARATOR + identifier.id_type + ID_TEXT_SEPARATOR + identifier.value + ID_TEXT_SEPARATOR + (identifier.note ?? '') + ID_TEXT_SEPARATOR + (identifier.status ?? '');
        }
        if (mapped.warnings.length) result.others.push({ i, k: 'u', warnings: mapped.warnings });
      }
      result.ends[i] = xml.length;
      result.idStarts[i + 1] = identifiers;
      result.idTextEnds[i] = idText.length;
    }
    const written = xml.bytes();
    return { ...result, xml: written, idHashes: idHashes.slice(0, 2 * identifiers), idText, ...(fingerprints ? { fingerprints: fingerprintsOf(written, result.ends) } : {}) };
  } catch (error) {
    return { ...result, rows: 0, failure: internal(error) };
  }
}

/** The fingerprint of each row's user, as MapPieceResult.fingerprints has them. */
function fingerprintsOf(xml: Uint8Array, ends: Uint32Array): string {
  const none = ' '.repeat(FINGERPRINT_CHARS);
  let text = '';
  let start = 0;
  for (const end of ends) {
    text += end > start ? fingerprintOf(xml.subarray(start, end)) : none;
    start = end;
  }
  return text;
}

/**
 * UTF-8 bytes written one string at a time. Encoding each user's XML on its own is about five
 * times faster than encoding one string of the whole piece: V8 would first flatten the piece's
 * rope of some 100,000 strings, in two-byte form as soon as one name is not Latin-1.
 */
class ByteWriter {
  private buffer: Buffer;
  length = 0;
  constructor(capacity: number) {
    // Not from Node's shared pool: its memory is handed over to the main thread whole.
    // Whole megabytes, so that the buffer of one piece fits the next, a few bytes longer.
    capacity = Math.ceil(Math.max(capacity, 1) / (1 << 20)) * (1 << 20);
    const spare = spares.findIndex((b) => b.byteLength >= capacity);
    this.buffer = spare >= 0 ? Buffer.from(spares.splice(spare, 1)[0]!) : Buffer.allocUnsafeSlow(capacity);
  }
  /** Appends text; returns the length written so far. */
  write(text: string): number {
    if (this.length + text.length * 3 > this.buffer.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(this.buffer.length * 2, this.length + text.length * 3));
      this.buffer.copy(grown, 0, 0, this.length);
      this.buffer = grown;
    }
    this.length += this.buffer.write(text, this.length, 'utf8');
    return this.length;
  }
  bytes(): Buffer {
    return this.buffer.subarray(0, this.length);
  }
}


function internal(error: unknown): PieceFailure {
  return error instanceof Error ? { kind: 'internal', message: error.message, ...(error.stack ? { stack: error.stack } : {}) } : { kind: 'internal', message: String(error) };
}
