// `sis2alma mapping test FILE.yaml`: a librarian's example rows, next to the mapping, and the Alma
// values they expect. Each case goes through what convert does to rows: the mapping compiled per
// input file (compileMapping), each row mapped, one person's rows merged (mergeUsers, with the
// mapping's merge policy), Alma's rules across users (AcrossUsers), and the user checked against
// the project's XSD. A failure names the case, the field, what was expected and what came, at the
// expectation's file:line:column in the test file.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { RunError, type RowWarning } from '../shared/errors.js';
import type { AlmaUser } from '../shared/alma.js';
import { closestOf } from '../shared/suggest.js';
import { checkAgainst, compileSchema, formatProblem, inFileOrder, parseYaml, type Locator, type PathItem, type Problem } from '../shared/yaml-check.js';
import { checkMapping } from '../mapping/load.js';
import type { Mapping } from '../mapping/model.js';
import { compileMapping, visitColumns } from '../mapping/map.js';
import { USER_TEXT_FIELDS, mappingTestSchema } from '../mapping/test-shape.js';
import { IdIndex, idKey, mergeUsers, type MergeMember } from '../pipeline/merge.js';
import { AcrossUsers } from '../pipeline/across-users.js';
import { AlmaSchema } from '../pipeline/validate.js';
import { usersDocument } from '../pipeline/xml.js';

/** The export a row comes from when the case does not say. */
export const DEFAULT_INPUT = 'input.csv';

type Row = Record<string, string | number | boolean | null>;
type Expect = Record<string, unknown>;

export interface TestCase {
  name: string;
  /** Index in `cases`, for positions. */
  index: number;
  rows: Row[];
  expect: Expect;
}

export interface MappingTestFile {
  file: string;
  mapping: Mapping;
  runDate: string;
  cases: TestCase[];
  where: Locator;
}

export interface MappingTestCheck {
  test?: MappingTestFile;
  problems: Problem[];
  warnings: Problem[];
}

const validateShape = compileSchema(mappingTestSchema);

/** Reads and checks a test file and the mapping it names; problems are returned, never thrown (but an unreadable test file is). */
export function checkMappingTest(file: string, today: string): MappingTestCheck {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new RunError('mapping_invalid', `cannot read mapping test file ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { file });
  }
  const { written, where, problems: syntax } = parseYaml(text, file);
  if (syntax.length) return { problems: syntax, warnings: [] };
  if (written === null || typeof written !== 'object' || Array.isArray(written)) {
    return { problems: [{ file, line: 1, column: 1, path: '', message: 'a mapping test file is a YAML mapping (key: value lines), with mapping and cases' }], warnings: [] };
  }
  const shape = checkAgainst(validateShape, written, where);
  if (shape.problems.length || !shape.complete || !shape.rest) return { problems: inFileOrder(shape.problems), warnings: [] };
  const w = shape.rest as { mapping: string; run_date?: string; cases: { name: string; rows: Row[]; expect: unknown }[] };

  const mappingFile = path.resolve(path.dirname(file), w.mapping);
  let checked;
  try {
    checked = checkMapping(mappingFile);
  } catch (error) {
    return { problems: [where.at(['mapping'], (error as Error).message)], warnings: [] };
  }
  if (!checked.mapping) {
    return { problems: [where.at(['mapping'], `the mapping ${w.mapping} has ${checked.problems.length} problem(s); run 'sis2alma mapping check ${mappingFile}'`), ...checked.problems], warnings: [] };
  }
  const mapping = checked.mapping;
  const problems: Problem[] = [];
  const warnings: Problem[] = [];
  const columns = new Set<string>();
  visitColumns(mapping, (c) => columns.add(c));
  const idTypes = [...new Set(mapping.identifiers.map((i) => i.id_type))];
  const cases = w.cases.map((c, index): TestCase => {
    c.rows.forEach((row, r) => {
      for (const column of Object.keys(row)) {
        if (column === 'file' || columns.has(column)) continue;
        // A column the mapping does not read is normal (an export has more); one that is nearly a
        // column it reads is a typo that would make the case test nothing.
        const closest = closestOf(column, [...columns]);
        if (closest) warnings.push(where.at(['cases', index, 'rows', r, column], `the mapping reads no column "${column}"; did you mean "${closest}"?`, true));
      }
      const input = row.file === undefined || row.file === null ? undefined : path.basename(String(row.file));
      if (input !== undefined && mapping.merge.order.length && !mapping.merge.order.includes(input)) {
        const closest = closestOf(input, mapping.merge.order);
        warnings.push(where.at(['cases', index, 'rows', r, 'file'], `"${input}" is not in the mapping's merge.order${closest ? `; did you mean "${closest}"?` : ` (${mapping.merge.order.join(', ')})`}`));
      }
    });
    const expect: Expect = typeof c.expect === 'string' ? { [c.expect]: true } : (c.expect as Expect);
    for (const type of Object.keys((expect.identifiers as object | undefined) ?? {})) {
      if (idTypes.includes(type)) continue;
      const closest = closestOf(type, idTypes);
      problems.push(where.at(['cases', index, 'expect', 'identifiers', type], `the mapping gives no identifier of type "${type}"${closest ? `; did you mean "${closest}"?` : idTypes.length ? `; it gives ${idTypes.join(', ')}` : ''}`, true));
    }
    return { name: c.name, index, rows: c.rows, expect };
  });
  if (problems.length) return { problems: inFileOrder(problems), warnings: inFileOrder(warnings) };
  return { test: { file, mapping, runDate: w.run_date ?? today, cases, where }, problems: [], warnings: inFileOrder(warnings) };
}

// ---------------------------------------------------------------------------------------------
// Running a case: its rows through convert's steps.

export interface CaseOutcome {
  /** The users written, each with every warning its rows and the merge gave. */
  users: { user: AlmaUser; warnings: RowWarning[] }[];
  /** Rows rejected, by label ("students.csv:1"), with the reason as the report words it. */
  rejected: { row: string; reason: string }[];
  skipped: { row: string; rule: string }[];
  /** Warnings of rows that were rejected or skipped. */
  otherWarnings: RowWarning[];
}

interface Member extends MergeMember {
  id: string;
}

/** The rows of one case, mapped, merged and checked as convert does it. */
export function runCase(mapping: Mapping, rows: Row[], runDate: string, schema: AlmaSchema): CaseOutcome {
  // The exports, in the order their first row comes; each with the union of its rows' columns.
  const files = new Map<string, Row[]>();
  for (const row of rows) {
    // Without its folder, as convert names an input for input_file and merge.order.
    const input = row.file === undefined || row.file === null ? DEFAULT_INPUT : path.basename(String(row.file));
    const list = files.get(input) ?? [];
    list.push(row);
    files.set(input, list);
  }
  const outcome: CaseOutcome = { users: [], rejected: [], skipped: [], otherWarnings: [] };
  const mapped: (Member | undefined)[] = [];
  const ids: (string | undefined)[] = [];
  let ordinal = 0;
  const labels = new Map<number, string>();
  for (const [input, list] of files) {
    const header = [...new Set(list.flatMap((row) => Object.keys(row).filter((k) => k !== 'file')))];
    // The case's file name stands for the input file, so that `input_file` conditions hold as in convert.
    const mapper = compileMapping(mapping, header, runDate, input);
    list.forEach((row, i) => {
      ordinal++;
      const label = `${input}:${i + 1}`;
      labels.set(ordinal, label);
      const result = mapper.mapRecord(header.map((h) => (row[h] === undefined || row[h] === null ? '' : String(row[h]))));
      if (result.ok) {
        mapped[ordinal] = { ordinal, label, input, id: result.user.primary_id, user: result.user, warnings: result.warnings };
        ids[ordinal] = result.user.primary_id;
        return;
      }
      ids[ordinal] = result.primary_id;
      outcome.otherWarnings.push(...result.warnings);
      if (result.skipped !== undefined) outcome.skipped.push({ row: label, rule: result.skipped });
      else outcome.rejected.push({ row: label, reason: result.problems.map((p) => p.message).join('; ') });
    });
  }
  // Pass 1 of convert: every primary id, its first row and how many rows it has.
  const primaryIds = new IdIndex(64);
  for (let o = 1; o <= ordinal; o++) {
    const id = ids[o];
    if (id === undefined) continue;
    const { slot, isNew } = primaryIds.upsert(idKey(id));
    primaryIds.set(slot, isNew ? o : primaryIds.first(slot), isNew ? 1 : primaryIds.second(slot) + 1);
  }
  const acrossUsers = new AcrossUsers(primaryIds, (o) => labels.get(o) ?? String(o), 64);
  // Pass 2: a person is written when their last row has come, as convert does.
  const waiting = new Map<string, { seen: number; members: Member[] }>();
  for (let o = 1; o <= ordinal; o++) {
    const id = ids[o];
    if (id === undefined) continue;
    const key = idKey(id);
    const person = waiting.get(key) ?? { seen: 0, members: [] };
    waiting.set(key, person);
    person.seen++;
    if (mapped[o]) person.members.push(mapped[o]!);
    if (person.seen < primaryIds.second(primaryIds.find(key))) continue;
    waiting.delete(key);
    const members = person.members;
    if (members.length === 0) continue;
    let user: AlmaUser;
    let warnings: RowWarning[];
    let first: Member;
    if (members.length === 1) {
      first = members[0]!;
      user = first.user;
      warnings = [...first.warnings];
    } else {
      const decision = mergeUsers(members, mapping.userGroup, mapping.merge);
      first = decision.winner;
      user = decision.user;
      // As convert: the winning row's warnings and the merge's.
      warnings = [...first.warnings, ...decision.warnings];
    }
    acrossUsers.check(user, first.ordinal, warnings);
    // The XSD check convert makes before a user goes into the zip.
    const invalid = schema.validate(usersDocument([user]));
    if (invalid.length) {
      for (const m of members) outcome.rejected.push({ row: m.label, reason: `Alma's schema refuses the user: ${invalid.map((p) => p.message).join('; ')}` });
      outcome.otherWarnings.push(...warnings);
      continue;
    }
    outcome.users.push({ user, warnings });
  }
  return outcome;
}

// ---------------------------------------------------------------------------------------------
// Comparing a case's outcome with what it expects.

export interface Failure {
  field: string;
  expected: string;
  actual: string;
  /** Where the expectation is written. */
  at: Problem;
}

export interface CaseResult {
  name: string;
  at: Problem;
  failures: Failure[];
}

export interface MappingTestResult {
  file: string;
  mappingFile: string;
  runDate: string;
  cases: CaseResult[];
  passed: number;
  failed: number;
}

const show = (v: unknown): string => (v === undefined || v === null ? 'nothing' : Array.isArray(v) ? `[${v.join(', ')}]` : String(v));

/** What a case gave, in a few words, for a failure that expected something else. */
function describe(outcome: CaseOutcome): string {
  const parts = [
    ...outcome.users.map(({ user }) => `a user ${user.primary_id}${user.user_group ? ` (${user.user_group})` : ''}`),
    ...outcome.rejected.map((r) => `row ${r.row} rejected: ${r.reason}`),
    ...outcome.skipped.map((s) => `row ${s.row} skipped by "${s.rule}"`),
  ];
  return parts.length ? parts.join('; ') : 'nothing';
}

const sameList = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

export function compareCase(c: TestCase, outcome: CaseOutcome, where: Locator): CaseResult {
  const at = (p: PathItem[]) => where.at(['cases', c.index, ...p], '');
  const failures: Failure[] = [];
  const fail = (p: PathItem[], field: string, expected: string, actual: string) => failures.push({ field, expected, actual, at: at(p) });
  const e = c.expect;
  // Where `expect: skipped` is written as a word, the Locator falls back to the expect itself.
  const key = (k: string): PathItem[] => ['expect', k];

  if (e.skipped !== undefined && e.skipped !== false) {
    const match = outcome.skipped.filter((s) => e.skipped === true || s.rule === e.skipped);
    if (!match.length) fail(key('skipped'), 'skipped', e.skipped === true ? 'a skipped row' : `a row skipped by "${e.skipped}"`, describe(outcome));
  }
  if (e.rejected !== undefined && e.rejected !== false) {
    const match = outcome.rejected.filter((r) => e.rejected === true || r.reason.includes(String(e.rejected)));
    if (!match.length) fail(key('rejected'), 'rejected', e.rejected === true ? 'a rejected row' : `a row rejected with "${e.rejected}"`, describe(outcome));
  }
  if (e.rejected === false && outcome.rejected.length) fail(key('rejected'), 'rejected', 'no rejected row', describe(outcome));
  if (e.skipped === false && outcome.skipped.length) fail(key('skipped'), 'skipped', 'no skipped row', describe(outcome));

  const userKeys = Object.keys(e).filter((k) => k !== 'rejected' && k !== 'skipped');
  if (userKeys.length === 0) return { name: c.name, at: at([]), failures };
  let chosen: { user: AlmaUser; warnings: RowWarning[] } | undefined;
  if (typeof e.primary_id === 'string' || typeof e.primary_id === 'number') chosen = outcome.users.find((u) => idKey(u.user.primary_id) === idKey(String(e.primary_id)));
  else if (outcome.users.length === 1) chosen = outcome.users[0];
  else if (outcome.users.length > 1) {
    fail(['expect'], 'user', 'one user', `${outcome.users.length} users (${outcome.users.map((u) => u.user.primary_id).join(', ')}): name one with primary_id`);
    return { name: c.name, at: at([]), failures };
  }
  if (!chosen) {
    // Warnings can be expected of rows that give no user (a skipped row's, a rejected row's).
    if (userKeys.length === 1 && userKeys[0] === 'warnings') compareWarnings(e.warnings as string[], outcome.otherWarnings, fail);
    else fail(['expect'], 'user', e.primary_id !== undefined && e.primary_id !== null ? `a user ${e.primary_id}` : 'a user', describe(outcome));
    return { name: c.name, at: at([]), failures };
  }
  const user = chosen.user;
  const fields = user as unknown as Record<string, string | undefined>;
  for (const k of userKeys) {
    const expected = e[k];
    if ((USER_TEXT_FIELDS as readonly string[]).includes(k)) {
      const want = expected === null ? undefined : String(expected);
      if (fields[k] !== want) fail(['expect', k], k, show(want), show(fields[k]));
      continue;
    }
    const lists: Record<string, () => string[]> = {
      emails: () => user.contact_info.emails.map((x) => x.email_address),
      phones: () => user.contact_info.phones.map((x) => x.phone_number),
      addresses: () => user.contact_info.addresses.map((x) => x.line1 ?? ''),
      statistics: () => user.user_statistics.map((x) => x.statistic_category),
      notes: () => user.user_notes.map((x) => x.note_text),
      rs_libraries: () => user.rs_libraries ?? [],
    };
    if (lists[k]) {
      const want = (expected as unknown[]).map(String);
      const got = lists[k]();
      if (!sameList(want, got)) fail(['expect', k], k, show(want), show(got));
    } else if (k === 'identifiers') {
      for (const [type, value] of Object.entries(expected as Record<string, unknown>)) {
        const want = value === null ? [] : Array.isArray(value) ? value.map(String) : [String(value)];
        const got = user.user_identifiers.filter((i) => i.id_type === type).map((i) => i.value);
        const one = (list: string[]) => (list.length === 0 ? undefined : list.length === 1 ? list[0] : list);
        if (!sameList(want, got)) fail(['expect', 'identifiers', type], `identifiers.${type}`, show(one(want)), show(one(got)));
      }
    } else if (k === 'warnings') {
      compareWarnings(expected as string[], [...chosen.warnings, ...outcome.otherWarnings], fail);
    }
  }
  return { name: c.name, at: at([]), failures };
}

function compareWarnings(expected: string[], got: RowWarning[], fail: (p: PathItem[], field: string, expected: string, actual: string) => void): void {
  const want = [...new Set(expected)].sort();
  const kinds = [...new Set(got.map((w) => w.kind as string))].sort();
  if (!sameList(want, kinds)) fail(['expect', 'warnings'], 'warnings', show(want), got.length ? got.map((w) => `${w.kind} (${w.message})`).join('; ') : 'none');
}

/** Runs every case of a checked test file. */
export function runMappingTest(test: MappingTestFile, schema: AlmaSchema = AlmaSchema.load()): MappingTestResult {
  const cases = test.cases.map((c) => compareCase(c, runCase(test.mapping, c.rows, test.runDate, schema), test.where));
  const failed = cases.filter((c) => c.failures.length).length;
  return { file: test.file, mappingFile: test.mapping.file, runDate: test.runDate, cases, passed: cases.length - failed, failed };
}

/** The result as the command prints it: a line a case, each failure under its case, and a count. */
export function formatMappingTest(result: MappingTestResult): string[] {
  const lines: string[] = [];
  for (const c of result.cases) {
    if (!c.failures.length) {
      lines.push(`ok      ${c.name}`);
      continue;
    }
    lines.push(`FAILED  ${c.name} (${c.at.file}:${c.at.line}:${c.at.column})`);
    for (const f of c.failures) lines.push(`  ${f.at.file}:${f.at.line}:${f.at.column}: ${f.field}: expected ${f.expected}, actual ${f.actual}`);
  }
  const total = result.cases.length;
  lines.push(`${total} case${total === 1 ? '' : 's'} (run date ${result.runDate}): ${result.passed} passed, ${result.failed} failed`);
  return lines;
}

export { formatProblem };
