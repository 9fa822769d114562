// What the operator sees on stdout/stderr. Logs mask patron data: they carry counts, row numbers
// and masked ids, never names or emails, unless the operator asks for --show-pii. Report files,
// written to a folder the operator controls, may hold patron data; logs may be shipped elsewhere.

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  /** A primary id or identifier as logs may show it: `as***1`, or whole with --show-pii. */
  id(value: string): string;
}

export function maskId(value: string): string {
  if (value.length <= 3) return '***';
  return `${value.slice(0, 2)}***${value.slice(-1)}`;
}

export function createLogger(options: { showPii?: boolean; quiet?: boolean; out?: NodeJS.WritableStream; err?: NodeJS.WritableStream } = {}): Logger {
  const out = options.out ?? process.stdout;
  const err = options.err ?? process.stderr;
  return {
    info: (message) => {
      if (!options.quiet) out.write(message + '\n');
    },
    warn: (message) => err.write(message + '\n'),
    id: (value) => (options.showPii ? value : maskId(value)),
  };
}

export const silentLogger: Logger = { info: () => {}, warn: () => {}, id: maskId };
