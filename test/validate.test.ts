// schemas/alma_users.xsd, src/validate.ts (AlmaSchema) and `sis2alma validate`, with real files,
// real zips, Ex Libris' own XSD from the shared reference folder, and the real CLI.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, createWriteStream, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import yazl from 'yazl';
import yargs from 'yargs';
import fc from 'fast-check';
import { AlmaSchema, type XmlProblem } from '../src/pipeline/validate.js';
import { createValidateCommand, validateCommand, validateFiles } from '../src/commands/validate.js';
import { RunError } from '../src/shared/errors.js';
import { PACKAGE_ROOT, PROJECT_XSD } from '../src/shared/paths.js';

const FIXTURES = path.join(PACKAGE_ROOT, 'test', 'fixtures', 'validate');
const REFERENCE = path.resolve(PACKAGE_ROOT, '..', 'shared', 'reference', 'alma');
const EXLIBRIS_XSD = path.join(REFERENCE, 'rest_users.xsd');
const EXAMPLES = path.join(REFERENCE, 'examples');
const CLI = path.join(PACKAGE_ROOT, 'dist', 'src', 'cli.js');

const VALID = readFileSync(path.join(FIXTURES, 'valid-users.xml'), 'utf8');
const ours = AlmaSchema.load();
const exlibris = AlmaSchema.load(EXLIBRIS_XSD);

/** The 1-based line of the first occurrence of `needle` in `text`. */
function lineOf(text: string, needle: string): number {
  const at = text.indexOf(needle);
  assert.ok(at >= 0, `fixture lacks ${needle}`);
  return text.slice(0, at).split('\n').length;
}

function edit(from: string, to: string): string {
  assert.ok(VALID.includes(from), `fixture lacks ${from}`);
  return VALID.replace(from, to);
}

function summary(problems: XmlProblem[]): string[] {
  return problems.map((p) => `${p.line} ${p.message}`);
}

describe('schemas/alma_users.xsd', () => {
  test('the hand-written users file is valid against ours and against Ex Libris\' rest_users.xsd', () => {
    assert.equal(ours.path, PROJECT_XSD);
    assert.deepEqual(ours.validate(VALID), []);
    assert.deepEqual(exlibris!.validate(VALID), []);
  });

  // Each of our stricter rules: the file fails ours, naming the element, on the right line, and
  // (except campus_code, which Alma limits too) still passes Ex Libris' schema.
  // `at`: text on the line the problem must be reported at (default: the replacement).
  const stricter: Array<{ rule: string; from: string; to: string; element: RegExp; exlibrisValid: boolean; at?: string }> = [
    { rule: 'no empty element', from: '<middle_name>B.</middle_name>', to: '<middle_name/>', element: /^Element 'middle_name': The value is empty/, exlibrisValid: true },
    { rule: 'no empty date', from: '<start_date>2025-09-01</start_date>', to: '<start_date></start_date>', element: /^Element 'start_date': The value is empty/, exlibrisValid: false },
    { rule: 'date without time zone', from: '<expiry_date>2027-06-30</expiry_date>', to: '<expiry_date>2027-06-30Z</expiry_date>', element: /^Element 'expiry_date': .*'2027-06-30Z'.*without time zone/, exlibrisValid: true },
    { rule: 'full_name is not loaded', from: '<last_name>Student</last_name>', to: '<last_name>Student</last_name><full_name>Ada Student</full_name>', element: /^Element 'full_name': This element is not expected\. \(not in an Alma SIS load file/, exlibrisValid: true, at: '<full_name>' },
    { rule: 'account_type is not loaded', from: '<status>ACTIVE</status>', to: '<status>ACTIVE</status><account_type>EXTERNAL</account_type>', element: /^Element 'account_type': This element is not expected/, exlibrisValid: true, at: '<account_type>' },
    { rule: 'user_roles are not loaded', from: '<status>ACTIVE</status>', to: '<status>ACTIVE</status><user_roles><user_role><role_type>200</role_type></user_role></user_roles>', element: /^Element 'user_roles': This element is not expected/, exlibrisValid: true, at: '<user_roles>' },
    { rule: 'segment_type is External only', from: '<email preferred="true" segment_type="External">', to: '<email preferred="true" segment_type="Internal">', element: /^Element 'email', attribute 'segment_type': .*'Internal'.*\{'External'\}/, exlibrisValid: true },
    { rule: 'booleans are true|false', from: '<user_viewable>false</user_viewable>', to: '<user_viewable>0</user_viewable>', element: /^Element 'user_viewable': .*'0'.*'true\|false'/, exlibrisValid: true },
    { rule: 'campus_code is at most 50', from: '<campus_code>MAIN</campus_code>', to: `<campus_code>${'C'.repeat(51)}</campus_code>`, element: /^Element 'campus_code': .*'51'.*'50'/, exlibrisValid: false },
    { rule: 'note_text is required', from: '<note_text>Loaded from the SIS</note_text>', to: '', element: /^Element 'user_note': Missing child element\(s\)\. Expected is \( note_text \)/, exlibrisValid: true, at: '<user_note ' },
    { rule: 'an address needs an address_type', from: '<address_type>school</address_type>', to: '', element: /^Element 'address_types': Missing child element\(s\)/, exlibrisValid: true, at: '<address_types>' },
  ];
  for (const c of stricter) {
    test(`stricter than Alma: ${c.rule}`, () => {
      const xml = edit(c.from, c.to);
      const problems = ours.validate(xml);
      assert.equal(problems.length, 1, summary(problems).join('\n'));
      assert.match(problems[0]!.message, c.element);
      assert.equal(problems[0]!.line, lineOf(xml, c.at ?? c.to));
      assert.equal(problems[0]!.primary_id, 'as1001');
      assert.equal(exlibris!.validate(xml).length === 0, c.exlibrisValid, summary(exlibris!.validate(xml)).join('\n'));
    });
  }

  test('isValid agrees with validate', () => {
    assert.equal(ours.isValid(VALID), true);
    assert.equal(ours.isValid(edit('<city>Springfield</city>', '<city></city>')), false);
    assert.equal(ours.isValid('<users><user>'), false);
  });

  test('the line of a stricter-rule problem is the line of the offending element', () => {
    const xml = edit('<city>Springfield</city>', '<city></city>');
    assert.deepEqual(
      ours.validate(xml).map((p) => p.line),
      [lineOf(xml, '<city></city>')],
    );
  });

  test('every file valid against ours is valid against Ex Libris\' (generated users)', () => {
    const text = fc.string({ minLength: 1, maxLength: 60, unit: fc.constantFrom('a', 'Z', '9', ' ', '&', '<', 'é', '-', '.', '\'') });
    let validUnderOurs = 0;
    const date = fc.date({ min: new Date('1900-01-01'), max: new Date('2099-12-31'), noInvalidDate: true }).map((d) => d.toISOString().slice(0, 10));
    const bool = fc.boolean().map(String);
    const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
    const optional = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
    const user = fc.record({
      primary_id: optional(text),
      first_name: optional(text),
      last_name: optional(text),
      user_group: optional(text),
      campus_code: optional(fc.string({ minLength: 1, maxLength: 50 })),
      expiry_date: optional(date),
      birth_date: optional(date),
      pref_first_name: optional(text),
      email: optional(fc.record({ address: text, preferred: bool, types: fc.array(text, { minLength: 1, maxLength: 3 }) })),
      note: optional(fc.record({ type: text, text: text, viewable: bool, popup: bool })),
      identifier: optional(fc.record({ type: text, value: text })),
    });
    fc.assert(
      fc.property(fc.array(user, { maxLength: 4 }), (users) => {
        const xml =
          '<users>' +
          users
            .map((u) => {
              let s = '<user>';
              for (const key of ['primary_id', 'first_name', 'last_name', 'user_group', 'campus_code', 'expiry_date', 'birth_date', 'pref_first_name'] as const) {
                if (u[key] !== undefined) s += `<${key}>${esc(u[key])}</${key}>`;
              }
              if (u.email) s += `<contact_info><emails><email preferred="${u.email.preferred}" segment_type="External"><email_address>${esc(u.email.address)}</email_address><email_types>${u.email.types.map((t) => `<email_type>${esc(t)}</email_type>`).join('')}</email_types></email></emails></contact_info>`;
              if (u.note) s += `<user_notes><user_note><note_type>${esc(u.note.type)}</note_type><note_text>${esc(u.note.text)}</note_text><user_viewable>${u.note.viewable}</user_viewable><popup_note>${u.note.popup}</popup_note></user_note></user_notes>`;
              if (u.identifier) s += `<user_identifiers><user_identifier segment_type="External"><id_type>${esc(u.identifier.type)}</id_type><value>${esc(u.identifier.value)}</value></user_identifier></user_identifiers>`;
              return s + '</user>';
            })
            .join('') +
          '</users>';
        if (ours.validate(xml).length > 0) return;
        validUnderOurs++;
        assert.deepEqual(exlibris!.validate(xml), [], xml);
      }),
      { numRuns: 150 },
    );
    // The assertion above runs only for files ours accepts: some must be, or this proves nothing.
    assert.ok(validUnderOurs > 0, 'no generated file was valid against ours');
  });
});

describe('AlmaSchema.validate on the institutions\' example files (Ex Libris\' XSD, as SOURCE.md describes)', () => {
  const example = (name: string) => readFileSync(path.join(EXAMPLES, name));

  test('Berkeley: empty start_date/end_date are not xs:date, and pref_full_name is not in the schema', () => {
    const problems = exlibris!.validate(example('berkeley-sis-expected_xml_3.xml'));
    assert.deepEqual(
      problems.map((p) => [p.line, /^Element '(\w+)'/.exec(p.message)?.[1], p.primary_id]),
      [
        [27, 'start_date', '10162050'],
        [28, 'end_date', '10162050'],
        [41, 'start_date', '10162050'],
        [42, 'end_date', '10162050'],
        [75, 'pref_full_name', '10162050'],
        [101, 'start_date', '10162000'],
        [102, 'end_date', '10162000'],
        [115, 'start_date', '10162000'],
        [116, 'end_date', '10162000'],
        [149, 'pref_full_name', '10162000'],
      ],
    );
    assert.match(problems[0]!.message, /The value is empty, which is not a valid xs:date/);
    assert.match(problems[4]!.message, /^Element 'pref_full_name': This element is not expected\.$/);
  });

  test('Boston College: <recordType> (camelCase) is not in the schema', () => {
    const problems = exlibris!.validate(example('bostoncollege-v2_example.xml'));
    assert.deepEqual(summary(problems), ["4 Element 'recordType': This element is not expected."]);
    assert.equal(problems[0]!.primary_id, 'BRIANDWO');
  });

  test('MIT: the root <userRecords> is not declared; each user fails only on empty status_date and is_researcher', () => {
    const problems = exlibris!.validate(example('mit-student_patrons.xml'));
    assert.deepEqual(
      problems.map((p) => [p.line, /^Element '(\w+)'/.exec(p.message)?.[1], p.userIndex]),
      [
        [2, 'userRecords', undefined],
        [24, 'status_date', 0],
        [67, 'is_researcher', 0],
        [119, 'status_date', 1],
        [145, 'is_researcher', 1],
      ],
    );
    assert.match(problems[0]!.message, /No matching global declaration available for the validation root.*<users>/);
    assert.match(problems[2]!.message, /not a valid xs:boolean/);
  });

  test('a users file checked against rest_user.xsd (no <users> there) is told to use rest_users.xsd', () => {
    const problems = AlmaSchema.load(path.join(REFERENCE, 'rest_user.xsd')).validate(VALID);
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.line, lineOf(VALID, '<users'));
    assert.match(problems[0]!.message, /^Element 'users': No matching global declaration .*use rest_users\.xsd/);
  });

  test('against our schema the same files show every problem, also those behind a stray element', () => {
    const problems = ours.validate(example('berkeley-sis-expected_xml_3.xml'));
    const at = (line: number) => problems.filter((p) => p.line === line).map((p) => p.message);
    // record_type on line 4 would hide the rest of the user from libxml2: they are still reported.
    assert.match(at(4)[0]!, /^Element 'record_type': This element is not expected/);
    assert.match(at(9)[0]!, /^Element 'full_name': This element is not expected/);
    assert.match(at(19)[0]!, /^Element 'address', attribute 'segment_type'.*'Internal'/);
    assert.match(at(25)[0]!, /^Element 'country': The value is empty/);
    assert.match(at(149)[0]!, /^Element 'pref_full_name'/);
    assert.ok(problems.every((p) => p.primary_id === (p.line < 77 ? '10162050' : '10162000')));
  });
});

describe('AlmaSchema.validate: documents', () => {
  test('not well-formed XML is one problem with its line and column', () => {
    const problems = ours.validate('<users>\n  <user>\n    <primary_id>a</primary_id>\n</users>\n');
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.line, 4);
    assert.match(problems[0]!.message, /mismatch.*user/i);
    assert.ok(!problems[0]!.message.endsWith('\n'));
  });

  test('a problem outside any user has no user; users on one line cannot be told apart', () => {
    const outside = ours.check('<users total_record_count="x">\n<user><primary_id>a1</primary_id></user>\n</users>');
    assert.equal(outside.problems.length, 1);
    assert.equal(outside.problems[0]!.userIndex, undefined);
    assert.match(outside.problems[0]!.message, /total_record_count/);

    const oneLine = ours.check('<users><user><primary_id>a1</primary_id></user><user><primary_id></primary_id></user></users>');
    assert.equal(oneLine.users.length, 2);
    assert.equal(oneLine.problems.length, 1);
    assert.equal(oneLine.problems[0]!.userIndex, undefined);

    const second = ours.check('<users>\n<user><primary_id>a1</primary_id></user>\n<user>\n<first_name/>\n</user>\n</users>');
    assert.deepEqual(second.problems.map((p) => [p.line, p.userIndex, p.primary_id]), [[4, 1, undefined]]);
  });

  test('each problem gets the primary_id of its own user, also when users lack or repeat primary_id', () => {
    const xml = ['<users>', '<user>', '<last_name>NoId</last_name>', '<first_name/>', '</user>', '<user>', '<primary_id>b2</primary_id>', '<primary_id>b3</primary_id>', '</user>', '<user>', '<primary_id>c3</primary_id>', '<middle_name/>', '</user>', '</users>'].join('\n');
    const report = ours.check(xml);
    assert.deepEqual(report.users, [{ line: 2 }, { line: 6, primary_id: 'b2' }, { line: 10, primary_id: 'c3' }]);
    assert.deepEqual(
      report.problems.map((p) => [p.line, p.userIndex, p.primary_id]),
      [
        [4, 0, undefined],
        [8, 1, 'b2'],
        [12, 2, 'c3'],
      ],
    );
  });

  test('an external entity is not read, and the problem says why', () => {
    const problems = ours.validate('<!DOCTYPE users [<!ENTITY x SYSTEM "file:///etc/hostname">]>\n<users><user><last_name>&x;</last_name></user></users>');
    assert.equal(problems.length, 1);
    assert.match(problems[0]!.message, /entity declared in its DOCTYPE .*not expanded/);
  });

  test('bytes in another encoding are read as their declaration says', () => {
    const latin1 = Buffer.from('<?xml version="1.0" encoding="ISO-8859-1"?>\n<users><user><last_name>M\xfcller</last_name></user></users>', 'latin1');
    assert.deepEqual(ours.validate(latin1), []);
    const report = ours.check(Buffer.from('<users><user><primary_id>\xe9</primary_id><first_name/></user></users>', 'latin1'));
    assert.equal(report.wellFormed, false, 'bytes that are not UTF-8 without a declaration are not well-formed');
  });
});

describe('AlmaSchema.load', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sis2alma-xsd-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const expectSchemaError = (file: string, pattern: RegExp) =>
    assert.throws(
      () => AlmaSchema.load(file),
      (e: unknown) => e instanceof RunError && e.code === 'schema_invalid' && e.exitCode === 3 && pattern.test(e.message),
    );

  test('a missing XSD names the file', () => {
    expectSchemaError(path.join(dir, 'nope.xsd'), /cannot read the XML Schema .*nope\.xsd: no such file/);
  });

  test('an XSD that is not well-formed names the file and line', () => {
    expectSchemaError(path.join(FIXTURES, 'broken.xsd'), /broken\.xsd is not well-formed XML: line \d+/);
  });

  test('an XSD libxml2 cannot compile names the file', () => {
    const file = path.join(dir, 'unknown-type.xsd');
    writeFileSync(file, '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:element name="users" type="no_such_type"/></xs:schema>');
    expectSchemaError(file, /unknown-type\.xsd is not a usable XML Schema/);
    // libxml2 is still usable afterwards.
    assert.deepEqual(ours.validate(VALID), []);
  });

  test('a file that is XML but no schema is refused', () => {
    expectSchemaError(path.join(FIXTURES, 'valid-users.xml'), /is not an XML Schema: its root element is <users>/);
  });

  test('an xs:include is resolved relative to the including file, and a missing one is named', () => {
    const sub = mkdtempSync(path.join(dir, 'inc-'));
    writeFileSync(path.join(sub, 'main.xsd'), '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:include schemaLocation="types.xsd"/><xs:element name="users" type="t"/></xs:schema>');
    writeFileSync(path.join(sub, 'types.xsd'), '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:simpleType name="t"><xs:restriction base="xs:string"><xs:maxLength value="2"/></xs:restriction></xs:simpleType></xs:schema>');
    const schema = AlmaSchema.load(path.join(sub, 'main.xsd'));
    assert.deepEqual(schema.validate('<users>ab</users>'), []);
    assert.match(schema.validate('<users>abc</users>')[0]!.message, /maximum length of '2'/);

    // Two includes in one file: both merged.
    writeFileSync(path.join(sub, 'two.xsd'), '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:include schemaLocation="pair.xsd"/><xs:include schemaLocation="types.xsd"/><xs:element name="users" type="pair"/></xs:schema>');
    writeFileSync(path.join(sub, 'pair.xsd'), '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:complexType name="pair"><xs:sequence><xs:element name="a" type="t"/><xs:element name="b" type="t"/></xs:sequence></xs:complexType></xs:schema>');
    const two = AlmaSchema.load(path.join(sub, 'two.xsd'));
    assert.deepEqual(two.validate('<users><a>1</a><b>22</b></users>'), []);
    assert.match(two.validate('<users><a>1</a><b>333</b></users>')[0]!.message, /^Element 'b': .*maximum length of '2'/);

    writeFileSync(path.join(sub, 'lost.xsd'), '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:include schemaLocation="gone.xsd"/></xs:schema>');
    expectSchemaError(path.join(sub, 'lost.xsd'), /gone\.xsd: no such file \(included by .*lost\.xsd\)/);
  });
});

// ---- the command ----

async function makeZip(file: string, entries: Record<string, string>): Promise<void> {
  const zip = new yazl.ZipFile();
  for (const [name, text] of Object.entries(entries)) zip.addBuffer(Buffer.from(text), name);
  zip.end();
  const out = createWriteStream(file);
  zip.outputStream.pipe(out);
  await once(out, 'close');
}

async function run(files: string[], options: { schema?: string; showPii?: boolean } = {}): Promise<{ lines: string[]; failed: number }> {
  const lines: string[] = [];
  const result = await validateFiles(files, { ...options, write: (l) => lines.push(l) });
  return { lines, failed: result.failed };
}

/** Runs the command module through yargs as the CLI would (options parsed by its builder), returning argv.exitCode. */
async function runCommand(args: string[]): Promise<{ exitCode: unknown; out: string }> {
  const lines: string[] = [];
  const argv = await yargs(args)
    .strict()
    .command(createValidateCommand({ write: (l) => lines.push(l) }))
    .fail((message, error) => {
      throw error ?? new Error(message);
    })
    .parseAsync();
  return { exitCode: argv.exitCode, out: lines.map((l) => l + '\n').join('') };
}

describe('sis2alma validate (command module)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sis2alma-validate-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const good = path.join(FIXTURES, 'valid-users.xml');

  test('a valid file: one summary line, exit 0', async () => {
    assert.equal(validateCommand.command, 'validate <file..>');
    const { exitCode, out } = await runCommand(['validate', good]);
    assert.equal(out, `${good}: 2 users, valid\n`);
    assert.equal(exitCode, undefined);
  });

  test('a zip with two XML entries, one broken: every problem with FILE!ENTRY:LINE and the masked user, exit 7', async () => {
    const zipFile = path.join(dir, 'delivery.zip');
    const bad = edit('<expiry_date>2027-06-30</expiry_date>', '<expiry_date>2027-06-30+02:00</expiry_date>').replace('<primary_id>mx2</primary_id>', '<primary_id>mx2</primary_id><password>x</password>');
    await makeZip(zipFile, { 'users-1.xml': VALID, 'readme.txt': 'not checked', 'part/users-2.xml': bad });
    const { exitCode, out } = await runCommand(['validate', zipFile]);
    const expiryLine = lineOf(bad, '<expiry_date>');
    const passwordLine = lineOf(bad, '<password>');
    assert.deepEqual(out.trimEnd().split('\n'), [
      `${zipFile}!users-1.xml: 2 users, valid`,
      `${zipFile}!part/users-2.xml:${expiryLine}: user as***1: Element 'expiry_date': The value '20***0' is not accepted by the pattern '\\d{4}-\\d{2}-\\d{2}'. (a date must be YYYY-MM-DD, without time zone)`,
      `${zipFile}!part/users-2.xml:${passwordLine}: user ***: Element 'password': This element is not expected. (not in an Alma SIS load file: it is for internal users only, not the SIS load)`,
      `${zipFile}!part/users-2.xml: 2 users, 2 problems`,
    ]);
    assert.equal(exitCode, 7);
  });

  test('--show-pii shows primary ids and values in full', async () => {
    const file = path.join(dir, 'pii.xml');
    writeFileSync(file, edit('<birth_date>2004-02-29</birth_date>', '<birth_date>2004-02-30</birth_date>'));
    const masked = await run([file]);
    assert.match(masked.lines[0]!, /: user as\*\*\*1: Element 'birth_date': '20\*\*\*0' is not a valid value/);
    const shown = await run([file], { showPii: true });
    assert.match(shown.lines[0]!, /: user as1001: Element 'birth_date': '2004-02-30' is not a valid value/);
  });

  test('a missing file, a file that is not XML and a .zip that is not a zip: one line each, exit 7', async () => {
    const missing = path.join(dir, 'missing.xml');
    const notXml = path.join(dir, 'notes.txt');
    writeFileSync(notXml, 'name,id\nAda,1\n');
    const fakeZip = path.join(dir, 'fake.zip');
    writeFileSync(fakeZip, VALID);
    const { lines, failed } = await run([missing, notXml, fakeZip, good]);
    assert.deepEqual(lines, [
      `${missing}: cannot read: no such file`,
      `${notXml}:1:1: not well-formed XML: Start tag expected, '<' not found`,
      `${fakeZip}: not a zip file (it does not start with a zip header)`,
      `${good}: 2 users, valid`,
    ]);
    assert.equal(failed, 3);
    const { exitCode } = await runCommand(['validate', missing]);
    assert.equal(exitCode, 7);
  });

  test('a zip without XML entries fails', async () => {
    const zipFile = path.join(dir, 'empty.zip');
    await makeZip(zipFile, { 'readme.txt': 'nothing here' });
    const { lines, failed } = await run([zipFile]);
    assert.deepEqual(lines, [`${zipFile}: the zip holds no .xml file`]);
    assert.equal(failed, 1);
  });

  test('--schema with a broken XSD stops the run with schema_invalid naming the file', async () => {
    const broken = path.join(FIXTURES, 'broken.xsd');
    await assert.rejects(runCommand(['validate', good, '--schema', broken]), (e: unknown) => e instanceof RunError && e.code === 'schema_invalid' && e.message.includes(broken));
  });

  test('--schema with Ex Libris\' XSD checks against it', async () => {
    const { exitCode, out } = await runCommand(['validate', path.join(EXAMPLES, 'bostoncollege-v2_example.xml'), '--schema', EXLIBRIS_XSD]);
    assert.equal(exitCode, 7);
    assert.match(out, /bostoncollege-v2_example\.xml:4: user BR\*\*\*O: Element 'recordType': This element is not expected\.\n.*: 1 user, 1 problem\n$/);
  });
});

// The real CLI, as a child process.

describe('sis2alma validate (real CLI)', () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, 'validate', ...args], { encoding: 'utf8' });

  test('exit 0 for a valid file, 7 for the institutions\' examples, 3 for a broken --schema', () => {
    const good = path.join(FIXTURES, 'valid-users.xml');
    const ok = cli(good);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout, `${good}: 2 users, valid\n`);

    const mit = path.join(EXAMPLES, 'mit-student_patrons.xml');
    const bad = cli(mit, '--show-pii');
    assert.equal(bad.status, 7, bad.stderr);
    assert.match(bad.stdout, /mit-student_patrons\.xml:2: -: Element 'userRecords': No matching global declaration/);
    assert.match(bad.stdout, /mit-student_patrons\.xml:17: user STUDENT_KRB_NAME@MIT\.EDU: Element 'expiry_date': The value '2023-09-01Z'/);

    const broken = cli(good, '--schema', path.join(FIXTURES, 'broken.xsd'));
    assert.equal(broken.status, 3);
    assert.match(broken.stderr, /^sis2alma: the XML Schema .*broken\.xsd is not well-formed XML: line \d+/);
    assert.doesNotMatch(broken.stderr, /\n\s+at /, 'no stack trace');
  });
});
