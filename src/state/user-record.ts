// What the run state reads from a user as it was delivered: the XML the pipeline wrote
// (src/pipeline/xml.ts: one element a line, the user's fields four spaces in). Reading the bytes
// that went into the zip, rather than the mapped object, keeps the state true to what Alma got,
// and costs the hot path nothing: most users are written as XML by the mapping threads and never
// exist as objects in this thread.
import { createHash } from 'node:crypto';
import { deflateRawSync, inflateRawSync, constants } from 'node:zlib';

/** What a guard needs of a user, and its fingerprint. */
export interface UserSummary {
  primaryId: string;
  /** The primary id without case, as the merge and Alma compare it. */
  key: string;
  fingerprint: string;
  userGroup: string;
  expiryDate: string;
  /** The kinds of value Alma deletes when a load leaves them out, that this user has (see KINDS). */
  kinds: string[];
}

const PRIMARY_ID = /<primary_id>([^<]*)<\/primary_id>/;
const USER_GROUP = /\n {4}<user_group>([^<]*)<\/user_group>/;
const EXPIRY_DATE = /\n {4}<expiry_date>([^<]*)<\/expiry_date>/;
const ID_TYPE = /<id_type>([^<]*)<\/id_type>/g;

/**
 * Kinds of value that Alma's SYNCHRONIZE deletes from a user when tonight's file leaves them out
 * (the external ones: a file that loses a column wipes them), as the state records them. Each
 * identifier type is a kind of its own: `identifier:BARCODE`.
 */
const CONTAINS: [kind: string, marker: string][] = [
  ['email', '<email '],
  ['address', '<address '],
  ['phone', '<phone '],
  ['statistics', '<user_statistic '],
  ['notes', '<user_note '],
];

export function summarise(xml: string, bytes: Uint8Array): UserSummary {
  const primaryId = unescapeXml(PRIMARY_ID.exec(xml)?.[1] ?? '');
  const kinds: string[] = [];
  for (const [kind, marker] of CONTAINS) if (xml.includes(marker)) kinds.push(kind);
  for (const m of xml.matchAll(ID_TYPE)) {
    const kind = `identifier:${unescapeXml(m[1]!)}`;
    if (!kinds.includes(kind)) kinds.push(kind);
  }
  return {
    primaryId,
    key: primaryId.toLowerCase(),
    fingerprint: createHash('sha1').update(bytes).digest('base64url'),
    userGroup: unescapeXml(USER_GROUP.exec(xml)?.[1] ?? ''),
    expiryDate: EXPIRY_DATE.exec(xml)?.[1] ?? '',
    kinds,
  };
}

/** How a message names a kind: `email`, `BARCODE identifier`. */
export function kindName(kind: string): string {
  return kind.startsWith('identifier:') ? `${kind.slice('identifier:'.length)} identifier` : kind;
}

/**
 * The user's fields as they appear in the XML, by name, for telling which changed: each element
 * four spaces in, and the parts of contact_info (emails, addresses, phones) on their own.
 */
export function fieldsOf(xml: string): Map<string, string> {
  const fields = new Map<string, string>();
  const lines = xml.split('\n');
  let name: string | undefined;
  let text = '';
  const close = () => {
    if (name !== undefined) fields.set(name, text);
    name = undefined;
    text = '';
  };
  for (const line of lines) {
    // <contact_info> is only a wrapper: its children, six spaces in, are the fields.
    if (/^ {4}<\/?contact_info>|^ {2}<\/user>/.test(line)) {
      close();
      continue;
    }
    const start = /^ {4}<([a-z_]+)[ >]/.exec(line) ?? /^ {6}<(addresses|emails|phones)>/.exec(line);
    if (start) {
      close();
      name = start[1]!;
    }
    if (name !== undefined) text += line + '\n';
  }
  close();
  fields.delete('primary_id');
  return fields;
}

/** The names of the fields that differ between two users' XML (added, removed or changed), sorted. */
export function changedFields(before: string, after: string): string[] {
  const a = fieldsOf(before);
  const b = fieldsOf(after);
  const names = new Set([...a.keys(), ...b.keys()]);
  return [...names].filter((n) => a.get(n) !== b.get(n)).sort();
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

export function unpackBatch(batch: Uint8Array): Buffer {
  return inflateRawSync(batch, { dictionary: DICTIONARY });
}

/** zlib's level for batches: see bench/RESULTS.md (2026-12-02, seventh session). */
const BATCH_LEVEL = 6;

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
