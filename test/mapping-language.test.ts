// Every construct of the mapping language, each with a real mapping file (written to a temporary
// folder, with its lookup tables beside it), checked by checkMapping and applied by compileMapping
// to rows, as the pipeline does. Run date 2026-11-21 throughout.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import fc from 'fast-check';
import path from 'node:path';
import { checkMapping, formatProblem } from '../src/mapping/load.js';
import type { Mapping } from '../src/mapping/model.js';
import { compileMapping, type MapResult } from '../src/mapping/map.js';
import { rejected, written } from './helpers/map-result.js';
import { mergeUsers } from '../src/pipeline/merge.js';
import { explainMapping, formatExplanation } from '../src/review/explain.js';
import { PACKAGE_ROOT } from '../src/shared/paths.js';
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

/** What mapping check says of a mapping: its problems and warnings, without the file's folder. */
function checkOf(blocks: string): { problems: string[]; warnings: string[] } {
  const dir = folder();
  let text = 'source: test\n' + blocks;
  if (!/^fields:/m.test(blocks)) text += '\nfields:\n  primary_id: "{id}"\n';
  if (!/^user_group:/m.test(blocks)) text += '\nuser_group:\n  rules:\n    - group: PATRON\n';
  const file = path.join(dir, 'mapping.yaml');
  writeFileSync(file, text);
  const result = checkMapping(file);
  const strip = (line: string) => line.slice(file.length + 1);
  return { problems: result.problems.map(formatProblem).map(strip), warnings: result.warnings.map(formatProblem).map(strip) };
}

const PURGE = 'purge:\n  days_after_expiry: 30\n';

describe('reformatting a value', () => {
  const phoneRules = `
    replace:
      - { pattern: "^(\\\\d{3})(\\\\d{3})(\\\\d{4})$", with: "$1-$2-$3" }
      - { pattern: "^(\\\\d{3})/(\\\\d{3})-(\\\\d{4})$", with: "$1-$2-$3" }
      - { pattern: "^(\\\\d{3})-?(\\\\d{4})$", with: "510-$1-$2" }`;
  const phones = (extra = '') => `${PURGE}phones:\n  - phone_type: home\n    from: tel${phoneRules}\n${extra}`;
  const phoneOf = (tel: string, extra = '') => mapOne(phones(extra), { id: 'u1', tel });
  const numbers = (r: MapResult) => userOf(r).contact_info.phones.map((p) => p.phone_number);

  test('replace: a list of patterns applied in order, with groups ($1, $2 ...)', () => {
    assert.deepEqual(numbers(phoneOf('5555555555')), ['555-555-5555']);
    assert.deepEqual(numbers(phoneOf('510/965-1883')), ['510-965-1883']);
    assert.deepEqual(numbers(phoneOf('965-1883')), ['510-965-1883']);
    assert.deepEqual(numbers(phoneOf('9651883')), ['510-965-1883']);
    // No pattern matches and none is required to: the value passes as it is.
    assert.deepEqual(numbers(phoneOf('ext. 12')), ['ext. 12']);
    // Every match is replaced, not only the first.
    assert.equal(userOf(mapOne(`${PURGE}fields:\n  primary_id: { from: id, replace: { pattern: "[ .]", with: "-" } }\n`, { id: 'a b.c d' })).primary_id, 'a-b-c-d');
  });

  test('must_match: a value no pattern matches rejects the row (default), is dropped with a warning, or kept, as on_unfit says', () => {
    const bad = rejected(phoneOf('ext. 12', '    must_match: true\n'));
    assert.deepEqual(
      bad.problems.map((p) => [p.code, p.column, p.value, p.message]),
      [['unfit_value', 'tel', 'ext. 12', "Field (tel) matches none of the patterns of replace: 'ext. 12'"]],
    );
    const dropped = written(phoneOf('ext. 12', '    must_match: true\n    on_unfit: drop\n'));
    assert.deepEqual(dropped.user.contact_info.phones, []);
    assert.deepEqual(
      dropped.warnings.map((w) => [w.kind, w.column, w.message]),
      [['unfit_value_dropped', 'tel', "Field (tel) matches none of the patterns of replace and was left out: 'ext. 12'"]],
    );
    const kept = written(phoneOf('ext. 12', '    must_match: true\n    on_unfit: keep\n'));
    assert.deepEqual([numbers(kept), kept.warnings], [['ext. 12'], []]);
  });

  const idOf = (spec: string, id: string) => mapOne(`${PURGE}fields:\n  primary_id: "{id}"\n  job_description: ${spec}\n`, { id });

  test('substring: the first or last characters, or a slice from a position; with a fixed prefix', () => {
    assert.equal(userOf(idOf('{ from: id, substring: { last: 7 } }', 'A00123456789')).job_description, '3456789');
    assert.equal(userOf(idOf('{ from: id, substring: { last: 8 }, prefix: "LIB" }', 'A00123456789')).job_description, 'LIB23456789');
    assert.equal(userOf(idOf('{ from: id, substring: { first: 3 } }', 'A00123456789')).job_description, 'A00');
    assert.equal(userOf(idOf('{ from: id, substring: { start: 2, length: 4 } }', 'A00123456789')).job_description, '0012');
    assert.equal(userOf(idOf('{ from: id, substring: { start: 10 } }', 'A00123456789')).job_description, '789');
    // Characters, not UTF-16 halves: an emoji counts as one.
    assert.equal(userOf(idOf('{ from: id, substring: { last: 2 } }', 'ab😀c')).job_description, '😀c');
  });

  test('substring of a value too short: reject (default), drop with a warning, or keep', () => {
    const bad = rejected(idOf('{ from: id, substring: { last: 7 } }', 'A0012'));
    assert.deepEqual(
      bad.problems.map((p) => [p.code, p.column, p.message]),
      [['unfit_value', 'id', "Field (id) is too short for substring (it needs 7 characters): 'A0012'"]],
    );
    const dropped = written(idOf('{ from: id, substring: { start: 4, length: 3 }, on_unfit: drop }', 'A0012'));
    assert.equal(dropped.user.job_description, undefined);
    assert.deepEqual(dropped.warnings.map((w) => w.kind), ['unfit_value_dropped']);
    assert.equal(userOf(idOf('{ from: id, substring: { last: 7 }, on_unfit: keep, prefix: "X" }', 'A0012')).job_description, 'XA0012');
  });

  test('split: a part by its number (1 the first, -1 the last), by spaces or a separator', () => {
    assert.equal(userOf(idOf('{ from: id, split: { part: 1 } }', 'Mary  Ann Jane')).job_description, 'Mary');
    assert.equal(userOf(idOf('{ from: id, split: { part: -1 } }', 'Mary  Ann Jane')).job_description, 'Jane');
    assert.equal(userOf(idOf('{ from: id, split: { by: ",", part: 2 } }', 'Smith,John')).job_description, 'John');
    const bad = rejected(idOf('{ from: id, split: { by: ",", part: 2 } }', 'Smith'));
    assert.deepEqual(bad.problems.map((p) => p.message), ["Field (id) has no part 2 when split by ',': 'Smith'"]);
    assert.equal(userOf(idOf('{ from: id, split: { by: ",", part: 2 }, on_unfit: keep }', 'Smith')).job_description, 'Smith');
  });

  test('pad: to a width, with "0" on the left by default; a longer value is left whole', () => {
    assert.equal(userOf(idOf('{ from: id, pad: { width: 8 } }', '123')).job_description, '00000123');
    assert.equal(userOf(idOf('{ from: id, pad: { width: 5, with: "_", side: right } }', 'ab')).job_description, 'ab___');
    assert.equal(userOf(idOf('{ from: id, pad: { width: 2 } }', '12345')).job_description, '12345');
  });

  test('the order: strip_prefix, replace, split, substring, pad, case, map, phone, prefix', () => {
    const spec = '{ from: id, strip_prefix: "ID-", replace: { pattern: "-", with: "" }, substring: { last: 4 }, pad: { width: 6 }, prefix: "p", case: upper }';
    assert.equal(userOf(idOf(spec, 'ID-12-345')).job_description, 'p002345');
    const mapped = '{ from: id, split: { part: 1 }, case: lower, map: { fac: FACULTY }, prefix: "X-" }';
    assert.equal(userOf(idOf(mapped, 'FAC member')).job_description, 'X-FACULTY');
  });

  test('unless_same_as: a preferred name only when it is not the legal name (ignore_case compares without case)', () => {
    const blocks = `${PURGE}fields:
  primary_id: "{id}"
  first_name: "{first}"
  pref_first_name: { from: preferred, unless_same_as: first, ignore_case: true }
  pref_last_name: { from: preferred_last, unless_same_as: { template: "{last}" } }
`;
    const same = userOf(mapOne(blocks, { id: 'u1', first: 'Ada', preferred: 'ADA', last: 'Byron', preferred_last: 'Byron' }));
    assert.deepEqual([same.pref_first_name, same.pref_last_name], [undefined, undefined]);
    const other = userOf(mapOne(blocks, { id: 'u1', first: 'Ada', preferred: 'Addie', last: 'Byron', preferred_last: 'BYRON' }));
    assert.deepEqual([other.pref_first_name, other.pref_last_name], ['Addie', 'BYRON']);
    const legalEmpty = userOf(mapOne(blocks, { id: 'u1', first: '', preferred: 'Addie' }));
    assert.equal(legalEmpty.pref_first_name, 'Addie');
    // A plain name is a column; a text with braces is a template.
    const template = `${PURGE}fields:\n  primary_id: "{id}"\n  pref_last_name: { from: preferred_last, unless_same_as: "{last}-{id}" }\n`;
    assert.equal(userOf(mapOne(template, { id: 'u1', last: 'Byron', preferred_last: 'Byron-u1' })).pref_last_name, undefined);
    assert.equal(userOf(mapOne(template, { id: 'u1', last: 'Byron', preferred_last: 'Byron' })).pref_last_name, 'Byron');
  });
});

describe('phone numbers', () => {
  const phoneOf = (phone: string, tel: string) => mapOne(`${PURGE}phones:\n  - { phone_type: home, from: tel, phone: ${phone} }\n`, { id: 'u1', tel });
  const numbers = (r: MapResult) => userOf(r).contact_info.phones.map((p) => p.phone_number);

  test('in E.164 (the default), national or international form, for a default region', () => {
    assert.deepEqual(numbers(phoneOf('{ region: US }', '(510) 965-1883')), ['+15109651883']);
    assert.deepEqual(numbers(phoneOf('{ region: US, format: e164 }', '510/965-1883')), ['+15109651883']);
    assert.deepEqual(numbers(phoneOf('{ region: US, format: national }', '510.965.1883')), ['(510) 965-1883']);
    assert.deepEqual(numbers(phoneOf('{ region: US, format: international }', '5109651883')), ['+1 510 965 1883']);
    // A number with its own country code keeps it.
    assert.deepEqual(numbers(phoneOf('{ region: US, format: international }', '+44 20 7946 0958')), ['+44 20 7946 0958']);
  });

  test('a value that is not a phone number: rejected (default) or dropped naming column and value, or kept', () => {
    const bad = rejected(phoneOf('{ region: US }', 'n/a'));
    assert.deepEqual(
      bad.problems.map((p) => [p.code, p.column, p.value, p.message]),
      [['bad_phone', 'tel', 'n/a', "Field (tel) is not a phone number (region US): 'n/a'"]],
    );
    const dropped = written(phoneOf('{ region: US, on_invalid: drop }', '555-555'));
    assert.deepEqual(dropped.user.contact_info.phones, []);
    assert.deepEqual(
      dropped.warnings.map((w) => [w.kind, w.column, w.value, w.message]),
      [['invalid_phone_dropped', 'tel', '555-555', "Field (tel) is not a phone number (region US) and was left out: '555-555'"]],
    );
    assert.deepEqual(numbers(phoneOf('{ region: US, on_invalid: keep }', 'ext 12')), ['ext 12']);
  });
});

describe('dates that depend on the row and the run date', () => {
  const expiryOf = (expiry: string, row: Record<string, string> = {}, runDate = RUN_DATE, extra = PURGE) =>
    mapOne(`expiry:\n  default: ${expiry}\n${extra}`, { id: 'u1', ...row }, undefined, runDate);

  test('rules: the first whose when holds gives the date; otherwise when none does', () => {
    const rules = `
    rules:
      - { name: cancelled, when: { status: CANCELLED }, run_date: true }
      - { when: { level: GR }, after_run: 2 years }
      - { when: { level: UG }, from: ends, format: YYYYMMDD }
    otherwise: { after_run: 1 year }`;
    assert.equal(userOf(expiryOf(rules, { status: 'cancelled', level: 'GR' })).expiry_date, RUN_DATE);
    assert.equal(userOf(expiryOf(rules, { status: 'ACTIVE', level: 'GR' })).expiry_date, '2028-11-21');
    assert.equal(userOf(expiryOf(rules, { level: 'UG', ends: '20290630' })).expiry_date, '2029-06-30');
    // The rule that holds gives no date (an empty column): otherwise does.
    assert.equal(userOf(expiryOf(rules, { level: 'UG', ends: '' })).expiry_date, '2027-11-21');
    assert.equal(userOf(expiryOf(rules, { level: 'XX' })).expiry_date, '2027-11-21');
  });

  test('next: a day of the year counted from the run date, one year more from a day of the year on', () => {
    const rule = '{ next: { month_day: 10-31, years: 1, from: 07-01 } }';
    assert.equal(userOf(expiryOf(rule, {}, '2026-03-01')).expiry_date, '2027-10-31');
    assert.equal(userOf(expiryOf(rule, {}, '2026-06-30')).expiry_date, '2027-10-31');
    assert.equal(userOf(expiryOf(rule, {}, '2026-07-01')).expiry_date, '2028-10-31');
    assert.equal(userOf(expiryOf(rule, {}, '2026-12-31')).expiry_date, '2028-10-31');
    // "The next 30 June": this year's until June begins, then next year's.
    const june = '{ next: { month_day: 06-30, years: 0, from: 06-01 } }';
    assert.equal(userOf(expiryOf(june, {}, '2026-05-31')).expiry_date, '2026-06-30');
    assert.equal(userOf(expiryOf(june, {}, '2026-06-01')).expiry_date, '2027-06-30');
    // years defaults to 1, from to none.
    assert.equal(userOf(expiryOf('{ next: { month_day: 08-31 } }', {}, '2026-11-21')).expiry_date, '2027-08-31');
  });

  test('purge: years and months after expiry by the calendar (29 February, month ends)', () => {
    const purgeOf = (expiry: string, purge: string) => userOf(expiryOf(`{ date: ${expiry} }`, {}, RUN_DATE, `purge:\n  default: ${purge}\n`)).purge_date;
    assert.equal(purgeOf('2028-02-29', '{ after_expiry: 1 year }'), '2029-02-28');
    assert.equal(purgeOf('2028-02-29', '{ after_expiry: 4 years }'), '2032-02-29');
    assert.equal(purgeOf('2027-01-31', '{ after_expiry: 1 month }'), '2027-02-28');
    assert.equal(purgeOf('2027-12-31', '{ after_expiry: 6 months }'), '2028-06-30');
    assert.equal(purgeOf('2027-12-31', '{ after_expiry: 2 weeks }'), '2028-01-14');
    // days_after_expiry still works, and is the same as after_expiry in days.
    assert.equal(userOf(expiryOf('{ date: 2027-12-31 }', {}, RUN_DATE, 'purge:\n  days_after_expiry: 180\n')).purge_date, '2028-06-28');
  });

  test('purge: from a column, per group with a default, by rules; after_expiry without an expiry date gives none', () => {
    const mapping = mappingOf(`user_group:
  rules:
    - { when: { t: S }, group: STAFF }
    - { when: { t: G }, group: GUEST }
    - { group: STUDENT }
expiry:
  STAFF: { after_run: 1 year }
  STUDENT: { date: 2027-06-30 }
purge:
  STAFF: { from: leaves, format: DD.MM.YYYY, otherwise: { after_expiry: 1 year } }
  STUDENT:
    rules:
      - { when: { level: GR }, after_expiry: 2 years }
    otherwise: { after_expiry: 6 months }
  default: { after_expiry: 30 days }
`);
    const rows = mapRows(mapping, [
      { id: 'a', t: 'S', leaves: '31.01.2029' },
      { id: 'b', t: 'S', leaves: '' },
      { id: 'c', t: 'X', level: 'GR' },
      { id: 'd', t: 'X', level: 'UG' },
      { id: 'e', t: 'G' },
    ]);
    assert.deepEqual(
      rows.map((r) => userOf(r).purge_date),
      ['2029-01-31', '2028-11-21', '2029-06-30', '2027-12-30', undefined],
    );
  });
});

describe('mapping check on values and dates', () => {
  test('a misspelt purge key is named with the closest; a rules item without a way of setting the date is a problem', () => {
    assert.deepEqual(checkOf('purge:\n  defualt: { after_expiry: 1 year }\nexpiry:\n  default:\n    rules: [ { when: { a: b } } ]\n').problems, [
      '3:3: purge.defualt: "defualt" is not a key of purge; did you mean "default"? (other keys are user group codes)',
      '6:14: expiry.default.rules[0]: say how the date is set: date, after_run, after_expiry, run_date, next, from, end_of_year or term_calendar',
    ]);
  });

  test('no purge date is a warning, not a problem; per group without a default names the groups left without one', () => {
    assert.deepEqual(checkOf('expiry:\n  default: { after_run: 1 year }\n'), {
      problems: [],
      warnings: ['1:1: no purge block: Alma never purges a user without a purge date; add one, e.g. purge: { default: { after_expiry: 1 year } }'],
    });
    const groups = 'allowed_codes:\n  user_group: [PATRON, STAFF, GUEST]\n';
    assert.deepEqual(checkOf(`${groups}purge:\n  PATRON: { after_expiry: 1 year }\n`), {
      problems: [],
      warnings: ['4:1: purge: users of STAFF, GUEST get no purge date, and Alma never purges them; add default'],
    });
    assert.deepEqual(checkOf(`${groups}purge:\n  PATRON: { after_expiry: 1 year }\n  STAFF: { after_expiry: 1 year }\n  GUEST: { run_date: true }\n`), { problems: [], warnings: [] });
    assert.deepEqual(checkOf('purge:\n  days_after_expiry: 30\n'), { problems: [], warnings: [] });
  });

  test('each new construct is checked, with line:column and the closest name', () => {
    const { problems } = checkOf(`purge:
  days_after_expiry: 30
  default: { after_expiry: 1 year }
expiry:
  default: { after_expiry: 1 year }
  PATRON: { next: { month_day: 02-30, from: 13-01 } }
fields:
  primary_id: { from: id, replace: { pattern: "(", with: "" }, must_match: true }
  first_name: { from: first, must_match: true, ignore_case: true, on_unfit: keep }
  last_name: { from: last, substring: { first: 2, last: 3 } }
  user_title: { from: title, substring: { last: 2, length: 1 } }
phones:
  - { phone_type: home, from: tel, phone: { region: UK } }
  - { phone_type: work, from: tel, phone: { region: ZZ }, boolean: { true: a, false: b } }
`);
    assert.deepEqual(problems, [
      '3:3: purge.days_after_expiry: give days_after_expiry or default, not both (days_after_expiry is the default for every group)',
      '6:14: expiry.default.after_expiry: after_expiry is for purge dates; an expiry date counts from the run date (after_run)',
      '7:32: expiry.PATRON.next.month_day: 02-30 is not a month and day',
      '7:45: expiry.PATRON.next.from: 13-01 is not a month and day',
      '9:47: fields.primary_id.replace.pattern: not a valid regular expression: Invalid regular expression: /(/gu: Unterminated group',
      '10:30: fields.first_name.must_match: must_match goes with replace',
      '10:48: fields.first_name.ignore_case: ignore_case goes with unless_same_as',
      '10:67: fields.first_name.on_unfit: on_unfit goes with replace (must_match), split or substring: it says what a value they cannot handle becomes',
      '11:39: fields.last_name.substring: give one of first, last or start, not first and last',
      '12:52: fields.user_title.substring.length: length goes with start',
      '14:53: phones[0].phone.region: "UK" is not a country code libphonenumber knows; did you mean "GB"?',
      '15:36: phones[1].phone: a value is either a phone number or a yes/no value, not both',
      '15:53: phones[1].phone.region: "ZZ" is not a country code libphonenumber knows; did you mean "AZ"?',
    ]);
  });
});

describe('explain on values and dates', () => {
  test('shows the expiry and purge dates each group gets, and the phones and ids dropped or rejected', async () => {
    const dir = path.join(PACKAGE_ROOT, 'test', 'golden', 'values-dates');
    const x = await explainMapping(checkMapping(path.join(dir, 'mapping.yaml')).mapping!, [path.join(dir, 'people.csv')], { runDate: RUN_DATE });
    assert.deepEqual(x.expiry.STUDENT?.dates, { '2026-11-21': 1, '2028-10-31': 1 });
    assert.deepEqual(x.purge.STUDENT?.dates, { '2026-12-21': 1, '2029-04-30': 1 });
    assert.deepEqual(x.purge.STAFF?.dates, { '2028-01-31': 1 });
    assert.deepEqual(Object.keys(x.warnings).sort(), ['invalid_phone_dropped', 'unfit_value_dropped']);
    assert.deepEqual(
      x.reasons.map((r) => [r.code, r.column, r.rows]),
      [['bad_phone', 'home_phone', 1]],
    );
    const text = formatExplanation(x);
    const from = text.indexOf('Purge dates per group:');
    assert.deepEqual(text.slice(from, from + 3), ['Purge dates per group:', '  STAFF            2028-01-31 (1)', '  STUDENT          2026-12-21 (1), 2029-04-30 (1)']);
    assert.ok(text.includes('  a value that is not a phone number was left out (phone: on_invalid: drop): 1 row, e.g. row 3'));
  });
});

describe('no value makes the new constructs throw', () => {
  test('any text through replace, split, substring, pad, phone and unless_same_as gives a user or named problems', () => {
    const mapping = mappingOf(`${PURGE}fields:
  primary_id: { value: u1 }
  first_name: { from: a, split: { part: -2 }, on_unfit: drop }
  pref_first_name: { from: a, unless_same_as: b, ignore_case: true }
  last_name: { from: a, replace: [ { pattern: "^(\\\\d{3})(\\\\d+)$", with: "$2-$1" }, { pattern: "\\\\s", with: "" } ], must_match: true, on_unfit: keep }
  job_description: { from: a, substring: { start: 3, length: 4 }, pad: { width: 9, with: "*", side: right } }
phones:
  - { phone_type: home, from: b, phone: { region: GB, format: international, on_invalid: reject } }
  - { phone_type: work, from: a, phone: { region: US, on_invalid: drop } }
`);
    const mapper = compileMapping(mapping, ['a', 'b'], RUN_DATE);
    const text = fc.string({ unit: fc.oneof(fc.constantFrom('0', '1', '5', '+', '(', ')', '-', '/', ' ', '\t', 'é', '😀', '\uD800', 'x'), fc.string({ unit: 'binary', maxLength: 1 })), maxLength: 20 });
    fc.assert(
      fc.property(text, text, (a, b) => {
        const result = mapper.map([a, b]);
        const codes = result.ok ? [] : result.problems.map((p) => p.code);
        assert.ok(codes.every((c) => c === 'unfit_value' || c === 'bad_phone' || c === 'too_long'), JSON.stringify(codes));
        for (const w of result.warnings) assert.ok(['unfit_value_dropped', 'invalid_phone_dropped', 'stripped_characters'].includes(w.kind), w.kind);
      }),
      { seed: 20261121, numRuns: 2000 },
    );
  });
});
