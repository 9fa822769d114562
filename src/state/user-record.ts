// What the run state reads from a user as it was delivered: the XML the pipeline wrote
// (src/pipeline/xml.ts: one element a line, the user's fields four spaces in). Reading the bytes
// that went into the zip, rather than the mapped object, keeps the state true to what Alma got,
// and costs the hot path nothing: most users are written as XML by the mapping threads and never
// exist as objects in this thread.
import { deflateRawSync, inflateRawSync, constants } from 'node:zlib';
import { fingerprintOf } from '../pipeline/user-sink.js';

/** What a guard needs of a user, and its fingerprint. */
export interface UserSummary {
  primaryId: string;
  /** The primary id without case, as the merge and Alma compare it. */
  key: string;
  /** The pipeline's fingerprintOf of the XML: given when a mapping thread computed it. */
  fingerprint: string;
  userGroup: string;
  expiryDate: string;
  /** The kinds of value Alma deletes when a load leaves them out, that this user has (see KINDS). */
  kinds: string[];
}

// A user's XML is read as bytes, never decoded whole: the fields a guard needs are found with
// Buffer.indexOf (native), and only their values become strings.
const marker = (text: string) => Buffer.from(text, 'utf8');
const PRIMARY_ID = [marker('\n    <primary_id>'), marker('</primary_id>')] as const;
const USER_GROUP = [marker('\n    <user_group>'), marker('</user_group>')] as const;
const EXPIRY_DATE = [marker('\n    <expiry_date>'), marker('</expiry_date>')] as const;

/** The text of the first element `tag` opens, after `from`; '' when there is none. */
function textOf(xml: Buffer, [open, close]: readonly [Buffer, Buffer], from = 0): string {
  const start = xml.indexOf(open, from);
  if (start < 0) return '';
  const end = xml.indexOf(close, start + open.length);
  return end < 0 ? '' : unescapeXml(xml.toString('utf8', start + open.length, end));
}

/** The primary id of a user's XML. */
export function primaryIdOf(xml: Buffer): string {
  return textOf(xml, PRIMARY_ID);
}

/**
 * Kinds of value that Alma's SYNCHRONIZE deletes from a user when tonight's file leaves them out
 * (the external ones: a file that loses a column wipes them), as the state records them, by the
 * element that holds one. Each identifier type is a kind of its own: `identifier:BARCODE`.
 */
const CONTAINS: Record<string, string> = { email: 'email', address: 'address', phone: 'phone', user_statistic: 'statistics', user_note: 'notes' };
const ORDER = Object.values(CONTAINS);
const rank = (kind: string) => (kind.startsWith('identifier:') ? ORDER.length : ORDER.indexOf(kind));
/** Every element that makes a kind, in one pass over the user (measured: 0.80 s a 100,000 users, against 0.94 s for a Buffer.indexOf scan a kind). */
const KINDS = /<(email|address|phone|user_statistic|user_note) |<id_type>([^<]*)<\/id_type>/g;

export function summarise(xml: Buffer, fingerprint: string = fingerprintOf(xml)): UserSummary {
  const primaryId = primaryIdOf(xml);
  const kinds: string[] = [];
  // Latin-1 makes a character of each byte, so that an index in the text is one in the bytes.
  const text = xml.toString('latin1');
  for (const m of text.matchAll(KINDS)) {
    const kind = m[1] !== undefined ? CONTAINS[m[1]]! : `identifier:${unescapeXml(xml.toString('utf8', m.index! + '<id_type>'.length, m.index! + '<id_type>'.length + m[2]!.length))}`;
    if (!kinds.includes(kind)) kinds.push(kind);
  }
  // In one order whatever the XML's: the contacts, statistics and notes, then the identifiers as they come.
  kinds.sort((a, b) => rank(a) - rank(b));
  return {
    primaryId,
    key: primaryId.toLowerCase(),
    fingerprint,
    userGroup: textOf(xml, USER_GROUP),
    expiryDate: textOf(xml, EXPIRY_DATE),
    kinds,
  };
}

/** How a message names a kind: `email`, `BARCODE identifier`. */
export function kindName(kind: string): string {
  return kind.startsWith('identifier:') ? `${kind.slice('identifier:'.length)} identifier` : kind;
}

const NL = 10;
const SPACE = 32;
const LT = 60;
const SLASH = 47;
const GT = 62;
const CONTACT_PARTS = new Set(['addresses', 'emails', 'phones']);

/**
 * The user's fields as they appear in the XML, as byte ranges by name: each element four spaces
 * in, and the parts of contact_info (emails, addresses, phones, six spaces in) on their own.
 */
function fieldsOf(xml: Buffer): Map<string, [start: number, end: number]> {
  const fields = new Map<string, [number, number]>();
  let name: string | undefined;
  let start = 0;
  const close = (at: number) => {
    if (name !== undefined) fields.set(name, [start, at]);
    name = undefined;
  };
  for (let line = 0; line < xml.length; ) {
    const eol = xml.indexOf(NL, line);
    const next = eol < 0 ? xml.length : eol + 1;
    let indent = 0;
    while (xml[line + indent] === SPACE) indent++;
    if (xml[line + indent] === LT) {
      const closing = xml[line + indent + 1] === SLASH;
      let end = line + indent + 1 + (closing ? 1 : 0);
      const from = end;
      while (end < next && xml[end] !== SPACE && xml[end] !== GT) end++;
      const tag = xml.toString('latin1', from, end);
      // <contact_info> is only a wrapper: its children, six spaces in, are the fields.
      if ((indent === 4 && tag === 'contact_info') || (indent === 2 && closing && tag === 'user')) close(line);
      else if (indent === 4 && !closing) {
        close(line);
        name = tag;
        start = line;
      } else if (indent === 6 && !closing && CONTACT_PARTS.has(tag)) {
        close(line);
        name = tag;
        start = line;
      }
    }
    line = next;
  }
  close(xml.length);
  fields.delete('primary_id');
  return fields;
}

/** The names of the fields that differ between two users' XML (added, removed or changed), sorted. */
export function changedFields(before: Uint8Array | string, after: Uint8Array | string): string[] {
  const x = typeof before === 'string' ? Buffer.from(before) : Buffer.from(before.buffer, before.byteOffset, before.byteLength);
  const y = typeof after === 'string' ? Buffer.from(after) : Buffer.from(after.buffer, after.byteOffset, after.byteLength);
  const a = fieldsOf(x);
  const b = fieldsOf(y);
  const changed: string[] = [];
  for (const [name, [s, e]] of a) {
    const other = b.get(name);
    if (!other || x.compare(y, other[0], other[1], s, e) !== 0) changed.push(name);
  }
  for (const name of b.keys()) if (!a.has(name)) changed.push(name);
  return changed.sort();
}

// The last delivered record of each person is kept compressed: most of a user's XML is the same
// element names, which a preset dictionary lets deflate leave out (for a user alone, about a third
// of the size plain deflate gives). Changing the dictionary needs a migration.
const DICTIONARY = Buffer.from(
  [
    '<user_statistics>\n      <user_statistic segment_type="External">\n        <statistic_category>',
    '</statistic_category>\n        <category_type>',
    '<user_identifiers>\n      <user_identifier segment_type="External">\n        <id_type>BARCODE</id_type>\n        <value>',
    '</value>\n      </user_identifier>\n    </user_identifiers>\n',
    '<contact_info>\n      <addresses>\n        <address preferred="true" segment_type="External">\n          <line1>',
    '<city>',
    '<postal_code>',
    '<address_types>\n            <address_type>home</address_type>\n          </address_types>\n        </address>\n      </addresses>\n',
    '<phones>\n        <phone preferred="true" segment_type="External">\n          <phone_number>',
    '</phone_number>\n          <phone_types>\n            <phone_type>mobile</phone_type>\n          </phone_types>\n        </phone>\n      </phones>\n',
    '<emails>\n        <email preferred="true" segment_type="External">\n          <email_address>',
    '</email_address>\n          <email_types>\n            <email_type>personal</email_type>\n          </email_types>\n        </email>\n      </emails>\n    </contact_info>\n',
    '<user_notes>\n      <user_note segment_type="External">\n        <note_type>',
    '<status>ACTIVE</status>\n',
    '<expiry_date>',
    '<purge_date>',
    '</user_group>\n    <expiry_date>',
    '<user>\n    <primary_id>',
    '</primary_id>\n    <first_name>',
    '</first_name>\n    <last_name>',
    '</last_name>\n    <gender>',
    '<user_group>',
  ].join(''),
);

/**
 * Records are kept in batches: the XML of a few dozen users one after another, deflated at once.
 * Deflating each user alone cost 40 to 60 µs a user, nearly all of it zlib's set-up for a small
 * buffer, and compressed a third as well (bench/RESULTS.md); a batch costs a few µs a user.
 * A person's record is found by its batch, and its byte offset and length in the inflated batch.
 */
export function packBatch(users: Uint8Array): Buffer {
  return deflateRawSync(users, { dictionary: DICTIONARY, level: BATCH_LEVEL });
}

/**
 * A batch's users, inflated; with `upTo`, at least its first `upTo` bytes (the user looked for
 * and those before it). Deflate of these users' XML is about a tenth of its size, so a prefix of
 * the batch a little larger than that share of `upTo` nearly always holds them: inflating it, as
 * zlib inflates a truncated stream, costs a part of the batch (20 to 30% less time on average,
 * measured), where a changed user needs their last record (bench/RESULTS.md). When it does not
 * hold them, the whole batch is inflated.
 */
export function unpackBatch(batch: Uint8Array, upTo = Infinity): Buffer {
  const prefix = Math.ceil(upTo * PREFIX_SHARE) + 1024;
  if (prefix < batch.length) {
    const part = inflateRawSync(batch.subarray(0, prefix), { dictionary: DICTIONARY, finishFlush: constants.Z_SYNC_FLUSH });
    if (part.length >= upTo) return part;
  }
  return inflateRawSync(batch, { dictionary: DICTIONARY });
}

/** The share of a batch's compressed bytes taken for `upTo` of its inflated bytes (measured: 7%: a tenth nearly always holds them). */
const PREFIX_SHARE = 0.1;

/** zlib's level for batches: level 1 took a third of level 6's time for a batch 30% larger (bench/RESULTS.md, 2026-12-02, seventh session). */
const BATCH_LEVEL = 1;

/** A single record as version 1 of the state kept it (each user deflated alone); read by the migration to version 2. */
export function packRecord(xml: Uint8Array): Buffer {
  return deflateRawSync(xml, { dictionary: DICTIONARY, level: constants.Z_DEFAULT_COMPRESSION });
}

export function unpackRecord(record: Uint8Array): string {
  return inflateRawSync(record, { dictionary: DICTIONARY }).toString('utf8');
}

export function unescapeXml(text: string): string {
  return text.includes('&') ? text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&') : text;
}

export function escapeXmlText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
