// What a person sees of long work (src/shared/progress.ts). On a terminal (stderr is a TTY and
// the command is not --quiet): a bar per stage on stderr, drawn by cli-progress at most five
// times a second, with the counts, their rates and the time left. Elsewhere (cron, a pipe, a log
// file): no bar and no escape sequence, but one line per stage through the logger when the stage
// ends, with its counts and duration. Counts and rates only: no patron data reaches either.
import { createRequire } from 'node:module';
import type cliProgress from 'cli-progress';
import type { Logger } from '../shared/log.js';
import type { Progress, ProgressStage, ProgressUnit } from '../shared/progress.js';

export interface ProgressView extends Progress {
  /** The logger to use while bars may be drawn: a line first clears the bar, which is drawn again below it. */
  readonly log: Logger;
  /** Stops a bar still drawn (the work failed or was stopped): the cursor is left on a fresh line. */
  close(): void;
}

/** Bars when `stream` (stderr) is a terminal and the command is not quiet; stage lines in the log otherwise. */
export function progressView(log: Logger, options: { quiet?: boolean; stream?: NodeJS.WriteStream } = {}): ProgressView {
  const stream = options.stream ?? process.stderr;
  if (!options.quiet && stream.isTTY) return new Bars(log, stream);
  return new StageLines(log);
}

/** One line per stage, when it ends: `pass 1 (index ids): 25.3 MB, 200000 rows in 3.1 s` (the logger gives it its time and prefix). */
class StageLines implements ProgressView {
  constructor(readonly log: Logger) {}

  stage(name: string, unit: ProgressUnit): ProgressStage {
    const started = Date.now();
    let last = 0;
    let lastCounts: Record<string, number> = {};
    let ended = false;
    return {
      update: (done, counts) => {
        last = done;
        if (counts) lastCounts = counts;
      },
      end: (done = last, counts = lastCounts) => {
        if (ended) return;
        ended = true;
        const seconds = (Date.now() - started) / 1000;
        this.log.info(`${name}: ${describe(unit, done, counts).join(', ')} in ${seconds.toFixed(1)} s`);
      },
    };
  }

  close(): void {}
}

class Bars implements ProgressView {
  private bar: cliProgress.SingleBar | undefined;
  readonly log: Logger;

  constructor(
    log: Logger,
    private readonly stream: NodeJS.WriteStream,
  ) {
    // A log line while a bar is drawn: the bar's line is cleared first, and drawn again below.
    const around =
      (write: (message: string) => void) =>
      (message: string): void => {
        if (this.bar) this.stream.write('\r\x1b[K');
        write(message);
      };
    this.log = { info: around(log.info), warn: around(log.warn), id: log.id };
  }

  stage(name: string, unit: ProgressUnit, total?: number): ProgressStage {
    this.close();
    const started = Date.now();
    let endedAt: number | undefined;
    const bar = new (barLibrary().SingleBar)({
      stream: this.stream,
      fps: 5,
      barsize: 20,
      hideCursor: false,
      linewrap: true,
      gracefulExit: false,
      // Drawn again after a log line has cleared it, even when no count has changed.
      forceRedraw: true,
      format: (options, params, payload: { counts?: Record<string, number> }) => {
        const known = total !== undefined && total > 0;
        const done = params.value;
        const share = known ? Math.min(1, done / total) : 0;
        const filled = Math.round(share * (options.barsize ?? 20));
        const bar = known ? ` [${'='.repeat(filled)}${' '.repeat((options.barsize ?? 20) - filled)}] ${String(Math.floor(share * 100)).padStart(3)}%` : '';
        const seconds = ((endedAt ?? Date.now()) - started) / 1000;
        const [main, ...more] = describe(unit, done, payload.counts ?? {}, seconds, known ? total : undefined);
        const eta = endedAt !== undefined ? ` in ${seconds.toFixed(1)} s` : typeof params.eta === 'number' && Number.isFinite(params.eta) && known && done > 0 ? `, ${duration(params.eta)} left` : '';
        // What matters most first: the terminal cuts the line at its width.
        return [`${name}${bar} ${main}${eta}`, ...more].join(', ');
      },
    });
    this.bar = bar;
    bar.start(total && total > 0 ? total : 1, 0, { counts: {} });
    let ended = false;
    return {
      update: (done, counts) => {
        if (!ended) bar.update(done, counts ? { counts } : {});
      },
      end: (done, counts) => {
        if (ended) return;
        ended = true;
        if (done !== undefined) bar.update(done, counts ? { counts } : {});
        endedAt = Date.now();
        bar.stop();
        if (this.bar === bar) this.bar = undefined;
      },
    };
  }

  close(): void {
    const bar = this.bar;
    this.bar = undefined;
    bar?.stop();
  }
}

/** The counts of a stage, the rows and bytes with their rate when the time is given: `120000/200000 rows 40000/s, 118000 validated`. */
function describe(unit: ProgressUnit, done: number, counts: Record<string, number>, seconds?: number, total?: number): string[] {
  const rate = (n: number, per: (r: number) => string) => (seconds && seconds >= 0.5 ? ` ${per(n / seconds)}/s` : '');
  const main =
    unit === 'bytes'
      ? `${megabytes(done)}${total !== undefined ? `/${megabytes(total)}` : ''} MB${rate(done, (r) => `${megabytes(r)} MB`)}`
      : `${done}${total !== undefined ? `/${total}` : ''} ${unit}${rate(done, (r) => String(Math.round(r)))}`;
  const more = Object.entries(counts).map(([what, n]) => `${n} ${what}${what === 'rows' ? rate(n, (r) => String(Math.round(r))) : ''}`);
  return [main, ...more];
}

function megabytes(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

function duration(seconds: number): string {
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

/** cli-progress, loaded only when a bar is drawn (on a terminal): cron's runs and --help never pay for it. */
let barModule: typeof cliProgress | undefined;
function barLibrary(): typeof cliProgress {
  return (barModule ??= createRequire(import.meta.url)('cli-progress') as typeof cliProgress);
}
