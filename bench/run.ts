// `npm run bench`: the whole pipeline on synthetic university exports of 10k, 100k and 1M rows,
// set against the time xmllint alone takes to validate the same XML. Each step runs as its own
// child process, one at a time, so that the figures are the child's own: wall seconds, CPU
// seconds (user + sys) and peak resident memory.
//
//   npm run bench -- [--sizes 10000,100000,1000000] [--seed 1] [--keep]
//
// This is a benchmark, not a test: it prints figures and checks them against the issue's
// targets, and it never fails because of a time.
import { spawn, spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, readdirSync, readFileSync, type WriteStream } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, rm, stat, writeFile, rename } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import yauzl from 'yauzl';
import { PACKAGE_ROOT } from '../src/shared/paths.js';
import { generate, GENERATOR_ID, MANIFEST_FILE, STUDENTS_FILE, EMPLOYEES_FILE, type Manifest, type NextNight } from './generate.js';

const DEFAULT_SIZES = [10_000, 100_000, 1_000_000];
const DATA_ROOT = path.join(PACKAGE_ROOT, '.bench-data');
const CLI = path.join(PACKAGE_ROOT, 'dist', 'src', 'cli.js');
/** The command as users run it (bin/sis2alma sets glibc's memory settings, then runs the CLI). */
const BIN = path.join(PACKAGE_ROOT, 'bin', 'sis2alma');
const MAPPING = path.join(PACKAGE_ROOT, 'mappings', 'university.yaml');
/** Ex Libris' own schema, beside the repository: the yardstick xmllint validates against. */
const XSD = path.resolve(PACKAGE_ROOT, '..', 'shared', 'reference', 'alma', 'rest_users.xsd');
const GNU_TIME = '/usr/bin/time';
/** SIS2ALMA_BENCH_NO_GNU_TIME=1 forces the fallback measurements, to check them against GNU time. */
const useGnuTime = (): boolean => !process.env.SIS2ALMA_BENCH_NO_GNU_TIME && existsSync(GNU_TIME);

/** The issue's targets, checked and printed; the run never fails on them. */
const TARGETS = {
  maxRssMb: 256,
  convertToXmllint: 2,
  explainToXmllint: 1,
  /** "no more (RSS) than at 100,000 rows plus a small margin" */
  rssGrowthMb: 32,
};

interface Measure {
  command: string;
  exitCode: number | null;
  wallSeconds: number;
  /** user + sys of the child; null when it could not be read. */
  cpuSeconds: number | null;
  userSeconds: number | null;
  sysSeconds: number | null;
  /** Peak resident set size in MB (maxrss / VmHWM) of the largest single process; null when it could not be read. */
  peakRssMb: number | null;
  /** Peak of the whole process tree's resident memory together, sampled every 250 ms (pollTree). */
  treePeakRssMb?: number | null;
  /** How the child's CPU and memory were read. */
  via: 'gnu-time' | 'node-hook' | 'proc-poll';
  stderrTail: string[];
  /** Wall seconds of every repetition; the figures above are those of the fastest. */
  allWallSeconds?: number[];
  /**
   * CPU seconds that other processes used while the step ran (machine-wide busy time from
   * /proc/stat less the child's own): well above zero, they took cores from the step and its wall
   * time is inflated. Null where /proc/stat cannot be read.
   */
  otherCpuSeconds?: number | null;
}

interface SizeResult {
  rows: number;
  seed: number;
  students: number;
  employees: number;
  multiRole: number;
  bad: number;
  inputMb: number;
  convert?: Measure & { rowsPerSecond: number; users?: number; rejected?: number; idIndexMb?: number; zips: number; xmlFiles: number; xmlMb: number };
  xmllint?: Measure & { filesValid: number; filesInvalid: number; firstErrors: string[] };
  explain?: Measure & { outputMb: number };
  /** Wall-time ratios, as the issue's targets are set. */
  convertToXmllint?: number;
  explainToXmllint?: number;
  /** CPU-time ratios: steadier than wall when the machine is shared. */
  convertToXmllintCpu?: number;
  explainToXmllintCpu?: number;
  notes: string[];
}

interface Results {
  date: string;
  startedAt: string;
  machine: Record<string, string | number>;
  sizes: Record<string, SizeResult & { measuredAt: string }>;
  nights?: Record<string, NightsResult & { measuredAt: string }>;
}

/** The run state's nights (issue 16): `run` with and without the state, on night 1, night 2 and a night that lost a column. */
interface NightsResult {
  rows: number;
  night2: NextNight & { rows: number };
  dropped?: NextNight & { rows: number };
  /** Each step's figures, by name: night1_no_state, night1_state, night2_no_state, night2_full, night2_delta, dropped_no_state, dropped_guard, dropped_accepted. */
  steps: Record<string, Measure & { summary?: string; expectedExit?: number }>;
  /** state.db after night 1 and after night 2 (full), in MB. */
  stateMb: { night1?: number; night2?: number };
  /** Wall and CPU ratios of a night with state to the same night without. */
  ratios: Record<string, { wall?: number; cpu?: number }>;
  notes: string[];
}

/** Night 2, an ordinary next night: 1% of people changed (a new email), 0.5% gone. The issue's targets are for it, in full and in delta mode. */
const NIGHT2: NextNight = { changedShare: 0.01, departedShare: 0.005 };
/** The same night with the students' mobile column lost (a broken view): max_field_loss trips; delivered only with --accept-changes. */
const DROPPED: NextNight = { ...NIGHT2, droppedColumn: 'mobile' };
/** The state's targets: a night with state at most 1.3 × the same night without; the process tree under 256 MB. */
const STATE_TARGETS = { timeRatio: 1.3, maxRssMb: 256 };

// ---------------------------------------------------------------------------------------------
// Measuring a child process

let rusageHook: string | undefined;

/**
 * Without GNU time, a Node child reports its own rusage on exit through this preloaded hook;
 * process.resourceUsage() covers all its threads (libxml2 and zlib work off the main thread).
 */
async function nodeRusageHook(): Promise<string> {
  if (rusageHook) return rusageHook;
  const file = path.join(DATA_ROOT, 'rusage-hook.mjs');
  await writeFile(
    file,
    "import { writeFileSync } from 'node:fs';\n" +
      "process.on('exit', () => { writeFileSync(process.env.SIS2ALMA_BENCH_RUSAGE, JSON.stringify(process.resourceUsage())); });\n",
  );
  rusageHook = file;
  return file;
}

/** Reads VmHWM and utime+stime from /proc while the child runs: the fallback for non-Node children. */
function pollProc(pid: number): { stop: () => { peakKb: number | null; cpuSeconds: number | null } } {
  let peakKb: number | null = null;
  let cpuTicks: number | null = null;
  const sample = (): void => {
    try {
      const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (hwm) peakKb = Math.max(peakKb ?? 0, Number(hwm[1]));
      // Fields after "(comm) ": state is [0], utime [11], stime [12], in clock ticks (100 a second).
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      cpuTicks = Number(fields[11]) + Number(fields[12]);
    } catch {
      /* the child has gone */
    }
  };
  const timer = setInterval(sample, 100);
  return {
    stop: () => {
      clearInterval(timer);
      return { peakKb, cpuSeconds: cpuTicks === null ? null : cpuTicks / 100 };
    },
  };
}

/**
 * The resident memory of a process and all its descendants together (xmllint and its shell
 * beside sis2alma), sampled every 250 ms from /proc: the issue's memory target is the whole
 * process tree's, where GNU time reports the largest single process. Null where /proc cannot be
 * read.
 */
function pollTree(root: number): { stop: () => number | null } {
  let peakKb: number | null = null;
  const sample = (): void => {
    try {
      const parent = new Map<number, number>();
      for (const name of readdirSync('/proc')) {
        if (!/^\d+$/.test(name)) continue;
        try {
          const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
          parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
        } catch {
          /* gone meanwhile */
        }
      }
      const tree = new Set([root]);
      for (let grew = true; grew; ) {
        grew = false;
        for (const [pid, ppid] of parent) if (!tree.has(pid) && tree.has(ppid)) (tree.add(pid), (grew = true));
      }
      let kb = 0;
      for (const pid of tree) {
        try {
          kb += Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
        } catch {
          /* gone meanwhile */
        }
      }
      peakKb = Math.max(peakKb ?? 0, kb);
    } catch {
      /* no /proc */
    }
  };
  const timer = setInterval(sample, 250);
  return {
    stop: () => {
      clearInterval(timer);
      return peakKb;
    },
  };
}

async function measure(
  label: string,
  command: string,
  args: string[],
  options: { stdoutFile: string; stderrFile: string; isNode: boolean },
): Promise<Measure> {
  const haveGnuTime = useGnuTime();
  const timeFile = options.stderrFile + '.time';
  const rusageFile = options.stderrFile + '.rusage';
  let argv: string[];
  let via: Measure['via'];
  const env = { ...process.env };
  if (haveGnuTime) {
    argv = [GNU_TIME, '-f', '%e %U %S %M', '-o', timeFile, command, ...args];
    via = 'gnu-time';
  } else if (options.isNode) {
    argv = [command, '--import', pathToFileURL(await nodeRusageHook()).href, ...args];
    env.SIS2ALMA_BENCH_RUSAGE = rusageFile;
    via = 'node-hook';
  } else {
    argv = [command, ...args];
    via = 'proc-poll';
  }
  const out = createWriteStream(options.stdoutFile);
  const err = createWriteStream(options.stderrFile);
  await Promise.all([opened(out), opened(err)]);
  const started = process.hrtime.bigint();
  const child = spawn(argv[0]!, argv.slice(1), { cwd: PACKAGE_ROOT, env, stdio: ['ignore', out, err] });
  const poll = via === 'proc-poll' && child.pid !== undefined ? pollProc(child.pid) : undefined;
  const treePoll = child.pid !== undefined ? pollTree(child.pid) : undefined;
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
  const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  const polled = poll?.stop();
  const treeKb = treePoll?.stop() ?? null;
  await Promise.all([closed(out), closed(err)]);

  let user: number | null = null;
  let sys: number | null = null;
  let peakKb: number | null = null;
  if (via === 'gnu-time') {
    // GNU time writes "Command exited with non-zero status N" before the figures when it did.
    const lines = (await readFile(timeFile, 'utf8').catch(() => '')).trim().split('\n');
    const figures = /^([\d.]+) ([\d.]+) ([\d.]+) (\d+)$/.exec(lines[lines.length - 1] ?? '');
    if (figures) {
      user = Number(figures[2]);
      sys = Number(figures[3]);
      peakKb = Number(figures[4]);
    }
    await rm(timeFile, { force: true });
  } else if (via === 'node-hook') {
    try {
      const usage = JSON.parse(await readFile(rusageFile, 'utf8')) as NodeJS.ResourceUsage;
      user = usage.userCPUTime / 1e6;
      sys = usage.systemCPUTime / 1e6;
      peakKb = usage.maxRSS;
    } catch {
      /* the child died before its exit handler ran */
    }
    await rm(rusageFile, { force: true });
  } else if (polled) {
    peakKb = polled.peakKb;
  }
  const cpuSeconds = user !== null && sys !== null ? user + sys : (polled?.cpuSeconds ?? null);
  const result: Measure = {
    command: `${label}: ${[command, ...args].map(shortPath).join(' ')}`,
    exitCode,
    wallSeconds: round(wallSeconds, 3),
    cpuSeconds: cpuSeconds === null ? null : round(cpuSeconds, 2),
    userSeconds: user,
    sysSeconds: sys,
    peakRssMb: peakKb === null ? null : round(peakKb / 1024, 1),
    treePeakRssMb: treeKb === null ? null : round(treeKb / 1024, 1),
    via,
    stderrTail: await tail(options.stderrFile, 3),
  };
  return result;
}

/** Paths inside the repository as relative ones, so that the JSON reads the same on any machine. */
function shortPath(arg: string): string {
  if (arg === process.execPath) return 'node';
  return arg.startsWith(PACKAGE_ROOT + path.sep) ? path.relative(PACKAGE_ROOT, arg) : arg;
}

function opened(stream: WriteStream): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', reject);
  });
}

function closed(stream: WriteStream): Promise<void> {
  return new Promise((resolve) => stream.end(() => resolve()));
}

/** The last lines of a file, read as a stream: an error log can be large at 1M rows. */
async function tail(file: string, count: number): Promise<string[]> {
  const last: string[] = [];
  try {
    for await (const line of createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity })) {
      if (line.trim() === '') continue;
      last.push(line.length > 300 ? line.slice(0, 300) + '…' : line);
      if (last.length > count) last.shift();
    }
  } catch {
    /* no such file */
  }
  return last;
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

// ---------------------------------------------------------------------------------------------
// Steps

async function ensureData(rows: number, seed: number): Promise<{ dir: string; manifest: Manifest; generatedIn?: number }> {
  const dir = path.join(DATA_ROOT, `data-${rows}-seed${seed}`);
  try {
    const manifest = JSON.parse(await readFile(path.join(dir, MANIFEST_FILE), 'utf8')) as Manifest;
    if (manifest.generator === GENERATOR_ID && manifest.seed === seed && manifest.rows === rows) return { dir, manifest };
  } catch {
    /* none yet, or unreadable: make it anew */
  }
  const started = process.hrtime.bigint();
  await generate({ rows, seed, outDir: dir });
  const generatedIn = Number(process.hrtime.bigint() - started) / 1e9;
  const manifest = JSON.parse(await readFile(path.join(dir, MANIFEST_FILE), 'utf8')) as Manifest;
  return { dir, manifest, generatedIn };
}

async function commandExists(args: string[]): Promise<boolean> {
  if (!existsSync(CLI)) return false;
  const probe = spawnSync(process.execPath, [CLI, ...args, '--help'], { cwd: PACKAGE_ROOT, encoding: 'utf8' });
  return probe.status === 0;
}

async function filesUnder(dir: string, suffix: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) await walk(p);
      else if (entry.name.toLowerCase().endsWith(suffix)) found.push(p);
    }
  };
  await walk(dir);
  return found.sort();
}

/** Writes every .xml entry of the zips into dir, streamed (the 1M-row XML is over a gigabyte). */
async function unzipXml(zips: string[], dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const [z, zip] of zips.entries()) {
    await new Promise<void>((resolve, reject) => {
      yauzl.open(zip, { lazyEntries: true }, (error, zipfile) => {
        if (error || !zipfile) return reject(error ?? new Error(`cannot open ${zip}`));
        zipfile.on('error', reject);
        zipfile.on('end', () => resolve());
        zipfile.on('entry', (entry: yauzl.Entry) => {
          if (!entry.fileName.toLowerCase().endsWith('.xml')) return zipfile.readEntry();
          zipfile.openReadStream(entry, (e, stream) => {
            if (e || !stream) return reject(e ?? new Error(`cannot read ${entry.fileName} in ${zip}`));
            const target = path.join(dir, `${z}-${path.basename(entry.fileName)}`);
            pipeline(stream, createWriteStream(target)).then(() => {
              written.push(target);
              zipfile.readEntry();
            }, reject);
          });
        });
        zipfile.readEntry();
      });
    });
  }
  return written;
}

/** Counts xmllint's per-file verdicts and keeps its first few complaints. */
async function readXmllintVerdicts(stderrFile: string): Promise<{ filesValid: number; filesInvalid: number; firstErrors: string[] }> {
  let filesValid = 0;
  let filesInvalid = 0;
  const firstErrors: string[] = [];
  for await (const line of createInterface({ input: createReadStream(stderrFile, 'utf8'), crlfDelay: Infinity })) {
    if (line.endsWith(' validates')) filesValid++;
    else if (line.endsWith(' fails to validate')) filesInvalid++;
    else if (line.trim() !== '' && firstErrors.length < 5) firstErrors.push(line.length > 300 ? line.slice(0, 300) + '…' : line);
  }
  return { filesValid, filesInvalid, firstErrors };
}

/** The report convert writes beside its zips, if one can be found: for users and rejected rows. */
async function readConvertCounts(outDir: string): Promise<{ users?: number; rejected?: number; idIndexMb?: number }> {
  for (const file of await filesUnder(outDir, '.json')) {
    try {
      const report = JSON.parse(await readFile(file, 'utf8')) as { counts?: { users?: number; rejected?: number }; run?: { id_index_mb?: number } };
      if (report.counts && typeof report.counts.users === 'number') return { users: report.counts.users, rejected: report.counts.rejected, idIndexMb: report.run?.id_index_mb };
    } catch {
      /* not a report */
    }
  }
  return {};
}

async function sizeOf(files: string[]): Promise<number> {
  let bytes = 0;
  for (const f of files) bytes += (await stat(f)).size;
  return round(bytes / 1024 / 1024, 1);
}

async function benchOneSize(rows: number, seed: number, keep: boolean, repeat: number, can: { convert: boolean; explain: boolean; xmllint: boolean }): Promise<SizeResult> {
  const label = rows.toLocaleString('en-US');
  log(`\n== ${label} rows`);
  const data = await ensureData(rows, seed);
  if (data.generatedIn !== undefined) log(`generated ${path.relative(PACKAGE_ROOT, data.dir)} in ${data.generatedIn.toFixed(1)} s`);
  else log(`reusing ${path.relative(PACKAGE_ROOT, data.dir)}`);
  const inputs = [path.join(data.dir, STUDENTS_FILE), path.join(data.dir, EMPLOYEES_FILE)];
  const result: SizeResult = {
    rows,
    seed,
    students: data.manifest.students,
    employees: data.manifest.employees,
    multiRole: data.manifest.multiRole,
    bad: data.manifest.bad,
    inputMb: await sizeOf(inputs),
    notes: [],
  };
  const work = path.join(DATA_ROOT, `run-${rows}`);
  await rm(work, { recursive: true, force: true });
  const outDir = path.join(work, 'out');
  const xmlDir = path.join(work, 'xml');
  const logs = path.join(work, 'logs');
  await mkdir(outDir, { recursive: true });
  await mkdir(logs, { recursive: true });
  const inputArgs = inputs.flatMap((f) => ['--input', f]);

  try {
    let xmlFiles: string[] = [];
    if (can.convert) {
      const m = await fastestOf(repeat, async () => {
        await rm(outDir, { recursive: true, force: true });
        await mkdir(outDir, { recursive: true });
        return measure(
          'convert',
          BIN,
          ['convert', '--mapping', MAPPING, ...inputArgs, '--out', outDir, '--max-rejected', '100%'],
          { stdoutFile: path.join(logs, 'convert.out'), stderrFile: path.join(logs, 'convert.err'), isNode: false },
        );
      });
      const zips = await filesUnder(outDir, '.zip');
      if (m.exitCode !== 0) result.notes.push(`convert exited with ${m.exitCode}: ${m.stderrTail.join(' | ')}`);
      if (zips.length > 0) xmlFiles = await unzipXml(zips, xmlDir);
      else result.notes.push('convert wrote no zip');
      result.convert = {
        ...m,
        rowsPerSecond: Math.round(rows / m.wallSeconds),
        ...(await readConvertCounts(outDir)),
        zips: zips.length,
        xmlFiles: xmlFiles.length,
        xmlMb: await sizeOf(xmlFiles),
      };
      log(describe('convert', m) + `, ${result.convert.rowsPerSecond.toLocaleString('en-US')} rows/s, ${result.convert.xmlMb} MB XML in ${xmlFiles.length} file(s)`);
    }

    if (can.xmllint && xmlFiles.length > 0) {
      const stderrFile = path.join(logs, 'xmllint.err');
      const m = await fastestOf(repeat, () =>
        measure('xmllint', 'xmllint', ['--stream', '--noout', '--schema', XSD, ...xmlFiles], {
          stdoutFile: path.join(logs, 'xmllint.out'),
          stderrFile,
          isNode: false,
        }),
      );
      result.xmllint = { ...m, ...(await readXmllintVerdicts(stderrFile)) };
      if (result.xmllint.filesInvalid > 0) result.notes.push(`xmllint: ${result.xmllint.filesInvalid} file(s) fail rest_users.xsd, first: ${result.xmllint.firstErrors[0] ?? '?'}`);
      log(describe('xmllint', m) + `, ${result.xmllint.filesValid} valid / ${result.xmllint.filesInvalid} invalid file(s)`);
      result.convertToXmllint = ratio(result.convert?.wallSeconds, m.wallSeconds);
      result.convertToXmllintCpu = ratio(result.convert?.cpuSeconds, m.cpuSeconds);
    }

    if (can.explain) {
      const stdoutFile = path.join(logs, 'explain.out');
      const m = await fastestOf(repeat, () =>
        measure('explain', BIN, ['mapping', 'explain', '--mapping', MAPPING, ...inputArgs], {
          stdoutFile,
          stderrFile: path.join(logs, 'explain.err'),
          isNode: false,
        }),
      );
      if (m.exitCode !== 0) result.notes.push(`mapping explain exited with ${m.exitCode}: ${m.stderrTail.join(' | ')}`);
      result.explain = { ...m, outputMb: await sizeOf([stdoutFile]) };
      log(describe('mapping explain', m));
      result.explainToXmllint = ratio(m.wallSeconds, result.xmllint?.wallSeconds);
      result.explainToXmllintCpu = ratio(m.cpuSeconds, result.xmllint?.cpuSeconds);
    }
  } finally {
    // The logs are small and say what went wrong; the XML of 1M rows is not small.
    if (!keep) {
      await rm(outDir, { recursive: true, force: true });
      await rm(xmlDir, { recursive: true, force: true });
      await rm(path.join(logs, 'explain.out'), { force: true });
    }
  }
  for (const note of result.notes) log(`  note: ${note}`);
  return result;
}

async function ensureNight2(rows: number, seed: number, night: NextNight = NIGHT2, name = 'night2'): Promise<{ dir: string; generatedIn?: number }> {
  const dir = path.join(DATA_ROOT, `data-${rows}-seed${seed}-${name}`);
  const marker = JSON.stringify({ generator: GENERATOR_ID, rows, seed, night2: night });
  if ((await readFile(path.join(dir, 'night2.json'), 'utf8').catch(() => '')) === marker) return { dir };
  const started = process.hrtime.bigint();
  await generate({ rows, seed, outDir: dir, nextNight: night });
  await writeFile(path.join(dir, 'night2.json'), marker);
  return { dir, generatedIn: Number(process.hrtime.bigint() - started) / 1e9 };
}

/**
 * Nights of `sis2alma run` to a folder target, each with and without the run state: night 1 (a
 * first night: every user staged and committed); night 2 (1% changed, 0.5% gone), in full and in
 * delta mode, each from the same night-1 state; and night 2 with a lost column, once as it comes
 * (max_field_loss stops it: exit 5) and once delivered with --accept-changes, as an operator would
 * after checking it.
 */
async function benchTwoNights(rows: number, seed: number, keep: boolean): Promise<NightsResult> {
  const label = rows.toLocaleString('en-US');
  log(`\n== two nights with the run state, ${label} rows`);
  const night1 = await ensureData(rows, seed);
  const night2 = await ensureNight2(rows, seed);
  if (night2.generatedIn !== undefined) log(`generated ${path.relative(PACKAGE_ROOT, night2.dir)} in ${night2.generatedIn.toFixed(1)} s`);
  const dropped = await ensureNight2(rows, seed, DROPPED, 'dropped');
  if (dropped.generatedIn !== undefined) log(`generated ${path.relative(PACKAGE_ROOT, dropped.dir)} in ${dropped.generatedIn.toFixed(1)} s`);
  const work = path.join(DATA_ROOT, `nights-${rows}`);
  await rm(work, { recursive: true, force: true });
  const logs = path.join(work, 'logs');
  await mkdir(logs, { recursive: true });
  const night2Rows = await countLines([path.join(night2.dir, STUDENTS_FILE), path.join(night2.dir, EMPLOYEES_FILE)]);
  const droppedRows = await countLines([path.join(dropped.dir, STUDENTS_FILE), path.join(dropped.dir, EMPLOYEES_FILE)]);
  const result: NightsResult = { rows, night2: { ...NIGHT2, rows: night2Rows }, dropped: { ...DROPPED, rows: droppedRows }, steps: {}, stateMb: {}, ratios: {}, notes: [] };
  const config = async (name: string, data: string, state: string | undefined, mode: 'full' | 'delta' = 'full'): Promise<string> => {
    const file = path.join(work, `${name}.yaml`);
    const lines = [
      `mapping: ${MAPPING}`,
      'inputs:',
      `  - ${path.join(data, STUDENTS_FILE)}`,
      `  - ${path.join(data, EMPLOYEES_FILE)}`,
      `output_dir: ${path.join(work, name, 'out')}`,
      `archive: { dir: ${path.join(work, name, 'archive')}, keep_days: 1 }`,
      'guards: { max_rejected: "100%" }',
      state === undefined ? 'state: { enabled: false }' : `state: { dir: ${state}, mode: ${mode} }`,
      `delivery: { target: dir, dir: ${path.join(work, name, 'alma')}, create_dir: true, stale: rename }`,
    ];
    await writeFile(file, lines.join('\n') + '\n');
    return file;
  };
  const step = async (name: string, configFile: string, when: string, extra: string[] = [], expectedExit = 0): Promise<Measure> => {
    const m = await measure(name, BIN, ['run', '--config', configFile, '--now', when, ...extra], {
      stdoutFile: path.join(logs, `${name}.out`),
      stderrFile: path.join(logs, `${name}.err`),
      isNode: false,
    });
    const summary = (await tail(path.join(logs, `${name}.out`), 1))[0];
    result.steps[name] = { ...m, ...(summary ? { summary } : {}), ...(expectedExit ? { expectedExit } : {}) };
    if (m.exitCode !== expectedExit) result.notes.push(`${name} exited with ${m.exitCode} (expected ${expectedExit}): ${m.stderrTail.join(' | ')}`);
    log(describe(name, m));
    return m;
  };
  const NIGHT1 = '2026-11-20T02:00:00Z';
  const NIGHT2_AT = '2026-11-21T02:00:00Z';
  const state1 = path.join(work, 'state-night1');
  try {
    await step('night1_no_state', await config('n1-plain', night1.dir, undefined), NIGHT1);
    await step('night1_state', await config('n1-state', night1.dir, state1), NIGHT1);
    result.stateMb.night1 = await sizeOf([path.join(state1, 'state.db')]);
    await step('night2_no_state', await config('n2-plain', night2.dir, undefined), NIGHT2_AT);
    // Each night below starts from a copy of the night-1 state.
    const fromNight1 = async (name: string): Promise<string> => {
      const dir = path.join(work, `state-${name}`);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await copyFile(path.join(state1, 'state.db'), path.join(dir, 'state.db'));
      return dir;
    };
    for (const mode of ['full', 'delta'] as const) {
      const dir = await fromNight1(`night2-${mode}`);
      await step(`night2_${mode}`, await config(`n2-${mode}`, night2.dir, dir, mode), NIGHT2_AT);
      if (mode === 'full') result.stateMb.night2 = await sizeOf([path.join(dir, 'state.db')]);
    }
    await step('dropped_no_state', await config('d2-plain', dropped.dir, undefined), NIGHT2_AT);
    await step('dropped_guard', await config('d2-guard', dropped.dir, await fromNight1('dropped-guard')), NIGHT2_AT, [], 5);
    await step('dropped_accepted', await config('d2-accepted', dropped.dir, await fromNight1('dropped-accepted')), NIGHT2_AT, ['--accept-changes']);
  } finally {
    if (!keep) for (const name of ['n1-plain', 'n1-state', 'n2-plain', 'n2-full', 'n2-delta', 'd2-plain', 'd2-guard', 'd2-accepted']) await rm(path.join(work, name), { recursive: true, force: true });
  }
  const pair = (withState: string, without: string) => {
    const a = result.steps[withState];
    const b = result.steps[without];
    result.ratios[withState] = { wall: ratio(a?.wallSeconds, b?.wallSeconds), cpu: ratio(a?.cpuSeconds, b?.cpuSeconds) };
  };
  pair('night1_state', 'night1_no_state');
  pair('night2_full', 'night2_no_state');
  pair('night2_delta', 'night2_no_state');
  pair('dropped_guard', 'dropped_no_state');
  pair('dropped_accepted', 'dropped_no_state');
  for (const [name, r] of Object.entries(result.ratios)) log(`  ${name}: ${r.wall ?? '?'}× the wall time without state (${r.cpu ?? '?'}× CPU)`);
  log(`  state.db: ${result.stateMb.night1 ?? '?'} MB after night 1, ${result.stateMb.night2 ?? '?'} MB after night 2`);
  for (const note of result.notes) log(`  note: ${note}`);
  return result;
}

/** Data rows (lines after the header, quoted line breaks counted too: an estimate) of CSV files. */
async function countLines(files: string[]): Promise<number> {
  let n = 0;
  for (const file of files) {
    const rl = createInterface({ input: createReadStream(file) });
    let first = true;
    for await (const _line of rl) {
      if (first) first = false;
      else n++;
    }
  }
  return n;
}

function nightsTable(results: NightsResult[]): string {
  const rows = ['| rows | step | wall s | CPU s | peak RSS MB | process tree MB | × without state (wall / CPU) |', '|---|---|---|---|---|---|---|'];
  for (const r of results)
    for (const [name, m] of Object.entries(r.steps)) {
      const x = r.ratios[name];
      rows.push(`| ${r.rows.toLocaleString('en-US')} | ${name} | ${m.wallSeconds} | ${m.cpuSeconds ?? '?'} | ${m.peakRssMb ?? '?'} | ${m.treePeakRssMb ?? '?'} | ${x ? `${x.wall ?? '?'} / ${x.cpu ?? '?'}` : ''} |`);
    }
  return rows.join('\n');
}

function nightsVerdicts(results: NightsResult[]): string[] {
  const out: string[] = [];
  for (const r of results) {
    for (const [name, x] of Object.entries(r.ratios)) {
      if (x.wall === undefined) continue;
      // The lost column is a night the guards are there to stop, and the first night builds the
      // state once: measured, not held to the target, which the issue sets for an ordinary next
      // night (1% changed), in full and in delta mode.
      if (name.startsWith('dropped_') || name.startsWith('night1_')) out.push(`${r.rows.toLocaleString('en-US')} ${name}: ${x.wall}× wall (${x.cpu ?? '?'}× CPU), for information`);
      else out.push(`${r.rows.toLocaleString('en-US')} ${name}: ${x.wall}× wall (${x.cpu ?? '?'}× CPU) ${x.wall <= STATE_TARGETS.timeRatio ? '≤' : '>'} ${STATE_TARGETS.timeRatio}× target`);
    }
    const peak = Math.max(...Object.values(r.steps).map((m) => m.peakRssMb ?? 0));
    const tree = Math.max(...Object.values(r.steps).map((m) => m.treePeakRssMb ?? 0));
    out.push(`${r.rows.toLocaleString('en-US')} peak RSS of one process ${peak} MB, of the process tree together ${tree} MB (sampled) ${tree <= STATE_TARGETS.maxRssMb ? '≤' : '>'} ${STATE_TARGETS.maxRssMb} MB target`);
  }
  return out;
}

/** CPU seconds the whole machine has been busy since boot (user, nice, system, irq, softirq, steal), or null. */
function machineBusySeconds(): number | null {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
    // USER_HZ is 100 on Linux.
    return (user + nice + system + irq + softirq + steal) / 100;
  } catch {
    return null;
  }
}

/** Runs a step `repeat` times and keeps the fastest, the usual way to damp a shared machine's noise. */
async function fastestOf(repeat: number, step: () => Promise<Measure>): Promise<Measure> {
  let best: Measure | undefined;
  const walls: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const busyBefore = machineBusySeconds();
    const m = await step();
    const busyAfter = machineBusySeconds();
    m.otherCpuSeconds = busyBefore === null || busyAfter === null || m.cpuSeconds === null ? null : round(Math.max(0, busyAfter - busyBefore - m.cpuSeconds), 2);
    walls.push(m.wallSeconds);
    if (!best || m.wallSeconds < best.wallSeconds) best = m;
    if (m.exitCode !== 0) break;
  }
  return { ...best!, allWallSeconds: walls };
}

function ratio(a: number | null | undefined, b: number | null | undefined): number | undefined {
  return a == null || b == null || b === 0 ? undefined : round(a / b, 2);
}

function describe(what: string, m: Measure): string {
  const cpu = m.cpuSeconds === null ? '? CPU s' : `${m.cpuSeconds.toFixed(2)} CPU s`;
  const rss = m.peakRssMb === null ? '? MB' : `${m.peakRssMb.toFixed(0)} MB peak RSS`;
  const runs = m.allWallSeconds && m.allWallSeconds.length > 1 ? ` (fastest of ${m.allWallSeconds.map((w) => w.toFixed(2)).join(', ')})` : '';
  const load = m.otherCpuSeconds != null && m.otherCpuSeconds > Math.max(0.25 * m.wallSeconds, 0.2) ? ` [other processes used ${m.otherCpuSeconds} CPU s meanwhile: wall time inflated]` : '';
  return `${what}: exit ${m.exitCode}, ${m.wallSeconds.toFixed(2)} s wall${runs}, ${cpu}, ${rss}${load}`;
}

// ---------------------------------------------------------------------------------------------
// Report

function table(results: SizeResult[]): string {
  const header = ['rows', 'rows/s', 'wall s', 'CPU s', 'peak RSS MB', 'xmllint wall s', 'xmllint CPU s', 'convert/xmllint', '(CPU)', 'explain s', 'explain RSS MB', 'explain/xmllint', '(CPU)'];
  const fmt = (v: number | null | undefined, digits = 2): string => (v === null || v === undefined ? '–' : v.toFixed(digits));
  const lines = results.map((r) => [
    r.rows.toLocaleString('en-US'),
    !r.convert ? '–' : r.convert.exitCode !== 0 ? `failed (exit ${r.convert.exitCode})` : r.convert.rowsPerSecond.toLocaleString('en-US'),
    fmt(r.convert?.wallSeconds),
    fmt(r.convert?.cpuSeconds),
    fmt(r.convert?.peakRssMb, 0),
    fmt(r.xmllint?.wallSeconds),
    fmt(r.xmllint?.cpuSeconds),
    fmt(r.convertToXmllint),
    fmt(r.convertToXmllintCpu),
    r.explain && r.explain.exitCode !== 0 ? `failed (exit ${r.explain.exitCode})` : fmt(r.explain?.wallSeconds),
    fmt(r.explain?.peakRssMb, 0),
    fmt(r.explainToXmllint),
    fmt(r.explainToXmllintCpu),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const row = (cells: string[]): string => '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ') + ' |';
  return [row(header), '|' + widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|', ...lines.map(row)].join('\n');
}

function verdicts(results: SizeResult[]): string[] {
  const out: string[] = [];
  const mark = (ok: boolean): string => (ok ? 'ok  ' : 'MISS');
  for (const r of results) {
    const n = r.rows.toLocaleString('en-US');
    // A run that failed measured something else than the pipeline: no verdict on it.
    if (r.convert && r.convert.exitCode !== 0) {
      out.push(`FAIL ${n}: convert exited with ${r.convert.exitCode}`);
      continue;
    }
    if (r.convert?.peakRssMb != null) out.push(`${mark(r.convert.peakRssMb <= TARGETS.maxRssMb)} ${n}: convert peak RSS ${r.convert.peakRssMb} MB (target ≤ ${TARGETS.maxRssMb} MB)`);
    // The time targets are set at 1M rows: below that, Node's start-up outweighs xmllint's whole run.
    if (r.rows !== 1_000_000) continue;
    const cpu = (v: number | undefined): string => (v === undefined ? '' : `; CPU time ratio ${v}`);
    if (r.convertToXmllint !== undefined) out.push(`${mark(r.convertToXmllint <= TARGETS.convertToXmllint)} ${n}: convert / xmllint wall time = ${r.convertToXmllint} (target ≤ ${TARGETS.convertToXmllint}${cpu(r.convertToXmllintCpu)})`);
    if (r.explainToXmllint !== undefined && r.explain?.exitCode === 0) out.push(`${mark(r.explainToXmllint < TARGETS.explainToXmllint)} ${n}: explain / xmllint wall time = ${r.explainToXmllint} (target < ${TARGETS.explainToXmllint}${cpu(r.explainToXmllintCpu)})`);
  }
  // "No more than at 100,000 rows plus a small margin: memory must not grow with the number of
  // rows beyond the id index": the growth less the id indexes' (convert's report gives their size).
  const c100k = results.find((r) => r.rows === 100_000)?.convert;
  const c1m = results.find((r) => r.rows === 1_000_000)?.convert;
  if (c100k?.peakRssMb != null && c1m?.peakRssMb != null) {
    const indexGrowth = c1m.idIndexMb != null && c100k.idIndexMb != null ? round(c1m.idIndexMb - c100k.idIndexMb, 1) : undefined;
    const growth = round(c1m.peakRssMb - c100k.peakRssMb - (indexGrowth ?? 0), 1);
    const index = indexGrowth === undefined ? ' (the id indexes\' size unknown: counted in)' : `, less the id indexes' ${indexGrowth} MB: ${growth} MB`;
    out.push(`${mark(growth <= TARGETS.rssGrowthMb)} peak RSS 100k → 1M: ${c100k.peakRssMb} → ${c1m.peakRssMb} MB${index} (target: growth beyond the id indexes ≤ ${TARGETS.rssGrowthMb} MB)`);
  }
  return out;
}

function machineFacts(): Record<string, string | number> {
  const cpus = os.cpus();
  const xmllint = spawnSync('xmllint', ['--version'], { encoding: 'utf8' });
  const gitHead = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: PACKAGE_ROOT, encoding: 'utf8' });
  const gitDirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: PACKAGE_ROOT, encoding: 'utf8' });
  return {
    cpus: os.availableParallelism(),
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryGb: round(os.totalmem() / 1024 ** 3, 1),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    xmllint: xmllint.status === null ? 'missing' : (xmllint.stderr || xmllint.stdout).split('\n')[0]!.replace(/^xmllint: /, '').trim(),
    measuredWith: useGnuTime() ? 'GNU time (/usr/bin/time)' : 'node rusage hook / /proc polling (GNU time missing)',
    git: gitHead.status === 0 ? gitHead.stdout.trim() + (gitDirty.stdout.trim() ? ' (with uncommitted changes)' : '') : 'unknown',
  };
}

async function saveResults(results: SizeResult[], machine: Record<string, string | number>, startedAt: Date, nights: NightsResult[] = []): Promise<string> {
  const date = startedAt.toISOString().slice(0, 10);
  const file = path.join(DATA_ROOT, `results-${date}.json`);
  // One file a day: a later run of some sizes replaces those sizes and keeps the others.
  let saved: Results = { date, startedAt: startedAt.toISOString(), machine, sizes: {} };
  try {
    const earlier = JSON.parse(await readFile(file, 'utf8')) as Results;
    if (earlier && typeof earlier.sizes === 'object') saved = { ...earlier, machine, sizes: { ...earlier.sizes }, nights: { ...earlier.nights } };
  } catch {
    /* first run today */
  }
  for (const r of results) saved.sizes[String(r.rows)] = { ...r, measuredAt: startedAt.toISOString() };
  for (const n of nights) (saved.nights ??= {})[String(n.rows)] = { ...n, measuredAt: startedAt.toISOString() };
  await writeFile(file + '.tmp', JSON.stringify(saved, null, 2) + '\n');
  await rename(file + '.tmp', file);
  return file;
}

const RESULTS_MD = path.join(PACKAGE_ROOT, 'bench', 'RESULTS.md');

/** Puts a section at the top of bench/RESULTS.md (newest first), below its title and introduction. */
async function recordResults(section: string): Promise<void> {
  const text = await readFile(RESULTS_MD, 'utf8').catch(() => '# Benchmark results\n\nNewest results first.\n');
  const at = text.indexOf('\n## ');
  const next = at < 0 ? `${text.trimEnd()}\n\n${section}` : `${text.slice(0, at + 1)}${section}\n${text.slice(at + 1)}`;
  await writeFile(RESULTS_MD + '.tmp', next);
  await rename(RESULTS_MD + '.tmp', RESULTS_MD);
}

function log(line: string): void {
  process.stdout.write(line + '\n');
}

// ---------------------------------------------------------------------------------------------

function parseSizes(text: string): number[] {
  const sizes = text.split(',').map((s) => {
    const t = s.trim().toLowerCase().replace(/_/g, '');
    const m = /^(\d+(?:\.\d+)?)([km]?)$/.exec(t);
    const n = m ? Number(m[1]) * (m[2] === 'k' ? 1e3 : m[2] === 'm' ? 1e6 : 1) : NaN;
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--sizes takes whole numbers of rows separated by commas (10000,100k,1m), not "${s}"`);
    return n;
  });
  return [...new Set(sizes)].sort((a, b) => a - b);
}

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        sizes: { type: 'string', default: DEFAULT_SIZES.join(',') },
        seed: { type: 'string', default: '1' },
        keep: { type: 'boolean', default: false },
        repeat: { type: 'string', default: '1' },
        nights: { type: 'string', default: '100000,1000000' },
        'no-record': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message}\n`);
    return 2;
  }
  if (values.help) {
    log('Usage: npm run bench -- [--sizes 10000,100000,1000000] [--nights 100000,1000000] [--seed 1] [--repeat 1] [--keep] [--no-record]');
    log('--nights: the sizes of the run state\'s nights scenario (`run` with and without state); "" for none.');
    log('Generates synthetic SIS exports into .bench-data/ (reused when present), runs convert and');
    log('mapping explain on them, times xmllint on the same XML, writes .bench-data/results-<date>.json');
    log('and puts the tables at the top of bench/RESULTS.md (--no-record: not there).');
    return 0;
  }
  let sizes: number[];
  let nightSizes: number[];
  const seed = Number(values.seed);
  const repeat = Number(values.repeat);
  try {
    sizes = values.sizes === '' ? [] : parseSizes(values.sizes);
    nightSizes = values.nights === '' ? [] : parseSizes(values.nights);
    if (!Number.isSafeInteger(repeat) || repeat < 1 || repeat > 20) throw new Error(`--repeat must be a whole number from 1 to 20, not "${values.repeat}"`);
    if (!Number.isSafeInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`--seed must be a whole number from 0 to 4294967295, not "${values.seed}"`);
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message}\n`);
    return 2;
  }

  const startedAt = new Date();
  await mkdir(DATA_ROOT, { recursive: true });
  const machine = machineFacts();
  log(`sis2alma bench, ${startedAt.toISOString()}`);
  for (const [k, v] of Object.entries(machine)) log(`  ${k}: ${v}`);

  const can = { convert: true, explain: true, xmllint: true };
  if (!useGnuTime()) {
    log(`note: ${GNU_TIME} is missing (Debian: apt-get install time); CPU and RSS come from a Node rusage hook, and for xmllint from /proc polling (coarser).`);
  }
  if (!existsSync(CLI)) {
    log(`note: ${path.relative(PACKAGE_ROOT, CLI)} is missing: run npm run build first. Only the data is generated.`);
    can.convert = can.explain = false;
  } else {
    if (!existsSync(MAPPING)) {
      log(`note: ${path.relative(PACKAGE_ROOT, MAPPING)} is missing: convert and mapping explain are skipped.`);
      can.convert = can.explain = false;
    }
    if (can.convert && !(await commandExists(['convert']))) {
      log('note: the CLI has no convert command yet: convert is skipped.');
      can.convert = false;
    }
    if (can.explain && !(await commandExists(['mapping', 'explain']))) {
      log('note: the CLI has no mapping explain command yet: it is skipped.');
      can.explain = false;
    }
  }
  if (spawnSync('xmllint', ['--version']).status === null) {
    log('note: xmllint is missing (Debian: apt-get install libxml2-utils): the xmllint time and the ratios are skipped.');
    can.xmllint = false;
  } else if (!existsSync(XSD)) {
    log(`note: ${XSD} is missing: the xmllint time and the ratios are skipped.`);
    can.xmllint = false;
  }

  const results: SizeResult[] = [];
  // The load average lags by minutes (an earlier bench still shows in it): a second of /proc/stat says what runs now.
  const busyBefore = machineBusySeconds();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const busyNow = busyBefore === null ? null : (machineBusySeconds() ?? busyBefore) - busyBefore;
  if (busyNow !== null && busyNow > 0.3) {
    log(`note: other processes are using ${busyNow.toFixed(1)} of ${os.availableParallelism()} cores: wall times will be inflated (CPU times much less).`);
  }
  for (const rows of sizes) results.push(await benchOneSize(rows, seed, values.keep, repeat, can));
  const nights: NightsResult[] = [];
  if (can.convert) for (const rows of nightSizes) nights.push(await benchTwoNights(rows, seed, values.keep));

  if (results.length) log('\n' + table(results));
  const checks = verdicts(results);
  if (checks.length > 0) log('\nTargets (issue: 1M rows ≤ 256 MB RSS and ≤ 2 × xmllint; explain < 1 × xmllint):\n' + checks.map((c) => '  ' + c).join('\n'));
  if (nights.length) {
    log('\n' + nightsTable(nights));
    log('\nTargets (issue 16: a night with state ≤ 1.3 × without; under 256 MB):\n' + nightsVerdicts(nights).map((c) => '  ' + c).join('\n'));
  }
  const file = await saveResults(results, machine, startedAt, nights);
  log(`\nwrote ${path.relative(PACKAGE_ROOT, file)}`);
  const sections = [
    results.length ? table(results) + '\n\n' + checks.map((c) => `- ${c}`).join('\n') : '',
    nights.length ? nightsTable(nights) + '\n\n' + nightsVerdicts(nights).map((c) => `- ${c}`).join('\n') : '',
  ].filter(Boolean);
  if (sections.length && !values['no-record']) {
    const argv = process.argv.slice(2).map((a) => (a === '' ? '""' : a)).join(' ');
    const quiet = busyNow === null ? 'unknown' : busyNow > 0.3 ? `**not quiet**: other processes used ${busyNow.toFixed(1)} of ${os.availableParallelism()} cores when it started` : 'quiet when it started';
    await recordResults(`## ${startedAt.toISOString().slice(0, 16).replace('T', ', ')} UTC: \`npm run bench${argv ? ` -- ${argv}` : ''}\`\n\nRecorded by the bench at ${machine.git}; Node ${process.version}; machine ${quiet}.\n\n${sections.join('\n\n')}\n`);
    log(`recorded in ${path.relative(PACKAGE_ROOT, RESULTS_MD)}`);
  }
  // Times never fail the bench; a pipeline step that failed does, so that it is not taken for a figure.
  const failed =
    results.some((r) => (r.convert && r.convert.exitCode !== 0) || (r.explain && r.explain.exitCode !== 0)) || nights.some((n) => Object.values(n.steps).some((m) => m.exitCode !== (m.expectedExit ?? 0)));
  return failed ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
