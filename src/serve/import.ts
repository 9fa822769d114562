// The import of a received file: what `sis2alma run` does (src/job/run-job.ts), with the upload
// as the input, then the report kept in the archive, one line for the log and the JSON answer in
// the shape of Concord Infiniti's patron import.
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import type { RunConfig } from '../config/run-config.js';
import { archiveFiles } from '../delivery/archive.js';
import { createTarget, STALE_ZIPS_EVENT } from '../delivery/deliver.js';
import { runJob, type RunJobResult } from '../job/run-job.js';
import { RunError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { addToReport, type Report } from '../pipeline/report.js';
import type { ServeConfig } from './config.js';
import type { ReceivedFile } from './upload.js';
import { accountStateDir } from '../state/store.js';
import type { ChangesReport } from '../state/night.js';

/**
 * A file the operator puts in an account's state folder to deliver that account's next push even
 * when its changes since the last delivered push trip a guard (`run --accept-changes` for a push:
 * an SIS cannot be asked). Removed once a push has been delivered with it.
 */
export const ACCEPT_CHANGES_FILE = 'accept-changes';

/** The JSON body of every answer, in the shape of the Infiniti import's. */
export interface PushAnswer {
  success: boolean;
  summary: string;
  /** Row number → what happened to it; only when some row failed. */
  details?: Record<string, string>;
}

/** What an import needs of the server. */
export interface ImportContext {
  config: ServeConfig;
  log: Logger;
  /** The clock, read once per import for the run time. */
  now: () => Date;
}

/** The import itself: what `sis2alma run` does, with the upload as the input. */
export async function runImport(ctx: ImportContext, temp: string, file: ReceivedFile, account: string, client: string): Promise<{ status: number; body: PushAnswer; line: string }> {
  const { config, log } = ctx;
  const now = ctx.now();
  const head = `import by ${JSON.stringify(account)} from ${client}, ${file.bytes} bytes`;
  const pushConfig: RunConfig = { ...config.run, mappingFile: config.serve.mappingFile, guards: config.serve.guards };
  // runJob's own log lines are about the files, never the patrons; warnings (retries) are kept,
  // but not the delivery's list of the zips waiting in Alma's folder: with `stale: report` it
  // grows with every push, and the import line says it in a bounded form (waitingZips).
  const jobLog: Logger = {
    info: () => {},
    warn: (m, fields) => {
      if (fields?.event !== STALE_ZIPS_EVENT) log.warn(m, fields);
    },
    id: log.id,
  };
  const shown = file.name ? JSON.stringify(file.name) : 'the uploaded file';

  // Each account keeps a run state of its own (the run config's state: folder, one folder per
  // account), and each push is checked against that account's last delivered push.
  const stateDir = config.run.state ? accountStateDir(config.run.state.dir, account) : undefined;
  const acceptFile = stateDir ? path.join(stateDir, ACCEPT_CHANGES_FILE) : undefined;
  const acceptChanges = acceptFile !== undefined && existsSync(acceptFile);

  let job: RunJobResult;
  try {
    job = await runJob(pushConfig, {
      now,
      log: jobLog,
      inputs: [temp],
      ...(config.serve.source ? { source: config.serve.source } : {}),
      ...(stateDir ? { stateDir, acceptChanges, acceptedBy: `the file ${ACCEPT_CHANGES_FILE} in the account's state folder`, departuresNeedEveryRow: true } : {}),
    });
  } catch (error) {
    if (!(error instanceof RunError)) throw error;
    // Messages about the input may quote a value: the caller sent it, but the log gets the code only.
    const where = [error.context.row !== undefined ? `row ${error.context.row}` : '', error.context.column !== undefined ? `column ${error.context.column}` : ''].filter(Boolean).join(' ');
    if (error.code === 'input_invalid' || error.code === 'input_unreadable') {
      return { status: 400, body: { success: false, summary: `The file could not be read: ${error.message.split(temp).join(shown)}` }, line: `${head}: 400, ${error.code}${where ? ` at ${where}` : ''}` };
    }
    if (error.code === 'busy') {
      return { status: 409, body: { success: false, summary: 'Another import of this source is running. Try again when it has finished.' }, line: `${head}: 409, ${error.message}` };
    }
    return {
      status: 500,
      body: { success: false, summary: 'The server could not run the import. Ask the library to check the sis2alma log.' },
      line: `${head}: 500, ${error.code}: ${error.message.split(temp).join('upload')}`,
    };
  }

  const report = JSON.parse(await fsp.readFile(job.reportFile, 'utf8')) as Report;
  const push = { account, client, file_name: file.name, bytes: file.bytes, received: now.toISOString() };
  await addToReport(job.reportFile, { push });
  // Every push keeps its report, also when nothing was delivered (no users, a guard, a failure).
  // The zips may be in Alma's folder already: a failing archive must not turn the answer into an
  // error that makes the SIS push the same file again.
  let archive: string;
  try {
    archive = job.archiveFolder
      ? (await copyOver(job.reportFile, path.join(job.archiveFolder, path.basename(job.reportFile))), job.archiveFolder)
      : await archiveFiles(config.run.archive, [job.reportFile], now);
  } catch (error) {
    archive = `${job.reportFile} (not archived: ${error instanceof Error ? error.message : String(error)})`;
  }

  // The acceptance is used up by the push it let through.
  let accepted = '';
  if (acceptChanges && job.stateRun !== undefined) {
    await fsp.rm(acceptFile!, { force: true }).catch(() => {});
    accepted = (report.changes as ChangesReport | undefined)?.accepted ? `; changes accepted (${ACCEPT_CHANGES_FILE})` : `; ${ACCEPT_CHANGES_FILE} used up`;
  }
  const guard = (report as { guard?: { guard?: string } }).guard?.guard;
  const tripped = job.exitCode === 5 && guard ? `; guard ${guard} tripped` : '';
  const c = report.counts;
  const counts = `rows ${c.rows}, users ${c.users}, merged ${c.merged}, rejected ${c.rejected}${c.skipped ? `, skipped ${c.skipped}` : ''}`;
  const names = job.delivered.map((d) => path.basename(d.file));
  const details = c.rejected > 0 && report.details ? { details: report.details } : {};
  const waiting = job.stale.length ? `; ${waitingZips(job.stale, config.run)}` : '';
  const tail = `${counts}${tripped}; delivered ${names.length ? names.join(', ') : 'nothing'}${accepted}${waiting}; report in ${archive}`;
  if (job.deliveryError) {
    return {
      status: 502,
      body: { success: false, summary: `${report.summary} Not delivered: the file could not be passed on to Alma. Ask the library to check the sis2alma log.`, ...details },
      line: `${head}: 502, ${tail}; delivery failed: ${job.deliveryError.message}`,
    };
  }
  const delivered = names.length ? ` Delivered to Alma as ${names.join(', ')}.` : '';
  return { status: 200, body: { success: report.success, summary: report.summary + delivered, ...details }, line: `${head}: 200, ${tail}` };
}

/**
 * The zips that were waiting in Alma's folder before this push, for the import line: how many,
 * where, and by name the first two and the last (the names carry the time of their push, so the
 * first says since when Alma's job has not run), whatever their number.
 */
function waitingZips(names: string[], run: RunConfig): string {
  const target = createTarget(run.delivery);
  const where = run.delivery.target === 'dir' ? target.remotePath('') : `${target.label}${target.remotePath('')}`;
  const sorted = [...names].sort();
  const shown = sorted.length <= 3 ? sorted.join(', ') : `${sorted[0]}, ${sorted[1]}, ... (${sorted.length - 3} more), ${sorted.at(-1)}`;
  const what = run.delivery.stale === 'rename' ? 'renamed to .stale' : 'left for Alma to load';
  return `${sorted.length} zip${sorted.length === 1 ? '' : 's'} Alma had not loaded yet ${sorted.length === 1 ? 'was' : 'were'} waiting in ${where} (${what}): ${shown}`;
}

async function copyOver(from: string, to: string): Promise<void> {
  await fsp.copyFile(from, `${to}.tmp`);
  await fsp.rename(`${to}.tmp`, to);
}
