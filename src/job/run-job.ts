// The nightly job for one run config, as `sis2alma run` and the push endpoint both run it:
// lock → convert (read, map, write, validate, zip, guards) → deliver → archive → record in report.
import path from 'node:path';
import type { RunConfig } from '../config/run-config.js';
import { convert, type Report } from '../pipeline/convert.js';
import { createTarget, deliverZips, type DeliveredFile } from '../delivery/deliver.js';
import { keepDelivered } from '../delivery/archive.js';
import { RunError } from '../shared/errors.js';
import { silentLogger, type Logger } from '../shared/log.js';
import { addToReport } from '../pipeline/report.js';
import { withLock } from './lock.js';
import type { Progress } from '../shared/progress.js';
import { RunState, runModeOf, type ChangesReport, type Night } from '../state/night.js';
import { localDate } from '../shared/dates.js';

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
  /** Told how far the conversion and each upload have come (the command shows it). */
  progress?: Progress;
  /** Deliver a night whose changes since the last delivery trip the guards against it (the operator has checked them). */
  acceptChanges?: boolean;
  /** What accepted them, for the report and the summary (default --accept-changes; a push: its accept-changes file). */
  acceptedBy?: string;
  /** Send everyone tonight, whatever the run config's state.mode says. */
  full?: boolean;
  /**
   * The run state's folder in place of the config's `state.dir` (the push endpoint keeps one per
   * account). A job given `inputs` of its own keeps a state only when given this.
   */
  stateDir?: string;
  /** Send no departure when any row was rejected (a push, whose max_rejected is 100% by default). */
  departuresNeedEveryRow?: boolean;
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
  /** The run's id in the run state, when the delivery moved the state forward. */
  stateRun?: number;
}


/**
 * The whole job for one run config. Errors in the config, mapping or inputs throw RunError; a guard
 * that trips or a failed delivery is returned in `exitCode` so that the report is still written.
 */
export async function runJob(config: RunConfig, options: RunJobOptions): Promise<RunJobResult> {
  const log = options.log ?? silentLogger;
  return withLock(config.outputDir, options.now, async () => {
    // The run state: the config's, or the one the caller names (a push: its account's). A job with
    // inputs of its own and no state named keeps none. Read before anything is converted: an
    // unreadable state stops the run here.
    const stateDir = options.stateDir ?? (options.inputs ? undefined : config.state?.dir);
    const state = config.state && stateDir ? new RunState(stateDir) : undefined;
    const accept = acceptance(config, options);
    if (accept.stale) log.warn(accept.stale);
    const night = state?.night({
      guards: config.changeGuards,
      acceptChanges: accept.accept,
      ...(accept.by ? { acceptedBy: accept.by } : {}),
      mode: runModeOf(config.state!, state.previous, options.now, options.full ?? false),
    });
    try {
      return await convertAndDeliver(config, options, log, night, accept.stale ? { accept_changes_on_stale: { count: 1, examples: [], message: accept.stale } } : undefined);
    } finally {
      night?.close();
    }
  });
}

/**
 * Whether tonight's changes are accepted: --accept-changes, or the run config's
 * guards.accept_changes_on naming tonight's run date (local). A line naming another date is
 * ignored, with a warning: a date, so that a forgotten line never disarms the guards for good.
 */
function acceptance(config: RunConfig, options: RunJobOptions): { accept: boolean; by?: string; stale?: string } {
  const on = config.changeGuards.acceptChangesOn;
  if (options.acceptChanges) return { accept: true, ...(options.acceptedBy ? { by: options.acceptedBy } : {}) };
  if (on === undefined) return { accept: false };
  const runDate = localDate(options.now);
  if (on === runDate) return { accept: true, by: `guards.accept_changes_on: ${on} in the run config` };
  const line = `guards.accept_changes_on: ${on} in ${config.configFile}`;
  return {
    accept: false,
    stale:
      on < runDate
        ? `${line} is stale (tonight's run date is ${runDate}): it is ignored, the guards against the last night apply; remove the line`
        : `${line} is not tonight's run date (${runDate}): it is ignored tonight, the guards against the last night apply`,
  };
}

async function convertAndDeliver(config: RunConfig, options: RunJobOptions, log: Logger, night: Night | undefined, warnings?: Record<string, { count: number; examples: string[]; message: string }>): Promise<RunJobResult> {
  const converted = await convert({
    mappingFile: config.mappingFile,
    inputs: options.inputs ?? config.inputs,
    outDir: config.outputDir,
    now: options.now,
    guards: config.guards,
    log,
    ...(options.progress ? { progress: options.progress } : {}),
    ...(config.encoding ? { encoding: config.encoding } : {}),
    ...(options.source ? { source: options.source } : {}),
    ...(night ? { users: night } : {}),
    ...(warnings ? { runWarnings: warnings } : {}),
  });
  const base = { report: converted.report, reportFile: converted.reportFile, zips: converted.zips, delivered: [] as DeliveredFile[], stale: [] as string[] };
  const counts = describeCounts(converted.report);

  // A tripped guard leaves no zip: the previous night's data stays in Alma, untouched. A delta
  // night with nobody to send still goes on when the state has something to record: people who
  // left (their departure may be due tonight) or a group rule renamed.
  const quietNight = converted.exitCode === 0 && converted.zips.length === 0 && night !== undefined && night.hasChangesToRecord();
  if (converted.exitCode !== 0 || (converted.zips.length === 0 && !quietNight)) {
    const guard = (converted.report as { guard?: { guard?: string } }).guard?.guard;
    const delta = (converted.report.changes as ChangesReport | undefined)?.mode?.mode === 'delta';
    const why = converted.exitCode !== 0 ? `guard ${guard ?? ''} tripped`.replace('  ', ' ') : delta ? 'delta: nothing changed since the last delivery' : 'no users to deliver';
    return { ...base, exitCode: converted.exitCode, summary: `${counts}; ${why}; nothing delivered` };
  }

  // The people who have left the feed, sent once more in a zip of their own (on a healthy night).
  let zips = converted.zips;
  let departed = '';
  if (night && config.departures) {
    const rejected = converted.report.counts.rejected;
    const departures =
      options.departuresNeedEveryRow && rejected > 0
        ? { report: { action: config.departures.action, after_missing_runs: config.departures.afterMissingRuns, sent: 0, examples: [], not_sent: `${rejected} row(s) rejected: a push sends departures only when every row was imported (a rejected row may be a person who is still there)` }, files: [] }
        : await night.departures({ ...config.departures, purge: converted.mapping }, { outDir: config.outputDir, now: options.now });
    zips = [...zips, ...(departures.files ?? [])];
    base.zips = zips;
    departed = `, ${departures.report.sent} departure(s) ${config.departures.action === 'expire' ? 'expired' : 'made inactive'}`;
    await recordDelivery(converted.reportFile, { departures: departures.report });
  }

  let delivered: DeliveredFile[] = [];
  let stale: string[] = [];
  let deliveryError: RunError | undefined;
  try {
    if (zips.length) {
      const result = await deliverZips(config.delivery, zips, { log, dryRun: options.dryRun ?? false, ...(options.progress ? { progress: options.progress } : {}) });
      delivered = result.delivered;
      stale = result.stale;
    }
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

  const archiveFolder =
    delivered.length > 0
      ? await keepDelivered(config.archive, config.outputDir, [...delivered.map((d) => d.file), converted.reportFile], [...zips, converted.reportFile, ...(converted.rejectsFile ? [converted.rejectsFile] : [])], options.now, (m) => log.warn(m))
      : undefined;

  // The state moves forward only now, after a delivery that succeeded (and its archive
  // copy), in one transaction; when it cannot, the run fails (exit 8) and the next night is compared
  // with the last one recorded.
  const stateRun =
    night && !deliveryError && !options.dryRun && (delivered.length > 0 || zips.length === 0)
      ? night.commit({ runTime: options.now, configFile: config.configFile, reportFile: converted.reportFile, files: zips.map((z) => path.basename(z)), counts: converted.report.counts })
      : undefined;

  const names = zips.map((z) => path.basename(z)).join(', ');
  const changes = converted.report.changes as ChangesReport | undefined;
  const accepted = changes?.accepted ? `; changes accepted (${changes.accepted_by ?? '--accept-changes'})` : '';
  const summary = deliveryError
    ? `${counts}${departed}; delivery of ${names} failed`
    : options.dryRun
      ? `${counts}${departed}; dry run: ${names || 'nothing'} not uploaded`
      : zips.length === 0
        ? `${counts}${departed}; delta: nothing to send; nothing delivered, the night recorded in the run state`
        : `${counts}${departed}; delivered ${names} to ${delivered[0]?.target ?? ''}${accepted}`;
  return {
    ...base,
    delivered,
    stale,
    exitCode: deliveryError ? deliveryError.exitCode : 0,
    summary,
    ...(archiveFolder ? { archiveFolder } : {}),
    ...(deliveryError ? { deliveryError } : {}),
    ...(stateRun !== undefined ? { stateRun } : {}),
  };
}

function describeCounts(report: Report): string {
  const c = report.counts;
  return `${c.users} users from ${c.rows} rows, ${c.rejected} rejected${c.skipped ? `, ${c.skipped} skipped` : ''}${describeChanges(report)}`;
}

/** The night's changes since the last delivery, for the summary line, when the run keeps a state. */
function describeChanges(report: Report): string {
  const changes = report.changes as ChangesReport | undefined;
  if (!changes) return '';
  if (changes.first_night) return ' (first night: no earlier state)';
  const moves = changes.group_moves.reduce((sum, m) => sum + m.count, 0);
  const delta = changes.mode?.mode === 'delta' ? `; delta: ${changes.mode.sent ?? 0} sent` : '';
  return ` (${changes.new.count} new, ${changes.changed.count} changed, ${changes.unchanged.count} unchanged, ${changes.departed.count} departed, ${changes.returned.count} returned, ${moves} group moves${delta})`;
}

/** Adds the delivery to report.json, replacing the file in one step. */
async function recordDelivery(reportFile: string, fields: Record<string, unknown>): Promise<void> {
  try {
    await addToReport(reportFile, fields);
  } catch (error) {
    throw new RunError('output_failed', `cannot record the delivery in ${reportFile} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { file: reportFile });
  }
}
