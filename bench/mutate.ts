// `npm run mutate`: mutation testing with StrykerJS over the modules where a silent change does the
// most harm, one group at a time, and the score per module written to bench/MUTATION.md.
//
//   npm run mutate                       # every group (hours on two cores)
//   npm run mutate -- core delivery      # some groups
//   npm run mutate -- core --concurrency 1   # one test process at a time (default 2, one a core)
//   npm run mutate -- --list             # the groups, their modules and their test files
//   npm run mutate -- --report           # bench/MUTATION.md again from bench/mutation-scores.json, running nothing
//   npm run mutate -- --stopped core     # records what a run of core stopped half-way had measured
//
// Like the benchmark, this is a measurement, not a test: it is not run in CI, and it never fails
// because of a score. Each group names the test files that exercise its modules; a mutant is run
// against them one after another until one fails (Stryker's tap runner, one file = one test).
//
// Coverage analysis is set "off", but Stryker's tap runner (9.x) reports coverage from its dry run
// all the same, and Stryker uses it: a mutant that no test file reaches in its own process is
// "no coverage" without being run, and the others run only against the files whose process reached
// them. Tests that drive the real CLI in a child process or the mapping threads count for neither
// (Stryker cannot see coverage there), so a score is a lower bound: a module's paths that only
// children reach need a test that calls them in-process (test/mapping-rows.test.ts does for map.ts).
// The active mutant does reach children and threads: Stryker passes it in an environment variable
// they inherit.
import { Stryker } from '@stryker-mutator/core';
import type { MutantResult } from '@stryker-mutator/api/core';
import { spawnSync } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import type { LoggedMutant, LoggedPlan } from './mutate-log.js';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PACKAGE_ROOT } from '../src/shared/paths.js';

interface Group {
  /** What a silent change here would break, for the results file. */
  about: string;
  /**
   * The modules, each a file or a file with the line ranges to mutate (`src/x.ts:95-116,152-171`),
   * for a group whose issue wording scopes it to some decisions and whose tests are too slow for the
   * whole files; `narrowed` then says which lines and why.
   */
  modules: string[];
  narrowed?: string;
  /** Compiled test files, fastest first: a killed mutant stops at the first file that fails. */
  tests: string[];
  /** The share of mutants the issue asks to be killed (0–100). */
  target: number;
  /**
   * Added to the time the tests took unmutated before a mutant counts as hung (Stryker's
   * `timeoutMS`; 60 s unless given): a mutant that retries for ever costs that much each time.
   */
  timeoutMS?: number;
}

export const GROUPS: Record<string, Group> = {
  core: {
    about: 'the mapping core and its checks, dates, merge and the rules across users',
    modules: ['src/mapping/map.ts', 'src/mapping/load.ts', 'src/mapping/model.ts', 'src/shared/dates.ts', 'src/pipeline/merge.ts', 'src/pipeline/across-users.ts'],
    // The mapping language's own test files (conditions, edges, coverage, merge policies, mapping
    // test, the examples) came with issue 15, after this list was first written: without them a
    // mutant of a condition or a merge policy met no test that reads one. The files that map rows
    // come first (map.ts has most of the group's mutants: ~1,200), the cheap ones before the dear;
    // property (a minute or more) last. mapping-rows pins map.ts's paths that only the CLI's child
    // processes reached (Stryker counts coverage in the test file's own process only), and
    // mapping-load does the same for load.ts (the mapping file read, checked and normalised).
    tests: ['mapping-load', 'mapping-rows', 'mapping-coverage', 'merge-policy', 'mapping-language', 'golden', 'mapping-conditions', 'mapping-edges', 'mapping-check', 'examples', 'across-users', 'merge', 'dates', 'explain', 'mapping-test', 'property'],
    target: 85,
  },
  xml: {
    about: 'XML writing and the schema check',
    modules: ['src/pipeline/xml.ts', 'src/pipeline/validate.ts'],
    tests: ['xsd-check', 'xml-writer', 'xml', 'validate', 'golden'],
    target: 75,
  },
  output: {
    about: 'packaging limits, the report and guards',
    modules: ['src/pipeline/package.ts', 'src/pipeline/report.ts'],
    // output-stages calls both modules in-process with exact outcomes, in a second or two: the
    // others reach them through convert() (package, guards), the CLI's child processes (privacy)
    // or real servers (run), at seconds to minutes a mutant.
    tests: ['output-stages', 'package', 'guards', 'privacy', 'run'],
    target: 75,
  },
  read: {
    about: 'reading and encodings',
    modules: ['src/pipeline/read.ts'],
    // read-stages calls read.ts's functions in-process: the other files reach most of them only
    // through the CLI's child processes and the mapping threads, where Stryker sees no coverage.
    tests: ['read-stages', 'read', 'bad-input', 'property'],
    target: 75,
  },
  delivery: {
    about: 'delivery decisions: host keys, .part, retries, exit codes',
    // Each mutant here meets a real sshd and real folders (about 50 s a survivor), and the seven
    // modules hold about 1,000 mutants: the issue scopes the group to its decisions, so these are
    // the lines that make them.
    modules: ['src/delivery/deliver.ts:95-121,157-177', 'src/delivery/host-keys.ts:36-74,84-130', 'src/delivery/target.ts'],
    narrowed:
      'deliver.ts lines 95–121 (withRetries: which failure is retried, how often, the doubling delay) and 157–177 (the upload as `.part`, its size checked, then the rename); host-keys.ts lines 36–74 (a known_hosts file read as OpenSSH reads it: markers, `@revoked`, hashed names, patterns, negations) and 84–130 (the verifier: pinned fingerprints, revoked and listed keys, the key types asked for); target.ts whole (DeliveryError and its `transient`). Left out: the messages of sftp-errors.ts, the stale-zip policy, the SFTP and folder targets themselves (sftp.ts, dir.ts) and the archive: each mutant there meets a real sshd (about 50 s a survivor), and the seven modules hold about 1,000 mutants, more than a run on two shared cores can take.',
    tests: ['delivery-words', 'host-keys', 'delivery-safety', 'deliver', 'run'],
    target: 75,
    timeoutMS: 15_000,
  },
  serve: {
    about: "the push endpoint's authentication and limits",
    modules: ['src/serve/login.ts:26-44,111-155', 'src/serve/passwd.ts:59-64', 'src/serve/server.ts:220-229', 'src/serve/upload.ts:51-58'],
    narrowed:
      'login.ts lines 26–44 (the throttle: the doubling wait of a failing address, forgetting it) and 111–155 (authenticate: the Basic header, an unknown name hashed against the decoy, the outcome); passwd.ts lines 59–64 (verifyPassword); server.ts lines 220–229 (the Content-Length refused before the body, the content type); upload.ts lines 51–58 (the bytes counted against the limit, the upload timeout). Left out: the answer to each login refused (server.ts 200–216, whose mutants only serve.test.ts can tell apart, at about 40 s each: a first run of them could not finish in the time there was), the config check, the imports, TLS and reload, the multipart parsing: each mutant starts real HTTPS servers and imports, and the six modules hold about 1,000 mutants.',
    tests: ['login', 'serve-limits', 'serve-auth', 'serve'],
    target: 75,
    timeoutMS: 15_000,
  },
};

const TEMP = path.join(PACKAGE_ROOT, '.stryker-tmp');
const RESULTS = path.join(PACKAGE_ROOT, 'bench', 'MUTATION.md');
const RESULTS_JSON = path.join(PACKAGE_ROOT, 'bench', 'mutation-scores.json');
/** Each tested mutant of a group's run, as it is tested (bench/mutate-log.ts), so that a run stopped half-way keeps what it measured. */
const logOf = (group: string) => path.join(PACKAGE_ROOT, 'reports', 'mutation', `${group}.log.jsonl`);

/** Killed (a test failed, or the mutant hung past the timeout) over every mutant that ran or should have. */
interface Score {
  module: string;
  killed: number;
  timeout: number;
  survived: number;
  noCoverage: number;
  errors: number;
  score: number;
  /** Set when the run stopped before every mutant of the module was tested: how many it has. */
  planned?: number;
}

function scoreOf(module: string, results: MutantResult[]): Score {
  const count = (status: string) => results.filter((r) => r.status === status).length;
  const killed = count('Killed');
  const timeout = count('Timeout');
  const survived = count('Survived');
  const noCoverage = count('NoCoverage');
  const errors = count('CompileError') + count('RuntimeError');
  const valid = killed + timeout + survived + noCoverage;
  return { module, killed, timeout, survived, noCoverage, errors, score: valid ? (100 * (killed + timeout)) / valid : 100 };
}

/** The file of a module entry, without its line ranges. */
function fileOf(module: string): string {
  return module.replace(/:[\d,-]+$/, '');
}

/** Stryker's `mutate` patterns for a module entry: the file, or one `file:from-to` per range. */
function strykerPatterns(module: string): string[] {
  const ranges = /:([\d,-]+)$/.exec(module)?.[1];
  return ranges ? ranges.split(',').map((r) => `${fileOf(module)}:${r}`) : [module];
}

async function runGroup(name: string, group: Group, concurrency: number): Promise<MutantResult[]> {
  // Stryker runs the tests in a copy of the project under .stryker-tmp/; the tests read Ex Libris'
  // schema from ../shared beside the project, so the copy gets that neighbour too.
  const shared = path.resolve(PACKAGE_ROOT, '..', 'shared');
  await mkdir(TEMP, { recursive: true });
  await rm(path.join(TEMP, 'shared'), { force: true });
  if (existsSync(shared)) await symlink(shared, path.join(TEMP, 'shared'));
  await mkdir(path.dirname(logOf(name)), { recursive: true });
  process.env.MUTATE_LOG = logOf(name);
  process.env.MUTATE_COMMIT = commit();
  const stryker = new Stryker({
    testRunner: 'tap',
    tap: { testFiles: group.tests.map((t) => `dist/test/${t}.test.js`), forceBail: true },
    plugins: ['@stryker-mutator/tap-runner', path.join(PACKAGE_ROOT, 'dist', 'bench', 'mutate-log.js')],
    buildCommand: 'tsc -p tsconfig.json',
    coverageAnalysis: 'off',
    mutate: group.modules.flatMap(strykerPatterns),
    // Two cores: one test process a core, unless --concurrency says otherwise.
    concurrency,
    timeoutMS: group.timeoutMS ?? 60_000,
    // The first run of all the tests, unmutated: the read group's takes about 4½ minutes on two
    // busy cores, past Stryker's 5-minute default once anything else runs beside it.
    dryRunTimeoutMinutes: 20,
    reporters: ['progress-append-only', 'json', 'mutate-log'],
    jsonReporter: { fileName: `reports/mutation/${name}.json` },
    tempDirName: path.basename(TEMP),
    // The copy leaves out what the tests do not need: the benchmark's data alone can be gigabytes.
    ignorePatterns: ['.bench-data', 'reports', 'out', 'dist'],
  });
  return stryker.runMutationTest();
}

function commit(): string {
  const out = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: PACKAGE_ROOT, encoding: 'utf8' });
  return out.status === 0 ? out.stdout.trim() : 'unknown';
}

/** The last figures of each module, so that running one group (or one module) keeps the others'. */
type Recorded = Record<string, Score & { date: string; commit: string; survivors: string[] }>;

function readRecorded(): Recorded {
  return existsSync(RESULTS_JSON) ? (JSON.parse(readFileSync(RESULTS_JSON, 'utf8')) as Recorded) : {};
}

function survivorsOf(results: MutantResult[]): string[] {
  return results
    .filter((r) => r.status === 'Survived' || r.status === 'NoCoverage')
    .map((r) => `${r.location.start.line}:${r.location.start.column + 1} ${r.mutatorName} → ${JSON.stringify(r.replacement ?? '').slice(0, 100)}`);
}

function render(recorded: Recorded): string {
  const lines = [
    '# Mutation testing',
    '',
    'Written by `npm run mutate` (bench/mutate.ts): StrykerJS over the modules where a silent change does the most',
    'harm, group by group. A mutant is **killed** when a test fails (or it hangs past the timeout). Score =',
    'killed / (killed + survived + no coverage); compile errors are not counted. A survivor that is equivalent',
    "(no test could tell it apart) is marked in the source with `// Stryker disable next-line <mutator>: why`.",
    '',
    '| group | what a silent change there breaks | target | score | modules measured |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const [name, group] of Object.entries(GROUPS)) {
    const measured = group.modules.filter((m) => recorded[m]);
    const partly = measured.filter((m) => recorded[m]!.planned !== undefined).length;
    const sum = (key: 'killed' | 'timeout' | 'survived' | 'noCoverage') => measured.reduce((n, m) => n + recorded[m]![key], 0);
    const valid = sum('killed') + sum('timeout') + sum('survived') + sum('noCoverage');
    const score = valid ? (100 * (sum('killed') + sum('timeout'))) / valid : undefined;
    const shown = score === undefined ? 'not run yet' : `${score.toFixed(1)}% ${score >= group.target && measured.length === group.modules.length && !partly ? '(met)' : '(not met)'}`;
    lines.push(`| ${name} | ${group.about} | ${group.target}% | ${shown} | ${measured.length} of ${group.modules.length}${partly ? ` (${partly} partly)` : ''} |`);
  }
  const narrowed = Object.entries(GROUPS).filter(([, g]) => g.narrowed);
  if (narrowed.length) lines.push(...narrowed.flatMap(([name, g]) => ['', `**${name}** is measured over some lines of its modules only: ${g.narrowed}`]));
  lines.push('', '## Per module', '', '| module | date | commit | killed | timeout | survived | no coverage | errors | score |', '| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const group of Object.values(GROUPS))
    for (const m of group.modules) {
      const r = recorded[m];
      if (r) lines.push(`| ${m} | ${r.date} | ${r.commit} | ${r.killed} | ${r.timeout} | ${r.survived} | ${r.noCoverage} | ${r.errors} | ${r.score.toFixed(1)}%${r.planned === undefined ? '' : ` (run stopped: ${r.killed + r.timeout + r.survived + r.noCoverage + r.errors} of ${r.planned} mutants tested)`} |`);
    }
  lines.push('', '## Survivors', '', 'Each is a behaviour no test pins yet, or an equivalent mutant still to be marked as such (line:column, mutator, replacement).', '');
  for (const group of Object.values(GROUPS))
    for (const m of group.modules) {
      const r = recorded[m];
      if (!r || !r.survivors.length) continue;
      lines.push(`### ${m} (${r.survivors.length})`, '', '```', ...r.survivors, '```', '');
    }
  return lines.join('\n');
}

/**
 * What was written by hand at the end of the results file, from a "## Survivors handled by hand"
 * heading on (which survivors got a test, which were marked equivalent): kept when the tables are
 * written again.
 */
function handNotes(): string {
  if (!existsSync(RESULTS)) return '';
  const text = readFileSync(RESULTS, 'utf8');
  const at = text.indexOf('\n## Survivors handled by hand');
  return at < 0 ? '' : text.slice(at + 1);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  // --report writes bench/MUTATION.md again from bench/mutation-scores.json, running nothing.
  if (args.includes('--report')) {
    await writeFile(RESULTS, render(readRecorded()) + '\n' + handNotes());
    return;
  }
  // --stopped GROUP…: a run of those groups was stopped before it ended; their modules' figures
  // are taken from the mutants it had tested (reports/mutation/GROUP.log.jsonl), marked partial.
  if (args.includes('--stopped')) {
    const recorded = readRecorded();
    for (const name of args.filter((a) => a !== '--stopped')) {
      if (!GROUPS[name] || !existsSync(logOf(name))) {
        console.error(`mutate: no log of a run of group ${name} (${path.relative(process.cwd(), logOf(name))})`);
        process.exitCode = 2;
        return;
      }
      const [head, ...rest] = readFileSync(logOf(name), 'utf8').trim().split('\n');
      const { planned, commit: measured } = JSON.parse(head!) as LoggedPlan;
      const tested = rest.map((l) => JSON.parse(l) as LoggedMutant);
      const commitNow = measured ?? commit();
      for (const m of GROUPS[name]!.modules) {
        const file = Object.keys(planned).find((f) => f.endsWith(fileOf(m)));
        if (!file) continue;
        const mine = tested.filter((r) => r.fileName === file).map((r) => ({ ...r, location: { start: { line: r.line, column: r.column } } }) as unknown as MutantResult);
        const errors = mine.filter((r) => r.status === 'CompileError' || r.status === 'RuntimeError').length;
        const done = mine.filter((r) => r.status !== 'Ignored').length;
        recorded[m] = { ...scoreOf(m, mine), ...(done < planned[file]! ? { planned: planned[file]! } : {}), date: new Date().toISOString().slice(0, 10), commit: commitNow, survivors: survivorsOf(mine) };
        console.log(`mutate: ${m}: ${done} of ${planned[file]} mutants tested (${errors} errors)`);
      }
    }
    await writeFile(RESULTS_JSON, JSON.stringify(recorded, null, 2) + '\n');
    await writeFile(RESULTS, render(recorded) + '\n' + handNotes());
    return;
  }
  if (args.includes('--list')) {
    for (const [name, group] of Object.entries(GROUPS)) console.log(`${name}: ${group.modules.join(' ')}\n  tests: ${group.tests.join(' ')}; target ${group.target}%`);
    return;
  }
  // --module src/wing/x.ts (repeatable) narrows the groups named to those modules.
  const only: string[] = [];
  for (let i = args.indexOf('--module'); i >= 0; i = args.indexOf('--module')) only.push(...args.splice(i, 2).slice(1));
  // --concurrency N: how many test processes Stryker runs at once (default 2: one a core).
  let concurrency = 2;
  const at = args.indexOf('--concurrency');
  if (at >= 0) {
    const given = args.splice(at, 2)[1];
    concurrency = Number(given);
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      console.error(`mutate: --concurrency wants a whole number of at least 1, not ${given ?? 'nothing'}`);
      process.exitCode = 2;
      return;
    }
  }
  const unknown = args.filter((a) => !(a in GROUPS));
  if (unknown.length) {
    console.error(`mutate: no group ${unknown.join(', ')} (groups: ${Object.keys(GROUPS).join(', ')})`);
    process.exitCode = 2;
    return;
  }
  const names = args.length ? args : Object.keys(GROUPS);
  for (const name of names) {
    const all = GROUPS[name]!;
    const group = { ...all, modules: only.length ? all.modules.filter((m) => only.includes(m) || only.includes(fileOf(m))) : all.modules };
    if (!group.modules.length) continue;
    console.log(`mutate: ${name}: ${group.modules.join(', ')} against ${group.tests.join(', ')}`);
    // The commit measured is the one the run copied at its start: work may be committed while it runs.
    const measured = commit();
    const results = await runGroup(name, group, concurrency);
    // Read when the run ends, not when it began: another group's run may have written its figures since.
    const recorded = readRecorded();
    for (const m of group.modules) {
      const mine = results.filter((r) => r.fileName.endsWith(fileOf(m)));
      recorded[m] = { ...scoreOf(m, mine), date: new Date().toISOString().slice(0, 10), commit: measured, survivors: survivorsOf(mine) };
    }
    // Written after every group, so that a long run stopped half-way keeps what it measured.
    await writeFile(RESULTS_JSON, JSON.stringify(recorded, null, 2) + '\n');
    await writeFile(RESULTS, render(recorded) + '\n' + handNotes());
  }
  console.log(`mutate: scores in ${path.relative(process.cwd(), RESULTS)}`);
}

await main();
