// A run stopped by a signal (SIGTERM from systemd or `timeout`, SIGINT from Ctrl-C, SIGHUP from a
// terminal that closed) must leave what a run that fails leaves: no temporary folder (the batches
// and waiting rows are patron data), no half-written file, no lock, no `.part` on the server.
// Each part of the run that makes such a thing says here how to undo it, and takes that back once
// it has cleaned up itself. On a signal the undo steps run, newest first, so that the children
// writing into a folder are ended before the folder goes and the lock goes last; then one line is
// printed and the process ends with 128 + the signal's number, as a shell reports a killed command.
//
// The undo steps are synchronous where they can be: then they all run, and the process ends,
// before any more of the run's own code does. Only the removal of a remote `.part` needs the
// network; while it runs, the rest of the run may still wake up, so nothing it prints is shown
// and nothing it does may start anything new (deliver.ts asks stopping() before each step, so that a step registered after the signal starts nothing either).
import { access } from 'node:fs/promises';
import { constants } from 'node:os';

/** An undo step. A step that could not do everything throws an Error saying what is left. */
export type Undo = () => void | Promise<void>;

const steps: { undo: Undo }[] = [];
let signalled: NodeJS.Signals | undefined;
let installed = false;
let finalLine: (message: string) => string;

/**
 * A new SFTP login on a slow link takes seconds; a stop that hangs on a server that does not
 * answer would only be killed harder (systemd sends SIGKILL after TimeoutStopSec, 90 s).
 */
const REMOTE_UNDO_MS = 15_000;

/**
 * Resolves once every operation queued in libuv's thread pool before it has finished: each thread
 * takes work in order, so when one no-op per thread has run, each thread is past what it held.
 */
async function threadPoolDone(): Promise<void> {
  const threads = Math.min(1024, Math.max(1, Number(process.env.UV_THREADPOOL_SIZE) || 4));
  await Promise.all(Array.from({ length: threads }, () => access('/').catch(() => {})));
}

/** Registers an undo step (a synchronous one may be run twice) for a stop by a signal; returns the function that unregisters it. */
export function onStop(undo: Undo): () => void {
  const step = { undo };
  steps.push(step);
  return () => {
    const at = steps.indexOf(step);
    if (at >= 0) steps.splice(at, 1);
  };
}

/** The signal that is stopping the process, once one has arrived. */
export function stopping(): NodeJS.Signals | undefined {
  return signalled;
}

export const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** From now on, SIGINT, SIGTERM and SIGHUP stop the process this way; `line` words its last line. */
export function stopOnSignals(line: (message: string) => string = (message) => `sis2alma: ${message}\n`): void {
  if (installed) return;
  installed = true;
  finalLine = line;
  for (const signal of STOP_SIGNALS) process.on(signal, () => void stop(signal));
}

async function stop(signal: NodeJS.Signals): Promise<void> {
  // A second signal (an impatient Ctrl-C) must not cut the cleanup short.
  if (signalled) return;
  signalled = signal;
  const stderr = process.stderr.write.bind(process.stderr);
  // What the stopped run still says (a lost connection, a retry) is not what happened: the one
  // line below is.
  process.stdout.write = (() => true) as typeof process.stdout.write;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  const left: string[] = [];
  const again: Undo[] = [];
  for (let step = steps.pop(); step; step = steps.pop()) {
    try {
      const done = step.undo();
      if (!done) again.push(step.undo);
      else {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`gave up cleaning after ${REMOTE_UNDO_MS / 1000} s`)), REMOTE_UNDO_MS);
        });
        await Promise.race([done, late]).finally(() => clearTimeout(timer));
      }
    } catch (error) {
      left.push(error instanceof Error ? error.message : String(error));
    }
  }
  // A file the run asked to open just before the signal (a write stream opens in libuv's thread
  // pool) may appear after the steps above removed what was there. Once every thread of the pool
  // has finished what it held, nothing the run asked for before is still to come: the
  // synchronous steps, which may be repeated, then run once more.
  await threadPoolDone();
  for (const undo of again) {
    try {
      undo();
    } catch {
      /* said above */
    }
  }
  const outcome = left.length ? `left behind: ${left.join('; ')}` : 'temporary and partial files removed, lock released';
  try {
    stderr(finalLine(`stopped by ${signal}; ${outcome}`));
  } catch {
    /* a closed terminal (SIGHUP) may not take it */
  }
  process.exit(128 + constants.signals[signal]);
}
