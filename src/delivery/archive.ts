// The local archive: a copy of every zip delivered, with the run's report, so that months later
// someone can answer "what did we send Alma on that night?". One folder per delivery, named after
// the run time (UTC), pruned after keep_days. The run time is passed in, never read here.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { RunError } from '../shared/errors.js';

/** What a run leaves in output_dir: `users_<source>_<YYYYMMDD-HHMMSS>` (local time) with `.zip`, `_NN.zip`, `.report.json`, `.rejects.csv`, and the run state's `_departures.zip`. */
const OUTPUT_FILE = /^users_.+_(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})(?:(?:_departures)?(_\d{2})?\.zip|\.report\.json|\.rejects\.csv)$/;
const FOLDER = /^(\d{4})-(\d{2})-(\d{2})T(\d{2})(\d{2})(\d{2})Z(?:-\d+)?$/;

export interface ArchiveSettings {
  dir: string;
  keepDays: number;
}

/** `2026-11-21T031500Z`: sorts by time and is a valid file name everywhere. */
export function archiveFolderName(now: Date): string {
  return now.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/:/g, '');
}

/** Copies `files` into a new folder of the archive; returns that folder. */
export async function archiveFiles(settings: ArchiveSettings, files: string[], now: Date): Promise<string> {
  const base = archiveFolderName(now);
  let folder = '';
  try {
    await fsp.mkdir(settings.dir, { recursive: true });
    for (let n = 1; ; n++) {
      folder = path.join(settings.dir, n === 1 ? base : `${base}-${n}`);
      try {
        await fsp.mkdir(folder);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
    }
    for (const file of files) {
      const dest = path.join(folder, path.basename(file));
      await fsp.copyFile(file, dest + '.tmp');
      await fsp.rename(dest + '.tmp', dest);
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new RunError('output_failed', `cannot write the archive folder ${folder || settings.dir} (${code})`, { file: folder || settings.dir });
  }
  return folder;
}

/** Removes archive folders older than keepDays before `now`; leaves anything it did not name. */
export async function pruneArchive(settings: ArchiveSettings, now: Date): Promise<string[]> {
  let entries: string[];
  try {
    entries = await fsp.readdir(settings.dir);
  } catch {
    return [];
  }
  const cutoff = now.getTime() - settings.keepDays * 86_400_000;
  const removed: string[] = [];
  for (const name of entries) {
    const m = FOLDER.exec(name);
    if (!m) continue;
    const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
    const when = Date.UTC(y, mo - 1, d, h, mi, s);
    if (when < cutoff) {
      await fsp.rm(path.join(settings.dir, name), { recursive: true, force: true });
      removed.push(name);
    }
  }
  return removed;
}

/**
 * Removes the reports, rejects files and zips of runs older than keepDays before `now` from the
 * output folder, as pruneArchive does the archive (call it first: a zip goes only once it is in
 * the archive, that is, delivered; a zip still waiting for `upload` stays however old). The
 * current run's files (`keep`) and anything it did not name stay.
 */
export async function pruneOutput(outputDir: string, settings: ArchiveSettings, now: Date, keep: string[]): Promise<string[]> {
  let entries: string[];
  try {
    entries = await fsp.readdir(outputDir);
  } catch {
    return [];
  }
  const cutoff = now.getTime() - settings.keepDays * 86_400_000;
  const kept = new Set(keep.map((f) => path.basename(f)));
  let archived: Map<string, Set<number>> | undefined;
  const removed: string[] = [];
  for (const name of entries) {
    const m = OUTPUT_FILE.exec(name);
    if (!m || kept.has(name)) continue;
    const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
    if (new Date(y, mo - 1, d, h, mi, s).getTime() >= cutoff) continue;
    const file = path.join(outputDir, name);
    if (name.endsWith('.zip')) {
      archived ??= await archivedZips(settings.dir);
      const size = (await fsp.stat(file).catch(() => undefined))?.size;
      if (size === undefined || !archived.get(name)?.has(size)) continue;
    }
    await fsp.rm(file, { force: true });
    removed.push(name);
  }
  return removed;
}

/** The zips kept in the archive: name → their sizes. */
async function archivedZips(dir: string): Promise<Map<string, Set<number>>> {
  const out = new Map<string, Set<number>>();
  for (const folder of await fsp.readdir(dir).catch(() => [] as string[])) {
    if (!FOLDER.test(folder)) continue;
    for (const name of await fsp.readdir(path.join(dir, folder)).catch(() => [] as string[])) {
      if (!name.endsWith('.zip')) continue;
      const size = (await fsp.stat(path.join(dir, folder, name)).catch(() => undefined))?.size;
      if (size !== undefined) out.set(name, (out.get(name) ?? new Set()).add(size));
    }
  }
  return out;
}

/**
 * After a delivery: copies `files` (the zips delivered, and the run's report) into the archive,
 * then prunes the output folder (keeping `current`, this run's own files) and the archive. The zips
 * are already on the server: failing the run now would make cron or a pushing SIS send them again,
 * and Alma load them twice, so a failure here is a warning, and the archive folder is undefined.
 */
export async function keepDelivered(
  settings: ArchiveSettings,
  outputDir: string,
  files: string[],
  current: string[],
  now: Date,
  warn: (message: string) => void,
): Promise<string | undefined> {
  try {
    const folder = await archiveFiles(settings, files, now);
    await pruneOutput(outputDir, settings, now, current);
    await pruneArchive(settings, now);
    return folder;
  } catch (error) {
    warn(`delivered, but the local archive could not be kept: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
}
