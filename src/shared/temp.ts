// A run's temporary folders hold patron data (the rows waiting for their person, tonight's staged
// run state). A run that ends, fails or is stopped by a signal removes its own (on-stop.ts); one
// killed outright (SIGKILL, the OOM killer, a power cut) cannot. So each folder says whose it is,
// and the next run that makes one removes those whose process has ended.
//
// "Whose" is the host, the boot, the process id and the process's start time: a process id alone
// is reused (a container's nightly run is often process 1 every night), and a TMPDIR shared by
// several hosts holds folders of processes this host cannot see. A folder of another host is
// never removed; one of this host from an earlier boot always is.
import { lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { RunError } from './errors.js';

const PREFIX = 'sis2alma-';
/** The file in each folder naming the process that made it. */
const OWNER = '.owner';

/**
 * A folder of its own under the system's temporary folder (TMPDIR), readable by this user only
 * (mkdtemp makes it 700), named `sis2alma-<name>-XXXXXX`, with the folders of runs that were
 * killed before they could remove theirs removed first. A folder that cannot be made is a RunError
 * (output_failed) naming TMPDIR.
 */
export function makeRunTempDir(name: string): string {
  removeAbandoned();
  let dir: string;
  try {
    dir = mkdtempSync(path.join(tmpdir(), `${PREFIX}${name}-`));
  } catch (error) {
    throw new RunError('output_failed', `cannot create a temporary folder in ${tmpdir()} (set TMPDIR to a writable folder): ${(error as NodeJS.ErrnoException).code ?? error}`, { file: tmpdir() });
  }
  writeFileSync(path.join(dir, OWNER), ownerLine(process.pid), { mode: 0o600 });
  return dir;
}

/** `host boot pid start`: the boot's id and the start time (in clock ticks since boot) from /proc, `-` where there is none. */
function ownerLine(pid: number): string {
  return `${hostname()} ${bootId()} ${pid} ${startOf(pid) ?? '-'}\n`;
}

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '-';
  }
}

/** When process `pid` started (field 22 of /proc/PID/stat), or undefined when it is not running (or there is no /proc). */
function startOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
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
  const host = hostname();
  const boot = bootId();
  const uid = process.getuid?.();
  for (const name of names) {
    const folder = path.join(dir, name);
    let owner: string[];
    try {
      // Only this user's own folders, and never through a link.
      const stat = lstatSync(folder);
      if (!stat.isDirectory() || (uid !== undefined && stat.uid !== uid)) continue;
      owner = readFileSync(path.join(folder, OWNER), 'utf8').trim().split(' ');
    } catch {
      continue;
    }
    const [ownerHost, ownerBoot, pidText, start] = owner;
    const pid = Number(pidText);
    if (owner.length !== 4 || ownerHost !== host || !Number.isSafeInteger(pid) || pid <= 0) continue;
    // The same boot, without /proc to tell: only a process id that no process has is proof.
    if (ownerBoot === boot && (boot === '-' || start === '-' ? alive(pid) : startOf(pid) === start)) continue;
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
