// A run's temporary folders hold patron data (the rows waiting for their person, tonight's staged
// run state). A run that ends, fails or is stopped by a signal removes its own (on-stop.ts); one
// killed outright (SIGKILL, the OOM killer, a power cut) cannot. So each folder says whose it is,
// and the next run that makes one removes those whose process has ended.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const PREFIX = 'sis2alma-';
/** The file in each folder naming the process that made it. */
const OWNER = '.owner';

/**
 * A folder of its own under the system's temporary folder (TMPDIR), readable by this user only
 * (mkdtemp makes it 700), named `sis2alma-<name>-XXXXXX`, with the folders of runs that were
 * killed before they could remove theirs removed first. Throws as mkdtemp does.
 */
export function makeRunTempDir(name: string): string {
  removeAbandoned();
  const dir = mkdtempSync(path.join(tmpdir(), `${PREFIX}${name}-`));
  writeFileSync(path.join(dir, OWNER), `${process.pid}\n`, { mode: 0o600 });
  return dir;
}

/**
 * Removes the folders of sis2alma runs whose process has ended: only folders that name their
 * owner (made by makeRunTempDir), never one of a process still running, never anything else.
 */
export function removeAbandoned(dir = tmpdir()): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.startsWith(PREFIX));
  } catch {
    return removed;
  }
  for (const name of names) {
    const folder = path.join(dir, name);
    let pid: number;
    try {
      pid = Number(readFileSync(path.join(folder, OWNER), 'utf8').trim());
    } catch {
      continue;
    }
    if (!Number.isSafeInteger(pid) || pid <= 0 || alive(pid)) continue;
    try {
      rmSync(folder, { recursive: true, force: true });
      removed.push(folder);
    } catch {
      /* another user's, or going already: left as it is */
    }
  }
  return removed;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: a process of another user has that number now.
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
