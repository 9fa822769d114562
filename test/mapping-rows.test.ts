// The row mapper's own paths that only the CLI's child processes reached before, so that a
// mutation run (which sees coverage in the test file's own process) left them unmeasured: a
// record with the wrong number of fields, the primary id and identifier count the merge index
// reads, invisible characters, the length limit, conditions that reject a row once per column,
// and the optional parts of emails, statistics and blocks. Each through compileMapping, with a
// mapping checked by checkMappingText, as the pipeline does. Run date 2026-11-21.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { checkMappingText, formatProblem } from '../src/mapping/load.js';
import type { Mapping } from '../src/mapping/model.js';
import { compileMapping, invisibleCharacter, isWellFormedEmail, parseBoolean, type MapResult } from '../src/mapping/map.js';
import { rejected, written } from './helpers/map-result.js';

const RUN_DATE = '2026-11-21';

function mappingOf(blocks: string): Mapping {
  let text = 'source: test\n' + blocks;
  if (!/^fields:/m.test(blocks)) text += '\nfields:\n  primary_id: "{id}"\n';
  if (!/^user_group:/m.test(blocks)) text += '\nuser_group:\n  rules:\n    - group: PATRON\n';
  const result = checkMappingText(text, 'mapping.yaml');
  assert.deepEqual(result.problems.map(formatProblem), [], text);
  return result.mapping!;
}

function mapOne(blocks: string, row: Record<string, string>): MapResult {
  const header = Object.keys(row);
  return compileMapping(mappingOf(blocks), header, RUN_DATE).map(header.map((h) => row[h]!));
}

describe('a record as read, and what the merge index reads of a row', () => {
  const mapping = mappingOf(`identifiers:
  - { id_type: UNIV_ID, from: sid }
  - { id_type: BARCODE, from: card }
`);
  const mapper = compileMapping(mapping, ['id', 'sid', 'card'], RUN_DATE);

  test('a record with more or fewer fields than the header is rejected whole, with its primary id when it has one', () => {
    assert.deepEqual(mapper.mapRecord(['u1']), {
      ok: false,
      primary_id: 'u1',
      problems: [{ code: 'ragged_row', message: 'The row has 1 field but the header has 3; a field may hold an unquoted comma or line break' }],
      warnings: [],
    });
    const four = mapper.mapRecord(['u\u00012', 'a', 'b', 'c']);
    assert.deepEqual(four, {
      ok: false,
      primary_id: 'u2',
      problems: [{ code: 'ragged_row', message: 'The row has 4 fields but the header has 3; a field may hold an unquoted comma or line break' }],
      warnings: [],
    });
    assert.equal(rejected(mapper.mapRecord(['', 'a'])).primary_id, undefined);
    assert.equal(written(mapper.mapRecord(['u1', '1001', ''])).user.primary_id, 'u1');
  });

  test('primaryId: the id with the characters XML forbids removed; none when it is empty or reading it raised a problem', () => {
    assert.equal(mapper.primaryId(['u\u00011', '', '']), 'u1');
    assert.equal(mapper.primaryId([' ', '', '']), undefined);
    // The first rule's date condition cannot read 'soon' (a problem); the otherwise gives an id all the same.
    const dated = compileMapping(
      mappingOf(`fields:
  primary_id: { rules: [ { when: { start: { before: run_date } }, value: "{id}" } ], otherwise: "{id}" }
`),
      ['id', 'start'],
      RUN_DATE,
    );
    assert.equal(dated.primaryId(['u1', '2026-01-01']), 'u1');
    assert.equal(dated.primaryId(['u1', '']), 'u1');
    assert.equal(dated.primaryId(['u1', 'soon']), undefined);
  });

  test('identifierCount: how many identifiers have a value', () => {
    assert.equal(mapper.identifierCount(['u1', '1001', '']), 1);
    assert.equal(mapper.identifierCount(['u1', '1001', 'C1']), 2);
    assert.equal(mapper.identifierCount(['u1', ' ', '']), 0);
  });

  test('map() of a row shorter or longer than the header: a missing cell is empty, an extra cell is named by its position', () => {
    const m = compileMapping(mappingOf(`fields:\n  primary_id: "{id}"\n  first_name: { from: name }\n`), ['id', 'name'], RUN_DATE);
    const short = written(m.map(['u1']));
    assert.equal(short.user.first_name, undefined);
    const long = written(m.map(['u1', 'Ada', 'x\u0001y']));
    assert.equal(long.user.first_name, 'Ada');
    assert.deepEqual(long.warnings, [{ kind: 'stripped_characters', message: 'Field (#3) had 1 character(s) that XML cannot carry (U+0001); removed', column: undefined }]);
  });
});

test('invisibleCharacter names the column, the first invisible character (code and name) and where it is, and shows every one', () => {
  assert.deepEqual(invisibleCharacter('ab\u200Bc\uFEFF', 'netid'), {
    code: 'invisible_character',
    message: "Field (netid) holds an invisible character, U+200B ZERO WIDTH SPACE, at character 3: 'ab<U+200B>c<U+FEFF>' (nobody can see or type it at a login; remove it in the SIS)",
    column: 'netid',
    value: 'ab<U+200B>c<U+FEFF>',
  });
  assert.equal(invisibleCharacter('abc', 'netid'), undefined);
});

test('each invisible character is named as Unicode names it', () => {
  const names = {
    '\u061C': 'ARABIC LETTER MARK',
    '\u200B': 'ZERO WIDTH SPACE',
    '\u200C': 'ZERO WIDTH NON-JOINER',
    '\u200D': 'ZERO WIDTH JOINER',
    '\u200E': 'LEFT-TO-RIGHT MARK',
    '\u200F': 'RIGHT-TO-LEFT MARK',
    '\u202A': 'LEFT-TO-RIGHT EMBEDDING',
    '\u202B': 'RIGHT-TO-LEFT EMBEDDING',
    '\u202C': 'POP DIRECTIONAL FORMATTING',
    '\u202D': 'LEFT-TO-RIGHT OVERRIDE',
    '\u202E': 'RIGHT-TO-LEFT OVERRIDE',
    '\u2060': 'WORD JOINER',
    '\u2066': 'LEFT-TO-RIGHT ISOLATE',
    '\u2067': 'RIGHT-TO-LEFT ISOLATE',
    '\u2068': 'FIRST STRONG ISOLATE',
    '\u2069': 'POP DIRECTIONAL ISOLATE',
    '\uFEFF': 'ZERO WIDTH NO-BREAK SPACE (byte order mark)',
  };
  for (const [ch, name] of Object.entries(names)) {
    const code = `U+${ch.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
    assert.equal(invisibleCharacter(`a${ch}`, 'netid')?.message.split(', at character')[0], `Field (netid) holds an invisible character, ${code} ${name}`);
  }
  // Four hex digits, also where the code has three; every one shown.
  assert.equal(invisibleCharacter('\u061Cx\u061C', 'netid')?.value, '<U+061C>x<U+061C>');
  // The characters around the ranges are not invisible.
  for (const ch of ['\u061B', '\u200A', '\u2010', '\u2029', '\u202F', '\u205F', '\u2061', '\u2065', '\u206A', '\uFEFE', 'x']) assert.equal(invisibleCharacter(`a${ch}`, 'netid'), undefined, ch);
});

test('a template with {run_date} writes the run date', () => {
  assert.equal(written(mapOne(`fields:\n  primary_id: "{id}"\n  job_description: "loaded {run_date} for {id}"\n`, { id: 'u1' })).user.job_description, 'loaded 2026-11-21 for u1');
});

test('a value longer than Alma takes rejects the row, naming the column, the length and the limit, and showing its first 40 characters', () => {
  const problems = rejected(mapOne(`fields:\n  primary_id: "{id}"\n  first_name: { from: name }\n`, { id: 'u1', name: 'x'.repeat(250) + 'abcdef' })).problems;
  assert.deepEqual(problems, [{ code: 'too_long', message: 'Field (name) is 256 characters; Alma takes at most 255 for first_name', column: 'name', value: 'x'.repeat(40) + '...' }]);
});

describe('conditions that cannot read a cell reject the row once per column and kind', () => {
  const mapping = mappingOf(`reject:
  - { name: born before, when: { born: { before: run_date } }, message: b }
  - { name: born before (other format), when: { born: { before: run_date, format: DD.MM.YYYY } }, message: c }
  - { name: born is, when: { born: { is: true } }, message: a }
  - { name: left is, when: { left: { is: true } }, message: g }
  - { name: left before, when: { left: { before: run_date } }, message: d }
  - { name: born is not, when: { born: { is: false } }, message: e }
`);
  test('one bad_date and one bad_boolean a column, whatever the other columns and kinds hold', () => {
    const header = ['id', 'born', 'left'];
    const result = rejected(compileMapping(mapping, header, RUN_DATE).map(['u1', 'xx', 'yy']));
    assert.deepEqual(
      result.problems.map((p) => [p.code, p.column, p.message]),
      [
        ['bad_date', 'born', "Field (born) is not a date in the form YYYY-MM-DD: 'xx'"],
        ['bad_boolean', 'born', "Field (born) is not a yes/no value: 'xx' (expected y, yes, true, 1, n, no, false or 0)"],
        ['bad_boolean', 'left', "Field (left) is not a yes/no value: 'yy' (expected y, yes, true, 1, n, no, false or 0)"],
        ['bad_date', 'left', "Field (left) is not a date in the form YYYY-MM-DD: 'yy'"],
      ],
    );
  });

  test('on_or_before holds on the day itself and before it', () => {
    const m = mappingOf(`user_group:
  rules:
    - { when: { d: { on_or_before: 2026-01-01 } }, group: OLD }
  default: NEW
`);
    const mapper = compileMapping(m, ['id', 'd'], RUN_DATE);
    assert.deepEqual(
      ['2025-12-31', '2026-01-01', '2026-01-02'].map((d) => written(mapper.map(['u1', d])).user.user_group),
      ['OLD', 'OLD', 'NEW'],
    );
  });
});

test('the same problem from two fields that read one column is told once', () => {
  const problems = rejected(
    mapOne(
      `fields:
  primary_id: "{id}"
  status: { from: active, boolean: { true: ACTIVE, false: INACTIVE } }
  job_category: { from: active, boolean: { true: A, false: B } }
`,
      { id: 'u1', active: 'maybe' },
    ),
  ).problems;
  assert.deepEqual(problems.map((p) => p.message), ["Field (active) is not a yes/no value: 'maybe' (expected y, yes, true, 1, n, no, false or 0)"]);
});

test("an email's description, a statistic's note and a block's status are written as the mapping gives them", () => {
  const user = written(
    mapOne(
      `emails:
  - { email_type: school, from: email, description: campus mail }
statistics:
  - { statistic_category: { from: dept }, statistic_note: from the SIS }
user_blocks:
  - { block_description: { from: hold }, block_status: Inactive }
`,
      { id: 'u1', email: 'u1@example.edu', dept: 'CS', hold: '03' },
    ),
  ).user;
  assert.deepEqual(user.contact_info.emails, [{ preferred: true, email_address: 'u1@example.edu', description: 'campus mail', email_types: ['school'] }]);
  assert.deepEqual(user.user_statistics, [{ statistic_category: 'CS', statistic_note: 'from the SIS' }]);
  assert.deepEqual(user.user_blocks, [{ block_description: '03', block_status: 'Inactive' }]);
});

test('an identifier that repeats another of its own type is left out without a warning; one that repeats the primary id is warned about', () => {
  const blocks = `identifiers:
  - { id_type: BARCODE, from: a }
  - { id_type: BARCODE, from: b }
  - { id_type: primary_id, from: c }
`;
  const result = written(mapOne(blocks, { id: 'u1', a: '123', b: '123', c: 'U1' }));
  assert.deepEqual(result.user.user_identifiers, [{ id_type: 'BARCODE', value: '123' }]);
  assert.deepEqual(result.warnings.map((w) => w.message), ["identifier primary_id 'U1' repeats this user's primary_id and was left out"]);
});

describe('a row without a primary id', () => {
  test('an empty id column rejects the row, naming the column', () => {
    assert.deepEqual(rejected(mapOne('', { id: ' ' })).problems, [{ code: 'missing_value', message: 'Field (id) is empty: a user needs a primary id', column: 'id' }]);
  });

  test('a primary id from rules, none of which holds, names the field, not a column the rules test (it has a value)', () => {
    const result = rejected(mapOne('fields:\n  primary_id: { rules: [ { when: { type: { equals: X } }, value: "{id}" } ] }\n', { id: 'u1', type: 'Y' }));
    assert.deepEqual(result.problems, [{ code: 'missing_value', message: 'Field (primary_id) is empty: a user needs a primary id', column: undefined }]);
  });
});

test('substring and pad count characters in a value of emoji alone, as in any other', () => {
  const user = written(
    mapOne(
      `fields:
  primary_id: "{id}"
  first_name: { from: a, substring: { first: 1 } }
  last_name: { from: a, pad: { width: 4, with: "*", side: right } }
`,
      { id: 'u1', a: '\u{1F600}\u{1F601}' },
    ),
  ).user;
  assert.equal(user.first_name, '\u{1F600}');
  assert.equal(user.last_name, '\u{1F600}\u{1F601}**');
});

test('a required value with no column to name (inner rules whose conditions test the file name) is named by its field', () => {
  const problems = rejected(
    mapOne(
      `fields:
  primary_id: "{id}"
  job_description: { rules: [ { when: { a: { equals: x } }, value: { rules: [ { when: { input_file: "*.txt" }, value: X } ], required: true } } ] }
`,
      { id: 'u1', a: 'x' },
    ),
  ).problems;
  assert.deepEqual(problems, [{ code: 'missing_value', message: 'Field (job_description) is required but empty', column: undefined }]);
});

test('split with no "by" cuts at any run of spaces', () => {
  const user = written(mapOne(`fields:\n  primary_id: "{id}"\n  last_name: { from: name, split: { part: 2 } }\n`, { id: 'u1', name: 'Ada  \t Lovelace' })).user;
  assert.equal(user.last_name, 'Lovelace');
});

test('well-formed email addresses: the whole text, labels of letters and digits with inner hyphens, at most 254 characters', () => {
  const ok = ['a@x.nz', 'a@1x.nz', 'a@x1y.nz', 'a@x12y.nz', 'a@x1.nz', 'a@x-y.nz', 'a@x.y.nz', 'a@x.1nz', 'a@xx.y', 'a@x.n1z', 'a@x.n1', 'ä@bücher.de'];
  const bad = ['a b@x.nz', 'a@x.nz!', 'a@x', 'a@-x.nz', 'a@x-.nz', 'a@x..nz', 'a@x.nz.', 'a@@x.nz', '"a"@x.nz'];
  assert.deepEqual(ok.filter((e) => !isWellFormedEmail(e)), []);
  assert.deepEqual(bad.filter((e) => isWellFormedEmail(e)), []);
  const at254 = 'a'.repeat(254 - '@x.nz'.length) + '@x.nz';
  assert.equal(isWellFormedEmail(at254), true);
  assert.equal(isWellFormedEmail('a' + at254), false);
});

test('yes/no values: any case, surrounding spaces ignored', () => {
  assert.deepEqual([' YES ', 'True', 'y', '1'].map(parseBoolean), [true, true, true, true]);
  assert.deepEqual([' No', 'FALSE', 'n', '0'].map(parseBoolean), [false, false, false, false]);
  assert.deepEqual(['maybe', '', '2'].map(parseBoolean), [undefined, undefined, undefined]);
});

test('without a file name an input_file condition holds for no file, not even for a pattern any name matches', () => {
  const mapping = mappingOf(`user_group:
  rules:
    - { when: { input_file: "?*" }, group: NAMED }
  default: OTHER
`);
  assert.equal(written(compileMapping(mapping, ['id'], RUN_DATE).map(['u1'])).user.user_group, 'OTHER');
  assert.equal(written(compileMapping(mapping, ['id'], RUN_DATE, 'in/x.csv').map(['u1'])).user.user_group, 'NAMED');
});

test('a header that names a column twice: the first is read', () => {
  const mapping = mappingOf(`fields:\n  primary_id: "{id}"\n  first_name: { from: name }\n`);
  assert.equal(written(compileMapping(mapping, ['id', 'name', 'name'], RUN_DATE).map(['u1', 'Ada', 'Bo'])).user.first_name, 'Ada');
});

test("the columns a mapping reads that the file's header lacks are told, and read as empty", () => {
  const mapping = mappingOf(`fields:\n  primary_id: "{id}"\n  first_name: { from: [name, given] }\n  last_name: { from: surname }\n`);
  const mapper = compileMapping(mapping, ['id', 'surname'], RUN_DATE);
  assert.deepEqual(mapper.absentColumns, ['name', 'given']);
  const user = written(mapper.map(['u1', 'Lee'])).user;
  assert.deepEqual([user.first_name, user.last_name], [undefined, 'Lee']);
});

test("a value from rules is named by the column the held rule's value read, not by a column the rules test", () => {
  const blocks = `fields:
  primary_id: "{id}"
  job_category: { rules: [ { when: { type: { equals: S } }, value: { from: code } }, { when: { type: { equals: T } }, value: Z } ], map: { A: X } }
`;
  assert.deepEqual(rejected(mapOne(blocks, { id: 'u1', type: 'S', code: 'B' })).problems, [
    { code: 'bad_value', message: "Field (code) has a value the mapping does not know: 'B' (not in the map at fields.job_category)", column: 'code', value: 'B' },
  ]);
  // A rule's fixed value read no column: the rules' first is named.
  assert.deepEqual(rejected(mapOne(blocks, { id: 'u1', type: 'T', code: 'B' })).problems, [
    { code: 'bad_value', message: "Field (type) has a value the mapping does not know: 'Z' (not in the map at fields.job_category)", column: 'type', value: 'Z' },
  ]);
});

test('a value that strip_prefix or replace leaves empty is empty: the otherwise decides', () => {
  const blocks = `fields:
  primary_id: "{id}"
  first_name: { from: a, strip_prefix: "n/a", otherwise: NONE }
  middle_name: { from: a, replace: { pattern: "[^0-9]", with: "" }, otherwise: NODIGITS }
`;
  const user = written(mapOne(blocks, { id: 'u1', a: 'n/a' })).user;
  assert.deepEqual([user.first_name, user.middle_name], ['NONE', 'NODIGITS']);
});

test('a value that substring leaves blank is empty: the otherwise decides', () => {
  const blocks = `fields:
  primary_id: "{id}"
  last_name: { from: b, substring: { start: 2, length: 1 }, otherwise: BLANK }
  pref_first_name: { from: b, substring: { start: 1, length: 1 }, otherwise: BLANK }
`;
  const user = written(mapOne(blocks, { id: 'u1', b: 'x y' })).user;
  assert.deepEqual([user.last_name, user.pref_first_name], ['BLANK', 'x']);
});

test('trim: false keeps the spaces that strip_prefix leaves', () => {
  const user = written(mapOne(`fields:\n  primary_id: "{id}"\n  first_name: { from: a, strip_prefix: "X", trim: false }\n`, { id: 'u1', a: 'X a ' })).user;
  assert.equal(user.first_name, ' a ');
});

test('the spaces strip_prefix leaves are trimmed (trim is on unless the mapping turns it off)', () => {
  const user = written(mapOne(`fields:\n  primary_id: "{id}"\n  first_name: { from: a, strip_prefix: "ID:" }\n`, { id: 'u1', a: 'ID: 42' })).user;
  assert.equal(user.first_name, '42');
});

test('split: the part is trimmed; a missing part is unfit, the message naming how the value was split', () => {
  const blocks = `fields:
  primary_id: "{id}"
  first_name: { from: a, split: { by: ",", part: 2 } }
  last_name: { from: b, split: { part: 3 } }
`;
  assert.equal(written(mapOne(blocks, { id: 'u1', a: 'Lovelace, Ada', b: 'x y z' })).user.first_name, 'Ada');
  assert.deepEqual(rejected(mapOne(blocks, { id: 'u1', a: 'Lovelace, Ada', b: 'x y' })).problems.map((p) => p.message), ["Field (b) has no part 3 when split by spaces: 'x y'"]);
  assert.deepEqual(rejected(mapOne(blocks, { id: 'u1', a: 'Lovelace', b: 'x y z' })).problems.map((p) => p.message), ["Field (a) has no part 2 when split by ',': 'Lovelace'"]);
});

test('substring takes a value exactly as long as it needs', () => {
  assert.equal(written(mapOne(`fields:\n  primary_id: "{id}"\n  first_name: { from: a, substring: { first: 3 } }\n`, { id: 'u1', a: 'abc' })).user.first_name, 'abc');
});

test("a template trims each column's value", () => {
  assert.equal(written(mapOne(`fields:\n  primary_id: "{id}"\n  job_description: "{a}-{b}"\n`, { id: 'u1', a: ' x ', b: ' y' })).user.job_description, 'x-y');
});

describe('the length limit: characters, not UTF-16 units; truncate cuts and warns', () => {
  const NAME = `fields:\n  primary_id: "{id}"\n  first_name: { from: name }\n`;
  test('255 characters with emoji among them (more than 255 UTF-16 units) are written whole', () => {
    const name = '😀'.repeat(5) + 'x'.repeat(250);
    assert.equal(name.length, 260);
    assert.equal(written(mapOne(NAME, { id: 'u1', name })).user.first_name, name);
  });

  test('256 characters with an emoji among them are too long', () => {
    const problems = rejected(mapOne(NAME, { id: 'u1', name: '😀' + 'x'.repeat(255) })).problems;
    assert.deepEqual(problems.map((p) => [p.code, p.message]), [['too_long', 'Field (name) is 256 characters; Alma takes at most 255 for first_name']]);
  });

  test('truncate: true cuts to the limit, at a character, and warns naming the column', () => {
    const result = written(mapOne(`fields:\n  primary_id: "{id}"\n  first_name: { from: name, truncate: true }\n`, { id: 'u1', name: 'x'.repeat(254) + '😀😀y' }));
    assert.equal(result.user.first_name, 'x'.repeat(254) + '😀');
    assert.deepEqual(result.warnings, [{ kind: 'truncated', message: 'Field (name) was cut to 255 characters for first_name', column: 'name', value: 'x'.repeat(40) }]);
  });

  test('a note too long is named by its field: its text comes from a template, not one column', () => {
    const problems = rejected(mapOne(`notes:\n  - { note_type: OTHER, note_text: "{a}{b}" }\n`, { id: 'u1', a: 'a'.repeat(1000), b: 'b'.repeat(1001) })).problems;
    assert.deepEqual(problems.map((p) => [p.code, p.column, p.message]), [['too_long', undefined, 'Field (note_text) is 2001 characters; Alma takes at most 2000 for note_text']]);
  });
});

describe('what a condition reads of a cell', () => {
  const GROUP = (when: string) => `user_group:\n  rules:\n    - { when: ${when}, group: YES }\n  default: NO\n`;
  const groupOf = (when: string, row: Record<string, string>) => written(mapOne(GROUP(when), { id: 'u1', ...row })).user.user_group;

  test('the cell is trimmed before it is compared', () => {
    assert.equal(groupOf('{ a: x }', { a: '  x ' }), 'YES');
    assert.equal(groupOf('{ a: { matches: "x+" } }', { a: ' xx ' }), 'YES');
  });

  test('two empty cells are not equal: nothing was compared (and so not_equals_column holds)', () => {
    assert.equal(groupOf('{ a: { equals_column: b } }', { a: '', b: '' }), 'NO');
    assert.equal(groupOf('{ a: { equals_column: b } }', { a: ' ', b: '' }), 'NO');
    assert.equal(groupOf('{ a: { not_equals_column: b } }', { a: '', b: '' }), 'YES');
    assert.equal(groupOf('{ a: { equals_column: b } }', { a: 'x', b: ' x' }), 'YES');
  });

  test('each date comparison: before, after, on_or_before and on_or_after', () => {
    const days = ['2025-12-31', '2026-01-01', '2026-01-02'];
    const holds = (op: string) => days.map((d) => groupOf(`{ d: { ${op}: 2026-01-01 } }`, { d }));
    assert.deepEqual(holds('before'), ['YES', 'NO', 'NO']);
    assert.deepEqual(holds('after'), ['NO', 'NO', 'YES']);
    assert.deepEqual(holds('on_or_before'), ['YES', 'YES', 'NO']);
    assert.deepEqual(holds('on_or_after'), ['NO', 'YES', 'YES']);
  });
});

describe('the user group: rules in turn, the default, and what an unmapped row names', () => {
  const GROUPS = `user_group:
  rules:
    - { when: { kind: staff }, group: STAFF }
    - { group: { from: g } }
    - { group: { from: h, map: { a: FACULTY } } }
    - { group: { rules: [ { when: { d: { before: 2020-01-01 } }, value: OLD } ] } }
`;
  const row = (cells: Record<string, string>) => ({ id: 'u1', kind: '', g: '', h: '', d: '', ...cells });
  const groupOf = (blocks: string, cells: Record<string, string>) => {
    const user = written(mapOne(blocks, row(cells)));
    return [user.user.user_group, user.groupRule];
  };

  test('a rule whose group comes out empty, or unknown to its map, or with a problem, gives the next rule its turn', () => {
    assert.deepEqual(groupOf(GROUPS, { kind: 'staff' }), ['STAFF', 'rule 1']);
    assert.deepEqual(groupOf(GROUPS, { g: 'GG' }), ['GG', 'rule 2']);
    assert.deepEqual(groupOf(GROUPS, { h: 'a' }), ['FACULTY', 'rule 3']);
    assert.deepEqual(groupOf(GROUPS, { g: '  ', h: ' ', d: '2019-05-01' }), ['OLD', 'rule 4']);
    assert.deepEqual(groupOf(GROUPS + '  default: DEF\n', { h: 'b', d: 'not a date' }), ['DEF', 'default']);
    // A group that comes with a problem (a date its rules could not read, then their otherwise) is not taken either.
    const OTHERWISE = 'user_group:\n  rules:\n    - { group: { rules: [ { when: { d: { before: 2020-01-01 } }, value: OLD } ], otherwise: NEW } }\n  default: DEF\n';
    assert.deepEqual(groupOf(OTHERWISE, { d: 'not a date' }), ['DEF', 'default']);
    assert.deepEqual(groupOf(OTHERWISE, { d: '2021-01-01' }), ['NEW', 'rule 1']);
  });

  test('an unmapped row names the columns looked at that hold a value (trimmed), in the order looked at', () => {
    const problems = rejected(mapOne(GROUPS, row({ kind: ' x ', h: 'zz', d: 'notadate', g: '   ' }))).problems;
    const named = "kind = 'x', h = 'zz', d = 'notadate'";
    assert.deepEqual(problems, [{ code: 'no_user_group', message: `No user group rule maps this row (${named})`, column: 'kind', value: named }]);
  });

  test('when every column looked at is empty, all are named', () => {
    const problems = rejected(mapOne(GROUPS, row({ kind: ' ' }))).problems;
    const named = "kind = '', g = '', h = '', d = ''";
    assert.deepEqual(problems.map((p) => [p.message, p.column]), [[`No user group rule maps this row (${named})`, 'kind']]);
  });

  test('unmapped: omit writes the user without a group, with a warning; its group rule is "none"', () => {
    const user = written(mapOne(GROUPS + '  unmapped: omit\n', row({ h: 'b' })));
    assert.equal(user.user.user_group, undefined);
    assert.equal(user.groupRule, 'none');
    assert.deepEqual(user.warnings.map((w) => [w.kind, w.column, w.value]), [['user_group_omitted', 'h', "h = 'b'"]]);
  });
});

test('end_of_year reads a trimmed year; an empty cell gives no date, and otherwise decides', () => {
  const EXPIRY = 'expiry:\n  default: { end_of_year: y, otherwise: { date: 2030-01-01 } }\n';
  assert.equal(written(mapOne(EXPIRY, { id: 'u1', y: ' 2027 ' })).user.expiry_date, '2027-12-31');
  assert.equal(written(mapOne(EXPIRY, { id: 'u1', y: '  ' })).user.expiry_date, '2030-01-01');
});

test('an invisible character in the primary id rejects the row, wherever primary_id stands among the fields; in a name it is kept', () => {
  const FIELDS = 'fields:\n  first_name: "{n}"\n  primary_id: "{id}"\n';
  const bad = rejected(mapOne(FIELDS, { id: 'u\u200B1', n: 'Ann' }));
  assert.deepEqual(bad.problems.map((p) => [p.code, p.column, p.value]), [['invisible_character', 'id', 'u<U+200B>1']]);
  assert.equal(written(mapOne(FIELDS, { id: 'u1', n: 'A\u200Bnn' })).user.first_name, 'A\u200Bnn');
});

test('a skipped row carries its primary id only when it has one', () => {
  const SKIP = 'skip:\n  - { name: gone, when: { s: "1" } }\n';
  assert.deepEqual(mapOne(SKIP, { id: 'u1', s: '1' }), { ok: false, skipped: 'gone', primary_id: 'u1', problems: [], warnings: [] });
  assert.deepEqual(mapOne(SKIP, { id: '', s: '1' }), { ok: false, skipped: 'gone', problems: [], warnings: [] });
});

test("a reject rule names the first column it tests, with that cell's value trimmed", () => {
  const problems = rejected(mapOne('reject:\n  - { name: r, when: { s: { matches: "x.*" } }, message: bad }\n', { id: 'u1', s: ' xy ' })).problems;
  assert.deepEqual(problems, [{ code: 'rejected_by_rule', message: 'bad (reject rule "r")', column: 's', value: 'xy' }]);
});

test('term_calendar: the term the run date falls in, its first and last days included, whatever the order of the terms', () => {
  const expiryOf = (terms: string) => written(mapOne(`expiry:\n  default: { term_calendar: [ ${terms} ] }\n`, { id: 'u1' })).user.expiry_date;
  // The run date, 2026-11-21, is the last day of the second term; the first has not begun.
  assert.equal(expiryOf('{ from: 2026-12-01, to: 2027-05-31, expires: 2027-06-30 }, { from: 2026-09-01, to: 2026-11-21, expires: 2027-01-31 }'), '2027-01-31');
  assert.equal(expiryOf('{ from: 2026-11-21, to: 2026-12-31, expires: 2027-02-28 }'), '2027-02-28');
  assert.equal(expiryOf('{ from: 2026-11-22, to: 2026-12-31, expires: 2027-02-28 }'), undefined);
});

test('an invisible character in the primary id is named by the column it came from: a template\'s, or the fallback that had a value', () => {
  const columnOf = (blocks: string, row: Record<string, string>) => rejected(mapOne(blocks, row)).problems.map((p) => [p.code, p.column]);
  assert.deepEqual(columnOf('fields:\n  primary_id: "X-{id}"\n', { id: 'u\u200B1' }), [['invisible_character', 'id']]);
  assert.deepEqual(columnOf('fields:\n  primary_id: { from: [a, b] }\n', { a: '', b: 'u\u200B1' }), [['invisible_character', 'b']]);
});

test('an empty primary id is told beside the problems of other columns', () => {
  const problems = rejected(mapOne('fields:\n  primary_id: "{id}"\n  status: { from: act, boolean: { true: ACTIVE, false: INACTIVE } }\n', { id: '', act: 'maybe' })).problems;
  assert.deepEqual(problems.map((p) => [p.code, p.column]), [['bad_boolean', 'act'], ['missing_value', 'id']]);
});

test('a row rejected for having no user group is not given an expiry date, nor its problems', () => {
  const problems = rejected(mapOne('user_group:\n  rules:\n    - { group: { from: g } }\nexpiry:\n  default: { from: ends }\n', { id: 'u1', g: '', ends: 'bad' })).problems;
  assert.deepEqual(problems.map((p) => p.code), ['no_user_group']);
});

test("an identifier too long is held to the limit of Alma's element value", () => {
  const problems = rejected(mapOne('identifiers:\n  - { id_type: BARCODE, from: b }\n', { id: 'u1', b: 'x'.repeat(256) })).problems;
  assert.deepEqual(problems.map((p) => p.message), ['Field (b) is 256 characters; Alma takes at most 255 for value']);
});

describe("a user's lists, each part as the mapping gives it", () => {
  test('identifiers with note and status, email, phones, an address with dates, statistic, block, library, note and notice', () => {
    const result = written(
      mapOne(
        `identifiers:
  - { id_type: BARCODE, from: bc, note: "{bn}", status: ACTIVE }
  - { id_type: UNIV_ID, from: uid }
emails:
  - { email_type: work, from: em, preferred: true, description: Office }
phones:
  - { phone_type: mobile, from: ph, preferred_sms: true }
  - { phone_type: home, from: ph2 }
addresses:
  - { address_type: home, preferred: true, line1: "{l1}", line2: "{l2}", city: "{city}", start_date: "{sd}", end_date: { from: ed, format: DD.MM.YYYY } }
statistics:
  - { statistic_category: "{cat}", category_type: DEPT, statistic_note: "from the SIS" }
user_blocks:
  - { block_type: GENERAL, block_description: "{why}", block_status: Active, block_note: "{bnote}" }
rs_libraries: ["{lib}"]
notes:
  - { note_type: OTHER, note_text: "joined {run_date}: {nt}", user_viewable: true }
library_notices:
  - { code: SMS, from: sms }
`,
        // A note of an identifier or a block may hold 2,000 characters, not 255.
        { id: 'u1', bc: 'B1', bn: 'n'.repeat(300), uid: 'S123', em: 'a@b.org', ph: '555', ph2: '', l1: 'Main St', l2: '', city: 'Town', sd: '2026-01-01', ed: '31.12.2027', cat: 'ART', why: 'fines', bnote: 'b'.repeat(300), lib: 'MAIN', nt: ' hi ', sms: 'yes' },
      ),
    );
    assert.deepEqual(result.warnings, []);
    assert.deepEqual(result.user, {
      primary_id: 'u1',
      contact_info: {
        addresses: [{ preferred: true, address_types: ['home'], line1: 'Main St', city: 'Town', start_date: '2026-01-01', end_date: '2027-12-31' }],
        emails: [{ preferred: true, email_address: 'a@b.org', description: 'Office', email_types: ['work'] }],
        // The only phone with a number is the preferred one (at most one, and one when any).
        phones: [{ preferred: true, preferred_sms: true, phone_number: '555', phone_types: ['mobile'] }],
      },
      user_identifiers: [
        { id_type: 'BARCODE', value: 'B1', note: 'n'.repeat(300), status: 'ACTIVE' },
        { id_type: 'UNIV_ID', value: 'S123' },
      ],
      user_notes: [{ note_type: 'OTHER', note_text: 'joined 2026-11-21: hi', user_viewable: true, popup_note: false }],
      user_statistics: [{ statistic_category: 'ART', category_type: 'DEPT', statistic_note: 'from the SIS' }],
      user_group: 'PATRON',
      // The mapping sets neither: no expiry, no purge block.
      expiry_date: undefined,
      purge_date: undefined,
      user_blocks: [{ block_type: 'GENERAL', block_description: 'fines', block_status: 'Active', block_note: 'b'.repeat(300) }],
      rs_libraries: ['MAIN'],
      library_notices: [{ code: 'SMS', value: true }],
    });
  });

  test('a required value with no column to name is named by its part, in every list', () => {
    const R = '{ rules: [ { when: { input_file: other.csv }, value: x } ], required: true }';
    const problems = rejected(
      mapOne(
        `identifiers:
  - { id_type: BARCODE, from: bc, note: ${R}, status: ${R} }
  - { id_type: UNIV_ID, rules: [ { when: { input_file: other.csv }, value: x } ], required: true }
emails:
  - { email_type: work, rules: [ { when: { input_file: other.csv }, value: x } ], required: true }
phones:
  - { phone_type: mobile, rules: [ { when: { input_file: other.csv }, value: x } ], required: true }
addresses:
  - { address_type: home, line1: ${R}, start_date: ${R}, end_date: ${R} }
statistics:
  - { statistic_category: ${R} }
user_blocks:
  - { block_description: ${R} }
  - { block_description: x, block_note: ${R} }
rs_libraries: [${R}]
library_notices:
  - { code: SMS, rules: [ { when: { input_file: other.csv }, value: x } ], required: true }
`,
        { id: 'u1', bc: 'B1' },
      ),
    ).problems;
    const named = ['note', 'status', 'UNIV_ID', 'work', 'mobile', 'line1', 'start_date', 'end_date', 'statistic_category', 'block_description', 'block_note', 'rs_library', 'SMS'];
    assert.deepEqual(problems.map((p) => [p.code, p.column, p.message]), named.map((n) => ['missing_value', undefined, `Field (${n}) is required but empty`]));
  });

  test("each part is held to its own element's limit, named in the message; an identifier's invisible character is refused", () => {
    const problems = rejected(
      mapOne(
        `identifiers:
  - { id_type: BARCODE, from: bc, status: "{st}" }
  - { id_type: UNIV_ID, template: "S-{u}" }
phones:
  - { phone_type: mobile, from: ph }
addresses:
  - { address_type: home, line1: "{l1}" }
user_blocks:
  - { block_description: "{why}" }
rs_libraries: ["{lib}"]
notes:
  - { note_type: OTHER, note_text: "{nt}" }
`,
        { id: 'u1', bc: 'B1', st: 's'.repeat(256), u: 'x\u200By', ph: '5'.repeat(256), l1: 'l'.repeat(256), why: 'w'.repeat(256), lib: 'L'.repeat(51), nt: 't'.repeat(300) },
      ),
    ).problems;
    assert.deepEqual(
      problems.map((p) => [p.code, p.column, p.message.replace(/ \(nobody.*$/, '')]),
      [
        ['too_long', 'st', 'Field (st) is 256 characters; Alma takes at most 255 for status'],
        ['invisible_character', 'u', "Field (u) holds an invisible character, U+200B ZERO WIDTH SPACE, at character 4: 'S-x<U+200B>y'"],
        ['too_long', 'ph', 'Field (ph) is 256 characters; Alma takes at most 255 for phone_number'],
        ['too_long', 'l1', 'Field (l1) is 256 characters; Alma takes at most 255 for line1'],
        ['too_long', 'why', 'Field (why) is 256 characters; Alma takes at most 255 for block_description'],
        ['too_long', 'lib', 'Field (lib) is 51 characters; Alma takes at most 50 for rs_library'],
      ],
    );
  });

  test("a statistic code allowed_codes lacks, a notice that is not yes/no (named by its column), an email dropped with a warning", () => {
    const result = rejected(
      mapOne(
        `allowed_codes:
  statistic_category: [ART]
emails:
  - { email_type: work, from: em, on_invalid: drop }
statistics:
  - { statistic_category: { from: cat } }
library_notices:
  - { code: SMS, from: sms }
  - { code: MAIL, template: "{m}" }
`,
        { id: 'u1', em: 'not-an-address', cat: 'SCI', sms: 'perhaps', m: 'nah' },
      ),
    );
    assert.deepEqual(
      result.problems.map((p) => [p.code, p.column, p.message]),
      [
        ['code_not_allowed', 'cat', "statistic_category 'SCI' is not one of the codes this Alma has (allowed_codes.statistic_category)"],
        ['bad_boolean', 'sms', "Field (sms) is not a yes/no value: 'perhaps' (expected y, yes, true, 1, n, no, false or 0)"],
        ['bad_boolean', 'm', "Field (m) is not a yes/no value: 'nah' (expected y, yes, true, 1, n, no, false or 0)"],
      ],
    );
    assert.deepEqual(result.warnings, [{ kind: 'invalid_email_dropped', message: "Field (em) is not a well-formed email address and was left out: 'not-an-address'", column: 'em', value: 'not-an-address' }]);
  });
});

test('a value the map does not know names a named table as a table, an inline map by where it stands', () => {
  const problems = rejected(mapOne('tables:\n  depts: { a: ART }\nfields:\n  primary_id: "{id}"\n  job_description: { from: d, map: depts }\n  user_title: { from: d, map: { a: X } }\n', { id: 'u1', d: 'zz' })).problems;
  assert.deepEqual(problems.map((p) => p.message), ["Field (d) has a value the mapping does not know: 'zz' (not in table depts)", "Field (d) has a value the mapping does not know: 'zz' (not in the map at fields.user_title)"]);
});

test('characters XML cannot carry are removed, counted and listed once each, in capital hex', () => {
  const result = written(mapOne('fields:\n  primary_id: "{id}"\n  job_description: "{d}"\n', { id: 'u1', d: 'a\u0001b\u000Bc\u0001' }));
  assert.equal(result.user.job_description, 'abc');
  assert.deepEqual(result.warnings, [{ kind: 'stripped_characters', message: 'Field (d) had 3 character(s) that XML cannot carry (U+0001, U+000B); removed', column: 'd' }]);
});

test("a column only a value's rules test is read, and told when the header lacks it", () => {
  const BLOCKS = 'fields:\n  primary_id: "{id}"\n  job_description: { rules: [ { when: { k: "1" }, value: one } ] }\n';
  const m = mappingOf(BLOCKS);
  assert.equal(written(compileMapping(m, ['id', 'k'], RUN_DATE).map(['u1', '1'])).user.job_description, 'one');
  assert.deepEqual(compileMapping(m, ['id'], RUN_DATE).absentColumns, ['k']);
});
