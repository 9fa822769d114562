// `sis2alma run --config FILE`: the nightly job, unattended. It reads as the job's design card:
// lock → convert (read, map, write, validate, zip, guards) → deliver → archive → record in report.
import { spawnSync } from 'node:child_process';
import { closeSync, constants as fsConstants, fstatSync, ftruncateSync, openSync, promises as fsp, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { Command } from './index.js';
import { loadRunConfig, type RunConfig } from '../config/run-config.js';
import { convert, type Report } from '../pipeline/convert.js';
import { createTarget, deliverZips, type DeliveredFile } from '../delivery/deliver.js';
import { archiveFiles, pruneArchive, pruneOutput } from '../delivery/archive.js';
import { RunError } from '../shared/errors.js';
import { createLogger, silentLogger, type Logger } from '../shared/log.js';
import { addToReport, parseMaxRejected } from '../pipeline/report.js';
import { runTime } from './convert.js';
import { onStop } from '../shared/on-stop.js';

export interface RunJobOptions {
  /** The run time, read from the clock by the caller. */
  now: Date;
  /** Convert and check everything, connect and list the remote folder, but upload nothing. */
  dryRun?: boolean;
  log?: Logger;
  /** Input files in place of the config's `inputs` (the push endpoint passes the file it received). */
  inputs?: string[];
  /** A name for the output files in place of the mapping's `source`. */
  source?: string;
}

export interface RunJobResult {
  /** 0, the guard's code (5), or the delivery failure's code (6). */
  exitCode: number;
  report: Report;
  reportFile: string;
  zips: string[];
  delivered: DeliveredFile[];
  /** Zips found waiting in the remote folder before the upload. */
  stale: string[];
  /** The archive folder of this delivery, when something was delivered. */
  archiveFolder?: string;
  /** Set when the delivery failed: the one-line reason. The run's output stays in output_dir. */
  deliveryError?: RunError;
  /** One line for the operator's log. */
  summary: string;
}

export const LOCK_FILE = '.sis2alma.lock';

/**
 * The whole job for one run config. Errors in the config, mapping or inputs throw RunError; a guard
 * that trips or a failed delivery is returned in `exitCode` so that the report is still written.
 */
export async function runJob(config: RunConfig, options: RunJobOptions): Promise<RunJobResult> {
  const log = options.log ?? silentLogger;
  return withLock(config.outputDir, options.now, async () => {
    const converted = await convert({
      mappingFile: config.mappingFile,
      inputs: options.inputs ?? config.inputs,
      outDir: config.outputDir,
      now: options.now,
      guards: config.guards,
      log,
      ...(config.encoding ? { encoding: config.encoding } : {}),
      ...(options.source ? { source: options.source } : {}),
    });
    const base = { report: converted.report, reportFile: converted.reportFile, zips: converted.zips, delivered: [] as DeliveredFile[], stale: [] as string[] };
    const counts = describeCounts(converted.report);

    // A tripped guard leaves no zip: the previous night's data stays in Alma, untouched.
    if (converted.exitCode !== 0 || converted.zips.length === 0) {
      const guard = (converted.report as { guard?: { guard?: string } }).guard?.guard;
      const why = converted.exitCode !== 0 ? `guard ${guard ?? ''} tripped`.replace('  ', ' ') : 'no users to deliver';
      return { ...base, exitCode: converted.exitCode, summary: `${counts}; ${why}; nothing delivered` };
    }

    let delivered: DeliveredFile[] = [];
    let stale: string[] = [];
    let deliveryError: RunError | undefined;
    try {
      const result = await deliverZips(config.delivery, converted.zips, { log, dryRun: options.dryRun ?? false });
      delivered = result.delivered;
      stale = result.stale;
    } catch (error) {
      if (!(error instanceof RunError)) throw error;
      deliveryError = error;
    }

    await recordDelivery(converted.reportFile, {
      delivered,
      delivery: {
        target: createTarget(config.delivery).label,
        dry_run: options.dryRun ?? false,
        stale_found: stale,
        ...(deliveryError ? { error: deliveryError.message } : {}),
      },
    });

    let archiveFolder: string | undefined;
    if (delivered.length > 0) {
      // The zips are delivered: failing the run now would make cron or a pushing SIS send them
      // again, and Alma load them twice. A failed archive is a warning.
      try {
        archiveFolder = await archiveFiles(config.archive, [...delivered.map((d) => d.file), converted.reportFile], options.now);
        await pruneOutput(config.outputDir, config.archive, options.now, [...converted.zips, converted.reportFile, ...(converted.rejectsFile ? [converted.rejectsFile] : [])]);
        await pruneArchive(config.archive, options.now);
      } catch (error) {
        log.warn(`sis2alma: delivered, but the local archive could not be kept: ${error instanceof Error ? error.message : String(error)}`);
      }
    }

    const names = converted.zips.map((z) => path.basename(z)).join(', ');
    const summary = deliveryError
      ? `${counts}; delivery of ${names} failed`
      : options.dryRun
        ? `${counts}; dry run: ${names} not uploaded`
        : `${counts}; delivered ${names} to ${delivered[0]?.target ?? ''}`;
    return {
      ...base,
      delivered,
      stale,
      exitCode: deliveryError ? deliveryError.exitCode : 0,
      summary,
      ...(archiveFolder ? { archiveFolder } : {}),
      ...(deliveryError ? { deliveryError } : {}),
    };
  });
}

function describeCounts(report: Report): string {
  const c = report.counts;
  return `${c.users} users from ${c.rows} rows, ${c.rejected} rejected`;
}

/** Adds the delivery to report.json, replacing the file in one step. */
async function recordDelivery(reportFile: string, fields: Record<string, unknown>): Promise<void> {
  try {
    await addToReport(reportFile, fields);
  } catch (error) {
    throw new RunError('output_failed', `cannot record the delivery in ${reportFile} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { file: reportFile });
  }
}

/**
 * Two runs of the same config must not interleave: the second would find the first's zip as
 * "stale" or upload while it renames. The lock is an flock(2) lock on a file in output_dir: the
 * kernel drops it when its holder ends, however it ends (a crash, SIGKILL, a reboot), so a lock
 * file left behind never blocks a later run, and a pid that now belongs to another process means
 * nothing. The file holds the holder's pid and run time, for the message a second run gives.
 */
export async function withLock<T>(outputDir: string, now: Date, body: () => Promise<T>): Promise<T> {
  try {
    await fsp.mkdir(outputDir, { recursive: true });
  } catch (error) {
    throw new RunError('output_failed', `cannot create the output folder ${outputDir} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, { file: outputDir });
  }
  const lock = takeLock(outputDir, now);
  const forget = onStop(lock.release);
  try {
    return await body();
  } finally {
    forget();
    lock.release();
  }
}

/** flock(1)'s exit code when another holds the lock (its --conflict-exit-code). */
const LOCK_HELD = 75;

function takeLock(outputDir: string, now: Date): { release: () => void } {
  const file = path.join(outputDir, LOCK_FILE);
  const fail = (why: string) => new RunError('output_failed', `cannot take the lock ${file} (${why})`, { file });
  for (;;) {
    let fd: number;
    try {
      fd = openSync(file, fsConstants.O_RDWR | fsConstants.O_CREAT, 0o644);
    } catch (error) {
      throw fail((error as NodeJS.ErrnoException).code ?? 'error');
    }
    // Node has no flock of its own. flock(1) (util-linux) locks the open file it is handed; the
    // lock belongs to that open file, which this process keeps open, not to flock, which ends.
    const flock = spawnSync('flock', ['--nonblock', '--conflict-exit-code', String(LOCK_HELD), '3'], { stdio: ['ignore', 'ignore', 'pipe', fd], encoding: 'utf8' });
    if (flock.status !== 0) {
      closeSync(fd);
      if (flock.status === LOCK_HELD) {
        const [pid, started] = readFileSync(file, 'utf8').trim().split(' ');
        throw new RunError('busy', `another sis2alma run (pid ${pid || '?'}, started ${started ?? '?'}) is using ${outputDir}: it holds the lock ${file}`, { file });
      }
      throw fail(flock.error ? `flock (util-linux) cannot be started: ${(flock.error as NodeJS.ErrnoException).code ?? flock.error.message}` : `flock: ${flock.stderr.trim().split('\n')[0] ?? `exit code ${flock.status}`}`);
    }
    // A run that ended between our open and our lock removed the file it held: this lock is on a
    // name nobody else opens any more. Lock what the name is now.
    if (statSync(file, { throwIfNoEntry: false })?.ino !== fstatSync(fd).ino) {
      closeSync(fd);
      continue;
    }
    try {
      ftruncateSync(fd, 0);
      writeSync(fd, `${process.pid} ${now.toISOString()}\n`, 0);
    } catch (error) {
      rmSync(file, { force: true });
      closeSync(fd);
      throw fail((error as NodeJS.ErrnoException).code ?? 'error');
    }
    let held = true;
    return {
      // The name goes before the lock does, so that no run locks a file that is about to go.
      release: () => {
        if (!held) return;
        held = false;
        rmSync(file, { force: true });
        closeSync(fd);
      },
    };
  }
}

interface RunArgs {
  config: string;
  dryRun?: boolean;
  quiet?: boolean;
  maxRejected?: string;
  minUsers?: number;
  showPii?: boolean;
  now?: string;
  exitCode?: number;
}

export const runCommand: Command = {
  command: 'run',
  describe: 'The nightly job: convert the inputs named in a run config, check the guards, and deliver the zips to Alma',
  builder: (yargs) =>
    yargs
      .option('config', { type: 'string', demandOption: true, describe: 'The run config (YAML): mapping, inputs, folders, guards, delivery target' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'Do everything but the upload: convert, check guards, connect and list the remote folder' })
      .option('quiet', { type: 'boolean', default: false, describe: 'Print only warnings and errors' })
      .option('max-rejected', { type: 'string', describe: "Override the config's guards.max_rejected: a count (25) or a share (5%)" })
      .option('min-users', { type: 'number', describe: "Override the config's guards.min_users" })
      .option('show-pii', { type: 'boolean', default: false, describe: 'Let logs show ids in full' })
      .option('now', { type: 'string', describe: 'Run as if at this time (ISO 8601): fixes expiry dates and file names, for a rerun of a missed night' })
      .check((argv) => {
        if (argv['max-rejected'] !== undefined && !parseMaxRejected(String(argv['max-rejected'])))
          throw new RunError('usage', `--max-rejected expects a count (25) or a share (5%), not '${argv['max-rejected']}'`);
        if (argv['min-users'] !== undefined && (!Number.isInteger(argv['min-users']) || (argv['min-users'] as number) < 0))
          throw new RunError('usage', `--min-users expects a whole number, not ${argv['min-users']}`);
        return true;
      })
      .example('$0 run --config /etc/sis2alma/config.yaml', 'convert and deliver, as cron or a systemd timer would')
      .example('$0 run --config /etc/sis2alma/config.yaml --dry-run', 'check everything without uploading'),
  handler: async (args) => {
    const argv = args as unknown as RunArgs;
    const log = createLogger({ quiet: argv.quiet ?? false, showPii: argv.showPii ?? false });
    const config = loadRunConfig(argv.config);
    // The command line overrides the config's guards, e.g. to push through a known-bad night by hand.
    if (argv.maxRejected !== undefined) config.guards = { ...config.guards, maxRejected: argv.maxRejected };
    if (argv.minUsers !== undefined) config.guards = { ...config.guards, minUsers: argv.minUsers };
    const result = await runJob(config, { now: runTime(argv.now), dryRun: argv.dryRun ?? false, log });
    if (result.deliveryError) {
      log.warn(`run: ${result.summary}`);
      throw result.deliveryError;
    }
    (result.exitCode === 0 ? log.info : log.warn)(`run: ${result.summary}`);
    argv.exitCode = result.exitCode;
  },
};
