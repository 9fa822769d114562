// What a command is: a yargs command module. A handler returns nothing, or sets `argv.exitCode` to
// end with another code than 0; it throws RunError to stop with a message. A file of its own, so
// that the commands and the list of them (index.ts) do not import each other.
import type { Argv, CommandModule } from 'yargs';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Command = CommandModule<object, any>;

/** `--log-format`, for the commands that log (run, convert, upload, serve). */
export function logFormatOption<T>(yargs: Argv<T>) {
  return yargs.option('log-format', { choices: ['text', 'json'] as const, default: 'text' as const, describe: 'Log lines as text (time, level, sis2alma COMMAND: message) or one JSON object a line, for a log shipper' });
}
