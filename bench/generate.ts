// Synthetic SIS exports for the benchmark: a students file and an employees file in the layout
// that mappings/university.yaml reads, with the mess real nightly files carry (accents and
// non-Latin scripts, quoted line breaks, people in both files, a share of bad rows).
//
// Every row is drawn from its own PRNG, seeded from (seed, file, row index). That keeps the
// output byte-identical for a seed and size, lets rows be streamed out one at a time (1,000,000
// rows are never held in memory), and lets an employee who is also a student re-derive that
// student's name, netid and barcode without the student file being kept anywhere.
//
//   node dist/bench/generate.js --rows 100000 --seed 1 --out DIR [--multi-role 0.05] [--bad 0.01]
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { RunError } from '../src/shared/errors.js';

export interface GenerateOptions {
  /** Data rows in all, split about 80% students and 20% employees. */
  rows: number;
  seed: number;
  outDir: string;
  /** Share of employees who are also students (same netid). Default 0.05. */
  multiRoleShare?: number;
  /** Share of rows, in both files, that carry one deliberate fault. Default 0.01. */
  badShare?: number;
  /** The next night's export of the same people (for the run state's two-night benchmark). */
  nextNight?: NextNight;
}

/**
 * How the next night differs from the first: a share of people changed (a new email), a share
 * gone (their rows left out: departures), and a column the export lost (a broken view). Which
 * people is decided by a hash of the row, so the first night's files are the same as ever.
 */
export interface NextNight {
  changedShare: number;
  departedShare: number;
  /** A column left out of both files' header and rows, when a file has it. */
  droppedColumn?: string;
}

export interface GenerateResult {
  /** Paths of the CSV files written: students first, then employees. */
  files: string[];
  /** Data rows written in all (header lines not counted). */
  rows: number;
  students: number;
  employees: number;
  /** Employee rows whose person is also in the students file. */
  multiRole: number;
  /** Rows written with a deliberate fault. */
  bad: number;
}

/** What generate() leaves beside the CSVs, written last: its presence means the files are complete. */
export interface Manifest extends GenerateResult {
  generator: typeof GENERATOR_ID;
  seed: number;
  multiRoleShare: number;
  badShare: number;
}

/** Changes whenever the output for a given seed and size changes, so old data is not reused. */
export const GENERATOR_ID = 'sis2alma-bench-generate/1';
export const MANIFEST_FILE = 'manifest.json';
export const STUDENTS_FILE = 'students.csv';
export const EMPLOYEES_FILE = 'employees.csv';

export const STUDENT_COLUMNS = [
  'student_id', 'netid', 'first_name', 'middle_name', 'last_name', 'preferred_first_name', 'birth_date',
  'email', 'personal_email', 'phone', 'mobile', 'address_line1', 'address_line2', 'city', 'state',
  'postal_code', 'country', 'level', 'program', 'enrolled', 'term', 'graduation_year', 'barcode', 'department',
] as const;

export const EMPLOYEE_COLUMNS = [
  'employee_id', 'netid', 'first_name', 'last_name', 'preferred_name', 'work_email', 'work_phone',
  'office_line1', 'office_line2', 'city', 'state', 'postal_code', 'country', 'employee_type', 'job_title',
  'department', 'active', 'end_date', 'barcode',
] as const;

const DEFAULT_MULTI_ROLE_SHARE = 0.05;
const DEFAULT_BAD_SHARE = 0.01;

// ---------------------------------------------------------------------------------------------
// Randomness

/** mulberry32: small, fast and good enough for test data; the same on every platform. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** murmur3's finaliser: neighbouring row indexes must not give correlated PRNG streams. */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const STREAM_STUDENT = 0x5354;
const STREAM_EMPLOYEE = 0x454d;

function rowRandom(seed: number, stream: number, index: number): Rng {
  return new Rng(mix32(mix32(seed ^ Math.imul(stream, 0x9e3779b1)) ^ Math.imul(index + 1, 0x27d4eb2f)));
}

class Rng {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  float(): number {
    return this.next();
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
  /** Picks from [weight, value] pairs. */
  weighted<T>(items: readonly (readonly [number, T])[]): T {
    let total = 0;
    for (const [w] of items) total += w;
    let r = this.next() * total;
    for (const [w, v] of items) {
      r -= w;
      if (r < 0) return v;
    }
    return items[items.length - 1]![1];
  }
  digits(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += String(Math.floor(this.next() * 10));
    return s;
  }
}

/**
 * A bijection on [0, modulus) when factor and modulus are coprime: unique ids that do not look
 * sequential. BigInt because index × factor passes 2^53 for the larger sizes.
 */
function scramble(index: number, factor: number, offset: number, modulus: number): number {
  return Number((BigInt(index) * BigInt(factor) + BigInt(offset)) % BigInt(modulus));
}

function firstCoprimePrime(n: number): number {
  for (const p of [1000003, 999983, 999979, 7919, 7907]) if (n % p !== 0) return p;
  return 1;
}

// ---------------------------------------------------------------------------------------------
// Vocabulary. Each name is [as written, ASCII letters for the netid].

type Name = readonly [string, string];

const FIRST_PLAIN: readonly Name[] = [
  ['James', 'james'], ['Mary', 'mary'], ['John', 'john'], ['Patricia', 'patricia'], ['Robert', 'robert'],
  ['Jennifer', 'jennifer'], ['Michael', 'michael'], ['Linda', 'linda'], ['William', 'william'],
  ['Elizabeth', 'elizabeth'], ['David', 'david'], ['Barbara', 'barbara'], ['Richard', 'richard'],
  ['Susan', 'susan'], ['Joseph', 'joseph'], ['Jessica', 'jessica'], ['Thomas', 'thomas'], ['Sarah', 'sarah'],
  ['Daniel', 'daniel'], ['Karen', 'karen'], ['Matthew', 'matthew'], ['Emily', 'emily'], ['Anthony', 'anthony'],
  ['Olivia', 'olivia'], ['Mark', 'mark'], ['Emma', 'emma'], ['Steven', 'steven'], ['Ava', 'ava'],
  ['Andrew', 'andrew'], ['Sophia', 'sophia'], ['Joshua', 'joshua'], ['Isabella', 'isabella'], ['Kevin', 'kevin'],
  ['Grace', 'grace'], ['Brian', 'brian'], ['Hannah', 'hannah'], ['Ethan', 'ethan'], ['Aisha', 'aisha'],
  ['Noah', 'noah'], ['Priya', 'priya'], ['Liam', 'liam'], ['Mei', 'mei'], ['Omar', 'omar'], ['Fatima', 'fatima'],
  ['Carlos', 'carlos'], ['Ana', 'ana'], ['Hiroshi', 'hiroshi'], ['Yuki', 'yuki'], ['Raj', 'raj'], ['Ngozi', 'ngozi'],
];

const FIRST_ACCENTED: readonly Name[] = [
  ['José', 'jose'], ['Zoë', 'zoe'], ['Łukasz', 'lukasz'], ['Søren', 'soren'], ['François', 'francois'],
  ['Chloé', 'chloe'], ['Björn', 'bjorn'], ['Inés', 'ines'], ['Renée', 'renee'], ['Jürgen', 'jurgen'],
  ['Ólafur', 'olafur'], ['Siân', 'sian'], ['Małgorzata', 'malgorzata'], ['Thị Hương', 'thihuong'],
  ['Ça\u011fla', 'cagla'], ['Núria', 'nuria'], ['João', 'joao'], ['Agnès', 'agnes'], ['Dvořák', 'dvorak'],
  // Decomposed on purpose (e + U+0301): some exports are NFD.
  ['Rene\u0301', 'rene'],
];

const FIRST_NONLATIN: readonly Name[] = [
  ['芳', 'fang'], ['伟', 'wei'], ['秀英', 'xiuying'], ['Дмитрий', 'dmitriy'], ['Анна', 'anna'], ['Ольга', 'olga'],
  ['محمد', 'mohammed'], ['فاطمة', 'fatima'], ['민준', 'minjun'], ['서연', 'seoyeon'], ['Αλέξανδρος', 'alexandros'],
  ['Ελένη', 'eleni'], ['陽翔', 'haruto'], ['さくら', 'sakura'], ['अनन्या', 'ananya'], ['אברהם', 'avraham'],
];

const LAST_PLAIN: readonly Name[] = [
  ['Smith', 'smith'], ['Johnson', 'johnson'], ['Williams', 'williams'], ['Brown', 'brown'], ['Jones', 'jones'],
  ['Garcia', 'garcia'], ['Miller', 'miller'], ['Davis', 'davis'], ['Rodriguez', 'rodriguez'], ['Martinez', 'martinez'],
  ['Hernandez', 'hernandez'], ['Lopez', 'lopez'], ['Wilson', 'wilson'], ['Anderson', 'anderson'], ['Taylor', 'taylor'],
  ['Thomas', 'thomas'], ['Moore', 'moore'], ['Jackson', 'jackson'], ['Lee', 'lee'], ['Patel', 'patel'],
  ['Kim', 'kim'], ['Chen', 'chen'], ['Singh', 'singh'], ['Okafor', 'okafor'], ['Tanaka', 'tanaka'], ['Doe', 'doe'],
  ['Nakamura', 'nakamura'], ['Cohen', 'cohen'], ['Murphy', 'murphy'], ['Walker', 'walker'],
];

const LAST_ACCENTED: readonly Name[] = [
  ['Nguyễn', 'nguyen'], ['Müller', 'muller'], ['Kowalczyk', 'kowalczyk'], ['Ødegård', 'odegard'],
  ['Sánchez', 'sanchez'], ['Gonçalves', 'goncalves'], ['Lefèvre', 'lefevre'], ['Wiśniewski', 'wisniewski'],
  ['Þórsdóttir', 'thorsdottir'], ['Trần', 'tran'], ['Çelik', 'celik'], ['Dvořáková', 'dvorakova'],
];

const LAST_NONLATIN: readonly Name[] = [
  ['王', 'wang'], ['李', 'li'], ['张', 'zhang'], ['Иванов', 'ivanov'], ['Смирнова', 'smirnova'],
  ['الحسن', 'alhassan'], ['김', 'kim'], ['박', 'park'], ['Παπαδόπουλος', 'papadopoulos'], ['佐藤', 'sato'],
  ['鈴木', 'suzuki'], ['शर्मा', 'sharma'], ['כהן', 'cohen'],
];

const LAST_PUNCTUATED: readonly Name[] = [
  ["O'Brien", 'obrien'], ['Smith-Jones', 'smithjones'], ["D'Angelo", 'dangelo'], ['García-Márquez', 'garciamarquez'],
  ["N'Diaye", 'ndiaye'], ['van der Berg', 'vanderberg'], ['McAllister-Hughes', 'mcallisterhughes'],
  // A comma inside a name field: it has to be quoted.
  ['Jones, Jr.', 'jones'],
];

const FIRST_LATIN: readonly Name[] = [...FIRST_PLAIN, ...FIRST_ACCENTED];

const PREFERRED: readonly string[] = [
  'Alex', 'Sam', 'Liz', 'Kate', 'Bob', 'Jim', 'Mike', 'Dani', 'Jo', 'Max', 'Zoë', 'Kiki',
  // Quotes inside a field are doubled when quoted.
  'Robert "Bobby"', 'J.P.', 'Mary-Kate',
];

interface Place {
  country: string;
  city: string;
  state: string;
  postal: (r: Rng) => string;
  streets: readonly string[];
  phone: (r: Rng) => string;
}

const US_STREETS = ['Main St', 'Elm Street', 'Oak Ave', 'Massachusetts Ave', 'Broadway', 'College Ave', 'Maple Dr', 'Park Pl'];
const usPhone = (r: Rng): string => {
  const area = r.pick(['617', '212', '312', '510', '512', '206', '734', '609']);
  const line = `555-${r.digits(4)}`;
  return r.weighted([
    [4, `${area}-${line}`],
    [3, `(${area}) ${line}`],
    [2, `+1 ${area} ${line.replace('-', ' ')}`],
    [1, `${area}${line.replace('-', '')}`],
  ]);
};
const usPlace = (city: string, state: string, zip: string): Place => ({
  country: 'US', city, state, streets: US_STREETS, phone: usPhone,
  // Leading zeros (02115) are kept as text; some ZIP+4.
  postal: (r) => (r.chance(0.15) ? `${zip}-${r.digits(4)}` : zip),
});

const US_PLACES: readonly Place[] = [
  usPlace('Boston', 'MA', '02115'), usPlace('Cambridge', 'MA', '02139'), usPlace('New York', 'NY', '10027'),
  usPlace('Chicago', 'IL', '60637'), usPlace('Berkeley', 'CA', '94720'), usPlace('Austin', 'TX', '78712'),
  usPlace('Seattle', 'WA', '98195'), usPlace('Ann Arbor', 'MI', '48109'), usPlace('Princeton', 'NJ', '08544'),
  usPlace('San Juan', 'PR', '00931'),
];

const ABROAD: readonly Place[] = [
  { country: 'GB', city: 'London', state: '', postal: (r) => r.pick(['SW1A 1AA', 'WC1E 6BT', 'NW1 6XE']), streets: ['High St', 'Gower Street', "King's Road"], phone: (r) => `+44 20 7946 ${r.digits(4)}` },
  { country: 'GB', city: 'Oxford', state: 'Oxfordshire', postal: () => 'OX1 2JD', streets: ['Broad Street', 'Cowley Road'], phone: (r) => `+44 1865 ${r.digits(6)}` },
  { country: 'DE', city: 'München', state: 'BY', postal: () => '80331', streets: ['Leopoldstraße', 'Schellingstraße'], phone: (r) => `+49 89 ${r.digits(7)}` },
  { country: 'DE', city: 'Köln', state: 'NW', postal: () => '50667', streets: ['Hohe Straße', 'Zülpicher Str.'], phone: (r) => `0221 ${r.digits(6)}` },
  { country: 'FR', city: 'Saint-Étienne', state: '', postal: () => '42000', streets: ['Rue de la République', 'Cours Fauriel'], phone: (r) => `+33 4 77 ${r.digits(2)} ${r.digits(2)} ${r.digits(2)}` },
  { country: 'FR', city: 'Paris', state: 'Île-de-France', postal: () => '75005', streets: ['Rue Mouffetard', "Boulevard Saint-Michel"], phone: (r) => `01 ${r.digits(2)} ${r.digits(2)} ${r.digits(2)} ${r.digits(2)}` },
  { country: 'CN', city: '北京', state: '北京市', postal: () => '100871', streets: ['颐和园路', '中关村大街'], phone: (r) => `+86 10 ${r.digits(8)}` },
  { country: 'IN', city: 'Bengaluru', state: 'KA', postal: () => '560012', streets: ['CV Raman Ave', 'MG Road'], phone: (r) => `+91 80 ${r.digits(4)} ${r.digits(4)}` },
  { country: 'BR', city: 'São Paulo', state: 'SP', postal: () => '05508-000', streets: ['Av. Paulista', 'Rua Augusta'], phone: (r) => `+55 11 9${r.digits(4)}-${r.digits(4)}` },
  { country: 'JP', city: '東京', state: '東京都', postal: () => '113-8654', streets: ['本郷', '文京区本郷7-3-1'], phone: (r) => `+81 3-${r.digits(4)}-${r.digits(4)}` },
  { country: 'KR', city: '서울', state: '', postal: () => '08826', streets: ['관악로', '세종대로'], phone: (r) => `+82 2-${r.digits(3)}-${r.digits(4)}` },
];

const DEPARTMENTS = ['CS', 'HIST', 'PHYS', 'CHEM', 'MATH', 'ENG', 'BIO', 'ECON'] as const;
/** Codes the mapping is not expected to know, as SIS code tables drift ahead of the library's. */
const UNKNOWN_DEPARTMENTS = ['NURS', 'ARCH', 'ZZ9'] as const;
const UG_PROGRAMS: Record<(typeof DEPARTMENTS)[number], string> = {
  CS: 'BSC-CS', HIST: 'BA-HIST', PHYS: 'BSC-PHYS', CHEM: 'BSC-CHEM', MATH: 'BSC-MATH', ENG: 'BA-ENG', BIO: 'BSC-BIO', ECON: 'BA-ECON',
};
const GR_PROGRAMS: Record<(typeof DEPARTMENTS)[number], readonly string[]> = {
  CS: ['MSC-CS', 'PHD-CS'], HIST: ['MA-HIST', 'PHD-HIST'], PHYS: ['MSC-PHYS', 'PHD-PHYS'], CHEM: ['MSC-CHEM', 'PHD-CHEM'],
  MATH: ['MSC-MATH', 'PHD-MATH'], ENG: ['MA-ENG', 'PHD-ENG'], BIO: ['MSC-BIO', 'PHD-BIO'], ECON: ['MSC-ECON', 'PHD-ECON'],
};
const TERMS = ['2026SP', '2026SU', '2026FA', '2027SP'] as const;

const JOB_TITLES: Record<string, readonly string[]> = {
  FAC: ['Professor', 'Associate Professor', 'Assistant Professor', 'Lecturer', 'Professor of Practice', 'Chair, Department of History'],
  STAFF: ['Librarian', 'Administrative Assistant', 'Lab Manager', 'IT Specialist', 'Research Scientist', 'Coordinator, Student Services'],
  EMERITUS: ['Professor, Emeritus', 'Professor Emerita', 'Librarian Emeritus'],
  TEMP: ['Research Assistant (Temporary)', 'Visiting Scholar', 'Adjunct Lecturer', 'Summer Intern'],
};

const BUILDINGS = ['Science Hall', 'Widener Annex', 'Old Library', 'Engineering Quad', 'Humanities Bldg', 'Hall "B"'];

// ---------------------------------------------------------------------------------------------
// People and rows

interface Person {
  first: string;
  middle: string;
  last: string;
  netid: string;
  barcode: string;
}

function pickName(r: Rng): { first: Name; last: Name } {
  const script = r.weighted([
    [65, 'plain'],
    [15, 'accented'],
    [14, 'nonlatin'],
    [6, 'punctuated'],
  ] as const);
  switch (script) {
    case 'plain':
      return { first: r.pick(FIRST_PLAIN), last: r.pick(LAST_PLAIN) };
    case 'accented':
      return { first: r.pick(FIRST_ACCENTED), last: r.pick(LAST_ACCENTED) };
    case 'nonlatin':
      return { first: r.pick(FIRST_NONLATIN), last: r.pick(LAST_NONLATIN) };
    case 'punctuated':
      return { first: r.pick(FIRST_LATIN), last: r.pick(LAST_PUNCTUATED) };
  }
}

function makeNetid(first: Name, last: Name, suffix: number): string {
  return `${first[1].charAt(0)}${last[1].slice(0, 6)}${suffix}`;
}

/**
 * The part of a student that an employee row of the same person repeats. It is drawn first from
 * the student's own PRNG, so that the employee side can re-derive it from the row index alone.
 */
function studentPerson(seed: number, index: number): { person: Person; r: Rng } {
  const r = rowRandom(seed, STREAM_STUDENT, index);
  const { first, last } = pickName(r);
  const middle = r.chance(0.3) ? r.pick(FIRST_PLAIN)[0] : '';
  const barcode = '2' + String(scramble(index, 734_567_890_123, mix32(seed ^ 0xb5), 1e13)).padStart(13, '0');
  return { person: { first: first[0], middle, last: last[0], netid: makeNetid(first, last, index + 1), barcode }, r };
}

/** A netid as another system typed it: same letters, different case (JDoe1 for jdoe1). */
function caseVariant(netid: string): string {
  const letters = netid.replace(/\d+$/, '');
  const digits = netid.slice(letters.length);
  if (letters.length < 2) return netid.toUpperCase();
  return letters.charAt(0).toUpperCase() + letters.charAt(1).toUpperCase() + letters.slice(2) + digits;
}

function address(r: Rng, place: Place): { line1: string; line2: string } {
  const street = `${r.int(1, 999)} ${r.pick(place.streets)}`;
  const shape = r.weighted([
    [80, 'plain'],
    [8, 'apartment'],
    [4, 'comma'],
    [4, 'linebreak'],
    [4, 'crlfbreak'],
  ] as const);
  switch (shape) {
    case 'plain':
      return { line1: street, line2: '' };
    case 'apartment':
      return { line1: street, line2: `Apt ${r.int(1, 40)}${r.pick(['', 'A', 'B'])}` };
    case 'comma':
      return { line1: `Unit ${r.int(1, 20)}, ${street}`, line2: '' };
    // Line breaks typed into one address box: they stay inside the quoted field.
    case 'linebreak':
      return { line1: `Flat ${r.int(1, 9)}\n${street}`, line2: '' };
    case 'crlfbreak':
      return { line1: `c/o ${r.pick(LAST_PLAIN)[0]}\r\n${street}`, line2: '' };
  }
}

function pickPlace(r: Rng): Place {
  return r.chance(0.82) ? r.pick(US_PLACES) : r.pick(ABROAD);
}

function birthDate(r: Rng, minAge: number, maxAge: number): string {
  const year = 2026 - r.int(minAge, maxAge);
  const month = r.int(1, 12);
  const day = r.int(1, 28);
  return `${String(month).padStart(2, '0')}/${String(day).padStart(2, '0')}/${year}`;
}

type StudentFault = 'empty_netid' | 'bad_email' | 'bad_birth_date' | 'bad_level' | 'bad_graduation_year' | 'control_char';
const STUDENT_FAULTS: readonly StudentFault[] = ['empty_netid', 'bad_email', 'bad_birth_date', 'bad_level', 'bad_graduation_year', 'control_char'];
type EmployeeFault = 'empty_netid' | 'bad_email' | 'control_char';
const EMPLOYEE_FAULTS: readonly EmployeeFault[] = ['empty_netid', 'bad_email', 'control_char'];

/** U+001A (SUB): what a legacy export leaves where it could not convert a character. */
function withControlChar(r: Rng, name: string): string {
  const at = r.int(0, name.length);
  return name.slice(0, at) + '\u001a' + name.slice(at);
}

function studentRow(seed: number, index: number, badShare: number): { fields: string[]; bad: boolean } {
  const { person, r } = studentPerson(seed, index);
  const studentId = String(100000000 + scramble(index, 3_874_204_891, mix32(seed ^ 0x1d), 900_000_000));
  const preferred = r.chance(0.1) ? r.pick(PREFERRED) : '';
  const place = pickPlace(r);
  const { line1, line2 } = address(r, place);
  const graduate = r.chance(0.3);
  const known = r.chance(0.97);
  const dept = known ? r.pick(DEPARTMENTS) : undefined;
  const department = dept ?? r.pick(UNKNOWN_DEPARTMENTS);
  const program = dept ? (graduate ? r.pick(GR_PROGRAMS[dept]) : UG_PROGRAMS[dept]) : `${graduate ? 'MSC' : 'BSC'}-${department}`;
  const personalEmail = r.chance(0.6)
    ? `${person.netid.replace(/\d+$/, '')}.${r.int(1, 9999)}@${r.pick(['example.com', 'example.org', 'mail.example.net'])}`
    : '';
  const row = {
    student_id: studentId,
    netid: person.netid,
    first_name: person.first,
    middle_name: person.middle,
    last_name: person.last,
    preferred_first_name: preferred,
    birth_date: birthDate(r, graduate ? 21 : 17, graduate ? 45 : 24),
    email: `${person.netid}@example.edu`,
    personal_email: personalEmail,
    phone: r.chance(0.7) ? place.phone(r) : '',
    mobile: r.chance(0.75) ? (place.country === 'US' ? usPhone(r) : place.phone(r)) : '',
    address_line1: line1,
    address_line2: line2,
    city: place.city,
    state: place.state,
    postal_code: place.postal(r),
    country: place.country,
    level: graduate ? 'GR' : 'UG',
    program,
    enrolled: r.chance(0.92) ? 'Y' : 'N',
    term: r.pick(TERMS),
    graduation_year: String(r.int(2026, 2030)),
    barcode: person.barcode,
    department,
  };
  // Drawn last, so that the shares asked for do not change any other field of the row.
  const bad = r.chance(badShare);
  if (bad) {
    switch (r.pick(STUDENT_FAULTS)) {
      case 'empty_netid':
        row.netid = '';
        break;
      case 'bad_email':
        row.email = `${person.netid}@@example`;
        break;
      case 'bad_birth_date':
        row.birth_date = `13/45/${2026 - r.int(18, 30)}`;
        break;
      case 'bad_level':
        row.level = 'XX';
        break;
      case 'bad_graduation_year':
        row.graduation_year = r.pick(['2027.5', 'TBD', '20x8']);
        break;
      case 'control_char':
        row.last_name = withControlChar(r, row.last_name);
        break;
    }
  }
  return { fields: STUDENT_COLUMNS.map((c) => row[c]), bad };
}

interface EmployeePlan {
  seed: number;
  students: number;
  multiRoleShare: number;
  badShare: number;
  /** The factor that spreads multi-role people over the students without repeating one. */
  spread: number;
}

function employeeRow(plan: EmployeePlan, index: number, multiRoleOrdinal: number): { fields: string[]; bad: boolean; multiRole: boolean } {
  const { seed } = plan;
  const r = rowRandom(seed, STREAM_EMPLOYEE, index);
  const multiRole = r.chance(plan.multiRoleShare) && multiRoleOrdinal < plan.students;
  let first: string;
  let last: string;
  let netid: string;
  let barcode = '3' + String(scramble(index, 734_567_890_123, mix32(seed ^ 0xe3), 1e13)).padStart(13, '0');
  if (multiRole) {
    // Same person as student k: the HR system has the same netid, sometimes typed in another case.
    const k = scramble(multiRoleOrdinal, plan.spread, seed % plan.students, plan.students);
    const { person } = studentPerson(seed, k);
    first = person.first;
    last = person.last;
    netid = r.chance(0.4) ? caseVariant(person.netid) : person.netid;
    if (r.chance(0.5)) barcode = person.barcode;
  } else {
    const name = pickName(r);
    first = name.first[0];
    last = name.last[0];
    netid = makeNetid(name.first, name.last, plan.students + index + 1);
  }
  const type = r.weighted([
    [35, 'FAC'],
    [45, 'STAFF'],
    [8, 'EMERITUS'],
    [12, 'TEMP'],
  ] as const);
  const active = type === 'EMERITUS' ? true : r.chance(0.9);
  let endDate = '';
  if (!active) endDate = `${r.int(2023, 2026)}${String(r.int(1, 12)).padStart(2, '0')}${String(r.int(1, 28)).padStart(2, '0')}`;
  else if (type === 'TEMP') endDate = `${r.int(2026, 2028)}0630`;
  const place = r.chance(0.95) ? r.pick(US_PLACES) : r.pick(ABROAD);
  const dept = r.chance(0.97) ? r.pick(DEPARTMENTS) : r.pick(UNKNOWN_DEPARTMENTS);
  const row = {
    employee_id: 'E' + String(scramble(index, 3_932_171, mix32(seed ^ 0xe1), 10_000_000)).padStart(7, '0'),
    netid,
    first_name: first,
    last_name: last,
    preferred_name: r.chance(0.08) ? r.pick(PREFERRED) : '',
    work_email: `${netid.toLowerCase()}@example.edu`,
    work_phone: r.chance(0.8) ? place.phone(r) : '',
    office_line1: r.chance(0.5) ? `Room ${r.int(100, 499)}, ${r.pick(BUILDINGS)}` : `${r.int(1, 999)} ${r.pick(place.streets)}`,
    office_line2: r.chance(0.2) ? `Mail Stop ${r.int(1, 99)}` : '',
    city: place.city,
    state: place.state,
    postal_code: place.postal(r),
    country: place.country,
    employee_type: type,
    job_title: r.pick(JOB_TITLES[type]!),
    department: dept,
    active: active ? '1' : '0',
    end_date: endDate,
    barcode,
  };
  const bad = r.chance(plan.badShare);
  if (bad) {
    switch (r.pick(EMPLOYEE_FAULTS)) {
      case 'empty_netid':
        row.netid = '';
        break;
      case 'bad_email':
        row.work_email = `${netid.toLowerCase().replace(/\d+$/, '')}@@example`;
        break;
      case 'control_char':
        row.first_name = withControlChar(r, row.first_name);
        break;
    }
  }
  return { fields: EMPLOYEE_COLUMNS.map((c) => row[c]), bad, multiRole };
}

// ---------------------------------------------------------------------------------------------
// Writing

function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** Buffers rows into large writes and waits for the disk when the stream asks it to. */
class CsvWriter {
  private buffer = '';
  private readonly stream: WriteStream;
  private failure: Error | undefined;
  constructor(
    readonly file: string,
    private readonly eol: string,
  ) {
    this.stream = createWriteStream(file);
    this.stream.on('error', (e) => {
      this.failure = e;
    });
  }
  async row(fields: readonly string[]): Promise<void> {
    this.buffer += fields.map(csvField).join(',') + this.eol;
    if (this.buffer.length >= 1 << 16) await this.flush();
  }
  raw(text: string): void {
    this.buffer += text;
  }
  private async flush(): Promise<void> {
    if (this.failure) throw this.failure;
    const chunk = this.buffer;
    this.buffer = '';
    if (!this.stream.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const onError = (e: Error): void => reject(e);
        this.stream.once('drain', () => {
          this.stream.off('error', onError);
          resolve();
        });
        this.stream.once('error', onError);
      });
    }
  }
  async close(): Promise<void> {
    await this.flush();
    await new Promise<void>((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      this.stream.once('error', reject);
      this.stream.end(() => resolve());
    });
  }
}

/** The next night's header, and each row as that night exports it (undefined: the person is gone). */
function nextNightOf(
  next: NextNight | undefined,
  columns: readonly string[],
  stream: number,
  seed: number,
  emailColumn: string,
): { header: readonly string[]; row: (fields: string[], index: number) => string[] | undefined } {
  if (!next) return { header: columns, row: (fields) => fields };
  const dropped = next.droppedColumn === undefined ? -1 : columns.indexOf(next.droppedColumn);
  const email = columns.indexOf(emailColumn);
  const without = (list: readonly string[]) => (dropped < 0 ? list.slice() : list.filter((_, i) => i !== dropped));
  return {
    header: without(columns),
    row: (fields, index) => {
      const u = mix32(mix32(seed ^ Math.imul(stream, 0x2545f491)) ^ Math.imul(index + 1, 0x68e31da4)) / 2 ** 32;
      if (u < next.departedShare) return undefined;
      const out = fields.slice();
      if (u < next.departedShare + next.changedShare && email >= 0 && out[email]) out[email] = 'new.' + out[email];
      return without(out);
    },
  };
}

function checkOptions(options: GenerateOptions): Required<Omit<GenerateOptions, 'nextNight'>> {
  const { rows, seed } = options;
  if (!Number.isSafeInteger(rows) || rows < 1) throw new RunError('usage', `--rows must be a whole number of at least 1, not ${String(rows)}`);
  if (!Number.isSafeInteger(seed) || seed < 0 || seed > 0xffffffff) throw new RunError('usage', `--seed must be a whole number from 0 to 4294967295, not ${String(seed)}`);
  const share = (name: string, value: number | undefined, fallback: number): number => {
    const v = value ?? fallback;
    if (!Number.isFinite(v) || v < 0 || v > 1) throw new RunError('usage', `${name} must be a share from 0 to 1, not ${String(value)}`);
    return v;
  };
  return {
    rows,
    seed,
    outDir: options.outDir,
    multiRoleShare: share('--multi-role', options.multiRoleShare, DEFAULT_MULTI_ROLE_SHARE),
    badShare: share('--bad', options.badShare, DEFAULT_BAD_SHARE),
  };
}

/**
 * Writes students.csv (UTF-8 with BOM, CRLF) and employees.csv (UTF-8, LF) into outDir, then
 * manifest.json. Each file is written under a temporary name and renamed when complete.
 */
export async function generate(options: GenerateOptions): Promise<GenerateResult> {
  const o = checkOptions(options);
  try {
    await mkdir(o.outDir, { recursive: true });
  } catch (e) {
    throw new RunError('output_failed', `cannot create the output folder ${o.outDir}: ${(e as Error).message}`, { file: o.outDir });
  }
  const students = Math.round(o.rows * 0.8);
  const employees = o.rows - students;
  const studentsFile = path.join(o.outDir, STUDENTS_FILE);
  const employeesFile = path.join(o.outDir, EMPLOYEES_FILE);
  const manifestFile = path.join(o.outDir, MANIFEST_FILE);
  // A manifest left from an earlier run must not vouch for files being rewritten.
  await rm(manifestFile, { force: true });
  let bad = 0;
  let multiRole = 0;
  try {
    // The students file is the Windows-made one: a BOM and CRLF line ends.
    const sw = new CsvWriter(studentsFile + '.tmp', '\r\n');
    sw.raw('\ufeff');
    const night = nextNightOf(options.nextNight, STUDENT_COLUMNS, STREAM_STUDENT, o.seed, 'email');
    await sw.row(night.header);
    for (let i = 0; i < students; i++) {
      const row = studentRow(o.seed, i, o.badShare);
      if (row.bad) bad++;
      const fields = night.row(row.fields, i);
      if (fields) await sw.row(fields);
    }
    await sw.close();

    const plan: EmployeePlan = {
      seed: o.seed,
      students,
      multiRoleShare: o.multiRoleShare,
      badShare: o.badShare,
      spread: firstCoprimePrime(Math.max(students, 1)),
    };
    const ew = new CsvWriter(employeesFile + '.tmp', '\n');
    const staffNight = nextNightOf(options.nextNight, EMPLOYEE_COLUMNS, STREAM_EMPLOYEE, o.seed, 'work_email');
    await ew.row(staffNight.header);
    for (let j = 0; j < employees; j++) {
      const row = employeeRow(plan, j, multiRole);
      if (row.bad) bad++;
      if (row.multiRole) multiRole++;
      const fields = staffNight.row(row.fields, j);
      if (fields) await ew.row(fields);
    }
    await ew.close();
    await rename(studentsFile + '.tmp', studentsFile);
    await rename(employeesFile + '.tmp', employeesFile);
  } catch (e) {
    await rm(studentsFile + '.tmp', { force: true });
    await rm(employeesFile + '.tmp', { force: true });
    if (e instanceof RunError) throw e;
    throw new RunError('output_failed', `cannot write the benchmark data in ${o.outDir}: ${(e as Error).message}`, { file: o.outDir });
  }
  const result: GenerateResult = { files: [studentsFile, employeesFile], rows: students + employees, students, employees, multiRole, bad };
  const manifest: Manifest = { generator: GENERATOR_ID, seed: o.seed, multiRoleShare: o.multiRoleShare, badShare: o.badShare, ...result };
  await writeFile(manifestFile + '.tmp', JSON.stringify(manifest, null, 2) + '\n');
  await rename(manifestFile + '.tmp', manifestFile);
  return result;
}

// ---------------------------------------------------------------------------------------------
// Command line

function parseNumber(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text.replace(/_/g, ''));
  if (text.trim() === '' || !Number.isFinite(value)) throw new RunError('usage', `${name} must be a number, not "${text}"`);
  return value;
}

export async function main(argv: string[]): Promise<number> {
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        rows: { type: 'string' },
        seed: { type: 'string', default: '1' },
        out: { type: 'string' },
        'multi-role': { type: 'string' },
        bad: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
    if (values.help) {
      process.stdout.write(
        'Usage: node dist/bench/generate.js --rows N --out DIR [--seed 1] [--multi-role 0.05] [--bad 0.01]\n' +
          'Writes synthetic students.csv and employees.csv (about 80% / 20% of N rows) and manifest.json into DIR.\n',
      );
      return 0;
    }
    if (values.rows === undefined) throw new RunError('usage', 'name the number of rows: --rows N');
    if (values.out === undefined) throw new RunError('usage', 'name the output folder: --out DIR');
    const result = await generate({
      rows: parseNumber('--rows', values.rows)!,
      seed: parseNumber('--seed', values.seed)!,
      outDir: values.out,
      multiRoleShare: parseNumber('--multi-role', values['multi-role']),
      badShare: parseNumber('--bad', values.bad),
    });
    process.stdout.write(
      `wrote ${result.students} students and ${result.employees} employees (${result.multiRole} also students, ${result.bad} bad rows) to ${values.out}\n`,
    );
    return 0;
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    process.stderr.write(`generate: ${message}\n`);
    if (e instanceof RunError) return e.exitCode;
    // parseArgs rejects unknown or malformed options with these codes.
    return String((e as { code?: unknown }).code ?? '').startsWith('ERR_PARSE_ARGS') ? 2 : 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
