// What a mapping does to an input, without writing anything: `mapping explain` (one mapping) and
// `mapping diff` (two mappings, the same input). The rows go through the same steps as convert
// (pass 1 indexes primary ids, pass 2 maps each row and merges each person once all of their rows
// are in, with mergeUsers; then Alma's rules across users, with AcrossUsers), so that what explain
// says is what convert would write, short of the XSD check.
//
// Pass 2 maps in this thread, one row at a time, so that the visitor sees every row's result; a
// mapping thread parses the pieces for it (map-pool.ts's parse), which took a quarter of the time.
//
// Memory stays flat as the input grows: the analysis holds counts, a few examples and the id
// index, never the users. Only the rows of a person with several rows wait, slimmed to what the
// merge decides on, until that person's last row is read.
import path from 'node:path';
import { emptyUser, type AlmaUser } from '../shared/alma.js';
import { AcrossUsers } from '../pipeline/across-users.js';
import { indexPrimaryIds, labelOf, pieceFailure, tooManyRows, type IndexedInputs } from '../pipeline/convert.js';
import type { RowWarning } from '../shared/errors.js';
import { MapPool, recordValues } from '../pipeline/map-pool.js';
import { compileMapping, type MapResult } from '../mapping/map.js';
import { IdIndex, PeopleInWaiting, byRealId, idKey, mergeUsers, type MergeMember } from '../pipeline/merge.js';
import type { Mapping } from '../mapping/model.js';
import { maskId } from '../shared/log.js';
import { openPieces } from '../pipeline/read.js';
import { noProgress, type Progress, type ProgressStage } from '../shared/progress.js';

export interface AnalyseOptions {
  /** The run date (YYYY-MM-DD) that expiry dates are computed from. */
  runDate: string;
  encoding?: string;
  /** Show primary ids in full in examples; masked (`jd***1`) otherwise. */
  showPii?: boolean;
  /** Examples kept per finding; default 5. */
  examples?: number;
  /** Told how far each pass has come (per piece); the command decides what to show. */
  progress?: Progress;
}

/** One person, once all of their rows have been read. */
export interface PersonEvent {
  primary_id: string;
  /** The user convert would write (merged when several rows map); undefined when every row was rejected. */
  user?: AlmaUser;
  /** The rows that make up the user, the one it is written as first. */
  rows: string[];
  rejectedRows: string[];
  /** The rows the mapping's skip list left out. */
  skippedRows: string[];
  /** Why the first row won, when several rows were merged. */
  mergeReason?: string;
  /** The user's warnings beyond those of its rows: the merge's, and identifiers left out by the rules across users. */
  warnings: RowWarning[];
}

export interface Visitor {
  row?(label: string, result: MapResult): void;
  person?(event: PersonEvent): void;
}

export interface StreamedInput {
  file: string;
  rows: number;
}

/**
 * Streams the inputs through the mapping as convert does, calling `visitor.row` for every row
 * and `visitor.person` once for every primary id.
 */
export async function streamMapping(mapping: Mapping, files: string[], options: AnalyseOptions, visitor: Visitor): Promise<StreamedInput[]> {
  const threads = new MapPool();
  try {
    const progress = options.progress ?? noProgress;
    const inputs = await indexPrimaryIds(files, mapping, options.encoding, options.runDate, threads, { progress });
    // This thread maps; one thread parsing for it is enough (it parses twice as fast as this maps).
    await threads.shrink(1);
    const rows = inputs.files.reduce((n, f) => n + f.rows, 0);
    const stage = progress.stage('pass 2 (map)', 'rows', rows);
    await mapRows(inputs, mapping, options, threads, visitor, stage);
    stage.end(rows);
    return inputs.files.map((f) => ({ file: f.file, rows: f.rows }));
  } finally {
    await threads.close();
  }
}

async function mapRows(inputs: IndexedInputs, mapping: Mapping, options: AnalyseOptions, threads: MapPool, visitor: Visitor, stage: ProgressStage): Promise<void> {
  const people = new PeopleInWaiting<Member>();
  const acrossUsers = new AcrossUsers(inputs.primaryIds, (ordinal) => labelOf(inputs.files, ordinal), inputs.identifiers);
  const finish = (members: Member[]) => completePeople(members, mapping, acrossUsers, visitor);
  const primaryColumn = mapping.fields.find((f) => f.field === 'primary_id')?.value.columns[0] ?? 'primary_id';
  for (const input of inputs.files) {
    const csv = await openPieces(input.file, { encoding: options.encoding, delimiter: mapping.delimiter, requiredColumns: mapping.requiredColumns });
    const mapper = compileMapping(mapping, csv.header, options.runDate, input.file);
    threads.startFile(mapping, csv.header, options.runDate, input.file);
    let ordinal = input.firstOrdinal - 1;
    let row = 0;
    for await (const { piece, result: parsed } of threads.inOrder(csv.pieces, (p) => threads.parse(p))) {
      if (parsed.failure) throw pieceFailure(parsed.failure, input.file, csv.header, piece, row);
      for (let i = 0; i < parsed.rows; i++) {
        const values = recordValues(parsed, i);
        ordinal++;
        row++;
        const label = input.label ? `${input.label}:${row}` : String(row);
        let result = mapper.mapRecord(values);
        const id = result.ok ? result.user.primary_id : result.primary_id;
        const slot = id === undefined ? -1 : inputs.primaryIds.find(idKey(id));
        const expected = slot < 0 ? 1 : inputs.primaryIds.second(slot);
        // As convert does: every row of a primary id with more rows than a person has is rejected.
        if (expected > mapping.maxRowsPerPerson) {
          const problem = tooManyRows(primaryColumn, id, expected, mapping.maxRowsPerPerson);
          result = result.ok ? { ok: false, primary_id: id, problems: [problem], warnings: [] } : { ...result, problems: [...result.problems, problem] };
        }
        visitor.row?.(label, result);
        if (id === undefined) continue;
        const member: Member = { ordinal, label, input: path.basename(input.file), id, user: result.ok ? result.user : undefined, ...(!result.ok && result.skipped !== undefined ? { skipped: true } : {}), warnings: [] };
        if (expected <= 1) {
          finish([member]);
          continue;
        }
        // A row that waits for the rest of its person keeps only what the merge needs.
        if (member.user) member.user = slim(member.user);
        const members = people.arrive(slot, expected, member);
        if (members) finish(members);
      }
      stage.update(ordinal);
    }
  }
  // Only if a file changed between the two passes.
  for (const members of people.incomplete()) finish(members);
}

interface Member extends Omit<MergeMember, 'user'> {
  id: string;
  user?: AlmaUser;
  /** Left out by the mapping's skip list (not rejected). */
  skipped?: boolean;
}

function completePeople(members: Member[], mapping: Mapping, acrossUsers: AcrossUsers, visitor: Visitor): void {
  for (const group of byRealId(members, (m) => m.id)) {
    const mapped = group.filter((m): m is Member & { user: AlmaUser } => m.user !== undefined);
    const rejectedRows = group.filter((m) => !m.user && !m.skipped).map((m) => m.label);
    const skippedRows = group.filter((m) => m.skipped).map((m) => m.label);
    if (mapped.length === 0) {
      visitor.person?.({ primary_id: group[0]!.id, rows: [], rejectedRows, skippedRows, warnings: [] });
    } else if (mapped.length === 1) {
      const [only] = mapped as [Member & { user: AlmaUser }];
      const warnings: RowWarning[] = [];
      acrossUsers.check(only.user, only.ordinal, warnings);
      visitor.person?.({ primary_id: only.id, user: only.user, rows: [only.label], rejectedRows, skippedRows, warnings });
    } else {
      const decision = mergeUsers(mapped, mapping.userGroup, mapping.merge);
      const warnings = decision.warnings;
      acrossUsers.check(decision.user, decision.winner.ordinal, warnings);
      const rows = [decision.winner, ...mapped.filter((m) => m !== decision.winner)].map((m) => m.label);
      visitor.person?.({ primary_id: decision.user.primary_id, user: decision.user, rows, rejectedRows, skippedRows, mergeReason: decision.reason, warnings });
    }
  }
}

/**
 * What the merge decides on (and warns of) and what explain and diff report: of addresses and
 * phones, what tells them apart and which is preferred; names, notes and statistics are let go.
 */
function slim(user: AlmaUser): AlmaUser {
  const out = emptyUser(user.primary_id);
  out.user_group = user.user_group;
  out.status = user.status;
  out.expiry_date = user.expiry_date;
  out.purge_date = user.purge_date;
  out.user_identifiers = user.user_identifiers;
  out.contact_info.emails = user.contact_info.emails;
  out.contact_info.addresses = user.contact_info.addresses.map(({ preferred, line1, postal_code }) => ({ preferred, line1, postal_code, address_types: [] }));
  out.contact_info.phones = user.contact_info.phones.map(({ preferred, phone_number }) => ({ preferred, phone_number, phone_types: [] }));
  return out;
}

// ---------------------------------------------------------------------------------------------
// explain

export interface Explanation {
  mapping: { file: string; source: string };
  run_date: string;
  inputs: StreamedInput[];
  rows: { total: number; mapped: number; rejected: number; skipped: number };
  /** Rows the mapping's skip list leaves out, by the skip rule's name. */
  skips: Record<string, { rows: number; examples: string[] }>;
  /** Users convert would write (before the XSD check), by user group. */
  users: { total: number; by_group: Record<string, number> };
  /** Per user group: the expiry dates its users get. */
  expiry: Record<string, ExpirySummary>;
  /** Per user group: the purge dates its users get (none: Alma never purges them). */
  purge: Record<string, ExpirySummary>;
  /** Values that no rule or table maps: rejected rows, or rows given the mapping's fallback code. */
  unmapped: UnmappedValue[];
  /** Unmapped values beyond the first MAX_UNMAPPED distinct ones, counted only. */
  unmapped_other_rows: number;
  without_email: { rows: number; users: number; examples: string[] };
  merges: { people: number; rows: number; by_reason: Record<string, number>; examples: { primary_id: string; rows: string[]; user_group: string; reason: string }[] };
  /** Rejected rows by reason (the row problem code); a row with two problems counts under both. */
  rejections: Record<string, { rows: number; columns: Record<string, number>; examples: string[] }>;
  /** The same, by reason and column, each with its message (without any row's value): what the text prints. */
  reasons: { code: string; column?: string; message: string; rows: number; examples: string[] }[];
  warnings: Record<string, { rows: number; examples: string[] }>;
}

export interface ExpirySummary {
  users: number;
  /** Users of the group without an expiry (or purge) date (the mapping gives none). */
  none: number;
  earliest?: string;
  latest?: string;
  /** Each date with its count, when there are few distinct dates. */
  dates?: Record<string, number>;
  distinct: number;
}

export interface UnmappedValue {
  /** The field or column, e.g. "user_group" or "department". */
  field: string;
  /** The value as the row has it (for user_group: every column the rules looked at). */
  value: string;
  /** "rejected", "omitted" (written without a user group: user_group.unmapped: omit), or the fallback code the mapping gives it. */
  outcome: string;
  rows: number;
  examples: string[];
}

const MAX_UNMAPPED = 500;
const MAX_DATES = 1000;
const FEW_DATES = 8;

export async function explainMapping(mapping: Mapping, files: string[], options: AnalyseOptions): Promise<Explanation> {
  const keep = options.examples ?? 5;
  const show = (id: string) => (options.showPii ? id : maskId(id));
  const add = (list: string[], item: string) => list.length < keep && list.push(item);
  const rows = { total: 0, mapped: 0, rejected: 0, skipped: 0 };
  const skips: Explanation['skips'] = {};
  const unmapped = new Map<string, UnmappedValue>();
  let unmappedOther = 0;
  const noteUnmapped = (field: string, value: string, outcome: string, label: string) => {
    const key = `${field}\u0000${value}\u0000${outcome}`;
    let u = unmapped.get(key);
    if (!u) {
      if (unmapped.size >= MAX_UNMAPPED) return void unmappedOther++;
      unmapped.set(key, (u = { field, value, outcome, rows: 0, examples: [] }));
    }
    u.rows++;
    add(u.examples, label);
  };
  const withoutEmail = { rows: 0, users: 0, examples: [] as string[] };
  const rejections: Explanation['rejections'] = {};
  const reasons = new Map<string, Explanation['reasons'][number]>();
  const warnings: Explanation['warnings'] = {};
  const noteWarning = (kind: string, label: string) => {
    const entry = (warnings[kind] ??= { rows: 0, examples: [] });
    entry.rows++;
    if (!entry.examples.includes(label)) add(entry.examples, label);
  };
  const byGroup = new Map<string, number>();
  type DateTally = { users: number; none: number; dates: Map<string, number>; earliest?: string; latest?: string; overflow: boolean };
  const expiry = new Map<string, DateTally>();
  const purge = new Map<string, DateTally>();
  const tally = (tallies: Map<string, DateTally>, group: string, date: string | undefined) => {
    let e = tallies.get(group);
    if (!e) tallies.set(group, (e = { users: 0, none: 0, dates: new Map(), overflow: false }));
    e.users++;
    if (!date) return void e.none++;
    if (!e.earliest || date < e.earliest) e.earliest = date;
    if (!e.latest || date > e.latest) e.latest = date;
    if (e.dates.has(date) || e.dates.size < MAX_DATES) e.dates.set(date, (e.dates.get(date) ?? 0) + 1);
    else e.overflow = true;
  };
  const summaries = (tallies: Map<string, DateTally>): Record<string, ExpirySummary> =>
    Object.fromEntries(
      [...tallies].sort((a, b) => a[0].localeCompare(b[0])).map(([group, e]) => {
        const summary: ExpirySummary = { users: e.users, none: e.none, distinct: e.dates.size, ...(e.earliest ? { earliest: e.earliest, latest: e.latest } : {}) };
        if (!e.overflow && e.dates.size > 0 && e.dates.size <= FEW_DATES) summary.dates = sortedRecord(e.dates, (a, b) => a[0].localeCompare(b[0]));
        return [group, summary];
      }),
    );
  const merges: Explanation['merges'] = { people: 0, rows: 0, by_reason: {}, examples: [] };
  let users = 0;

  const inputs = await streamMapping(mapping, files, options, {
    row(label, result) {
      rows.total++;
      for (const w of result.warnings) {
        noteWarning(w.kind, label);
        if (w.kind === 'unknown_code') noteUnmapped(w.column ?? '?', w.value ?? '', /; (.+) used$/.exec(w.message)?.[1] ?? 'fallback', label);
        if (w.kind === 'user_group_omitted') noteUnmapped('user_group', w.value ?? '', 'omitted', label);
      }
      if (!result.ok && result.skipped !== undefined) {
        rows.skipped++;
        const entry = (skips[result.skipped] ??= { rows: 0, examples: [] });
        entry.rows++;
        add(entry.examples, label);
        return;
      }
      if (result.ok) {
        rows.mapped++;
        if (result.user.contact_info.emails.length === 0) {
          withoutEmail.rows++;
          add(withoutEmail.examples, label);
        }
        return;
      }
      rows.rejected++;
      for (const code of new Set(result.problems.map((p) => p.code))) {
        const entry = (rejections[code] ??= { rows: 0, columns: {}, examples: [] });
        entry.rows++;
        add(entry.examples, label);
        for (const p of result.problems) if (p.code === code && p.column) entry.columns[p.column] = (entry.columns[p.column] ?? 0) + 1;
      }
      for (const p of result.problems) {
        // A reject rule's message is the mapping's own, with no row's value: each rule is a reason of its own.
        const own = p.code === 'rejected_by_rule';
        const key = `${p.code}\u0000${own ? p.message : (p.column ?? '')}`;
        let reason = reasons.get(key);
        if (!reason) reasons.set(key, (reason = { code: p.code, ...(p.column ? { column: p.column } : {}), message: own ? p.message : reasonMessage(p.code, p.column), rows: 0, examples: [] }));
        if (reason.examples[reason.examples.length - 1] === label) continue;
        reason.rows++;
        add(reason.examples, label);
      }
      for (const p of result.problems) {
        if (p.code === 'no_user_group') noteUnmapped('user_group', result.unmappedGroup ?? p.value ?? '', 'rejected', label);
        else if (p.code === 'bad_value') noteUnmapped(p.column ?? '?', p.value ?? '', 'rejected', label);
      }
    },
    person(event) {
      const user = event.user;
      if (!user) return;
      for (const w of event.warnings) noteWarning(w.kind, event.rows[0]!);
      users++;
      const group = user.user_group ?? '(none)';
      byGroup.set(group, (byGroup.get(group) ?? 0) + 1);
      if (user.contact_info.emails.length === 0) withoutEmail.users++;
      tally(expiry, group, user.expiry_date);
      tally(purge, group, user.purge_date);
      if (event.rows.length > 1) {
        merges.people++;
        merges.rows += event.rows.length;
        const reason = event.mergeReason ?? '';
        merges.by_reason[reason] = (merges.by_reason[reason] ?? 0) + 1;
        if (merges.examples.length < keep) merges.examples.push({ primary_id: show(user.primary_id), rows: event.rows, user_group: group, reason });
      }
    },
  });

  return {
    mapping: { file: mapping.file, source: mapping.source },
    run_date: options.runDate,
    inputs,
    rows,
    skips,
    users: { total: users, by_group: sortedRecord(byGroup, (a, b) => b[1] - a[1] || a[0].localeCompare(b[0])) },
    expiry: summaries(expiry),
    purge: summaries(purge),
    unmapped: [...unmapped.values()].sort((a, b) => b.rows - a.rows || a.field.localeCompare(b.field) || a.value.localeCompare(b.value)),
    unmapped_other_rows: unmappedOther,
    without_email: withoutEmail,
    merges,
    rejections,
    reasons: [...reasons.values()].sort((a, b) => b.rows - a.rows || a.message.localeCompare(b.message)),
    warnings,
  };
}

/**
 * A rejection's reason in words, for a reason and column, as the rows' own messages say it but
 * without any row's value (the report names those; the terminal shows no patron data).
 */
export function reasonMessage(code: string, column: string | undefined): string {
  const field = `Field (${column ?? '?'})`;
  switch (code) {
    case 'missing_value':
      return `${field} is required but empty`;
    case 'bad_email':
      return `${field} is not a well-formed email address`;
    case 'bad_date':
      return `${field} is not a date in the form the mapping gives`;
    case 'bad_phone':
      return `${field} is not a phone number (phone: in the mapping)`;
    case 'unfit_value':
      return `${field} has a value that replace (must_match), split or substring cannot handle (on_unfit: reject)`;
    case 'bad_integer':
      return `${field} is not a year`;
    case 'bad_boolean':
      return `${field} is not a yes/no value (expected y, yes, true, 1, n, no, false or 0)`;
    case 'bad_value':
      return `${field} has a value the mapping does not know (see "Values no rule maps")`;
    case 'too_long':
      return `${field} is longer than Alma takes`;
    case 'code_not_allowed':
      return `${field} gives a code that is not one of the codes this Alma has (allowed_codes)`;
    case 'no_user_group':
      return `No user group rule maps this row${column ? ` (it looked at ${column})` : ''}`;
    case 'rejected_by_rule':
      return 'A rule of the mapping\'s reject list holds';
    case 'ragged_row':
      return 'The row has more or fewer fields than the header; a field may hold an unquoted comma or line break';
    case 'too_many_rows':
      return `${field} is the primary id of more rows than one person has (input.max_rows_per_person in the mapping); the export repeats rows`;
    case 'invisible_character':
      return `${field} holds an invisible character (nobody can see or type it at a login; remove it in the SIS)`;
    case 'schema_invalid':
      return "Alma's schema refuses this user";
    default:
      return `${field}: ${code.replaceAll('_', ' ')}`;
  }
}

/** A warning kind in words. */
function warningMessage(kind: string): string {
  switch (kind) {
    case 'stripped_characters':
      return 'characters XML cannot carry were removed';
    case 'truncated':
      return "a value was cut to Alma's limit (truncate: true)";
    case 'duplicate_identifier':
      return 'an identifier another user (or this one) already has was left out';
    case 'expiry_in_past':
      return 'the expiry date is before the run date';
    case 'unknown_code':
      return "a value the table does not know was given the mapping's fallback code";
    case 'invalid_email_dropped':
      return 'a malformed email was left out (on_invalid: drop)';
    case 'user_group_omitted':
      return 'no user group rule maps the row: written without a user group (user_group.unmapped: omit)';
    case 'invalid_phone_dropped':
      return 'a value that is not a phone number was left out (phone: on_invalid: drop)';
    case 'unfit_value_dropped':
      return 'a value that replace, split or substring cannot handle was left out (on_unfit: drop)';
    case 'extra_preferred':
      return 'merged rows each had a preferred address, email or phone: one keeps it';
    default:
      return kind.replaceAll('_', ' ');
  }
}

function sortedRecord<V>(map: Map<string, V>, order: (a: [string, V], b: [string, V]) => number): Record<string, V> {
  return Object.fromEntries([...map].sort(order));
}

const plural = (n: number, one: string, many = one + 's') => `${n} ${n === 1 ? one : many}`;

/** The explanation as a librarian reads it. */
export function formatExplanation(x: Explanation): string[] {
  const out: string[] = [];
  out.push(`Mapping ${x.mapping.file} (source ${x.mapping.source}), run date ${x.run_date}`);
  for (const input of x.inputs) out.push(`  input ${input.file}: ${plural(input.rows, 'row')}`);
  out.push('');
  out.push(`${plural(x.rows.total, 'row')}: ${x.rows.mapped} mapped, ${x.rows.rejected} rejected${x.rows.skipped ? `, ${x.rows.skipped} skipped` : ''}; ${plural(x.users.total, 'user')} would be written.`);
  if (x.rows.skipped) {
    out.push('');
    out.push('Skipped rows by rule:');
    for (const [name, s] of Object.entries(x.skips).sort((a, b) => b[1].rows - a[1].rows)) out.push(`  ${name}: ${plural(s.rows, 'row')}, e.g. ${s.examples.length === 1 ? 'row' : 'rows'} ${s.examples.join(', ')}`);
  }
  out.push('');
  out.push('Users per group:');
  if (x.users.total === 0) out.push('  (none)');
  for (const [group, n] of Object.entries(x.users.by_group)) out.push(`  ${group.padEnd(16)} ${String(n).padStart(8)}`);
  out.push('');
  for (const [title, summaries, what] of [
    ['Expiry dates per group:', x.expiry, 'an expiry date'],
    ['Purge dates per group:', x.purge, 'a purge date (Alma never purges them)'],
  ] as const) {
    if (title !== 'Expiry dates per group:') out.push('');
    out.push(title);
    if (Object.keys(summaries).length === 0) out.push('  (none)');
    for (const [group, e] of Object.entries(summaries)) {
      const parts: string[] = [];
      if (e.dates) parts.push(Object.entries(e.dates).map(([d, n]) => `${d} (${n})`).join(', '));
      else if (e.earliest) parts.push(`${e.earliest} to ${e.latest} (${e.distinct >= MAX_DATES ? `${MAX_DATES}+` : e.distinct} distinct dates)`);
      if (e.none) parts.push(`${plural(e.none, 'user')} without ${what}`);
      out.push(`  ${group.padEnd(16)} ${parts.join('; ')}`);
    }
  }
  out.push('');
  out.push('Values no rule maps:');
  if (x.unmapped.length === 0) out.push('  (none)');
  for (const u of x.unmapped) {
    const what = u.field === 'user_group' ? `user group: ${u.value}` : `${u.field} = '${u.value}'`;
    const outcome = u.outcome === 'rejected' ? 'rejected' : u.outcome === 'omitted' ? 'written without a user group' : `given ${u.outcome}`;
    out.push(`  ${what}: ${plural(u.rows, 'row')} ${outcome} (rows ${u.examples.join(', ')}${u.rows > u.examples.length ? ', ...' : ''})`);
  }
  if (x.unmapped_other_rows) out.push(`  ... and ${plural(x.unmapped_other_rows, 'row')} with other values`);
  out.push('');
  out.push(
    `Rows without an email: ${x.without_email.rows}${x.without_email.rows ? ` (rows ${x.without_email.examples.join(', ')}${x.without_email.rows > x.without_email.examples.length ? ', ...' : ''})` : ''}; users without an email: ${x.without_email.users}`,
  );
  out.push('');
  out.push(`Merges: ${plural(x.merges.people, 'person', 'people')} with several rows (${plural(x.merges.rows, 'row')}) become one user each`);
  for (const [reason, n] of Object.entries(x.merges.by_reason).sort((a, b) => b[1] - a[1])) out.push(`  ${String(n).padStart(8)}  ${reason}`);
  // The reason names the group the user gets ("GRAD (the active row) wins", "same group STAFF").
  for (const m of x.merges.examples) out.push(`  e.g. ${m.primary_id}: rows ${m.rows.join(' + ')} → ${m.reason}`);
  out.push('');
  out.push('Rejected rows by reason:');
  if (x.reasons.length === 0) out.push('  (none)');
  for (const r of x.reasons) out.push(`  ${r.message}: ${plural(r.rows, 'row')}, e.g. ${r.examples.length === 1 ? 'row' : 'rows'} ${r.examples.join(', ')}`);
  if (Object.keys(x.warnings).length) {
    out.push('');
    out.push('Warnings (the rows are still written):');
    for (const [kind, w] of Object.entries(x.warnings).sort((a, b) => b[1].rows - a[1].rows)) out.push(`  ${warningMessage(kind)}: ${plural(w.rows, 'row')}, e.g. ${w.examples.length === 1 ? 'row' : 'rows'} ${w.examples.join(', ')}`);
  }
  out.push('');
  out.push('Nothing was written. convert also checks each user against the XSD.');
  return out;
}

// ---------------------------------------------------------------------------------------------
// diff

export type ChangeKind = 'group' | 'expiry' | 'purge' | 'status' | 'emails' | 'identifiers' | 'now_rejected' | 'now_skipped' | 'now_written' | 'only_old' | 'only_new';

export interface Change {
  kind: ChangeKind;
  /** The librarian's sentence, e.g. "412 users move from GRAD to STAFF". */
  message: string;
  users: number;
  from?: string;
  to?: string;
  /** Primary ids (masked unless showPii), with the old → new value where it helps. */
  examples: string[];
}

export interface MappingDiff {
  old: { file: string; source: string };
  new: { file: string; source: string };
  run_date: string;
  inputs: StreamedInput[];
  /** People (primary ids) seen with both mappings. */
  compared: number;
  unchanged: number;
  rows_rejected: { old: number; new: number };
  /** Rows the skip list leaves out, with each mapping, by rule. */
  rows_skipped: { old: number; new: number; by_rule: Record<string, { old: number; new: number }> };
  changes: Change[];
}

const WRITTEN = 1;
const REJECTED = 2;
const SKIPPED = 3;
const NONE = 0xffff;

/**
 * A compact record per primary id of what the old mapping made of the person: codes are interned
 * (an index into `codes`), dates kept as YYYYMMDD numbers, all in typed arrays reached through an
 * IdIndex, so that a million people cost a few tens of megabytes.
 */
class Fingerprints {
  readonly index = new IdIndex();
  private readonly codes: string[] = [];
  private readonly codeIndex = new Map<string, number>();
  count = 0;
  state = new Uint8Array(1024);
  seen = new Uint8Array(1024);
  group = new Uint16Array(1024);
  status = new Uint16Array(1024);
  expiry = new Uint32Array(1024);
  purge = new Uint32Array(1024);
  emails = new Uint16Array(1024);
  identifiers = new Uint16Array(1024);

  code(text: string | undefined): number {
    if (text === undefined) return NONE;
    let i = this.codeIndex.get(text);
    if (i === undefined) {
      i = this.codes.length;
      if (i >= NONE) return NONE - 1;
      this.codes.push(text);
      this.codeIndex.set(text, i);
    }
    return i;
  }
  text(code: number): string | undefined {
    return code === NONE ? undefined : this.codes[code];
  }

  /** The record's number for an id, or -1. */
  find(id: string): number {
    const slot = this.index.find(idKey(id));
    return slot < 0 ? -1 : this.index.first(slot);
  }

  add(event: PersonEvent): void {
    const { slot, isNew } = this.index.upsert(idKey(event.primary_id));
    const i = isNew ? this.count++ : this.index.first(slot);
    if (isNew) this.index.set(slot, i, 0);
    if (i >= this.state.length) this.grow();
    const u = event.user;
    this.state[i] = u ? WRITTEN : event.rejectedRows.length === 0 && event.skippedRows.length ? SKIPPED : REJECTED;
    if (!u) return;
    this.group[i] = this.code(u.user_group);
    this.status[i] = this.code(u.status);
    this.expiry[i] = dateNumber(u.expiry_date);
    this.purge[i] = dateNumber(u.purge_date);
    this.emails[i] = Math.min(u.contact_info.emails.length, NONE);
    this.identifiers[i] = Math.min(u.user_identifiers.length, NONE);
  }

  private grow(): void {
    const size = this.state.length * 2;
    const bigger = <T extends Uint8Array | Uint16Array | Uint32Array>(a: T): T => {
      const b = new (a.constructor as new (n: number) => T)(size);
      b.set(a);
      return b;
    };
    this.state = bigger(this.state);
    this.seen = bigger(this.seen);
    this.group = bigger(this.group);
    this.status = bigger(this.status);
    this.expiry = bigger(this.expiry);
    this.purge = bigger(this.purge);
    this.emails = bigger(this.emails);
    this.identifiers = bigger(this.identifiers);
  }
}

function dateNumber(date: string | undefined): number {
  return date ? Number(date.replaceAll('-', '')) : 0;
}
function numberDate(n: number): string {
  if (!n) return 'none';
  const s = String(n).padStart(8, '0');
  return `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6)}`;
}

export async function diffMappings(oldMapping: Mapping, newMapping: Mapping, files: string[], options: AnalyseOptions): Promise<MappingDiff> {
  const keep = options.examples ?? 5;
  const show = (id: string) => (options.showPii ? id : maskId(id));
  const before = new Fingerprints();
  const rejected = { old: 0, new: 0 };
  const skipped: MappingDiff['rows_skipped'] = { old: 0, new: 0, by_rule: {} };
  const countRow = (r: MapResult, side: 'old' | 'new') => {
    if (r.ok) return;
    if (r.skipped === undefined) return void rejected[side]++;
    skipped[side]++;
    (skipped.by_rule[r.skipped] ??= { old: 0, new: 0 })[side]++;
  };
  await streamMapping(oldMapping, files, options, {
    row: (_label, r) => countRow(r, 'old'),
    person: (event) => before.add(event),
  });

  const changes = new Map<string, Change>();
  const note = (kind: ChangeKind, from: string | undefined, to: string | undefined, id: string, detail = '') => {
    const key = `${kind}\u0000${from ?? ''}\u0000${to ?? ''}`;
    let c = changes.get(key);
    if (!c) changes.set(key, (c = { kind, message: '', users: 0, ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}), examples: [] }));
    c.users++;
    if (c.examples.length < keep) c.examples.push(show(id) + detail);
  };
  let compared = 0;
  let unchanged = 0;
  const inputs = await streamMapping(newMapping, files, options, {
    row: (_label, r) => countRow(r, 'new'),
    person(event) {
      const id = event.primary_id;
      const i = before.find(id);
      const u = event.user;
      if (i < 0) {
        note('only_new', undefined, undefined, id);
        return;
      }
      if (before.seen[i]) return;
      before.seen[i] = 1;
      compared++;
      const wasWritten = before.state[i] === WRITTEN;
      if (wasWritten && !u && event.rejectedRows.length === 0 && event.skippedRows.length) return void note('now_skipped', undefined, undefined, id, ` (rows ${event.skippedRows.join(', ')})`);
      if (wasWritten && !u) return void note('now_rejected', undefined, undefined, id, event.rejectedRows.length ? ` (rows ${event.rejectedRows.join(', ')})` : '');
      if (before.state[i] === SKIPPED && u) return void note('now_written', 'skipped', undefined, id);
      if (!wasWritten && u) return void note('now_written', undefined, undefined, id);
      if (!u) return void unchanged++;
      let changed = false;
      const oldGroup = before.text(before.group[i]!);
      if (oldGroup !== u.user_group) {
        note('group', oldGroup ?? '(none)', u.user_group ?? '(none)', id);
        changed = true;
      }
      const oldExpiry = before.expiry[i]!;
      if (oldExpiry !== dateNumber(u.expiry_date)) {
        note('expiry', undefined, undefined, id, ` (${numberDate(oldExpiry)} → ${u.expiry_date ?? 'none'})`);
        changed = true;
      }
      const oldPurge = before.purge[i]!;
      if (oldPurge !== dateNumber(u.purge_date)) {
        note('purge', undefined, undefined, id, ` (${numberDate(oldPurge)} → ${u.purge_date ?? 'none'})`);
        changed = true;
      }
      const oldStatus = before.text(before.status[i]!);
      if (oldStatus !== u.status) {
        note('status', oldStatus ?? '(none)', u.status ?? '(none)', id);
        changed = true;
      }
      const oldEmails = before.emails[i]!;
      if (oldEmails !== u.contact_info.emails.length) {
        note('emails', String(oldEmails), String(u.contact_info.emails.length), id);
        changed = true;
      }
      const oldIds = before.identifiers[i]!;
      if (oldIds !== u.user_identifiers.length) {
        note('identifiers', String(oldIds), String(u.user_identifiers.length), id);
        changed = true;
      }
      if (!changed) unchanged++;
    },
  });
  let onlyOld = 0;
  for (let i = 0; i < before.count; i++) if (!before.seen[i]) onlyOld++;
  const list = [...changes.values()];
  if (onlyOld) list.push({ kind: 'only_old', message: '', users: onlyOld, examples: [] });
  for (const c of list) c.message = describeChange(c);
  const order: ChangeKind[] = ['group', 'expiry', 'purge', 'status', 'now_rejected', 'now_skipped', 'now_written', 'emails', 'identifiers', 'only_new', 'only_old'];
  list.sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind) || b.users - a.users);
  return {
    old: { file: oldMapping.file, source: oldMapping.source },
    new: { file: newMapping.file, source: newMapping.source },
    run_date: options.runDate,
    inputs,
    compared,
    unchanged,
    rows_rejected: rejected,
    rows_skipped: skipped,
    changes: list,
  };
}

function describeChange(c: Change): string {
  const users = plural(c.users, 'user');
  const verb = (one: string, many: string) => (c.users === 1 ? one : many);
  switch (c.kind) {
    case 'group':
      return `${users} ${verb('moves', 'move')} from ${c.from} to ${c.to}`;
    case 'expiry':
      return `${users} ${verb('gets', 'get')} a new expiry date`;
    case 'purge':
      return `${users} ${verb('gets', 'get')} a new purge date`;
    case 'status':
      return `${users} ${verb('changes', 'change')} status from ${c.from} to ${c.to}`;
    case 'emails':
      return `${users} ${verb('goes', 'go')} from ${c.from} to ${plural(Number(c.to), 'email address', 'email addresses')}`;
    case 'identifiers':
      return `${users} ${verb('goes', 'go')} from ${c.from} to ${plural(Number(c.to), 'identifier')}`;
    case 'now_rejected':
      return `${users} ${verb('is', 'are')} now rejected (written with the old mapping)`;
    case 'now_skipped':
      return `${users} ${verb('is', 'are')} now skipped (written with the old mapping)`;
    case 'now_written':
      return `${users} ${verb('is', 'are')} now written (${c.from ?? 'rejected'} with the old mapping)`;
    case 'only_new':
      return `${users} ${verb('has a primary id', 'have primary ids')} the old mapping does not produce`;
    case 'only_old':
      return `${users} of the old mapping ${verb('is', 'are')} no longer produced under the same primary id`;
  }
}

export function formatDiff(d: MappingDiff): string[] {
  const out: string[] = [];
  out.push(`Old mapping ${d.old.file}, new mapping ${d.new.file}, run date ${d.run_date}`);
  for (const input of d.inputs) out.push(`  input ${input.file}: ${plural(input.rows, 'row')}`);
  out.push('');
  if (d.changes.length === 0) out.push(`No changes: the ${plural(d.compared, 'person', 'people')} seen come out the same.`);
  for (const c of d.changes) out.push(`${c.message}${c.examples.length ? `, e.g. ${c.examples.join(', ')}` : ''}`);
  if (d.rows_rejected.old !== d.rows_rejected.new) {
    const delta = d.rows_rejected.new - d.rows_rejected.old;
    const n = Math.abs(delta);
    out.push(`${n} ${delta > 0 ? 'more' : 'fewer'} ${n === 1 ? 'row is' : 'rows are'} rejected (${d.rows_rejected.old} → ${d.rows_rejected.new})`);
  }
  for (const [name, n] of Object.entries(d.rows_skipped.by_rule)) {
    if (n.old !== n.new) out.push(`skip rule "${name}": ${n.old} → ${plural(n.new, 'row')} skipped`);
  }
  out.push('');
  out.push(`${plural(d.compared, 'person', 'people')} compared, ${d.unchanged} unchanged. Nothing was written.`);
  return out;
}
