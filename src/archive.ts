// The local archive: a copy of every zip delivered, with the run's report, so that months later
// someone can answer "what did we send Alma on that night?". One folder per delivery, named after
// the run time (UTC), pruned after keep_days. The run time is passed in, never read here.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { RunError } from './errors.js';

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
