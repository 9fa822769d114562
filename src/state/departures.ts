// A person who leaves the institution simply stops appearing in the export, and Alma keeps them
// active until an expiry date that may be years away. With `departures:` in the run config, a
// person missing for `after_missing_runs` delivered nights is sent once more: their whole last
// delivered record (never a record without its identifiers and contacts, which would wipe them),
// expired on the run date or made INACTIVE, with an external note saying why.
import type { DeparturesConfig } from '../config/run-config.js';
import type { DateRule, Mapping } from '../mapping/model.js';
import { addPeriod } from '../shared/dates.js';
import { escapeXmlText } from './user-record.js';

export type { DeparturesConfig };

/** The mapping's purge rules (per user group, and the default), which an expired departure's purge date follows. */
export type PurgeRules = Pick<Mapping, 'purge' | 'defaultPurge'>;

/** What a run sends for its departures: the run config's departures:, and the mapping's purge rules. */
export interface Departures extends DeparturesConfig {
  purge?: PurgeRules;
}

/** The order in which src/pipeline/xml.ts writes a user's fields; a departure is written back in it. */
const FIELD_ORDER = [
  'primary_id', 'first_name', 'middle_name', 'last_name', 'pin_number', 'user_title', 'job_category', 'job_description', 'gender', 'user_group',
  'campus_code', 'web_site_url', 'preferred_language', 'birth_date', 'expiry_date', 'purge_date', 'status', 'contact_info', 'user_identifiers',
  'user_notes', 'user_statistics', 'pref_first_name', 'pref_middle_name', 'pref_last_name', 'pref_name_suffix',
];

/**
 * The last delivered record of a person, changed as the config says: the expiry date set to the
 * run date and the purge date as departurePurge says (expire), or the status to INACTIVE
 * (inactivate), and the note added to the user's notes. Everything else, identifiers and
 * contacts included, is sent as it was.
 */
export function departureXml(record: string, config: Departures, runDate: string, lastSeen: string): string {
  const lines = record.split('\n');
  if (lines[0] !== '  <user>') throw new Error('a stored record does not start with <user>');
  const fields = new Map<string, string>();
  let name: string | undefined;
  for (const line of lines.slice(1)) {
    if (line === '  </user>') break;
    const start = /^ {4}<([a-z_]+)[ >]/.exec(line);
    if (start) {
      name = start[1]!;
      if (!FIELD_ORDER.includes(name)) throw new Error(`a stored record has a field sis2alma does not write: ${name}`);
      fields.set(name, '');
    }
    if (name === undefined) throw new Error('a stored record has text before its first field');
    fields.set(name, fields.get(name)! + line + '\n');
  }
  if (config.action === 'expire') {
    fields.set('expiry_date', `    <expiry_date>${runDate}</expiry_date>\n`);
    const group = /<user_group(?: [^>]*)?>([^<]*)<\/user_group>/.exec(fields.get('user_group') ?? '')?.[1];
    const purge = departurePurge(config.purge, group === undefined ? undefined : unescapeXml(group), /<purge_date>([^<]*)<\/purge_date>/.exec(fields.get('purge_date') ?? '')?.[1], runDate);
    if (purge) fields.set('purge_date', `    <purge_date>${purge}</purge_date>\n`);
  } else fields.set('status', '    <status>INACTIVE</status>\n');
  const text = config.note.replaceAll('{run_date}', runDate).replaceAll('{last_seen}', lastSeen.slice(0, 10)).trim();
  if (text) {
    const note =
      '      <user_note segment_type="External">\n' +
      '        <note_type>OTHER</note_type>\n' +
      `        <note_text>${escapeXmlText(text)}</note_text>\n` +
      '        <user_viewable>false</user_viewable>\n' +
      '        <popup_note>false</popup_note>\n' +
      '      </user_note>\n';
    const notes = fields.get('user_notes');
    fields.set('user_notes', notes ? notes.replace('    </user_notes>\n', `${note}    </user_notes>\n`) : `    <user_notes>\n${note}    </user_notes>\n`);
  }
  return '  <user>\n' + FIELD_ORDER.filter((f) => fields.has(f)).map((f) => fields.get(f)).join('') + '  </user>\n';
}

/**
 * The purge date of a person expired on the run date: per the mapping where its rule for the
 * person's user group (or its default) counts from the expiry date alone (after_expiry,
 * days_after_expiry), so run date + that; otherwise (a rule that needs the row: a column,
 * conditions, ...; or no rule) the purge date last sent, but never before the new expiry date
 * (then the run date). Undefined: none was sent and the mapping gives none.
 */
export function departurePurge(rules: PurgeRules | undefined, group: string | undefined, lastPurge: string | undefined, runDate: string): string | undefined {
  const rule: DateRule | undefined = (group ? rules?.purge.get(group) : undefined) ?? rules?.defaultPurge;
  if (rule?.kind === 'after_expiry') return addPeriod(runDate, rule);
  if (!lastPurge) return undefined;
  return lastPurge < runDate ? runDate : lastPurge;
}

function unescapeXml(text: string): string {
  return text.replace(/&(lt|gt|quot|apos|amp);/g, (_, name: string) => ({ lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' })[name]!);
}
