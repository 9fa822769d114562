// The benchmark's data generator: what it writes is read back with csv-parse, the parser the
// pipeline uses, so quoted line breaks, the BOM and both line-end styles are checked the same way.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, readdir } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { generate, type GenerateResult } from '../bench/generate.js';

const execFileAsync = promisify(execFile);
const GENERATOR_CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bench', 'generate.js');

const STUDENT_HEADER =
  'student_id,netid,first_name,middle_name,last_name,preferred_first_name,birth_date,email,personal_email,phone,mobile,address_line1,address_line2,city,state,postal_code,country,level,program,enrolled,term,graduation_year,barcode,department'.split(',');
const EMPLOYEE_HEADER =
  'employee_id,netid,first_name,last_name,preferred_name,work_email,work_phone,office_line1,office_line2,city,state,postal_code,country,employee_type,job_title,department,active,end_date,barcode'.split(',');

type Row = Record<string, string>;

let tmp: string;
let big: { result: GenerateResult; dir: string; students: Row[]; employees: Row[]; studentsRaw: Buffer; employeesRaw: Buffer };

function readCsv(raw: Buffer, recordDelimiter: string): { header: string[]; rows: Row[] } {
  const records = parse(raw, { bom: true, record_delimiter: recordDelimiter, relax_quotes: false }) as string[][];
  const [header, ...data] = records;
  assert.ok(header, 'the file has a header line');
  return { header, rows: data.map((r) => Object.fromEntries(header.map((c, i) => [c, r[i] ?? '']))) };
}

async function generateInto(name: string, options: { rows: number; seed: number; multiRoleShare?: number; badShare?: number }) {
  const dir = path.join(tmp, name);
  const result = await generate({ ...options, outDir: dir });
  const studentsRaw = await readFile(path.join(dir, 'students.csv'));
  const employeesRaw = await readFile(path.join(dir, 'employees.csv'));
  return { dir, result, studentsRaw, employeesRaw };
}

const STUDENT_FAULTS: Record<string, (r: Row) => boolean> = {
  empty_netid: (r) => r.netid === '',
  bad_email: (r) => r.email!.includes('@@'),
  bad_birth_date: (r) => Number(r.birth_date!.slice(0, 2)) > 12,
  bad_level: (r) => r.level === 'XX',
  bad_graduation_year: (r) => !/^\d{4}$/.test(r.graduation_year!),
  control_char: (r) => /\u001a/.test(r.first_name! + r.last_name!),
};
const EMPLOYEE_FAULTS: Record<string, (r: Row) => boolean> = {
  empty_netid: (r) => r.netid === '',
  bad_email: (r) => r.work_email!.includes('@@'),
  control_char: (r) => /\u001a/.test(r.first_name! + r.last_name!),
};
const isBadStudent = (r: Row): boolean => Object.values(STUDENT_FAULTS).some((f) => f(r));
const isBadEmployee = (r: Row): boolean => Object.values(EMPLOYEE_FAULTS).some((f) => f(r));

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'sis2alma-generate-'));
  const g = await generateInto('big', { rows: 20000, seed: 7 });
  big = {
    ...g,
    students: readCsv(g.studentsRaw, '\r\n').rows,
    employees: readCsv(g.employeesRaw, '\n').rows,
  };
});

after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

test('the same seed and size give byte-identical files, another seed different ones', async () => {
  const a = await generateInto('a', { rows: 3000, seed: 42 });
  const b = await generateInto('b', { rows: 3000, seed: 42 });
  const c = await generateInto('c', { rows: 3000, seed: 43 });
  assert.ok(a.studentsRaw.equals(b.studentsRaw), 'students.csv is the same for the same seed');
  assert.ok(a.employeesRaw.equals(b.employeesRaw), 'employees.csv is the same for the same seed');
  assert.deepEqual(a.result.files.map((f) => path.basename(f)), ['students.csv', 'employees.csv']);
  assert.ok(!a.studentsRaw.equals(c.studentsRaw), 'another seed gives other students');
  assert.ok(!a.employeesRaw.equals(c.employeesRaw), 'another seed gives other employees');
});

test('headers are exactly the columns of the university layout, in order', () => {
  assert.deepEqual(readCsv(big.studentsRaw, '\r\n').header, STUDENT_HEADER);
  assert.deepEqual(readCsv(big.employeesRaw, '\n').header, EMPLOYEE_HEADER);
});

test('rows are split about 80% students and 20% employees, and the record count is the row count despite quoted line breaks', () => {
  assert.equal(big.result.rows, 20000);
  assert.equal(big.result.students, 16000);
  assert.equal(big.result.employees, 4000);
  assert.equal(big.students.length, 16000);
  assert.equal(big.employees.length, 4000);
  const withBreak = big.students.filter((r) => /[\r\n]/.test(r.address_line1!));
  assert.ok(withBreak.length > 100, `some addresses hold a line break (found ${withBreak.length})`);
  const physicalLines = big.studentsRaw.toString('utf8').split('\n').length - 1;
  assert.ok(physicalLines > 16001, 'the students file has more lines than records');
});

test('students.csv starts with a BOM and ends its records with CRLF; employees.csv has no BOM and LF only', () => {
  assert.deepEqual([...big.studentsRaw.subarray(0, 3)], [0xef, 0xbb, 0xbf]);
  assert.ok(big.studentsRaw.subarray(3, 14).toString('utf8').startsWith('student_id,'));
  assert.ok(big.studentsRaw.subarray(-2).equals(Buffer.from('\r\n')), 'last record ends with CRLF');
  // Parsing with CRLF as the only record delimiter kept 24 fields on every record (csv-parse
  // throws on a ragged record), so no record ended with a bare LF.
  assert.ok(big.students.every((r) => r.department !== undefined && !r.department.endsWith('\r')));
  assert.notEqual(big.employeesRaw[0], 0xef);
  assert.equal(big.employeesRaw.indexOf('\r'), -1, 'no CR anywhere in employees.csv');
  assert.ok(big.employeesRaw.subarray(-1).equals(Buffer.from('\n')));
});

test('good rows have their fields in the documented formats and unique ids', () => {
  const good = big.students.filter((r) => !isBadStudent(r));
  // The loops below check something only if there are good rows (and inactive employees) to check.
  assert.ok(good.length > big.students.length / 2, `${good.length} good students of ${big.students.length}`);
  for (const r of good) {
    assert.match(r.student_id!, /^\d{9}$/);
    assert.match(r.netid!, /^[a-z]+\d+$/);
    assert.match(r.birth_date!, /^(0[1-9]|1[0-2])\/(0[1-9]|[12]\d)\/(19|20)\d\d$/);
    assert.equal(r.email, `${r.netid}@example.edu`);
    assert.match(r.personal_email!, /^$|^[a-z]+\.\d+@[a-z.]+$/);
    assert.match(r.country!, /^(US|GB|DE|FR|CN|IN|BR|JP|KR)$/);
    assert.match(r.level!, /^(UG|GR)$/);
    assert.match(r.program!, /^(BSC|BA|MSC|MA|PHD)-[A-Z0-9]+$/);
    assert.match(r.enrolled!, /^[YN]$/);
    assert.match(r.term!, /^(2026SP|2026SU|2026FA|2027SP)$/);
    assert.ok(Number(r.graduation_year) >= 2026 && Number(r.graduation_year) <= 2030);
    assert.match(r.barcode!, /^2\d{13}$/);
  }
  const goodEmployees = big.employees.filter((e) => !isBadEmployee(e));
  assert.ok(goodEmployees.length > big.employees.length / 2, `${goodEmployees.length} good employees of ${big.employees.length}`);
  assert.ok(goodEmployees.some((r) => r.active === '0'), 'some good employees are inactive');
  for (const r of goodEmployees) {
    assert.match(r.employee_id!, /^E\d{7}$/);
    assert.match(r.netid!, /^[A-Za-z]+\d+$/);
    assert.equal(r.work_email, `${r.netid!.toLowerCase()}@example.edu`);
    assert.match(r.employee_type!, /^(FAC|STAFF|EMERITUS|TEMP)$/);
    assert.match(r.active!, /^[01]$/);
    assert.match(r.end_date!, /^$|^20\d\d(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$/);
    assert.match(r.barcode!, /^[23]\d{13}$/);
    if (r.active === '0') assert.notEqual(r.end_date, '', 'an inactive employee has an end date');
  }
  const unique = (values: string[]): boolean => new Set(values).size === values.length;
  assert.ok(unique(big.students.map((r) => r.student_id!)), 'student_id is unique');
  assert.ok(unique(big.students.map((r) => r.barcode!)), 'student barcode is unique');
  assert.ok(unique(big.employees.map((r) => r.employee_id!)), 'employee_id is unique');
  const netids = [...big.students, ...big.employees].map((r) => r.netid!.toLowerCase()).filter((n) => n !== '');
  const distinctStudentNetids = new Set(big.students.map((r) => r.netid!)).size;
  assert.ok(distinctStudentNetids > 15800, 'student netids are unique apart from faults');
  // A netid repeats only for a person who is both a student and an employee.
  assert.equal(netids.length - new Set(netids).size, countMultiRole().length);
  // Unknown department codes are there, but few.
  const unknown = big.students.filter((r) => !['CS', 'HIST', 'PHYS', 'CHEM', 'MATH', 'ENG', 'BIO', 'ECON'].includes(r.department!));
  assert.ok(unknown.length > 0 && unknown.length < 0.06 * big.students.length, `unknown departments: ${unknown.length}`);
});

test('names mix accents, decomposed accents, non-Latin scripts, apostrophes, hyphens, commas and quotes', () => {
  const names = [...big.students, ...big.employees].map((r) => `${r.first_name} ${r.last_name} ${r.preferred_first_name ?? r.preferred_name}`);
  const has = (re: RegExp): number => names.filter((n) => re.test(n)).length;
  assert.ok(has(/[À-ɏ]/) > 100, 'Latin letters with accents');
  assert.ok(has(/\u0301/) > 0, 'a combining accent (NFD)');
  assert.ok(has(/\p{Script=Han}/u) > 50, 'Chinese or Japanese');
  assert.ok(has(/\p{Script=Cyrillic}/u) > 50, 'Cyrillic');
  assert.ok(has(/\p{Script=Arabic}/u) > 10, 'Arabic');
  assert.ok(has(/\p{Script=Hangul}/u) > 10, 'Korean');
  assert.ok(has(/\p{Script=Greek}/u) > 10, 'Greek');
  assert.ok(has(/'/) > 10, 'an apostrophe');
  assert.ok(has(/[A-Za-z]-[A-Za-z]/) > 10, 'a hyphen');
  assert.ok(has(/,/) > 10, 'a comma inside a name');
  assert.ok(has(/"/) > 0, 'a double quote inside a name');
  const raw = big.studentsRaw.toString('utf8');
  assert.ok(raw.includes('""Bobby""') || big.employeesRaw.toString('utf8').includes('""Bobby""'), 'quotes are doubled in the file');
});

/** Employees whose netid, ignoring case, is a student's netid. */
function countMultiRole(): { employee: Row; student: Row }[] {
  const byNetid = new Map(big.students.filter((s) => s.netid !== '').map((s) => [s.netid!.toLowerCase(), s]));
  const pairs: { employee: Row; student: Row }[] = [];
  for (const e of big.employees) {
    const s = e.netid ? byNetid.get(e.netid.toLowerCase()) : undefined;
    if (s) pairs.push({ employee: e, student: s });
  }
  return pairs;
}

test('about 5% of employees are also students: same person, netid sometimes in another case, barcode sometimes shared', () => {
  const pairs = countMultiRole();
  assert.ok(pairs.length >= 120 && pairs.length <= 280, `multi-role employees: ${pairs.length} of 4000`);
  // Faulty rows (an emptied netid) hide a few from the count; never more than the generator made.
  assert.ok(pairs.length <= big.result.multiRole && pairs.length >= big.result.multiRole - 20);
  const otherCase = pairs.filter((p) => p.employee.netid !== p.student.netid);
  assert.ok(otherCase.length > 20 && otherCase.length < pairs.length, `netid in another case: ${otherCase.length}`);
  assert.ok(otherCase.every((p) => /[A-Z]/.test(p.employee.netid!)));
  const sharedBarcode = pairs.filter((p) => p.employee.barcode === p.student.barcode);
  assert.ok(sharedBarcode.length > 20 && sharedBarcode.length < pairs.length, `shared barcode: ${sharedBarcode.length}`);
  const sameName = pairs.filter((p) => p.employee.last_name === p.student.last_name && p.employee.first_name === p.student.first_name);
  assert.ok(sameName.length >= pairs.length - 10, 'the employee row names the same person as the student row');
  assert.equal(new Set(pairs.map((p) => p.student.netid)).size, pairs.length, 'no student is claimed by two employees');
});

test('about 1% of rows are bad, each with one of the listed faults, and every fault occurs', () => {
  const badStudents = big.students.filter(isBadStudent);
  const badEmployees = big.employees.filter(isBadEmployee);
  const bad = badStudents.length + badEmployees.length;
  assert.equal(bad, big.result.bad, 'every faulty row shows one of the listed faults');
  assert.ok(bad >= 120 && bad <= 280, `bad rows: ${bad} of 20000`);
  for (const [name, fault] of Object.entries(STUDENT_FAULTS)) assert.ok(badStudents.some(fault), `a student row with ${name}`);
  assert.ok(badEmployees.length > 0);
  assert.ok(big.students.some((r) => r.birth_date!.startsWith('13/45/')));
});

test('multiRoleShare and badShare are honoured: 0 gives none, 0.5 gives about half', async () => {
  const none = await generateInto('none', { rows: 5000, seed: 3, multiRoleShare: 0, badShare: 0 });
  assert.equal(none.result.multiRole, 0);
  assert.equal(none.result.bad, 0);
  const noneStudents = readCsv(none.studentsRaw, '\r\n').rows;
  assert.equal(noneStudents.filter(isBadStudent).length, 0);
  const studentNetids = new Set(noneStudents.map((r) => r.netid!.toLowerCase()));
  assert.equal(readCsv(none.employeesRaw, '\n').rows.filter((r) => studentNetids.has(r.netid!.toLowerCase())).length, 0);

  const half = await generateInto('half', { rows: 5000, seed: 3, multiRoleShare: 0.5, badShare: 0.5 });
  assert.ok(half.result.multiRole >= 500 && half.result.multiRole <= 750, `multi-role: ${half.result.multiRole} of 1000`);
  assert.ok(half.result.bad >= 2250 && half.result.bad <= 2750, `bad: ${half.result.bad} of 5000`);
  assert.equal(readCsv(half.studentsRaw, '\r\n').rows.filter(isBadStudent).length + readCsv(half.employeesRaw, '\n').rows.filter(isBadEmployee).length, half.result.bad);
});

test('the command line writes the same files as generate(), with a manifest, and nothing else', async () => {
  const dir = path.join(tmp, 'cli');
  const { stdout } = await execFileAsync(process.execPath, [GENERATOR_CLI, '--rows', '3000', '--seed', '42', '--out', dir]);
  assert.match(stdout, /wrote 2400 students and 600 employees/);
  const api = await generateInto('api', { rows: 3000, seed: 42 });
  assert.ok((await readFile(path.join(dir, 'students.csv'))).equals(api.studentsRaw));
  assert.ok((await readFile(path.join(dir, 'employees.csv'))).equals(api.employeesRaw));
  assert.deepEqual((await readdir(dir)).sort(), ['employees.csv', 'manifest.json', 'students.csv']);
  const manifest = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(manifest.seed, 42);
  assert.equal(manifest.rows, 3000);
  assert.equal(manifest.multiRole, api.result.multiRole);
});

test('the command line rejects a bad --rows with one line and exit code 2', async () => {
  for (const args of [['--rows', 'many'], ['--rows', '0'], ['--rows', '10', '--bad', '2'], ['--rows', '10', '--nonsense', 'x']]) {
    const error = await execFileAsync(process.execPath, [GENERATOR_CLI, ...args, '--out', path.join(tmp, 'never')]).then(
      () => assert.fail(`${args.join(' ')} was accepted`),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(error.code, 2, args.join(' '));
    assert.equal(error.stderr.trim().split('\n').length, 1, error.stderr);
    assert.match(error.stderr, /^generate: /);
  }
  await assert.rejects(readdir(path.join(tmp, 'never')));
});
