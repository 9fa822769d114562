// What the operator sees on stdout/stderr. Logs mask patron data: they carry counts, row numbers
// and masked ids, never names or emails, unless the operator asks for --show-pii. Report files,
// written to a folder the operator controls, may hold patron data; logs may be shipped elsewhere.
//
// Every log line has the time, the level and one prefix, the command as a field:
//   2026-12-02T03:15:00.123Z INFO  sis2alma run: 5 users from 8 rows ...
// or, with --log-format json, one JSON object a line for a log shipper:
//   {"level":"info","time":"2026-12-02T03:15:00.123Z","command":"run","msg":"5 users from 8 rows ..."}
// Info goes to stdout, warnings to stderr. The lines are pino's (loaded when a command makes its
// logger, not with the CLI: `--version` needs none); the text line is made from pino's JSON.
import { createRequire } from 'node:module';
import type pinoModule from 'pino';

/** What a line is about, for a program reading the log (a JSON field, and for serve's filter). */
export interface LogFields {
  /** A name for the kind of line, e.g. `stale_zips`. */
  event?: string;
}

export interface Logger {
  info(message: string): void;
  warn(message: string, fields?: LogFields): void;
  /** A primary id or identifier as logs may show it: `as***1`, or whole with --show-pii. */
  id(value: string): string;
}

export type LogFormat = 'text' | 'json';
export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json'];

export function maskId(value: string): string {
  if (value.length <= 3) return '***';
  return `${value.slice(0, 2)}***${value.slice(-1)}`;
}

export interface LoggerOptions {
  /** The command the lines are of: `run`, `serve`, ... */
  command: string;
  format?: LogFormat;
  showPii?: boolean;
  /** Warnings only. */
  quiet?: boolean;
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
  /** The time a line is stamped with; tests pass a fixed one. */
  clock?: () => Date;
}

let pino: typeof pinoModule | undefined;

export function createLogger(options: LoggerOptions): Logger {
  pino ??= createRequire(import.meta.url)('pino') as typeof pinoModule;
  const clock = options.clock ?? (() => new Date());
  const format = options.format ?? 'text';
  // Looked up at each line, not kept: src/shared/on-stop.ts silences the process's streams.
  const out = () => options.out ?? process.stdout;
  const err = () => options.err ?? process.stderr;
  const to = (stream: () => NodeJS.WritableStream) => ({
    write: (line: string) => void stream().write(format === 'json' ? line : textLine(line)),
  });
  const lines = pino(
    {
      level: options.quiet ? 'warn' : 'info',
      base: { command: options.command },
      messageKey: 'msg',
      timestamp: () => `,"time":"${clock().toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.multistream(
      [
        { level: 'info', stream: to(out) },
        { level: 'warn', stream: to(err) },
      ],
      { dedupe: true },
    ),
  );
  return {
    info: (message) => lines.info(message),
    warn: (message, fields) => (fields ? lines.warn(fields, message) : lines.warn(message)),
    id: (value) => (options.showPii ? value : maskId(value)),
  };
}

/** pino's JSON line as a person reads it; each line of a message gets the time, level and prefix. */
function textLine(json: string): string {
  const { time, level, command, msg } = JSON.parse(json) as { time: string; level: string; command: string; msg: string };
  const head = `${time} ${level.toUpperCase().padEnd(5)} sis2alma ${command}: `;
  return String(msg)
    .split('\n')
    .map((line) => head + line + '\n')
    .join('');
}

/**
 * The one line a failed command ends with, in JSON for --log-format json (a shipper reads every
 * line as JSON); the text form, `sis2alma: MESSAGE`, is src/cli.ts's own.
 */
export function jsonFailureLine(command: string, message: string, clock: () => Date = () => new Date()): string {
  return JSON.stringify({ level: 'error', time: clock().toISOString(), command, msg: message }) + '\n';
}

export const silentLogger: Logger = { info: () => {}, warn: () => {}, id: maskId };
