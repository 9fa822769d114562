// The mapping file as src/mapping/load.ts reads it, called in this process: every problem and
// warning `mapping check` gives, with its line, column, YAML path and exact words; the normalised
// mapping the pipeline receives (each default spelt out); a table file; an unreadable file; and
// loadMapping's message when a run stops. The CLI tests (mapping-check, mapping-language) cover the
// same module through `sis2alma mapping check`; a mutation run sees coverage only in the test
// file's own process, so these are the tests that measure load.ts there.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { checkMapping, checkMappingText, formatProblem, isRealDate, loadMapping } from '../src/mapping/load.js';
import type { Mapping, ValueExpr } from '../src/mapping/model.js';
import { RunError } from '../src/shared/errors.js';
import { makeTempDir } from './helpers/tmp.js';

const FILE = '/m/mapping.yaml';

/** A mapping: `source: test`, then the blocks, then fields, user_group and purge when the blocks lack them. */
function textOf(blocks: string, purge = true): string {
  let text = 'source: test\n' + blocks;
  if (!/^fields:/m.test(blocks)) text += 'fields:\n  primary_id: "{id}"\n';
  if (!/^user_group:/m.test(blocks)) text += 'user_group:\n  rules:\n    - group: PATRON\n';
  if (purge && !/^purge:/m.test(blocks)) text += 'purge:\n  days_after_expiry: 30\n';
  return text;
}

/** What mapping check says: "problem line:column: path: message", then the warnings, without the file name. */
function saysOf(text: string, file = FILE): string[] {
  const result = checkMappingText(text, file);
  const strip = (p: Parameters<typeof formatProblem>[0]) => formatProblem(p).slice(file.length + 1);
  return [...result.problems.map((p) => `problem ${strip(p)}`), ...result.warnings.map((p) => `warning ${strip(p)}`)];
}

/** The mapping of a text that has no problems (warnings allowed). */
function mappingOf(text: string, file = FILE): Mapping {
  const result = checkMappingText(text, file);
  assert.deepEqual(result.problems.map(formatProblem), [], text);
  return result.mapping!;
}

/** A copy without the keys whose value is undefined, so that expectations list only what is set. */
function defined(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(defined);
  if (x instanceof Map) return new Map([...x].map(([k, v]) => [k, defined(v)]));
  if (x === null || typeof x !== 'object' || x instanceof RegExp || x instanceof Set) return x;
  return Object.fromEntries(Object.entries(x).filter(([, v]) => v !== undefined).map(([k, v]) => [k, defined(v)]));
}

/** A value as the normaliser writes it with nothing but a source given. */
function plain(source: ValueExpr['source'], columns: string[], extra: Partial<ValueExpr> = {}): ValueExpr {
  return { source, trim: true, required: false, truncate: false, onUnfit: 'reject', columns, ...extra };
}
const column = (name: string, extra: Partial<ValueExpr> = {}) => plain({ kind: 'column', columns: [name] }, [name], extra);
const constant = (value: string) => plain({ kind: 'constant', value }, []);

/** allowed_codes of every kind: 8 lines, so that what follows it starts on line 10. */
const ALLOWED = `allowed_codes:
  user_group: [PATRON, STAFF, GRAD]
  id_type: [BARCODE, UNIV_ID]
  email_type: [personal, work]
  phone_type: [home, mobile]
  address_type: [home, work]
  note_type: [LIBRARY, OTHER]
  statistic_category: [ART, SCI]
`;

describe('what mapping check says, line by line', () => {
  const cases: Array<{ name: string; blocks: string; purge?: false; says: string[] }> = [
  {
    name: 'no purge block: a warning, since Alma never purges a user without a purge date',
    blocks: ``,
    purge: false,
    says: [
      'warning 1:1: no purge block: Alma never purges a user without a purge date; add one, e.g. purge: { default: { after_expiry: 1 year } }',
    ],
  },
  {
    name: 'a library notice with boolean or map',
    blocks: `library_notices:
  - code: NOTICE
    from: n
    boolean: { true: Y, false: N }
  - code: OTHER
    from: n
    map: { a: b }
`,
    says: [
      'problem 3:5: library_notices[0]: a library notice\'s value is read as yes/no already: leave out boolean and map',
      'problem 6:5: library_notices[1]: a library notice\'s value is read as yes/no already: leave out boolean and map',
    ],
  },
  {
    name: 'merge.order without first_wins_whole',
    blocks: `merge:
  order: [a.csv]
`,
    says: [
      'problem 3:3: merge.order: order goes with policy: first_wins_whole (a combined user takes every row)',
    ],
  },
  {
    name: 'merge.order names files with folders, either slash',
    blocks: `merge:
  policy: first_wins_whole
  order: [dir/a.csv, "c:\\\\x\\\\b.csv", plain.csv]
`,
    says: [
      'problem 4:11: merge.order[0]: "dir/a.csv": name the file without its folder (a.csv)',
      'problem 4:22: merge.order[1]: "c:\\x\\b.csv": name the file without its folder (b.csv)',
    ],
  },
  {
    name: 'exceptions under first_wins_whole: a warning',
    blocks: `user_group:
  rules:
    - group: PATRON
  exceptions:
    - { name: x, groups: [A, B], group: A }
merge:
  policy: first_wins_whole
`,
    says: [
      'warning 5:3: user_group.exceptions: exceptions do not apply under merge.policy first_wins_whole: the winning row keeps its own group',
    ],
  },
  {
    name: 'a column both required and unused',
    blocks: `input:
  required_columns: [id, x]
  unused_columns: { x: not needed, y: spare }
`,
    says: [
      'problem 4:21: input.unused_columns.x: "x" is both required and unused',
    ],
  },
  {
    name: 'a sensitive column the mapping reads, in any case, once per spelling',
    blocks: `fields:
  primary_id: "{id}"
  first_name: "{Password}"
  last_name: { from: password }
  middle_name: { from: password }
input:
  sensitive_columns: [pin, password]
`,
    says: [
      'problem 8:28: input.sensitive_columns[1]: "Password" is a sensitive column, which never leaves the input, but the mapping reads it',
      'problem 8:28: input.sensitive_columns[1]: "password" is a sensitive column, which never leaves the input, but the mapping reads it',
    ],
  },
  {
    name: 'a misspelt key of purge, without allowed user groups',
    blocks: `purge:
  defualt: { after_expiry: 1 year }
  days_after_expiri: { after_expiry: 1 year }
`,
    says: [
      'problem 3:3: purge.defualt: "defualt" is not a key of purge; did you mean "default"? (other keys are user group codes)',
      'problem 4:3: purge.days_after_expiri: "days_after_expiri" is not a key of purge; did you mean "days_after_expiry"? (other keys are user group codes)',
      'warning 2:1: purge: users of groups not listed here get no purge date, and Alma never purges them; add default',
    ],
  },
  {
    name: 'days_after_expiry and default together',
    blocks: `purge:
  days_after_expiry: 30
  default: { after_expiry: 1 year }
`,
    says: [
      'problem 3:3: purge.days_after_expiry: give days_after_expiry or default, not both (days_after_expiry is the default for every group)',
    ],
  },
  {
    name: 'purge per group: an unknown group, and the groups left without a purge date',
    blocks: `${ALLOWED}purge:
  PATRN: { after_expiry: 1 year }
  GRAD: { after_expiry: 2 years }
`,
    says: [
      'problem 11:3: purge.PATRN: "PATRN" is not in allowed_codes.user_group; did you mean "PATRON"?',
      'warning 10:1: purge: users of PATRON, STAFF get no purge date, and Alma never purges them; add default',
    ],
  },
  {
    name: 'purge per group for every allowed group: no warning',
    blocks: `${ALLOWED}purge:
  PATRON: { after_expiry: 1 year }
  STAFF: { after_expiry: 1 year }
  GRAD: { after_expiry: 1 year }
`,
    says: [],
  },
  {
    name: 'purge per group without allowed codes: the other groups get none',
    blocks: `purge:
  PATRON: { after_expiry: 1 year }
`,
    says: [
      'warning 2:1: purge: users of groups not listed here get no purge date, and Alma never purges them; add default',
    ],
  },
  {
    name: 'expiry for a group not in allowed_codes',
    blocks: `${ALLOWED}expiry:
  STAFFF: { after_run: 1 year }
  GRAD: { after_run: 2 years }
`,
    says: [
      'problem 11:3: expiry.STAFFF: "STAFFF" is not in allowed_codes.user_group; did you mean "STAFF"?',
    ],
  },
  {
    name: 'codes of every kind checked against allowed_codes, with the closest',
    blocks: `${ALLOWED}identifiers:
  - { id_type: BARCOD, from: b }
  - { id_type: UNIV_ID, from: u }
emails:
  - { email_type: persnal, from: e }
phones:
  - { phone_type: mobil, from: p }
addresses:
  - { address_type: hom, line1: "{a}" }
notes:
  - { note_type: LIBRARI, note_text: "x" }
statistics:
  - { statistic_category: ARTS }
  - { statistic_category: { from: s, map: { a: SCI, b: SCIENCE } } }
`,
    says: [
      'problem 11:16: identifiers[0].id_type: "BARCOD" is not in allowed_codes.id_type; did you mean "BARCODE"?',
      'problem 14:19: emails[0].email_type: "persnal" is not in allowed_codes.email_type; did you mean "personal"?',
      'problem 16:19: phones[0].phone_type: "mobil" is not in allowed_codes.phone_type; did you mean "mobile"?',
      'problem 18:21: addresses[0].address_type: "hom" is not in allowed_codes.address_type; did you mean "home"?',
      'problem 20:18: notes[0].note_type: "LIBRARI" is not in allowed_codes.note_type; did you mean "LIBRARY"?',
      'problem 22:27: statistics[0].statistic_category: "ARTS" is not in allowed_codes.statistic_category; did you mean "ART"?',
      'problem 23:43: statistics[1].statistic_category.map: "SCIENCE" is not in allowed_codes.statistic_category',
    ],
  },
  {
    name: 'user group codes: map values, unknown, nested rules, default, priority, exceptions',
    blocks: `${ALLOWED}user_group:
  rules:
    - group: { from: g, map: { a: STAFFF, b: PATRON }, unknown: GRADD }
    - group: PATRONN
      when: { x: "1" }
    - group: { rules: [ { when: { y: "1" }, value: STAF } ] }
    - group: { from: g, unknown: keep, map: { c: GRAD } }
  default: VISITOR
  priority: [PATRON, STAF]
  exceptions:
    - { name: x, groups: [STAFF, GRADE], group: STAFF }
    - { name: y, groups: [STAFF], group: GRD }
`,
    says: [
      'problem 12:30: user_group.rules[0].group.map: "STAFFF" is not in allowed_codes.user_group; did you mean "STAFF"?',
      'problem 12:65: user_group.rules[0].group.unknown: "GRADD" is not in allowed_codes.user_group; did you mean "GRAD"?',
      'problem 13:14: user_group.rules[1].group: "PATRONN" is not in allowed_codes.user_group; did you mean "PATRON"?',
      'problem 15:52: user_group.rules[2].group.rules[0].value: "STAF" is not in allowed_codes.user_group; did you mean "STAFF"?',
      'problem 17:12: user_group.default: "VISITOR" is not in allowed_codes.user_group',
      'problem 18:22: user_group.priority[1]: "STAF" is not in allowed_codes.user_group; did you mean "STAFF"?',
      'problem 20:34: user_group.exceptions[0].groups[1]: "GRADE" is not in allowed_codes.user_group; did you mean "GRAD"?',
      'problem 21:42: user_group.exceptions[1].group: "GRD" is not in allowed_codes.user_group; did you mean "GRAD"?',
    ],
  },
  {
    name: 'unmapped: omit beside a default',
    blocks: `user_group:
  rules:
    - group: PATRON
  default: PATRON
  unmapped: omit
`,
    says: [
      'problem 6:3: user_group.unmapped: unmapped: omit has no effect with a default: every row no rule maps gets the default group',
    ],
  },
  {
    name: 'input_file with a folder, in a list and alone',
    blocks: `user_group:
  rules:
    - group: PATRON
      when:
        input_file: [a/b.csv, ok.csv, "c\\\\d.csv"]
    - group: PATRON
      when:
        input_file: x/y.csv
`,
    says: [
      'problem 6:22: user_group.rules[0].when.input_file[0]: input_file names a file without its folder (found "a/b.csv"): write b.csv',
      'problem 6:39: user_group.rules[0].when.input_file[2]: input_file names a file without its folder (found "c\\d.csv"): write d.csv',
      'problem 9:21: user_group.rules[1].when.input_file: input_file names a file without its folder (found "x/y.csv"): write y.csv',
    ],
  },
  {
    name: 'column: without a name; near misses of condition words read as columns',
    blocks: `user_group:
  rules:
    - group: PATRON
      when:
        "column:": x
        ANY: x
        Not: y
        inputfile: z
        input-file: w
        alls: v
        "column:any": u
        department: t
`,
    says: [
      'problem 6:9: user_group.rules[0].when.column:: column: needs the column name after it, e.g. "column:any"',
      'warning 7:9: user_group.rules[0].when.ANY: "ANY" is read as a column; did you mean "any"? (a column of that name is written "column:ANY")',
      'warning 8:9: user_group.rules[0].when.Not: "Not" is read as a column; did you mean "not"? (a column of that name is written "column:Not")',
      'warning 9:9: user_group.rules[0].when.inputfile: "inputfile" is read as a column; did you mean "input_file"? (a column of that name is written "column:inputfile")',
      'warning 10:9: user_group.rules[0].when.input-file: "input-file" is read as a column; did you mean "input_file"? (a column of that name is written "column:input-file")',
      'warning 11:9: user_group.rules[0].when.alls: "alls" is read as a column; did you mean "all"? (a column of that name is written "column:alls")',
    ],
  },
  {
    name: 'condition tests that do not go together, bad dates and bad patterns',
    blocks: `user_group:
  rules:
    - group: PATRON
      when:
        a: { equals: x, in: [y] }
        b: { before: 2020-01-01, equals: x }
        c: { format: DD.MM.YYYY }
        d: { not_a_date: holds }
        e: { ignore_case: true, equals: x }
        f: { before: 2020-02-30, after: run_date, on_or_after: 2021-13-01 }
        g: { matches: "(" }
        h: { not_matches: "[" }
        i: { equals_column: j, ignore_case: true }
`,
    says: [
      'problem 6:12: user_group.rules[0].when.a: one test per column (found equals, in); write two rules, use one_of, or all:',
      'problem 7:12: user_group.rules[0].when.b: one test per column (found before, equals); write two rules, use one_of, or all:',
      'problem 8:22: user_group.rules[0].when.c.format: format goes with a date comparison: before, after, on_or_before or on_or_after',
      'problem 9:26: user_group.rules[0].when.d.not_a_date: not_a_date goes with a date comparison: before, after, on_or_before or on_or_after',
      'problem 10:27: user_group.rules[0].when.e.ignore_case: ignore_case goes with equals_column or not_equals_column',
      'problem 11:22: user_group.rules[0].when.f.before: 2020-02-30 is not a date',
      'problem 11:64: user_group.rules[0].when.f.on_or_after: 2021-13-01 is not a date',
      'problem 12:23: user_group.rules[0].when.g.matches: not a valid regular expression: Invalid regular expression: /^(?:()$/u: Unterminated group',
      'problem 13:27: user_group.rules[0].when.h.not_matches: not a valid regular expression: Invalid regular expression: /^(?:[)$/u: Unterminated character class',
    ],
  },
  {
    name: 'skip and reject rules of the same name',
    blocks: `skip:
  - { name: a, when: { x: "1" } }
  - { name: a, when: { x: "2" } }
reject:
  - { name: b, when: { x: "1" }, message: m }
  - { name: b, when: { x: "2" }, message: m }
  - { name: a, when: { x: "2" }, message: m }
`,
    says: [
      'problem 4:13: skip[1].name: another skip rule is named "a" (skip[0]); names tell the rules apart in the report',
      'problem 7:13: reject[1].name: another reject rule is named "b" (reject[0]); names tell the rules apart in the report',
    ],
  },
  {
    name: 'a table that does not exist, with no tables',
    blocks: `user_group:
  rules:
    - group: PATRON
      when:
        x: { in_table: nope }
`,
    says: [
      'problem 6:24: user_group.rules[0].when.x.in_table: no table named "nope" (define it under tables)',
    ],
  },
  {
    name: 'a table that does not exist, with one close',
    blocks: `tables:
  depts: { a: b }
user_group:
  rules:
    - group: PATRON
      when:
        x: { in_table: deps }
`,
    says: [
      'problem 8:24: user_group.rules[0].when.x.in_table: no table named "deps"; did you mean "depts"?',
    ],
  },
  {
    name: 'a table that does not exist, with none close',
    blocks: `tables:
  depts: { a: b }
  rooms: { c: d }
user_group:
  rules:
    - group: PATRON
      when:
        x: { in_table: zzzzzz }
`,
    says: [
      'problem 9:24: user_group.rules[0].when.x.in_table: no table named "zzzzzz"; tables: depts, rooms',
    ],
  },
  {
    name: 'a value that says not where it comes from',
    blocks: `fields:
  primary_id: "{id}"
  job_description: { trim: false }
`,
    says: [
      'problem 4:20: fields.job_description: say where the value comes from: from (a column), template, value (a constant) or rules',
    ],
  },
  {
    name: 'a value from two places',
    blocks: `fields:
  primary_id: "{id}"
  job_description: { from: a, value: b }
`,
    says: [
      'problem 4:20: fields.job_description: give one of from, template, value or rules, not from and value',
    ],
  },
  {
    name: 'a value from three places',
    blocks: `fields:
  primary_id: "{id}"
  job_description: { from: a, template: "{b}", rules: [] }
`,
    says: [
      'problem 4:20: fields.job_description: give one of from, template, value or rules, not from and template and rules',
    ],
  },
  {
    name: 'must_match without replace',
    blocks: `fields:
  primary_id: "{id}"
  job_description: { from: a, must_match: true }
`,
    says: [
      'problem 4:31: fields.job_description.must_match: must_match goes with replace',
    ],
  },
  {
    name: 'on_unfit without replace, split or substring',
    blocks: `fields:
  primary_id: "{id}"
  job_description: { from: a, on_unfit: keep }
`,
    says: [
      'problem 4:31: fields.job_description.on_unfit: on_unfit goes with replace (must_match), split or substring: it says what a value they cannot handle becomes',
    ],
  },
  {
    name: 'ignore_case without unless_same_as',
    blocks: `fields:
  primary_id: "{id}"
  job_description: { from: a, ignore_case: true }
`,
    says: [
      'problem 4:31: fields.job_description.ignore_case: ignore_case goes with unless_same_as',
    ],
  },
  {
    name: 'a phone that is also yes/no',
    blocks: `fields:
  primary_id: "{id}"
  job_description: { from: a, phone: { region: US }, boolean: { true: Y, false: N } }
`,
    says: [
      'problem 4:31: fields.job_description.phone: a value is either a phone number or a yes/no value, not both',
    ],
  },
  {
    name: 'a phone that is also a date',
    blocks: `fields:
  primary_id: "{id}"
  job_description: { from: a, phone: { region: US }, format: YYYY-MM-DD }
`,
    says: [
      'problem 4:31: fields.job_description.phone: a value is either a phone number or a date, not both',
    ],
  },
  {
    name: 'unknown without map',
    blocks: `fields:
  primary_id: "{id}"
  job_description: { from: a, unknown: keep }
`,
    says: [
      'problem 4:40: fields.job_description.unknown: "unknown" goes with "map": it says what a value the map does not know becomes',
    ],
  },
  {
    name: 'map and boolean',
    blocks: `fields:
  primary_id: "{id}"
  job_description: { from: a, map: { x: y }, boolean: { true: Y, false: N } }
`,
    says: [
      'problem 4:20: fields.job_description: use either map or boolean, not both',
    ],
  },
  {
    name: 'prefix and unless_same_as on a yes/no value',
    blocks: `fields:
  primary_id: "{id}"
  job_description: { from: a, boolean: { true: Y, false: N }, prefix: "x", unless_same_as: b }
`,
    says: [
      'problem 4:63: fields.job_description.prefix: prefix does not apply to a yes/no value: boolean writes its true or false word as it is',
      'problem 4:76: fields.job_description.unless_same_as: unless_same_as does not apply to a yes/no value: boolean writes its true or false word as it is',
    ],
  },
  {
    name: 'bad patterns in a list of replacements and in one',
    blocks: `fields:
  primary_id: "{id}"
  job_description: { from: a, replace: [ { pattern: "(", with: "" }, { pattern: "a", with: "b" } ] }
  user_title: { from: a, replace: { pattern: "[", with: "" } }
`,
    says: [
      'problem 4:53: fields.job_description.replace[0].pattern: not a valid regular expression: Invalid regular expression: /(/gu: Unterminated group',
      'problem 5:46: fields.user_title.replace.pattern: not a valid regular expression: Invalid regular expression: /[/gu: Unterminated character class',
    ],
  },
  {
    name: 'substring: two parts, no part, length without start',
    blocks: `fields:
  primary_id: "{id}"
  job_description: { from: a, substring: { first: 1, last: 2 } }
  user_title: { from: a, substring: { length: 2 } }
  pin_number: { from: a, substring: { first: 2, length: 2 } }
`,
    says: [
      'problem 4:42: fields.job_description.substring: give one of first, last or start, not first and last',
      'problem 5:37: fields.user_title.substring: say which part: first, last or start (with length)',
      'problem 5:39: fields.user_title.substring.length: length goes with start',
      'problem 6:49: fields.pin_number.substring.length: length goes with start',
    ],
  },
  {
    name: 'phone regions: UK for GB, a near miss, none near',
    blocks: `fields:
  primary_id: "{id}"
  job_description: { from: a, phone: { region: UK } }
  user_title: { from: a, phone: { region: DF } }
`,
    says: [
      'problem 4:48: fields.job_description.phone.region: "UK" is not a country code libphonenumber knows; did you mean "GB"?',
      'problem 5:43: fields.user_title.phone.region: "DF" is not a country code libphonenumber knows; did you mean "AF"?',
    ],
  },
  {
    name: 'templates: empty braces, unbalanced braces',
    blocks: `fields:
  primary_id: "{id}"
  job_description: "{} and {a}"
  user_title: "{a} }"
  pin_number: "{ a"
  first_name: { template: "x{}y" }
`,
    says: [
      'problem 4:20: fields.job_description: an empty {} in a template: put a column name inside the braces',
      'problem 5:15: fields.user_title: unbalanced braces in "{a} }"',
      'problem 6:15: fields.pin_number: unbalanced braces in "{ a"',
      'problem 7:27: fields.first_name.template: an empty {} in a template: put a column name inside the braces',
    ],
  },
  {
    name: 'a map that names no table',
    blocks: `fields:
  primary_id: "{id}"
  job_description: { from: a, map: tabl }
`,
    says: [
      'problem 4:36: fields.job_description.map: no table named "tabl" (define it under tables)',
    ],
  },
  {
    name: 'date rules: none, two, month_day and format out of place, after_expiry in expiry',
    blocks: `expiry:
  default: { otherwise: { run_date: true } }
  PATRON: { date: 2027-01-01, after_run: 1 year }
  STAFF: { date: 2027-01-01, month_day: 06-30 }
  GRAD: { date: 2027-01-01, format: DD.MM.YYYY }
  X: { after_expiry: 1 year }
`,
    says: [
      'problem 3:12: expiry.default: say how the date is set: date, after_run, after_expiry, run_date, next, from, end_of_year, term_calendar or rules',
      'problem 4:11: expiry.PATRON: give one of date, after_run, after_expiry, run_date, next, from, end_of_year, term_calendar or rules, not date and after_run',
      'problem 5:41: expiry.STAFF.month_day: month_day goes with end_of_year',
      'problem 6:37: expiry.GRAD.format: format goes with from',
      'problem 7:8: expiry.X.after_expiry: after_expiry is for purge dates; an expiry date counts from the run date (after_run)',
    ],
  },
  {
    name: 'date rules: days and dates that do not exist',
    blocks: `expiry:
  default: { next: { month_day: 02-30, from: 13-01 } }
  A: { next: { month_day: 02-28, from: 06-31 } }
  B: { date: 2027-02-29 }
  C: { end_of_year: cls, month_day: 04-31 }
  D: { term_calendar: [ { from: 2026-09-01, to: 2026-01-31, expires: 2027-02-30 } ] }
`,
    says: [
      'problem 3:33: expiry.default.next.month_day: 02-30 is not a month and day',
      'problem 3:46: expiry.default.next.from: 13-01 is not a month and day',
      'problem 4:40: expiry.A.next.from: 06-31 is not a month and day',
      'problem 5:14: expiry.B.date: 2027-02-29 is not a date',
      'problem 6:37: expiry.C.month_day: 04-31 is not a month and day',
      'problem 7:25: expiry.D.term_calendar[0]: the term starts (2026-09-01) after it ends (2026-01-31)',
      'problem 7:70: expiry.D.term_calendar[0].expires: 2027-02-30 is not a date',
    ],
  },
  {
    name: 'date rules inside rules and otherwise',
    blocks: `expiry:
  default: { rules: [ { when: { a: "1" }, date: 2027-02-30 }, { name: r2, after_run: 1 year, date: 2027-01-01 } ], otherwise: { date: 2027-02-30 } }
`,
    says: [
      'problem 3:49: expiry.default.rules[0].date: 2027-02-30 is not a date',
      'problem 3:63: expiry.default.rules[1]: give one of date, after_run, after_expiry, run_date, next, from, end_of_year or term_calendar, not date and after_run',
      'problem 3:135: expiry.default.otherwise.date: 2027-02-30 is not a date',
    ],
  },
  {
    name: 'purge dates: two, none',
    blocks: `purge:
  default: { after_run: 1 year, after_expiry: 1 year }
  PATRON: { }
`,
    says: [
      'problem 3:12: purge.default: give one of date, after_run, after_expiry, run_date, next, from, end_of_year, term_calendar or rules, not after_run and after_expiry',
      'problem 4:11: purge.PATRON: say how the date is set: date, after_run, after_expiry, run_date, next, from, end_of_year, term_calendar or rules',
    ],
  },
  {
    name: 'a problem inside each list item is placed at its own path',
    blocks: `identifiers:
  - { id_type: BARCODE, from: b, note: "{}", status: "{ x" }
emails:
  - { email_type: work, template: "{}" }
phones:
  - { phone_type: home, template: "{}" }
addresses:
  - { address_type: home, line1: "{}", start_date: "{}", end_date: "{ x" }
statistics:
  - { statistic_category: "{}" }
user_blocks:
  - { block_description: "{}", block_note: "{ x" }
rs_libraries: ["{}"]
library_notices:
  - { code: N, template: "{}" }
notes:
  - { note_type: OTHER, note_text: "{}" }
`,
    says: [
      'problem 3:40: identifiers[0].note: an empty {} in a template: put a column name inside the braces',
      'problem 3:54: identifiers[0].status: unbalanced braces in "{ x"',
      'problem 5:35: emails[0].template: an empty {} in a template: put a column name inside the braces',
      'problem 7:35: phones[0].template: an empty {} in a template: put a column name inside the braces',
      'problem 9:34: addresses[0].line1: an empty {} in a template: put a column name inside the braces',
      'problem 9:52: addresses[0].start_date: an empty {} in a template: put a column name inside the braces',
      'problem 9:68: addresses[0].end_date: unbalanced braces in "{ x"',
      'problem 11:27: statistics[0].statistic_category: an empty {} in a template: put a column name inside the braces',
      'problem 13:26: user_blocks[0].block_description: an empty {} in a template: put a column name inside the braces',
      'problem 13:44: user_blocks[0].block_note: unbalanced braces in "{ x"',
      'problem 14:16: rs_libraries[0]: an empty {} in a template: put a column name inside the braces',
      'problem 16:26: library_notices[0].template: an empty {} in a template: put a column name inside the braces',
      'problem 18:36: notes[0].note_text: an empty {} in a template: put a column name inside the braces',
    ],
  },
  {
    name: 'a problem inside a list of conditions is placed at its item',
    blocks: `user_group:
  rules:
    - group: PATRON
      when:
        - { a: x }
        - { "column:": x }
        - any: [ { b: y }, { c: { before: 2020-02-30 } } ]
`,
    says: [
      'problem 7:13: user_group.rules[0].when[1].column:: column: needs the column name after it, e.g. "column:any"',
      'problem 8:43: user_group.rules[0].when[2].any[1].c.before: 2020-02-30 is not a date',
    ],
  },
  {
    name: 'columns that only look like condition words are not warned of',
    blocks: `user_group:
  rules:
    - group: PATRON
      when:
        snot: x
        is_any: y
        status: z
`,
    says: [],
  },
  {
    name: 'a problem inside a value\'s rules and otherwise is placed there',
    blocks: `fields:
  primary_id: "{id}"
  job_description: { rules: [ { when: { a: x }, value: b }, { when: { a: { before: 2020-02-30 } }, value: "{}" } ], otherwise: "{ x" }
`,
    says: [
      'problem 4:84: fields.job_description.rules[1].when.a.before: 2020-02-30 is not a date',
      'problem 4:107: fields.job_description.rules[1].value: an empty {} in a template: put a column name inside the braces',
      'problem 4:128: fields.job_description.otherwise: unbalanced braces in "{ x"',
    ],
  },
  {
    name: 'a problem inside unless_same_as is placed there',
    blocks: `fields:
  primary_id: "{id}"
  job_description: { from: a, unless_same_as: "x{}" }
`,
    says: [
      'problem 4:47: fields.job_description.unless_same_as: an empty {} in a template: put a column name inside the braces',
    ],
  },
  {
    name: 'a problem inside a date rule\'s conditions is placed there',
    blocks: `expiry:
  default: { rules: [ { when: { a: { before: 2020-02-30 } }, run_date: true } ] }
`,
    says: [
      'problem 3:46: expiry.default.rules[0].when.a.before: 2020-02-30 is not a date',
    ],
  },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const says = saysOf(textOf(c.blocks, c.purge ?? true));
      assert.deepEqual(says, c.says, textOf(c.blocks, c.purge ?? true));
      // A mapping with problems is not given to the pipeline; one with only warnings is.
      assert.equal(checkMappingText(textOf(c.blocks, c.purge ?? true), FILE).mapping === undefined, says.some((s) => s.startsWith('problem ')));
    });
  }
});

describe('a file that is not a mapping at all', () => {
  const NOT_A_MAPPING = 'problem 1:1: a mapping file is a YAML mapping (key: value lines), with at least source, fields and user_group';
  for (const [name, text] of [
    ['a list', '- a\n- b\n'],
    ['a line of text', 'just text\n'],
    ['an empty file', ''],
    ['a number', '42\n'],
  ] as const) {
    test(name, () => {
      assert.deepEqual(saysOf(text), [NOT_A_MAPPING]);
      assert.equal(checkMappingText(text, FILE).mapping, undefined);
    });
  }

  test('a YAML syntax error is given alone, the shape is not checked', () => {
    assert.deepEqual(saysOf('source: test\nfields: [\n'), ['problem 3:1: YAML: Flow sequence in block collection must be sufficiently indented and end with a ]']);
  });

  test('a part missing: the shape\'s problems alone, in file order; the values are not looked at', () => {
    assert.deepEqual(saysOf('source: test\nfields:\n  primary_id: { from: a, value: b }\n  frist_name: x\n'), [
      'problem 1:1: missing "user_group"',
      'problem 4:3: fields.frist_name: unknown key "frist_name"; did you mean "first_name"?',
    ]);
  });
});

describe('table files beside the mapping', () => {
  test('rows read by code without case or spaces, the header skipped; a row without a value is a problem', () => {
    const dir = makeTempDir('sis2alma-load-');
    writeFileSync(path.join(dir, 'depts.csv'), '\ufeffcode,group\n Art ,ART\nsci,SCI,extra\n\nlonely\n,NOCODE\n   ,BLANK\n');
    const file = path.join(dir, 'mapping.yaml');
    const text = textOf('tables:\n  depts: depts.csv\n');
    assert.deepEqual(saysOf(text, file), [
      'problem 3:10: tables.depts: depts.csv row 3: a table row needs a code and a value',
      'problem 3:10: tables.depts: depts.csv row 4: a table row needs a code and a value',
      'problem 3:10: tables.depts: depts.csv row 5: a table row needs a code and a value',
    ]);
    const ok = path.join(dir, 'ok.yaml');
    writeFileSync(path.join(dir, 'good.csv'), 'code,group\n Art ,ART \nsci,SCI,extra\n');
    const table = mappingOf(textOf('tables:\n  depts: good.csv\n'), ok).tables.get('depts');
    assert.deepEqual(table, { name: 'depts', origin: path.join(dir, 'good.csv'), entries: new Map([['art', 'ART'], ['sci', 'SCI']]) });
  });

  test('a table file that cannot be read: its full path and the reason', () => {
    const dir = makeTempDir('sis2alma-load-');
    assert.deepEqual(saysOf(textOf('tables:\n  depts: nowhere/depts.csv\n'), path.join(dir, 'mapping.yaml')), [
      `problem 3:10: tables.depts: cannot read table file ${path.join(dir, 'nowhere', 'depts.csv')}: ENOENT`,
    ]);
  });
});

describe('reading the file, and stopping a run', () => {
  test('checkMapping reads the file; an unreadable one is a RunError naming it', () => {
    const dir = makeTempDir('sis2alma-load-');
    const file = path.join(dir, 'mapping.yaml');
    writeFileSync(file, textOf(''));
    assert.equal(checkMapping(file).mapping?.source, 'test');
    const missing = path.join(dir, 'missing.yaml');
    assert.throws(() => checkMapping(missing), (error: unknown) => {
      assert.ok(error instanceof RunError);
      assert.equal(error.code, 'mapping_invalid');
      assert.equal(error.message, `cannot read mapping file ${missing}: ENOENT`);
      assert.deepEqual(error.context, { file: missing });
      return true;
    });
  });

  test('loadMapping gives the mapping, or stops the run listing the first 20 problems and how many more', () => {
    const dir = makeTempDir('sis2alma-load-');
    const good = path.join(dir, 'good.yaml');
    writeFileSync(good, textOf(''));
    assert.deepEqual(loadMapping(good), checkMapping(good).mapping);
    // n + 1 skip rules of one name: n problems, one a line (line 11 + i).
    const broken = (n: number) => {
      const file = path.join(dir, `broken-${n}.yaml`);
      const rules = Array.from({ length: n + 1 }, (_, i) => `  - { name: same, when: { c${i}: x } }\n`).join('');
      writeFileSync(file, `${textOf('')}skip:\n${rules}`);
      return file;
    };
    const messageOf = (file: string) => {
      try {
        loadMapping(file);
      } catch (error) {
        assert.ok(error instanceof RunError);
        assert.equal(error.code, 'mapping_invalid');
        assert.deepEqual(error.context, { file });
        return error.message;
      }
      assert.fail('loadMapping did not stop the run');
    };
    const problem = (file: string, i: number) => `  ${file}:${11 + i}:13: skip[${i + 1}].name: another skip rule is named "same" (skip[0]); names tell the rules apart in the report`;
    for (const [n, more] of [
      [1, ''],
      [20, ''],
      [21, '\n  ... and 1 more'],
      [23, '\n  ... and 3 more'],
    ] as const) {
      const file = broken(n);
      const listed = Array.from({ length: Math.min(n, 20) }, (_, i) => problem(file, i)).join('\n');
      assert.equal(messageOf(file), `the mapping file has ${n} problem(s); run 'sis2alma mapping check ${file}':\n${listed}${more}`);
    }
});
});

describe('the mapping the pipeline receives', () => {
  test('a minimal mapping: every default spelt out, and the text\'s SHA-256', () => {
    const text = textOf('');
    assert.deepEqual(defined(mappingOf(text)), {
      file: FILE,
      sha256: createHash('sha256').update(text).digest('hex'),
      source: 'test',
      requiredColumns: [],
      unusedColumns: {},
      delimiter: ',',
      sensitiveColumns: [],
      maxRowsPerPerson: 20,
      tables: new Map(),
      allowedCodes: {},
      fields: [{ field: 'primary_id', value: column('id') }],
      userGroup: { rules: [{ name: 'rule 1', when: [], group: constant('PATRON') }], priority: new Map(), exceptions: [], unmapped: 'reject' },
      merge: { policy: 'combine', order: [] },
      skip: [],
      reject: [],
      expiry: new Map(),
      purge: new Map(),
      identifiers: [],
      emails: [],
      phones: [],
      addresses: [],
      statistics: [],
      blocks: [],
      rsLibraries: [],
      libraryNotices: [],
      notes: [],
      defaultPurge: { kind: 'after_expiry', amount: 30, unit: 'day' },
    });
  });

  const RICH = `source: hr
input:
  delimiter: ";"
  required_columns: [id, "7"]
  unused_columns: { spare: not needed }
  sensitive_columns: [pin]
  max_rows_per_person: 5
tables:
  depts: { " Art ": ART, 5: SCI }
allowed_codes:
  user_group: [PATRON, STAFF]
  id_type: [BARCODE]
fields:
  primary_id: "{id}"
  first_name: "Dr {given} {family}"
  last_name: "Smith"
  job_description: { template: "{run_date}" }
  user_title: { from: [a, b], trim: false, strip_prefix: "X-", case: upper, map: depts, unknown: keep, required: true, truncate: true, on_unfit: drop, otherwise: "none", split: { by: ",", part: 2 }, pad: { width: 4 }, prefix: "T" }
  pin_number: { from: a, substring: { first: 3 }, must_match: false, replace: { pattern: "a", with: "b" } }
  middle_name: { from: a, substring: { last: 2 }, unless_same_as: b, ignore_case: true }
  pref_first_name: { from: a, substring: { start: 3 }, pad: { width: 2, with: " ", side: right } }
  pref_last_name: { from: a, substring: { start: 2, length: 4 }, unless_same_as: "{b}" }
  birth_date: { from: d, format: YYYYMMDD }
  gender: { value: 7 }
  campus_code: { from: c, boolean: { true: Y, false: N } }
  cataloger_level: { value: "" }
  pref_middle_name: { from: m, replace: [ { pattern: "x", with: "y" } ] }
  pref_name_suffix: "{ sfx }"
user_group:
  rules:
    - name: staff
      group: STAFF
      when: { kind: staff }
    - group: { from: g, map: { a: PATRON } }
  default: PATRON
  priority: [STAFF, PATRON]
  exceptions:
    - { name: both, groups: [STAFF, PATRON], group: STAFF }
merge:
  policy: first_wins_whole
  order: [hr.csv, sis.csv]
identifiers:
  - { id_type: BARCODE, from: bc, note: "n {x}", status: ACTIVE }
  - { id_type: BARCODE, from: bc2 }
emails:
  - { email_type: work, from: e, preferred: true, description: Work, on_invalid: drop }
  - { email_type: home, from: e2 }
phones:
  - { phone_type: mobile, from: p, preferred_sms: true, phone: { region: US, format: national, on_invalid: drop } }
  - { phone_type: home, from: p, preferred: true, phone: { region: GB } }
addresses:
  - { address_type: home, preferred: true, line1: "{l1}", city: { from: city }, start_date: { from: s }, end_date: { from: e2, format: DD.MM.YYYY } }
  - { address_type: work, line1: x }
statistics:
  - { statistic_category: { from: s, map: depts }, category_type: CT, statistic_note: note }
user_blocks:
  - { block_type: GENERAL, block_description: "{why}", block_status: Active, block_note: "n" }
  - { block_description: "x" }
rs_libraries: ["{lib}", MAIN]
library_notices:
  - { code: N1, from: n }
notes:
  - { note_type: LIBRARY, note_text: "hi {name}", user_viewable: true, popup_note: true }
  - { note_type: OTHER, note_text: "x" }
expiry:
  default: { after_run: 2 years }
  STAFF: { next: { month_day: 06-30 } }
  PATRON: { next: { month_day: 06-30, years: 2, from: 03-01 }, otherwise: { run_date: true } }
purge:
  default: { after_expiry: 1 year }
  STAFF: { date: 2030-01-01 }
skip:
  - { name: s1, when: [ { a: "1" }, { b: [x, y] } ] }
reject:
  - { name: r1, when: { not: { c: true } }, message: "bad" }
  - { name: r2, when: { any: [ { d: 5 }, { e: { empty: true } } ] }, message: m2 }
`;

  test('the input block, tables, allowed codes, the group policy and merge', () => {
    const m = mappingOf(RICH);
    assert.deepEqual(
      defined({ source: m.source, requiredColumns: m.requiredColumns, unusedColumns: m.unusedColumns, delimiter: m.delimiter, sensitiveColumns: m.sensitiveColumns, maxRowsPerPerson: m.maxRowsPerPerson }),
      { source: 'hr', requiredColumns: ['id', '7'], unusedColumns: { spare: 'not needed' }, delimiter: ';', sensitiveColumns: ['pin'], maxRowsPerPerson: 5 },
    );
    const depts = { name: 'depts', origin: 'inline', entries: new Map([['art', 'ART'], ['5', 'SCI']]) };
    assert.deepEqual(m.tables, new Map([['depts', depts]]));
    assert.deepEqual(m.allowedCodes, { user_group: new Set(['PATRON', 'STAFF']), id_type: new Set(['BARCODE']) });
    assert.deepEqual(defined(m.userGroup), {
      rules: [
        { name: 'staff', when: [{ column: 'kind', test: { kind: 'equals', values: ['staff'] } }], group: constant('STAFF') },
        { name: 'rule 2', when: [], group: column('g', { map: { name: 'user_group.rules[1].group.map', origin: 'inline', entries: new Map([['a', 'PATRON']]) } }) },
      ],
      default: 'PATRON',
      priority: new Map([['STAFF', 0], ['PATRON', 1]]),
      exceptions: [{ name: 'both', groups: ['STAFF', 'PATRON'], group: 'STAFF' }],
      unmapped: 'reject',
    });
    assert.deepEqual(m.merge, { policy: 'first_wins_whole', order: ['hr.csv', 'sis.csv'] });
  });

  test('fields: shorthands, templates, constants and every transformation with its defaults', () => {
    const fields = new Map(mappingOf(RICH).fields.map((f) => [f.field, defined(f.value)]));
    const depts = { name: 'depts', origin: 'inline', entries: new Map([['art', 'ART'], ['5', 'SCI']]) };
    assert.deepEqual(fields.get('first_name'), plain({ kind: 'template', parts: [{ text: 'Dr ' }, { column: 'given' }, { text: ' ' }, { column: 'family' }] }, ['given', 'family']));
    assert.deepEqual(fields.get('last_name'), constant('Smith'));
    assert.deepEqual(fields.get('job_description'), plain({ kind: 'template', parts: [{ runDate: true }] }, []));
    assert.deepEqual(fields.get('user_title'), {
      ...plain({ kind: 'column', columns: ['a', 'b'] }, ['a', 'b']),
      trim: false,
      stripPrefix: 'X-',
      case: 'upper',
      map: depts,
      unknown: 'keep',
      required: true,
      truncate: true,
      onUnfit: 'drop',
      otherwise: constant('none'),
      split: { by: ',', part: 2 },
      pad: { width: 4, with: '0', side: 'left' },
      prefix: 'T',
    });
    assert.deepEqual(fields.get('pin_number'), column('a', { replace: [{ pattern: 'a', regex: /a/gu, test: /a/u, with: 'b' }], mustMatch: false, substring: { start: 0, length: 3, needs: 3 } }));
    assert.deepEqual(fields.get('middle_name'), column('a', { substring: { start: -2, needs: 2 }, unlessSameAs: { value: column('b'), ignoreCase: true } }));
    assert.deepEqual(fields.get('pref_first_name'), column('a', { substring: { start: 2, needs: 3 }, pad: { width: 2, with: ' ', side: 'right' } }));
    assert.deepEqual(fields.get('pref_last_name'), column('a', { substring: { start: 1, length: 4, needs: 5 }, unlessSameAs: { value: column('b'), ignoreCase: false } }));
    assert.deepEqual(fields.get('birth_date'), column('d', { dateFormat: { pattern: 'YYYYMMDD', regex: /^(\d{4})(\d{2})(\d{2})$/, order: { year: 1, month: 2, day: 3 } } }));
    assert.deepEqual(fields.get('gender'), constant('7'));
    assert.deepEqual(fields.get('campus_code'), column('c', { boolean: { true: 'Y', false: 'N' } }));
    assert.deepEqual(fields.get('cataloger_level'), constant(''));
    assert.deepEqual(fields.get('pref_name_suffix'), column('sfx'));
    assert.deepEqual(fields.get('pref_middle_name'), column('m', { replace: [{ pattern: 'x', regex: /x/gu, test: /x/u, with: 'y' }] }));
  });

  test('identifiers, emails, phones, addresses, statistics, blocks, libraries, notices and notes', () => {
    const m = mappingOf(RICH);
    assert.deepEqual(defined(m.identifiers), [
      { id_type: 'BARCODE', note: plain({ kind: 'template', parts: [{ text: 'n ' }, { column: 'x' }] }, ['x']), status: constant('ACTIVE'), value: column('bc') },
      { id_type: 'BARCODE', value: column('bc2') },
    ]);
    assert.deepEqual(defined(m.emails), [
      { email_type: 'work', preferred: true, description: 'Work', onInvalid: 'drop', value: column('e') },
      { email_type: 'home', preferred: false, onInvalid: 'reject', value: column('e2') },
    ]);
    assert.deepEqual(defined(m.phones), [
      { phone_type: 'mobile', preferred: false, preferred_sms: true, value: column('p', { phone: { format: 'national', region: 'US', onInvalid: 'drop' } }) },
      { phone_type: 'home', preferred: true, preferred_sms: false, value: column('p', { phone: { format: 'e164', region: 'GB', onInvalid: 'reject' } }) },
    ]);
    const isoDate = { pattern: 'YYYY-MM-DD', regex: /^(\d{4})-(\d{1,2})-(\d{1,2})$/, order: { year: 1, month: 2, day: 3 } };
    assert.deepEqual(defined(m.addresses), [
      {
        address_type: 'home',
        preferred: true,
        parts: { line1: column('l1'), city: column('city') },
        start_date: column('s', { dateFormat: isoDate }),
        end_date: column('e2', { dateFormat: { pattern: 'DD.MM.YYYY', regex: /^(\d{1,2})\.(\d{1,2})\.(\d{4})$/, order: { year: 3, month: 2, day: 1 } } }),
      },
      { address_type: 'work', preferred: false, parts: { line1: constant('x') } },
    ]);
    const depts = { name: 'depts', origin: 'inline', entries: new Map([['art', 'ART'], ['5', 'SCI']]) };
    assert.deepEqual(defined(m.statistics), [{ statistic_category: column('s', { map: depts }), category_type: 'CT', statistic_note: 'note' }]);
    assert.deepEqual(defined(m.blocks), [
      { block_type: 'GENERAL', block_description: column('why'), block_status: 'Active', block_note: constant('n') },
      { block_description: constant('x') },
    ]);
    assert.deepEqual(defined(m.rsLibraries), [column('lib'), constant('MAIN')]);
    assert.deepEqual(defined(m.libraryNotices), [{ code: 'N1', value: column('n') }]);
    assert.deepEqual(m.notes, [
      { note_type: 'LIBRARY', note_text: [{ text: 'hi ' }, { column: 'name' }], user_viewable: true, popup_note: true },
      { note_type: 'OTHER', note_text: [{ text: 'x' }], user_viewable: false, popup_note: false },
    ]);
  });

  test('expiry and purge rules, per group and by default', () => {
    const m = mappingOf(RICH);
    assert.deepEqual(defined(m.defaultExpiry), { kind: 'after_run', amount: 2, unit: 'year' });
    assert.deepEqual(defined(m.expiry), new Map([
      ['STAFF', { kind: 'next', monthDay: '06-30', years: 1 }],
      ['PATRON', { kind: 'next', monthDay: '06-30', years: 2, from: '03-01', otherwise: { kind: 'run_date' } }],
    ]));
    assert.deepEqual(defined(m.defaultPurge), { kind: 'after_expiry', amount: 1, unit: 'year' });
    assert.deepEqual(defined(m.purge), new Map([['STAFF', { kind: 'fixed', date: '2030-01-01' }]]));
  });

  test('skip and reject rules: lists, not, any, and their messages', () => {
    const m = mappingOf(RICH);
    const eq = (c: string, ...values: string[]) => ({ column: c, test: { kind: 'equals', values } });
    assert.deepEqual(m.skip, [{ name: 's1', when: [{ kind: 'all', conditions: [eq('a', '1')] }, { kind: 'all', conditions: [eq('b', 'x', 'y')] }] }]);
    assert.deepEqual(m.reject, [
      { name: 'r1', when: [{ kind: 'not', conditions: [{ column: 'c', test: { kind: 'is', is: true } }] }], message: 'bad' },
      { name: 'r2', when: [{ kind: 'any', conditions: [{ kind: 'all', conditions: [eq('d', '5')] }, { kind: 'all', conditions: [{ column: 'e', test: { kind: 'empty', empty: true } }] }] }], message: 'm2' },
    ]);
  });
});

describe('conditions, date rules and date formats as normalised', () => {
  /** The conditions of the first user group rule. */
  const whenOf = (when: string) => mappingOf(textOf(`user_group:\n  rules:\n    - group: PATRON\n      when:\n${when}`)).userGroup.rules[0]!.when;

  test('each test of a column', () => {
    const when = whenOf(`        a: true
        b: 7
        c: [x, 8]
        d: { equals: x }
        e: { not_equals: 9 }
        f: { one_of: [x, 1] }
        g: { in: [y] }
        h: { not_in: [z, 2] }
        i: { empty: false }
        j: { is: false }
        k: { equals_column: a }
        l: { not_equals_column: b, ignore_case: true }
        o: { not_equals_column: a }
        m: { matches: "A.*" }
        n: { not_matches: "B|C" }
        "column:not": x
`);
    assert.deepEqual(when, [
      { column: 'a', test: { kind: 'is', is: true } },
      { column: 'b', test: { kind: 'equals', values: ['7'] } },
      { column: 'c', test: { kind: 'equals', values: ['x', '8'] } },
      { column: 'd', test: { kind: 'equals', values: ['x'] } },
      { column: 'e', test: { kind: 'equals', values: ['9'] }, negate: true },
      { column: 'f', test: { kind: 'equals', values: ['x', '1'] } },
      { column: 'g', test: { kind: 'equals', values: ['y'] } },
      { column: 'h', test: { kind: 'equals', values: ['z', '2'] }, negate: true },
      { column: 'i', test: { kind: 'empty', empty: false } },
      { column: 'j', test: { kind: 'is', is: false } },
      { column: 'k', test: { kind: 'equals_column', other: 'a', ignoreCase: false } },
      { column: 'l', test: { kind: 'equals_column', other: 'b', ignoreCase: true }, negate: true },
      { column: 'o', test: { kind: 'equals_column', other: 'a', ignoreCase: false }, negate: true },
      { column: 'm', test: { kind: 'matches', regex: /^(?:A.*)$/u, source: 'A.*' } },
      { column: 'n', test: { kind: 'matches', regex: /^(?:B|C)$/u, source: 'B|C' }, negate: true },
      { column: 'not', test: { kind: 'equals', values: ['x'] } },
    ]);
  });

  test('date comparisons, with their format and what a value that is no date does', () => {
    const when = whenOf(`        a: { before: 2026-01-01 }
        b: { on_or_after: run_date, on_or_before: 2027-12-31, format: DD/MM/YYYY, not_a_date: holds }
        c: { after: 2020-02-29, format: YYYYMMDD }
`);
    assert.deepEqual(when, [
      { column: 'a', test: { kind: 'date', compare: [{ op: 'before', bound: '2026-01-01' }], format: { pattern: 'YYYY-MM-DD', regex: /^(\d{4})-(\d{1,2})-(\d{1,2})$/, order: { year: 1, month: 2, day: 3 } }, notADate: 'reject' } },
      {
        column: 'b',
        test: {
          kind: 'date',
          compare: [{ op: 'on_or_before', bound: '2027-12-31' }, { op: 'on_or_after', bound: 'run_date' }],
          format: { pattern: 'DD/MM/YYYY', regex: /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/, order: { year: 3, month: 2, day: 1 } },
          notADate: 'holds',
        },
      },
      { column: 'c', test: { kind: 'date', compare: [{ op: 'after', bound: '2020-02-29' }], format: { pattern: 'YYYYMMDD', regex: /^(\d{4})(\d{2})(\d{2})$/, order: { year: 1, month: 2, day: 3 } }, notADate: 'reject' } },
    ]);
  });

  test('all, any, not, lists and input_file globs (any characters, one character, dots as dots, no case)', () => {
    const when = whenOf(`        all: [ { a: x }, { b: y } ]
        not: { c: z }
        input_file: [ "stu*.csv", "hr_?.c+v" ]
`);
    const eq = (c: string, v: string) => ({ column: c, test: { kind: 'equals', values: [v] } });
    assert.deepEqual(when, [
      { kind: 'all', conditions: [{ kind: 'all', conditions: [eq('a', 'x')] }, { kind: 'all', conditions: [eq('b', 'y')] }] },
      { kind: 'not', conditions: [eq('c', 'z')] },
      { kind: 'input_file', patterns: ['stu*.csv', 'hr_?.c+v'], regexes: [/^stu.*\.csv$/i, /^hr_.\.c\+v$/i] },
    ]);
    const alone = whenOf('        input_file: "a(1).[x]{2}|^$.csv"\n');
    assert.deepEqual(alone, [{ kind: 'input_file', patterns: ['a(1).[x]{2}|^$.csv'], regexes: [/^a\(1\)\.\[x\]\{2\}\|\^\$\.csv$/i] }]);
    const regex = (alone[0] as { regexes: RegExp[] }).regexes[0]!;
    assert.equal(regex.test('A(1).[X]{2}|^$.CSV'), true);
  });

  /** The default expiry rule of a mapping with this one. */
  const expiryOf = (rule: string) => defined(mappingOf(textOf(`expiry:\n  default: ${rule}\n`)).defaultExpiry);

  test('each kind of date rule', () => {
    assert.deepEqual(expiryOf('{ date: 2027-06-30 }'), { kind: 'fixed', date: '2027-06-30' });
    assert.deepEqual(expiryOf('{ after_run: 1 day }'), { kind: 'after_run', amount: 1, unit: 'day' });
    assert.deepEqual(expiryOf('{ after_run: 3 weeks }'), { kind: 'after_run', amount: 3, unit: 'week' });
    assert.deepEqual(expiryOf('{ after_run: 6 months }'), { kind: 'after_run', amount: 6, unit: 'month' });
    assert.deepEqual(expiryOf('{ run_date: true }'), { kind: 'run_date' });
    assert.deepEqual(expiryOf('{ from: ends }'), { kind: 'column', value: column('ends', { dateFormat: { pattern: 'YYYY-MM-DD', regex: /^(\d{4})-(\d{1,2})-(\d{1,2})$/, order: { year: 1, month: 2, day: 3 } } }) });
    assert.deepEqual(expiryOf('{ from: ends, format: MM/DD/YYYY, otherwise: { after_run: 1 year } }'), {
      kind: 'column',
      value: column('ends', { dateFormat: { pattern: 'MM/DD/YYYY', regex: /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/, order: { year: 3, month: 1, day: 2 } } }),
      otherwise: { kind: 'after_run', amount: 1, unit: 'year' },
    });
    assert.deepEqual(expiryOf('{ end_of_year: class }'), { kind: 'end_of_year', column: 'class', monthDay: '12-31' });
    assert.deepEqual(expiryOf('{ end_of_year: class, month_day: 06-30 }'), { kind: 'end_of_year', column: 'class', monthDay: '06-30' });
    assert.deepEqual(expiryOf('{ term_calendar: [ { name: fall, from: 2026-09-01, to: 2026-12-31, expires: 2027-01-31 }, { from: 2027-01-01, to: 2027-01-01, expires: 2027-06-30 } ] }'), {
      kind: 'term_calendar',
      terms: [
        { name: 'fall', from: '2026-09-01', to: '2026-12-31', expires: '2027-01-31' },
        { from: '2027-01-01', to: '2027-01-01', expires: '2027-06-30' },
      ],
    });
    assert.deepEqual(expiryOf('{ rules: [ { name: grads, when: { level: GR }, after_run: 2 years }, { when: { level: UG }, date: 2027-06-30 } ], otherwise: { run_date: true } }'), {
      kind: 'rules',
      rules: [
        { name: 'grads', when: [{ column: 'level', test: { kind: 'equals', values: ['GR'] } }], rule: { kind: 'after_run', amount: 2, unit: 'year' } },
        { when: [{ column: 'level', test: { kind: 'equals', values: ['UG'] } }], rule: { kind: 'fixed', date: '2027-06-30' } },
      ],
      otherwise: { kind: 'run_date' },
    });
    const purge = defined(mappingOf(textOf('purge:\n  default: { after_expiry: 2 weeks }\n  PATRON: { after_expiry: 1 month, otherwise: { date: 2030-01-01 } }\n')).purge);
    assert.deepEqual(purge, new Map([['PATRON', { kind: 'after_expiry', amount: 1, unit: 'month', otherwise: { kind: 'fixed', date: '2030-01-01' } }]]));
  });

  test('a value made by rules, and the columns it reads', () => {
    const m = mappingOf(textOf('fields:\n  primary_id: "{id}"\n  job_description: { rules: [ { name: r, when: { a: x, b: y }, value: "{c}" }, { when: { a: z }, value: fixed } ], otherwise: "{d}" }\n'));
    const value = defined(m.fields[1]!.value) as ValueExpr;
    assert.deepEqual(value.source, {
      kind: 'rules',
      rules: [
        { name: 'r', when: [{ column: 'a', test: { kind: 'equals', values: ['x'] } }, { column: 'b', test: { kind: 'equals', values: ['y'] } }], value: column('c') },
        { when: [{ column: 'a', test: { kind: 'equals', values: ['z'] } }], value: constant('fixed') },
      ],
    });
    // Each column once, conditions before values; otherwise's columns are its own.
    assert.deepEqual(value.columns, ['a', 'b', 'c']);
    assert.deepEqual(value.otherwise, column('d'));
  });

  test('isRealDate: YYYY-MM-DD of a day that exists', () => {
    for (const date of ['2024-02-29', '2026-12-31', '2026-01-01', '2000-02-29', '0001-01-01']) assert.equal(isRealDate(date), true, date);
    for (const date of ['2026-02-29', '2026-13-01', '2026-00-10', '2026-04-31', '2026-1-01', '26-01-01', '2026-01-01x', ' 2026-01-01', '2026/01/01', '1900-02-29', '']) assert.equal(isRealDate(date), false, date);
  });
});

describe('list items with keys of their own', () => {
  test('an identifier (as an email, a phone or a notice) takes every key of a value beside its own', () => {
    const m = mappingOf(
      textOf(`identifiers:
  - { id_type: A, from: a, otherwise: "o", trim: false, strip_prefix: "P", case: upper, map: { x: y }, unknown: keep, required: true, truncate: true, replace: { pattern: x, with: y }, must_match: true, on_unfit: drop, split: { part: 1 }, substring: { first: 2 }, pad: { width: 3 }, prefix: Z, unless_same_as: b, ignore_case: true }
  - { id_type: B, template: "B{bc}" }
  - { id_type: C, value: fixed }
  - { id_type: D, rules: [ { when: { k: "1" }, value: one } ] }
  - { id_type: E, from: d, format: DD.MM.YYYY }
  - { id_type: F, from: p, phone: { region: US } }
  - { id_type: G, from: g, boolean: { true: Y, false: N } }
`),
    );
    const values = m.identifiers.map((i) => defined(i.value));
    assert.deepEqual(values[0], {
      ...column('a'),
      otherwise: constant('o'),
      trim: false,
      stripPrefix: 'P',
      case: 'upper',
      map: { name: 'identifiers[0].map', origin: 'inline', entries: new Map([['x', 'y']]) },
      unknown: 'keep',
      required: true,
      truncate: true,
      replace: [{ pattern: 'x', regex: /x/gu, test: /x/u, with: 'y' }],
      mustMatch: true,
      onUnfit: 'drop',
      split: { part: 1 },
      substring: { start: 0, length: 2, needs: 2 },
      pad: { width: 3, with: '0', side: 'left' },
      prefix: 'Z',
      unlessSameAs: { value: column('b'), ignoreCase: true },
    });
    assert.deepEqual(values[1], plain({ kind: 'template', parts: [{ text: 'B' }, { column: 'bc' }] }, ['bc']));
    assert.deepEqual(values[2], plain({ kind: 'constant', value: 'fixed' }, []));
    assert.deepEqual(values[3], plain({ kind: 'rules', rules: [{ when: [{ column: 'k', test: { kind: 'equals', values: ['1'] } }], value: constant('one') }] }, ['k']));
    assert.deepEqual(values[4], column('d', { dateFormat: { pattern: 'DD.MM.YYYY', regex: /^(\d{1,2})\.(\d{1,2})\.(\d{4})$/, order: { year: 3, month: 2, day: 1 } } }));
    assert.deepEqual(values[5], column('p', { phone: { format: 'e164', region: 'US', onInvalid: 'reject' } }));
    assert.deepEqual(values[6], column('g', { boolean: { true: 'Y', false: 'N' } }));
  });
});
