// Every construct of the mapping language, each with a real mapping file (written to a temporary
// folder, with its lookup tables beside it), checked by checkMapping and applied by compileMapping
// to rows, as the pipeline does. Run date 2026-11-21 throughout.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { checkMapping, formatProblem } from '../src/mapping/load.js';
import type { Mapping } from '../src/mapping/model.js';
import { compileMapping, type MapResult, type MappedUser, type RejectedRow } from '../src/mapping/map.js';
import { mergeUsers } from '../src/pipeline/merge.js';
import { explainMapping } from '../src/review/explain.js';
import type { AlmaUser } from '../src/shared/alma.js';
import { makeTempDir } from './helpers/tmp.js';

const RUN_DATE = '2026-11-21';

function folder(): string {
  return makeTempDir('sis2alma-language-');
}

/**
 * A mapping from the given YAML blocks; source, fields and user_group get defaults when the
 * blocks lack them. `files` are written beside the mapping (lookup tables).
 */
function mappingOf(blocks: string, files: Record<string, string> = {}): Mapping {
  const dir = folder();
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  let text = 'source: test\n' + blocks;
  if (!/^fields:/m.test(blocks)) text += '\nfields:\n  primary_id: "{id}"\n';
  if (!/^user_group:/m.test(blocks)) text += '\nuser_group:\n  rules:\n    - group: PATRON\n';
  const file = path.join(dir, 'mapping.yaml');
  writeFileSync(file, text);
  const result = checkMapping(file);
  assert.deepEqual(result.problems.map(formatProblem), [], text);
  return result.mapping!;
}

/** Maps rows given as objects (column → value); the header is the union of their keys. */
function mapRows(mapping: Mapping, rows: Record<string, string>[], runDate = RUN_DATE): MapResult[] {
  const header = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const mapper = compileMapping(mapping, header, runDate);
  return rows.map((r) => mapper.map(header.map((h) => r[h] ?? '')));
}

function mapOne(blocks: string, row: Record<string, string>, files?: Record<string, string>, runDate?: string): MapResult {
  return mapRows(mappingOf(blocks, files), [row], runDate)[0]!;
}

function written(result: MapResult): MappedUser {
  assert.ok(result.ok, `expected a user, got ${JSON.stringify(!result.ok && result.problems)}`);
  return result;
}

function rejected(result: MapResult): RejectedRow {
  assert.ok(!result.ok, `expected a rejection, got ${JSON.stringify(result.ok && result.user)}`);
  return result;
}

function userOf(result: MapResult): AlmaUser {
  return written(result).user;
}

describe('fields: where a value comes from', () => {
  test('from a column, a constant and a template', () => {
    const user = userOf(
      mapOne(
        `fields:
  primary_id: { from: id }
  first_name: "{first}"
  job_category: { value: PATRON }
  user_title: Dr
  job_description: "{first} {last} ({dept})"
`,
        { id: 'u1', first: 'Ada', last: 'Lovelace', dept: 'MATH' },
      ),
    );
    assert.equal(user.primary_id, 'u1');
    assert.equal(user.first_name, 'Ada');
    assert.equal(user.job_category, 'PATRON');
    assert.equal(user.user_title, 'Dr');
    assert.equal(user.job_description, 'Ada Lovelace (MATH)');
  });

  test('a template with an empty column gives nothing, never half a value', () => {
    const user = userOf(mapOne(`fields:\n  primary_id: "{id}"\n  job_description: "{first} {last}"\n`, { id: 'u1', first: 'Ada', last: '' }));
    assert.equal(user.job_description, undefined);
  });

  test('a required value that is empty rejects the row, naming the column', () => {
    const row = rejected(mapOne(`fields:\n  primary_id: "{id}"\n  last_name: { from: surname, required: true }\n`, { id: 'u1', surname: '  ' }));
    assert.deepEqual(
      row.problems.map((p) => [p.code, p.column, p.message]),
      [['missing_value', 'surname', 'Field (surname) is required but empty']],
    );
  });
});

describe('fields: how a value is cleaned', () => {
  test('trim (on by default, off on request), upper, lower and strip_prefix', () => {
    const user = userOf(
      mapOne(
        `fields:
  primary_id: { from: id, strip_prefix: "ID-", case: lower }
  first_name: { from: first, case: upper }
  last_name: { from: last, trim: false }
  middle_name: "{middle}"
  user_title: { from: title, strip_prefix: "X-" }
`,
        { id: 'ID-JDoe1', first: 'ada', last: ' Lovelace ', middle: '  B.  ', title: 'Dr' },
      ),
    );
    assert.equal(user.primary_id, 'jdoe1');
    assert.equal(user.first_name, 'ADA');
    assert.equal(user.last_name, ' Lovelace ');
    assert.equal(user.middle_name, 'B.');
    assert.equal(user.user_title, 'Dr', 'a prefix that is not there leaves the value alone');
  });

  test('an inline value map translates without case; an unknown value rejects the row naming it, or is kept', () => {
    const blocks = `fields:
  primary_id: "{id}"
  gender: { from: sex, map: { M: MALE, F: FEMALE } }
  preferred_language: { from: lang, map: { en: en, fr: fr }, unknown: keep }
`;
    const mapping = mappingOf(blocks);
    const [f, unknown, kept] = mapRows(mapping, [
      { id: 'a', sex: 'f', lang: 'en' },
      { id: 'b', sex: 'X', lang: 'en' },
      { id: 'c', sex: 'M', lang: 'de' },
    ]);
    assert.equal(userOf(f!).gender, 'FEMALE');
    assert.deepEqual(
      rejected(unknown!).problems.map((p) => [p.code, p.column, p.value]),
      [['bad_value', 'sex', 'X']],
    );
    assert.match(rejected(unknown!).problems[0]!.message, /Field \(sex\) has a value the mapping does not know: 'X'/);
    assert.equal(userOf(kept!).preferred_language, 'de');
    assert.equal(userOf(kept!).gender, 'MALE');
  });

  const dates: Array<[format: string, text: string, expected: string | undefined]> = [
    ['MM/DD/YYYY', '03/14/2004', '2004-03-14'],
    ['MM/DD/YYYY', '3/4/2004', '2004-03-04'],
    ['MM/DD/YYYY', '02/29/2024', '2024-02-29'],
    ['MM/DD/YYYY', '02/30/2024', undefined],
    ['MM/DD/YYYY', '13/01/2024', undefined],
    ['MM/DD/YYYY', '2024-01-13', undefined],
    ['YYYYMMDD', '20240229', '2024-02-29'],
    ['YYYYMMDD', '20230229', undefined],
    ['YYYYMMDD', '2024229', undefined],
    ['YYYYMMDD', '20271345', undefined],
  ];
  for (const [format, text, expected] of dates) {
    test(`date format ${format}: '${text}' → ${expected ?? 'row rejected'}`, () => {
      const result = mapOne(`fields:\n  primary_id: "{id}"\n  birth_date: { from: born, format: ${format} }\n`, { id: 'u1', born: text });
      if (expected) assert.equal(userOf(result).birth_date, expected);
      else {
        const problem = rejected(result).problems[0]!;
        assert.equal(problem.code, 'bad_date');
        assert.equal(problem.message, `Field (born) is not a date in the form ${format}: '${text}'`);
      }
    });
  }
});

describe('booleans', () => {
  const blocks = `fields:\n  primary_id: "{id}"\n  status: { from: active, boolean: { true: ACTIVE, false: INACTIVE } }\n`;
  const words: Array<[string, string]> = [
    ['y', 'ACTIVE'], ['Y', 'ACTIVE'], ['yes', 'ACTIVE'], ['YeS', 'ACTIVE'], ['true', 'ACTIVE'], ['TRUE', 'ACTIVE'], ['1', 'ACTIVE'],
    ['n', 'INACTIVE'], ['N', 'INACTIVE'], ['no', 'INACTIVE'], ['No', 'INACTIVE'], ['false', 'INACTIVE'], ['fAlSe', 'INACTIVE'], ['0', 'INACTIVE'],
    [' yes ', 'ACTIVE'],
  ];
  test('y/yes/true/1 and n/no/false/0 in any case; status from a column', () => {
    const mapping = mappingOf(blocks);
    const results = mapRows(mapping, words.map(([word], i) => ({ id: `u${i}`, active: word })));
    assert.deepEqual(
      results.map((r) => userOf(r).status),
      words.map(([, status]) => status),
    );
  });

  for (const bad of ['maybe', '2', 'T', 'oui']) {
    test(`'${bad}' rejects the row with a message naming the column, the value and the accepted words`, () => {
      const problem = rejected(mapOne(blocks, { id: 'u1', active: bad })).problems[0]!;
      assert.equal(problem.code, 'bad_boolean');
      assert.equal(problem.column, 'active');
      assert.equal(problem.message, `Field (active) is not a yes/no value: '${bad}' (expected y, yes, true, 1, n, no, false or 0)`);
    });
  }

  test('an empty yes/no column gives no value and no error', () => {
    assert.equal(userOf(mapOne(blocks, { id: 'u1', active: '' })).status, undefined);
  });
});

describe('lookup tables', () => {
  test('inline, and from a CSV beside the mapping (keys without case or surrounding space)', () => {
    const blocks = `tables:
  genders: { M: MALE, F: FEMALE }
  countries: countries.csv
fields:
  primary_id: "{id}"
  gender: { from: sex, map: genders }
addresses:
  - address_type: home
    line1: "{street}"
    country: { from: country, map: countries }
`;
    const files = { 'countries.csv': 'code,alma\nUS,USA\n de ,DEU\n"GB","GBR"\n' };
    const user = userOf(mapOne(blocks, { id: 'u1', sex: 'm', street: '1 Main St', country: 'De' }, files));
    assert.equal(user.gender, 'MALE');
    assert.equal(user.contact_info.addresses[0]!.country, 'DEU');
    const unknown = rejected(mapOne(blocks, { id: 'u2', sex: 'f', street: '1 Main St', country: 'FR' }, files));
    assert.match(unknown.problems[0]!.message, /Field \(country\) has a value the mapping does not know: 'FR' \(not in table countries\)/);
  });

  test('in_table as a condition', () => {
    const mapping = mappingOf(`tables:
  library_staff: { LIB: yes, ARCH: yes }
user_group:
  rules:
    - when: { dept: { in_table: library_staff } }
      group: LIBSTAFF
    - group: PATRON
`);
    const [lib, other] = mapRows(mapping, [
      { id: 'a', dept: 'lib' },
      { id: 'b', dept: 'CHEM' },
    ]);
    assert.equal(userOf(lib!).user_group, 'LIBSTAFF');
    assert.equal(userOf(other!).user_group, 'PATRON');
  });
});

describe('user group rules', () => {
  const policy = `user_group:
  rules:
    - name: emeritus
      when: { type: emeritus }
      group: EMERITUS
    - name: faculty and staff
      when: { type: { one_of: [FAC, STAFF] } }
      group: STAFF
    - name: temps
      when: { type: [TEMP, SEASONAL] }
      group: TEMP
    - name: doctoral programs
      when: { program: { matches: "PHD-[A-Z]+" } }
      group: GRAD
    - name: library workers
      when: { library: true }
      group: LIBRARY
    - name: no program
      when: { program: { empty: true }, type: { equals: STUDENT } }
      group: VISITOR
    - name: students
      when: { type: STUDENT }
      group: { from: level, map: { UG: UNDERGRAD, GR: GRAD } }
`;
  const cases: Array<[row: Record<string, string>, group: string | undefined, rule: string]> = [
    [{ type: 'Emeritus' }, 'EMERITUS', 'emeritus'],
    [{ type: 'fac' }, 'STAFF', 'faculty and staff'],
    [{ type: 'STAFF' }, 'STAFF', 'faculty and staff'],
    [{ type: 'seasonal' }, 'TEMP', 'temps'],
    [{ type: 'STUDENT', program: 'PHD-CHEM', level: 'GR' }, 'GRAD', 'doctoral programs'],
    [{ type: 'STUDENT', program: 'xPHD-CHEM', level: 'UG' }, 'UNDERGRAD', 'students'],
    [{ type: 'STUDENT', program: 'BSC', library: 'Yes', level: 'UG' }, 'LIBRARY', 'library workers'],
    [{ type: 'STUDENT', program: '', level: 'UG' }, 'VISITOR', 'no program'],
    [{ type: 'STUDENT', program: 'BSC', library: 'no', level: 'UG' }, 'UNDERGRAD', 'students'],
  ];
  for (const [row, group, rule] of cases) {
    test(`${JSON.stringify(row)} → ${group} by "${rule}"`, () => {
      const result = written(mapOne(policy, { id: 'u1', program: 'BSC', ...row }));
      assert.equal(result.user.user_group, group);
      assert.equal(result.groupRule, rule);
    });
  }

  test('without a default, a row no rule maps is rejected naming the values the rules looked at', () => {
    const row = rejected(mapOne(policy, { id: 'u1', type: 'STUDENT', program: 'BSC', level: 'XX', library: 'n' }));
    assert.equal(row.problems.length, 1);
    assert.equal(row.problems[0]!.code, 'no_user_group');
    assert.match(row.problems[0]!.message, /^No user group rule maps this row \(.*level = 'XX'.*\)$/);
    assert.match(row.unmappedGroup!, /type = 'STUDENT'/);
  });

  test('the default group takes a row no rule maps', () => {
    const result = written(mapOne(policy.replace('user_group:\n', 'user_group:\n  default: GUEST\n'), { id: 'u1', type: 'CONTRACTOR', program: 'X' }));
    assert.equal(result.user.user_group, 'GUEST');
    assert.equal(result.groupRule, 'default');
  });

  test('a yes/no condition on a value that is neither rejects the row', () => {
    const row = rejected(mapOne(policy, { id: 'u1', type: 'STUDENT', program: 'BSC', library: 'perhaps', level: 'UG' }));
    assert.deepEqual(
      row.problems.map((p) => [p.code, p.column, p.value]),
      [['bad_boolean', 'library', 'perhaps']],
    );
  });

  const merged = `user_group:
  rules:
    - when: { role: FAC }
      group: FACULTY
    - when: { role: STAFF }
      group: STAFF
    - when: { role: UG }
      group: UNDERGRAD
    - when: { role: GR }
      group: GRAD
  priority: [FACULTY, STAFF, GRAD, UNDERGRAD]
  exceptions:
    - name: student workers
      groups: [STAFF, UNDERGRAD]
      group: UNDERGRAD
fields:
  primary_id: "{id}"
  status: { from: active, boolean: { true: ACTIVE, false: INACTIVE } }
`;
  function mergedGroup(roles: Array<[role: string, active: string]>): { group?: string; reason: string } {
    const mapping = mappingOf(merged);
    const results = mapRows(
      mapping,
      roles.map(([role, active]) => ({ id: 'p1', role, active })),
    );
    const decision = mergeUsers(
      results.map((r, i) => ({ ordinal: i + 1, label: String(i + 1), user: userOf(r), warnings: [] })),
      mapping.userGroup,
    );
    return { group: decision.user.user_group, reason: decision.reason };
  }

  test('priority: one person with several roles gets the group listed first', () => {
    assert.deepEqual(mergedGroup([['GR', 'y'], ['FAC', 'y']]), { group: 'FACULTY', reason: 'FACULTY wins over GRAD by priority' });
    assert.deepEqual(mergedGroup([['GR', 'y'], ['STAFF', 'y']]).group, 'STAFF');
  });

  test('priority goes to the active roles first', () => {
    assert.deepEqual(mergedGroup([['STAFF', 'n'], ['GR', 'y']]), { group: 'GRAD', reason: 'GRAD (the active row) wins' });
  });

  test('a named exception overrides priority', () => {
    assert.deepEqual(mergedGroup([['STAFF', 'y'], ['UG', 'y']]), { group: 'UNDERGRAD', reason: 'exception "student workers" gives UNDERGRAD' });
  });
});

describe('expiry and purge dates', () => {
  const expiryOf = (expiry: string, row: Record<string, string> = {}, runDate = RUN_DATE, extra = '') =>
    mapOne(`expiry:\n  default: ${expiry}\n${extra}`, { id: 'u1', ...row }, undefined, runDate);

  test('a fixed date', () => {
    assert.equal(userOf(expiryOf('{ date: 2027-08-31 }')).expiry_date, '2027-08-31');
  });

  test('an offset after the run date', () => {
    assert.equal(userOf(expiryOf('{ after_run: 6 months }')).expiry_date, '2027-05-21');
    assert.equal(userOf(expiryOf('{ after_run: 1 year }')).expiry_date, '2027-11-21');
    assert.equal(userOf(expiryOf('{ after_run: 30 days }')).expiry_date, '2026-12-21');
  });

  test('from a column, in its format, with a fallback when it is empty', () => {
    const rule = '{ from: ends, format: YYYYMMDD, otherwise: { after_run: 1 year } }';
    assert.equal(userOf(expiryOf(rule, { ends: '20280630' })).expiry_date, '2028-06-30');
    assert.equal(userOf(expiryOf(rule, { ends: '' })).expiry_date, '2027-11-21');
    assert.equal(rejected(expiryOf(rule, { ends: '2028-06-30' })).problems[0]!.code, 'bad_date');
  });

  const calendar = `
    term_calendar:
      - { name: Fall 2026, from: 2026-08-15, to: 2026-12-31, expires: 2027-06-30 }
      - { name: Spring 2027, from: 2027-01-01, to: 2027-05-15, expires: 2027-09-30 }
    otherwise: { end_of_year: grad_year }`;

  test('a term calendar by the run date, end_of_year from a column outside it', () => {
    assert.equal(userOf(expiryOf(calendar, { grad_year: '2029' })).expiry_date, '2027-06-30');
    assert.equal(userOf(expiryOf(calendar, { grad_year: '2029' }, '2027-01-01')).expiry_date, '2027-09-30');
    assert.equal(userOf(expiryOf(calendar, { grad_year: '2029' }, '2027-06-01')).expiry_date, '2029-12-31');
  });

  test('end_of_year with another last day, and a year that is not one', () => {
    assert.equal(userOf(expiryOf('{ end_of_year: grad_year, month_day: 06-30 }', { grad_year: '2028' })).expiry_date, '2028-06-30');
    const problem = rejected(expiryOf('{ end_of_year: grad_year }', { grad_year: 'TBD' })).problems[0]!;
    assert.deepEqual([problem.code, problem.column, problem.message], ['bad_integer', 'grad_year', "Field (grad_year) is not a year: 'TBD'"]);
  });

  test('per group, with the default for the others', () => {
    const mapping = mappingOf(`user_group:
  rules:
    - { when: { t: S }, group: STAFF }
    - { group: STUDENT }
expiry:
  STAFF: { after_run: 1 year }
  default: { date: 2027-01-31 }
`);
    const [staff, student] = mapRows(mapping, [
      { id: 'a', t: 'S' },
      { id: 'b', t: 'X' },
    ]);
    assert.equal(userOf(staff!).expiry_date, '2027-11-21');
    assert.equal(userOf(student!).expiry_date, '2027-01-31');
  });

  test('purge = expiry + N days', () => {
    assert.equal(userOf(expiryOf('{ date: 2027-12-31 }', {}, RUN_DATE, 'purge:\n  days_after_expiry: 180\n')).purge_date, '2028-06-28');
  });

  test('an expiry date before the run date is a warning; the user is still written', () => {
    const result = written(expiryOf('{ from: ends, format: YYYYMMDD }', { ends: '20250630' }));
    assert.equal(result.user.expiry_date, '2025-06-30');
    assert.deepEqual(
      result.warnings.map((w) => [w.kind, w.message]),
      [['expiry_in_past', 'expiry date 2025-06-30 is before the run date 2026-11-21']],
    );
  });
});

describe('identifiers, emails, phones and addresses', () => {
  test('an identifier that repeats another of the same user, or the primary id, is dropped with a warning', () => {
    const result = written(
      mapOne(
        `identifiers:
  - { id_type: UNIV_ID, from: sid }
  - { id_type: BARCODE, from: card }
  - { id_type: LIBRARY_ID, from: libid }
  - { id_type: OLD_ID, from: old }
`,
        { id: 'jdoe1', sid: '1001', card: '1001', libid: 'JDOE1', old: '77' },
      ),
    );
    assert.deepEqual(
      result.user.user_identifiers.map((i) => [i.id_type, i.value]),
      [
        ['UNIV_ID', '1001'],
        ['OLD_ID', '77'],
      ],
    );
    assert.deepEqual(
      result.warnings.map((w) => w.kind),
      ['duplicate_identifier', 'duplicate_identifier'],
    );
    assert.match(result.warnings[0]!.message, /identifier BARCODE '1001' repeats this user's UNIV_ID/);
    assert.match(result.warnings[1]!.message, /identifier LIBRARY_ID 'JDOE1' repeats this user's primary_id/);
  });

  const contact = `emails:
  - { email_type: school, from: [email, work_email], preferred: true }
  - { email_type: personal, from: home_email, preferred: true, on_invalid: drop }
phones:
  - { phone_type: mobile, from: [mobile, cell] }
  - { phone_type: home, from: phone }
addresses:
  - address_type: home
    line1: "{street}"
    city: "{city}"
  - address_type: work
    preferred: true
    line1: { from: [office, office_building] }
    city: "{city}"
`;

  test('fallback chains: the first column that is not empty is used', () => {
    const user = userOf(mapOne(contact, { id: 'u1', email: '', work_email: 'u1@work.example', mobile: ' ', cell: '+1 555 0100', office_building: 'Hall 2', city: 'Town' }));
    assert.deepEqual(
      user.contact_info.emails.map((e) => [e.email_address, e.email_types[0]]),
      [['u1@work.example', 'school']],
    );
    assert.equal(user.contact_info.phones[0]!.phone_number, '+1 555 0100');
    assert.deepEqual(
      user.contact_info.addresses.map((a) => [a.address_types[0], a.line1, a.city]),
      [['work', 'Hall 2', 'Town']],
      'an address without line1 is left out',
    );
  });

  test('exactly one email, phone and address is preferred: the first marked one, or else the first', () => {
    const user = userOf(
      mapOne(contact, { id: 'u1', email: 'u1@school.example', home_email: 'u1@home.example', mobile: '1', phone: '2', street: '1 Main St', office: 'Hall 2', city: 'Town' }),
    );
    assert.deepEqual(
      user.contact_info.emails.map((e) => e.preferred),
      [true, false],
    );
    assert.deepEqual(
      user.contact_info.phones.map((p) => p.preferred),
      [true, false],
      'no phone is marked preferred: the first is',
    );
    assert.deepEqual(
      user.contact_info.addresses.map((a) => [a.address_types[0], a.preferred]),
      [
        ['home', false],
        ['work', true],
      ],
    );
  });

  test('a malformed email rejects the row, or is dropped with a warning when the mapping says so; the message names the column read', () => {
    const bad = rejected(mapOne(contact, { id: 'u1', email: '', work_email: 'u1 at work' }));
    assert.deepEqual(
      bad.problems.map((p) => [p.code, p.column, p.message]),
      [['bad_email', 'work_email', "Field (work_email) is not a well-formed email address: 'u1 at work'"]],
    );
    const dropped = written(mapOne(contact, { id: 'u1', email: 'u1@school.example', home_email: 'u1@@home' }));
    assert.equal(dropped.user.contact_info.emails.length, 1);
    assert.deepEqual(
      dropped.warnings.map((w) => [w.kind, w.column]),
      [['invalid_email_dropped', 'home_email']],
    );
  });
});

describe('statistics and notes', () => {
  const blocks = `tables:
  departments: { CS: DEPT_CS, HIST: DEPT_HIST }
statistics:
  - statistic_category: { from: dept, map: departments, unknown: DEPT_OTHER }
    category_type: DEPARTMENT
notes:
  - note_type: REGISTRAR
    note_text: "Loaded {run_date} from {system}; program {program}"
    user_viewable: true
`;

  test('a code the table does not know falls back to the named code, with a warning', () => {
    const [known, unknown] = mapRows(mappingOf(blocks), [
      { id: 'a', dept: 'cs', system: 'SIS', program: 'BSC' },
      { id: 'b', dept: 'NURS', system: 'SIS', program: 'BSC' },
    ]);
    assert.deepEqual(userOf(known!).user_statistics, [{ statistic_category: 'DEPT_CS', category_type: 'DEPARTMENT' }]);
    const fallback = written(unknown!);
    assert.deepEqual(fallback.user.user_statistics, [{ statistic_category: 'DEPT_OTHER', category_type: 'DEPARTMENT' }]);
    assert.deepEqual(
      fallback.warnings.map((w) => [w.kind, w.column, w.value]),
      [['unknown_code', 'dept', 'NURS']],
    );
  });

  test('explain counts the fallbacks, with example rows', async () => {
    const dir = folder();
    const csv = path.join(dir, 'in.csv');
    writeFileSync(csv, 'id,dept,system,program\na,CS,SIS,B\nb,NURS,SIS,B\nc,ARCH,SIS,B\nd,nurs,SIS,B\n');
    const x = await explainMapping(mappingOf(blocks), [csv], { runDate: RUN_DATE });
    assert.deepEqual(
      x.unmapped.map((u) => [u.field, u.value, u.outcome, u.rows, u.examples]),
      [
        ['dept', 'NURS', 'DEPT_OTHER', 1, ['2']],
        ['dept', 'ARCH', 'DEPT_OTHER', 1, ['3']],
        ['dept', 'nurs', 'DEPT_OTHER', 1, ['4']],
      ].sort((a, b) => String(a[1]).localeCompare(String(b[1]))),
    );
    assert.equal(x.warnings.unknown_code?.rows, 3);
  });

  test('a note from template text, with the run date; a note whose column is empty is left out', () => {
    const [full, partial] = mapRows(mappingOf(blocks), [
      { id: 'a', dept: 'CS', system: 'SIS', program: 'BSC-CS' },
      { id: 'b', dept: 'CS', system: 'SIS', program: '' },
    ]);
    assert.deepEqual(userOf(full!).user_notes, [{ note_type: 'REGISTRAR', note_text: 'Loaded 2026-11-21 from SIS; program BSC-CS', user_viewable: true, popup_note: false }]);
    assert.deepEqual(userOf(partial!).user_notes, []);
  });
});

describe('allowed_codes', () => {
  test('a typo in a code the mapping writes is caught by the check, with the closest allowed code', () => {
    const dir = folder();
    const file = path.join(dir, 'typo.yaml');
    const text = `source: test
allowed_codes:
  user_group: [STAFF, STUDENT]
  id_type: [BARCODE]
fields:
  primary_id: "{id}"
user_group:
  rules:
    - when: { staff: true }
      group: STAFF
    - group: STUDNET
identifiers:
  - { id_type: BARCOED, from: card }
`;
    writeFileSync(file, text);
    const result = checkMapping(file);
    assert.equal(result.mapping, undefined);
    assert.deepEqual(result.problems.map(formatProblem), [
      `${file}:11:14: user_group.rules[1].group: "STUDNET" is not in allowed_codes.user_group; did you mean "STUDENT"?`,
      `${file}:13:16: identifiers[0].id_type: "BARCOED" is not in allowed_codes.id_type; did you mean "BARCODE"?`,
    ]);
  });

  test('a code that comes from the data and is not allowed rejects the row, naming the column', () => {
    const mapping = mappingOf(`allowed_codes:
  user_group: [STAFF, STUDENT]
user_group:
  rules:
    - group: "{kind}"
`);
    const [ok, typo] = mapRows(mapping, [
      { id: 'a', kind: 'STAFF' },
      { id: 'b', kind: 'STAF' },
    ]);
    assert.equal(userOf(ok!).user_group, 'STAFF');
    assert.deepEqual(
      rejected(typo!).problems.map((p) => [p.code, p.column, p.value, p.message]),
      [['code_not_allowed', 'kind', 'STAF', "user_group 'STAF' is not one of the codes this Alma has (allowed_codes.user_group)"]],
    );
  });
});
