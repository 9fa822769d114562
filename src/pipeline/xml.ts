// Alma user v2 XML. The element order, the optional elements left out when empty, and the
// segment_type="External" attributes are described once, as a small tree (userTree), which
// xmlbuilder2 serialises: that is the reference (xml-reference.ts). The hot path (a million users
// a night) uses a plain string writer instead (userXml); a property test holds it to the
// reference's output, byte for byte, for random users with every field and every character class.
import type { AlmaUser } from '../shared/alma.js';

export interface XmlElement {
  name: string;
  attributes?: [string, string][];
  text?: string;
  children?: XmlElement[];
}

export const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';

export interface Provenance {
  tool: string;
  version: string;
  mappingFile: string;
  mappingSha256: string;
  runTime: string;
  part?: string;
}

/** Names what made the file, so that a file found on the server can be traced back. */
export function provenanceComment(p: Provenance): string {
  const text = `Written by ${p.tool} ${p.version} at ${p.runTime} with mapping ${p.mappingFile} (sha256 ${p.mappingSha256})${p.part ? `; ${p.part}` : ''}`;
  // "--" may not appear inside an XML comment, nor may the comment end in "-": one pass of the
  // replace leaves "--" in "---" ("- --"), so it runs until none is left.
  let safe = text;
  while (safe.includes('--')) safe = safe.replace(/--/g, '- -');
  return `<!-- ${safe} -->\n`;
}

export const USERS_OPEN = '<users>\n';
export const USERS_CLOSE = '</users>\n';

const SEGMENT: [string, string][] = [['segment_type', 'External']];

function leaf(name: string, text: string | undefined): XmlElement[] {
  return text === undefined || text === '' ? [] : [{ name, text }];
}

function list(name: string, children: XmlElement[]): XmlElement[] {
  return children.length ? [{ name, children }] : [];
}

/** The user as Alma's documented structure orders it; empty values are left out entirely. */
export function userTree(u: AlmaUser): XmlElement {
  const c = u.contact_info;
  const contact = [
    ...list(
      'addresses',
      c.addresses.map((a) => ({
        name: 'address',
        attributes: [['preferred', String(a.preferred)], ...SEGMENT] as [string, string][],
        children: [
          ...leaf('line1', a.line1),
          ...leaf('line2', a.line2),
          ...leaf('line3', a.line3),
          ...leaf('line4', a.line4),
          ...leaf('line5', a.line5),
          ...leaf('city', a.city),
          ...leaf('state_province', a.state_province),
          ...leaf('postal_code', a.postal_code),
          ...leaf('country', a.country),
          ...leaf('address_note', a.address_note),
          ...leaf('start_date', a.start_date),
          ...leaf('end_date', a.end_date),
          { name: 'address_types', children: a.address_types.map((t) => ({ name: 'address_type', text: t })) },
        ],
      })),
    ),
    ...list(
      'emails',
      c.emails.map((e) => ({
        name: 'email',
        attributes: [['preferred', String(e.preferred)], ...SEGMENT] as [string, string][],
        children: [...leaf('email_address', e.email_address), ...leaf('description', e.description), { name: 'email_types', children: e.email_types.map((t) => ({ name: 'email_type', text: t })) }],
      })),
    ),
    ...list(
      'phones',
      c.phones.map((p) => ({
        name: 'phone',
        attributes: [['preferred', String(p.preferred)], ...(p.preferred_sms === undefined ? [] : [['preferred_sms', String(p.preferred_sms)]]), ...SEGMENT] as [string, string][],
        children: [...leaf('phone_number', p.phone_number), { name: 'phone_types', children: p.phone_types.map((t) => ({ name: 'phone_type', text: t })) }],
      })),
    ),
  ];
  return {
    name: 'user',
    children: [
      ...leaf('primary_id', u.primary_id),
      ...leaf('first_name', u.first_name),
      ...leaf('middle_name', u.middle_name),
      ...leaf('last_name', u.last_name),
      ...leaf('pin_number', u.pin_number),
      ...leaf('user_title', u.user_title),
      ...leaf('job_category', u.job_category),
      ...leaf('job_description', u.job_description),
      ...leaf('gender', u.gender),
      ...leaf('user_group', u.user_group),
      ...leaf('campus_code', u.campus_code),
      ...leaf('web_site_url', u.web_site_url),
      ...leaf('cataloger_level', u.cataloger_level),
      ...leaf('preferred_language', u.preferred_language),
      ...leaf('birth_date', u.birth_date),
      ...leaf('expiry_date', u.expiry_date),
      ...leaf('purge_date', u.purge_date),
      ...leaf('status', u.status),
      ...(contact.length ? [{ name: 'contact_info', children: contact }] : []),
      ...list(
        'user_identifiers',
        u.user_identifiers.map((i) => ({ name: 'user_identifier', attributes: SEGMENT, children: [...leaf('id_type', i.id_type), ...leaf('value', i.value), ...leaf('note', i.note), ...leaf('status', i.status)] })),
      ),
      ...list(
        'user_blocks',
        (u.user_blocks ?? []).map((b) => ({
          name: 'user_block',
          attributes: SEGMENT,
          children: [...leaf('block_type', b.block_type), ...leaf('block_description', b.block_description), ...leaf('block_status', b.block_status), ...leaf('block_note', b.block_note)],
        })),
      ),
      ...list(
        'user_notes',
        u.user_notes.map((n) => ({
          name: 'user_note',
          attributes: SEGMENT,
          children: [...leaf('note_type', n.note_type), ...leaf('note_text', n.note_text), ...leaf('user_viewable', String(n.user_viewable)), ...leaf('popup_note', String(n.popup_note))],
        })),
      ),
      ...list(
        'user_statistics',
        u.user_statistics.map((s) => ({
          name: 'user_statistic',
          attributes: SEGMENT,
          children: [...leaf('statistic_category', s.statistic_category), ...leaf('category_type', s.category_type), ...leaf('statistic_note', s.statistic_note)],
        })),
      ),
      ...list(
        'rs_libraries',
        (u.rs_libraries ?? []).map((code) => ({ name: 'rs_library', children: leaf('code', code) })),
      ),
      ...list(
        'library_notices',
        (u.library_notices ?? []).map((n) => ({ name: 'library_notice', children: [...leaf('code', n.code), ...leaf('value', String(n.value))] })),
      ),
      ...leaf('pref_first_name', u.pref_first_name),
      ...leaf('pref_middle_name', u.pref_middle_name),
      ...leaf('pref_last_name', u.pref_last_name),
      ...leaf('pref_name_suffix', u.pref_name_suffix),
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// The hot-path writer: two-space indentation, one element a line, the user at depth 1 (inside
// <users>), exactly as xmlbuilder2 pretty-prints it.

// As xmlbuilder2 escapes text: &, < and >. A CR stays as it is (an XML reader turns CR LF into LF).
const TEXT_SPECIAL = /[&<>]/;

function escapeText(s: string): string {
  // Stryker disable next-line ConditionalExpression: equivalent: the test is only a fast path; without it the replaces run on text with no &, < or > and change nothing.
  if (!TEXT_SPECIAL.test(s)) return s;
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}


// The writer builds one string by concatenation, with no intermediate tree: a profile of a
// 100,000-row run showed the tree's allocations as a large share of the garbage collector's time.
// The element order here must follow userTree exactly; the property test holds it to that.

function leafXml(indent: string, name: string, text: string | undefined): string {
  return text === undefined || text === '' ? '' : indent + '<' + name + '>' + escapeText(text) + '</' + name + '>\n';
}

function typesXml(indent: string, list: string, item: string, codes: string[]): string {
  let out = indent + '<' + list + '>\n';
  for (const code of codes) out += indent + '  <' + item + '>' + escapeText(code) + '</' + item + '>\n';
  return out + indent + '</' + list + '>\n';
}

const SEGMENT_ATTRIBUTE = ' segment_type="External"';
const I2 = '    ';
const I3 = '      ';
const I4 = '        ';
const I5 = '          ';

/** One user as XML text (ending in a newline), at depth 1 inside <users>. */
export function userXml(u: AlmaUser): string {
  let x = '  <user>\n';
  x += leafXml(I2, 'primary_id', u.primary_id);
  x += leafXml(I2, 'first_name', u.first_name);
  x += leafXml(I2, 'middle_name', u.middle_name);
  x += leafXml(I2, 'last_name', u.last_name);
  x += leafXml(I2, 'pin_number', u.pin_number);
  x += leafXml(I2, 'user_title', u.user_title);
  x += leafXml(I2, 'job_category', u.job_category);
  x += leafXml(I2, 'job_description', u.job_description);
  x += leafXml(I2, 'gender', u.gender);
  x += leafXml(I2, 'user_group', u.user_group);
  x += leafXml(I2, 'campus_code', u.campus_code);
  x += leafXml(I2, 'web_site_url', u.web_site_url);
  x += leafXml(I2, 'cataloger_level', u.cataloger_level);
  x += leafXml(I2, 'preferred_language', u.preferred_language);
  x += leafXml(I2, 'birth_date', u.birth_date);
  x += leafXml(I2, 'expiry_date', u.expiry_date);
  x += leafXml(I2, 'purge_date', u.purge_date);
  x += leafXml(I2, 'status', u.status);
  const c = u.contact_info;
  if (c.addresses.length || c.emails.length || c.phones.length) {
    x += I2 + '<contact_info>\n';
    if (c.addresses.length) {
      x += I3 + '<addresses>\n';
      for (const a of c.addresses) {
        x += I4 + '<address preferred="' + a.preferred + '"' + SEGMENT_ATTRIBUTE + '>\n';
        x += leafXml(I5, 'line1', a.line1);
        x += leafXml(I5, 'line2', a.line2);
        x += leafXml(I5, 'line3', a.line3);
        x += leafXml(I5, 'line4', a.line4);
        x += leafXml(I5, 'line5', a.line5);
        x += leafXml(I5, 'city', a.city);
        x += leafXml(I5, 'state_province', a.state_province);
        x += leafXml(I5, 'postal_code', a.postal_code);
        x += leafXml(I5, 'country', a.country);
        x += leafXml(I5, 'address_note', a.address_note);
        x += leafXml(I5, 'start_date', a.start_date);
        x += leafXml(I5, 'end_date', a.end_date);
        x += typesXml(I5, 'address_types', 'address_type', a.address_types);
        x += I4 + '</address>\n';
      }
      x += I3 + '</addresses>\n';
    }
    if (c.emails.length) {
      x += I3 + '<emails>\n';
      for (const e of c.emails) {
        x += I4 + '<email preferred="' + e.preferred + '"' + SEGMENT_ATTRIBUTE + '>\n';
        x += leafXml(I5, 'email_address', e.email_address);
        x += leafXml(I5, 'description', e.description);
        x += typesXml(I5, 'email_types', 'email_type', e.email_types);
        x += I4 + '</email>\n';
      }
      x += I3 + '</emails>\n';
    }
    if (c.phones.length) {
      x += I3 + '<phones>\n';
      for (const p of c.phones) {
        x += I4 + '<phone preferred="' + p.preferred + '"' + (p.preferred_sms === undefined ? '' : ' preferred_sms="' + p.preferred_sms + '"') + SEGMENT_ATTRIBUTE + '>\n';
        x += leafXml(I5, 'phone_number', p.phone_number);
        x += typesXml(I5, 'phone_types', 'phone_type', p.phone_types);
        x += I4 + '</phone>\n';
      }
      x += I3 + '</phones>\n';
    }
    x += I2 + '</contact_info>\n';
  }
  x += identifiersXml(u.user_identifiers);
  if (u.user_blocks?.length) {
    x += I2 + '<user_blocks>\n';
    for (const b of u.user_blocks) {
      x +=
        I3 + '<user_block' + SEGMENT_ATTRIBUTE + '>\n' +
        leafXml(I4, 'block_type', b.block_type) + leafXml(I4, 'block_description', b.block_description) + leafXml(I4, 'block_status', b.block_status) + leafXml(I4, 'block_note', b.block_note) +
        I3 + '</user_block>\n';
    }
    x += I2 + '</user_blocks>\n';
  }
  if (u.user_notes.length) {
    x += I2 + '<user_notes>\n';
    for (const n of u.user_notes) {
      x +=
        I3 + '<user_note' + SEGMENT_ATTRIBUTE + '>\n' +
        leafXml(I4, 'note_type', n.note_type) + leafXml(I4, 'note_text', n.note_text) + leafXml(I4, 'user_viewable', String(n.user_viewable)) + leafXml(I4, 'popup_note', String(n.popup_note)) +
        I3 + '</user_note>\n';
    }
    x += I2 + '</user_notes>\n';
  }
  if (u.user_statistics.length) {
    x += I2 + '<user_statistics>\n';
    for (const st of u.user_statistics) {
      x +=
        I3 + '<user_statistic' + SEGMENT_ATTRIBUTE + '>\n' +
        leafXml(I4, 'statistic_category', st.statistic_category) + leafXml(I4, 'category_type', st.category_type) + leafXml(I4, 'statistic_note', st.statistic_note) +
        I3 + '</user_statistic>\n';
    }
    x += I2 + '</user_statistics>\n';
  }
  if (u.rs_libraries?.length) {
    x += I2 + '<rs_libraries>\n';
    for (const code of u.rs_libraries) x += I3 + '<rs_library>\n' + leafXml(I4, 'code', code) + I3 + '</rs_library>\n';
    x += I2 + '</rs_libraries>\n';
  }
  if (u.library_notices?.length) {
    x += I2 + '<library_notices>\n';
    for (const n of u.library_notices) x += I3 + '<library_notice>\n' + leafXml(I4, 'code', n.code) + leafXml(I4, 'value', String(n.value)) + I3 + '</library_notice>\n';
    x += I2 + '</library_notices>\n';
  }
  x += leafXml(I2, 'pref_first_name', u.pref_first_name);
  x += leafXml(I2, 'pref_middle_name', u.pref_middle_name);
  x += leafXml(I2, 'pref_last_name', u.pref_last_name);
  x += leafXml(I2, 'pref_name_suffix', u.pref_name_suffix);
  return x + '  </user>\n';
}

/** A user's <user_identifiers> element as userXml writes it ('' when there are none). */
export function identifiersXml(identifiers: AlmaUser['user_identifiers']): string {
  if (identifiers.length === 0) return '';
  let x = I2 + '<user_identifiers>\n';
  for (const i of identifiers) {
    x += I3 + '<user_identifier' + SEGMENT_ATTRIBUTE + '>\n' + leafXml(I4, 'id_type', i.id_type) + leafXml(I4, 'value', i.value) + leafXml(I4, 'note', i.note) + leafXml(I4, 'status', i.status) + I3 + '</user_identifier>\n';
  }
  return x + I2 + '</user_identifiers>\n';
}

/** A whole <users> document (for small outputs and tests). */
export function usersDocument(users: AlmaUser[], provenance?: Provenance): string {
  return XML_DECLARATION + (provenance ? provenanceComment(provenance) : '') + USERS_OPEN + users.map(userXml).join('') + USERS_CLOSE;
}
