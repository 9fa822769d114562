// Alma user v2 XML. The element order, the optional elements left out when empty, and the
// segment_type="External" attributes are decided here, once, by walking the user as a small
// tree (userTree). Two serialisers write that tree: xmlbuilder2 (the reference, used where speed
// does not matter) and a plain escaping writer (the hot path: it writes a million users). A
// property test holds them to the same output, byte for byte.
import { create } from 'xmlbuilder2';
import type { AlmaUser } from './alma.js';

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
  // "--" may not appear inside an XML comment.
  return `<!-- ${text.replace(/--/g, '- -')} -->\n`;
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
      ...leaf('preferred_language', u.preferred_language),
      ...leaf('birth_date', u.birth_date),
      ...leaf('expiry_date', u.expiry_date),
      ...leaf('purge_date', u.purge_date),
      ...leaf('status', u.status),
      ...(contact.length ? [{ name: 'contact_info', children: contact }] : []),
      ...list(
        'user_identifiers',
        u.user_identifiers.map((i) => ({ name: 'user_identifier', attributes: SEGMENT, children: [...leaf('id_type', i.id_type), ...leaf('value', i.value), ...leaf('note', i.note)] })),
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
const ATTR_SPECIAL = /[&<>"\r\n\t]/;

function escapeText(s: string): string {
  if (!TEXT_SPECIAL.test(s)) return s;
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function escapeAttribute(s: string): string {
  if (!ATTR_SPECIAL.test(s)) return s;
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/\r/g, '&#xD;').replace(/\n/g, '&#xA;').replace(/\t/g, '&#x9;');
}

const INDENTS = Array.from({ length: 12 }, (_, i) => '  '.repeat(i));

function write(e: XmlElement, depth: number, out: string[]): void {
  let open = INDENTS[depth] + '<' + e.name;
  if (e.attributes) for (const [k, v] of e.attributes) open += ' ' + k + '="' + escapeAttribute(v) + '"';
  if (e.children) {
    out.push(open + '>\n');
    for (const child of e.children) write(child, depth + 1, out);
    out.push(INDENTS[depth] + '</' + e.name + '>\n');
  } else {
    out.push(open + '>' + escapeText(e.text ?? '') + '</' + e.name + '>\n');
  }
}

/** One user as XML text (ending in a newline), for a <users> file. */
export function userXml(user: AlmaUser): string {
  const out: string[] = [];
  write(userTree(user), 1, out);
  return out.join('');
}

/** The same user written by xmlbuilder2: the reference the fast writer is held to. */
export function userXmlReference(user: AlmaUser): string {
  const build = (parent: ReturnType<typeof create>, e: XmlElement): void => {
    const node = parent.ele(e.name, Object.fromEntries(e.attributes ?? []));
    if (e.children) for (const child of e.children) build(node, child);
    else node.txt(e.text ?? '');
  };
  const doc = create();
  build(doc, userTree(user));
  const text = doc.end({ headless: true, prettyPrint: true, indent: '  ', offset: 1, newline: '\n' });
  return text + '\n';
}

/** A whole <users> document (for small outputs and tests). */
export function usersDocument(users: AlmaUser[], provenance?: Provenance): string {
  return XML_DECLARATION + (provenance ? provenanceComment(provenance) : '') + USERS_OPEN + users.map(userXml).join('') + USERS_CLOSE;
}
