#!/usr/bin/env node
// The command line. Each command lives in src/commands/; this file only registers them and owns
// the one top-level handler that turns errors into the documented exit codes and one-line
// messages (never a stack trace, unless SIS2ALMA_DEBUG=1).
import { RunError, EXIT_CODES, describeContext } from './shared/errors.js';
import { TOOL_VERSION } from './shared/paths.js';
import { stopOnSignals } from './shared/on-stop.js';
import { jsonFailureLine } from './shared/log.js';

/**
 * The commands a signal stops with their files cleaned up (src/shared/on-stop.ts). `serve` answers its
 * own signals (SIGHUP reloads it); `passwd` may have turned the terminal's echo off.
 */
const STOPPED_BY_SIGNALS = new Set(['convert', 'run', 'upload', 'mapping', 'validate']);

export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const failure = failureFor(argv);
  // What a script asks most often, answered before yargs (a fifth of a second on a busy machine)
  // is loaded; the commands load their wings only when they run (src/commands/index.ts).
  if (argv.length === 1 && argv[0] === '--version') {
    process.stdout.write(`${TOOL_VERSION}\n`);
    return 0;
  }
  const [{ default: yargs }, { commands }] = await Promise.all([import('yargs'), import('./commands/index.js')]);
  const parser = yargs(argv)
    .scriptName('sis2alma')
    .usage('$0 <command> [options]\n\nTurns SIS/HR CSV exports into Alma user v2 XML, checks them, zips them and delivers them to Alma.')
    .version(TOOL_VERSION)
    .strict()
    .demandCommand(1, 'Name a command: see sis2alma --help.')
    .recommendCommands()
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((message, error) => {
      throw error ?? new RunError('usage', message);
    });
  for (const command of commands) parser.command(command as never);
  parser.middleware((args) => {
    if (STOPPED_BY_SIGNALS.has(String(args._[0]))) stopOnSignals(failure.line);
  });
  try {
    const result = await parser.parseAsync();
    exitCode = typeof result.exitCode === 'number' ? result.exitCode : 0;
  } catch (error) {
    exitCode = reportError(error, failure);
  }
  return exitCode;
}

/**
 * How the command's last line is worded when it fails or is stopped: `sis2alma: MESSAGE`, the
 * answer to the person or the cron mail that reads it, undated like any command's; with
 * `--log-format json`, a JSON line as the log lines before it, so that a log shipper reads it too.
 */
function failureFor(argv: string[]): { json: boolean; line: (message: string) => string } {
  const at = argv.findIndex((a) => a === '--log-format' || a.startsWith('--log-format='));
  const format = at < 0 ? undefined : argv[at]!.includes('=') ? argv[at]!.slice('--log-format='.length) : argv[at + 1];
  if (format !== 'json') return { json: false, line: (message) => `sis2alma: ${message}\n` };
  const command = argv.find((a) => !a.startsWith('-')) ?? 'sis2alma';
  return { json: true, line: (message) => jsonFailureLine(command, message) };
}

function reportError(error: unknown, { json, line } = failureFor(process.argv.slice(2))): number {
  if (error instanceof RunError) {
    const where = describeContext(error.context);
    process.stderr.write(line(`${error.message}${where && !error.message.includes(where) ? ` (${where})` : ''}`));
    if (error.code === 'usage' && !json) process.stderr.write('Run sis2alma --help for the commands and their options.\n');
    return error.exitCode;
  }
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(line(`internal error: ${message}`));
  if (process.env.SIS2ALMA_DEBUG && error instanceof Error && error.stack) process.stderr.write(error.stack + '\n');
  else if (!json) process.stderr.write('This is a fault of sis2alma, not of your data; set SIS2ALMA_DEBUG=1 to see details.\n');
  return EXIT_CODES.internal;
}

// `sis2alma validate big.zip | head` closes stdout early: that is the reader's choice, not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.exitCode = reportError(error);
  },
);
