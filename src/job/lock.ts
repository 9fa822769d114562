// One run at a time per output folder: `run`, `upload` and the push endpoint's imports all take
// this lock before they touch output_dir or the delivery target.
import { spawnSync } from 'node:child_process';
import { closeSync, constants as fsConstants, fstatSync, ftruncateSync, openSync, promises as fsp, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { RunError } from '../shared/errors.js';
import { onStop } from '../shared/on-stop.js';

export const LOCK_FILE = '.sis2alma.lock';

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
        // The holder may be releasing the lock (removing the file) or still writing its line.
        let holder = '';
        try {
          holder = readFileSync(file, 'utf8');
        } catch {
          // Gone: the holder has just ended. It held the lock a moment ago, so this run is still refused; the next one gets it.
        }
        const [pid, started] = holder.trim().split(' ');
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
