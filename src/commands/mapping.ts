// `sis2alma mapping check|explain|diff|test`: the librarian's tools for a mapping file. check says
// every problem with file:line:column; explain says what a mapping does to an input; diff says
// what an edit changes; test runs example rows against the values expected of them. None of them
// writes a file.
import type { Argv, CommandModule } from 'yargs';
import { EXIT_CODES } from '../shared/errors.js';
import type { MappingProblem } from '../mapping/load.js';
import { localDate } from '../shared/dates.js';
import { runTime } from './convert.js';
import { createLogger, type Logger } from '../shared/log.js';
import { progressView } from './progress-view.js';

export interface MappingCommandOptions {
  /** Where output lines go (one call per line, without newline); default stdout. */
  write?: (line: string) => void;
  /** Where progress goes: a bar when stderr is a terminal, else one line per pass; default stderr, so that stdout holds the answer alone. */
  log?: Logger;
}

export interface CheckResult {
  files: { file: string; valid: boolean; problems: string[]; warnings: string[] }[];
  exitCode: number;
}

/** Checks each mapping file; every problem and warning as `file:line:column: path: message`. */
export async function checkMappingFiles(files: readonly string[]): Promise<CheckResult> {
  // Loaded here, not with the CLI, as each command's wings (src/commands/index.ts).
  const { checkMapping, formatProblem } = await import('../mapping/load.js');
  const out: CheckResult['files'] = [];
  for (const file of files) {
    try {
      const result = checkMapping(file);
      out.push({ file, valid: result.mapping !== undefined, problems: inFileOrder(result.problems).map(formatProblem), warnings: inFileOrder(result.warnings).map(formatProblem) });
    } catch (error) {
      out.push({ file, valid: false, problems: [(error as Error).message], warnings: [] });
    }
  }
  return { files: out, exitCode: out.every((f) => f.valid) ? EXIT_CODES.ok : EXIT_CODES.mapping_invalid };
}

/** Problems as the librarian reads the file: top to bottom. */
function inFileOrder(problems: MappingProblem[]): MappingProblem[] {
  return [...problems].sort((a, b) => a.line - b.line || a.column - b.column);
}

interface CheckArgs {
  file: string[];
  json?: boolean;
  exitCode?: number;
}
interface ExplainArgs {
  mapping: string;
  input: string[];
  encoding: string;
  now?: string;
  json: boolean;
  'show-pii': boolean;
  exitCode?: number;
}
interface TestArgs {
  file: string;
  json: boolean;
  exitCode?: number;
}
interface DiffArgs extends Omit<ExplainArgs, 'mapping'> {
  old: string;
  new: string;
}

const inputOptions = (y: Argv) =>
  y
    .option('input', { type: 'string', array: true, demandOption: true, describe: 'A CSV export; repeat for several (e.g. students and staff)' })
    .option('encoding', { type: 'string', default: 'utf-8', describe: 'Encoding of the CSV files' })
    .option('now', { type: 'string', describe: 'Compute expiry dates as if run at this time (ISO 8601)' })
    .option('json', { type: 'boolean', default: false, describe: 'Print JSON for machines instead of text' })
    .option('show-pii', { type: 'boolean', default: false, describe: 'Show primary ids in examples in full (masked otherwise)' });

export function createMappingCommand(options: MappingCommandOptions = {}): CommandModule<object, object> {
  const write = options.write ?? ((line: string) => void process.stdout.write(line + '\n'));
  const progress = () => progressView(options.log ?? createLogger({ command: 'mapping', out: process.stderr }));

  const check: CommandModule<object, CheckArgs> = {
    command: 'check <file..>',
    describe: 'Check mapping files: every problem with file:line:column',
    builder: (y) =>
      y
        .positional('file', { type: 'string', array: true, demandOption: true, describe: 'Mapping files (YAML)' })
        .option('json', { type: 'boolean', default: false, describe: 'Print JSON for machines instead of text' }) as unknown as Argv<CheckArgs>,
    handler: async (argv) => {
      const result = await checkMappingFiles(argv.file);
      if (argv.json) write(JSON.stringify(result.files, null, 2));
      else
        for (const f of result.files) {
          for (const line of f.problems) write(line);
          for (const line of f.warnings) write(`${line} (warning)`);
          write(
            f.valid
              ? `${f.file}: valid${f.warnings.length ? `, ${f.warnings.length} warning(s)` : ''}`
              : `${f.file}: ${f.problems.length} problem(s); the mapping cannot be used until they are fixed`,
          );
        }
      argv.exitCode = result.exitCode;
    },
  };

  const explain: CommandModule<object, ExplainArgs> = {
    command: 'explain',
    describe: 'Say what a mapping does to an input, writing nothing: users per group, unmapped values, expiry dates, merges, rejections',
    builder: (y) => inputOptions(y.option('mapping', { type: 'string', demandOption: true, describe: 'The mapping file (YAML)' })) as unknown as Argv<ExplainArgs>,
    handler: async (argv) => {
      const [{ checkEncoding }, { loadMapping }, { explainMapping, formatExplanation }] = await Promise.all([import('../pipeline/read.js'), import('../mapping/load.js'), import('../review/explain.js')]);
      checkEncoding(argv.encoding);
      const mapping = loadMapping(argv.mapping);
      const view = progress();
      const x = await explainMapping(mapping, argv.input, { runDate: localDate(runTime(argv.now)), encoding: argv.encoding, showPii: argv['show-pii'], progress: view }).finally(() => view.close());
      if (argv.json) write(JSON.stringify(x, null, 2));
      else formatExplanation(x).forEach((line) => write(line));
      argv.exitCode = EXIT_CODES.ok;
    },
  };

  const diff: CommandModule<object, DiffArgs> = {
    command: 'diff <old> <new>',
    describe: 'Say what a mapping edit changes for an input: users that move group, new expiry dates, new rejections',
    builder: (y) =>
      inputOptions(
        y
          .positional('old', { type: 'string', demandOption: true, describe: 'The mapping as it is (YAML)' })
          .positional('new', { type: 'string', demandOption: true, describe: 'The edited mapping (YAML)' }),
      ) as unknown as Argv<DiffArgs>,
    handler: async (argv) => {
      const [{ checkEncoding }, { loadMapping }, { diffMappings, formatDiff }] = await Promise.all([import('../pipeline/read.js'), import('../mapping/load.js'), import('../review/explain.js')]);
      checkEncoding(argv.encoding);
      const before = loadMapping(argv.old);
      const after = loadMapping(argv.new);
      const view = progress();
      const d = await diffMappings(before, after, argv.input, { runDate: localDate(runTime(argv.now)), encoding: argv.encoding, showPii: argv['show-pii'], progress: view }).finally(() => view.close());
      if (argv.json) write(JSON.stringify(d, null, 2));
      else formatDiff(d).forEach((line) => write(line));
      argv.exitCode = EXIT_CODES.ok;
    },
  };

  const testCommand: CommandModule<object, TestArgs> = {
    command: 'test <file>',
    describe: 'Run a mapping test file: example rows and the Alma values expected of them; exit 1 when a case fails',
    builder: (y) =>
      y
        .positional('file', { type: 'string', demandOption: true, describe: 'The mapping test file (YAML)' })
        .option('json', { type: 'boolean', default: false, describe: 'Print JSON for machines instead of text' }) as unknown as Argv<TestArgs>,
    handler: async (argv) => {
      const { checkMappingTest, runMappingTest, formatMappingTest, formatProblem } = await import('../review/mapping-test.js');
      const checked = checkMappingTest(argv.file, localDate(new Date()));
      if (!checked.test) {
        if (argv.json) write(JSON.stringify({ file: argv.file, valid: false, problems: checked.problems.map(formatProblem), warnings: checked.warnings.map(formatProblem) }, null, 2));
        else {
          for (const p of checked.problems) write(formatProblem(p));
          for (const p of checked.warnings) write(`${formatProblem(p)} (warning)`);
          write(`${argv.file}: ${checked.problems.length} problem(s); the cases cannot run until they are fixed`);
        }
        argv.exitCode = EXIT_CODES.mapping_invalid;
        return;
      }
      const result = runMappingTest(checked.test);
      if (argv.json) write(JSON.stringify({ ...result, warnings: checked.warnings.map(formatProblem) }, null, 2));
      else {
        for (const p of checked.warnings) write(`${formatProblem(p)} (warning)`);
        formatMappingTest(result).forEach((line) => write(line));
      }
      argv.exitCode = result.failed ? EXIT_CODES.internal : EXIT_CODES.ok;
    },
  };

  return {
    command: 'mapping',
    describe: 'Check a mapping file, explain what it does to an input, compare two versions, or run its tests',
    builder: (y: Argv) =>
      y
        .command(check as unknown as CommandModule<object, object>)
        .command(explain as unknown as CommandModule<object, object>)
        .command(diff as unknown as CommandModule<object, object>)
        .command(testCommand as unknown as CommandModule<object, object>)
        .demandCommand(1, 'Name a mapping command: check, explain, diff or test.'),
    handler: () => {},
  };
}

export const mappingCommand = createMappingCommand();
