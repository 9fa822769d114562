// Validation in child processes: batches go out in order, results come back by id, and the
// caller keeps only a few batches in flight, so memory stays bounded while both cores work.
import { fork, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { RunError } from './errors.js';
import type { XmlProblem } from './validate.js';
import type { BatchRequest, BatchResponse } from './validate-worker.js';

const WORKER = fileURLToPath(new URL('./validate-worker.js', import.meta.url));
/**
 * A batch of 500 users takes tens of milliseconds; a validator that has not answered in this time
 * is stuck, and a stuck run would hold the run's lock (and the push endpoint's) until someone
 * notices. Failing turns a hang into a message and an exit code.
 */
const BATCH_TIMEOUT_MS = 10 * 60 * 1000;

export class ValidationPool {
  private readonly children: ChildProcess[];
  private readonly waiting = new Map<number, { resolve: (problems: XmlProblem[]) => void; reject: (error: Error) => void }>();
  private next = 0;
  private closing = false;

  constructor(
    private readonly schemaPath: string,
    size = Number(process.env.SIS2ALMA_VALIDATORS) || Math.max(1, Math.min(2, availableParallelism())),
  ) {
    this.children = Array.from({ length: size }, () => {
      const child = fork(WORKER, [schemaPath], { execArgv: ['--expose-gc'], serialization: 'advanced', stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
      child.on('message', (m: BatchResponse) => {
        const waiter = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        if (m.error) waiter?.reject(new RunError('schema_invalid', `validating against ${schemaPath} failed: ${m.error}`));
        else waiter?.resolve(m.problems);
      });
      child.on('exit', (code, signal) => {
        if (!this.closing) this.failAll(new Error(`the validation process stopped (${signal ?? `exit code ${code}`})`));
      });
      return child;
    });
  }

  get size(): number {
    return this.children.length;
  }

  /** Validates one <users> document; resolves to its problems ([] when valid). */
  validate(xml: string | Uint8Array): Promise<XmlProblem[]> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`a validation process gave no answer in ${BATCH_TIMEOUT_MS / 60000} minutes`));
      }, BATCH_TIMEOUT_MS);
      timer.unref();
      const settle = <T>(done: (value: T) => void) => (value: T) => {
        clearTimeout(timer);
        done(value);
      };
      this.waiting.set(id, { resolve: settle(resolve), reject: settle(reject) });
      const request: BatchRequest = { id, xml };
      this.children[id % this.children.length]!.send(request);
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    // A stuck validator would not leave on disconnect.
    const stuck = this.waiting.size > 0;
    this.failAll(new Error('the run ended before validation did'));
    if (stuck) for (const child of this.children) child.kill();
    await Promise.all(
      this.children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            if (child.connected) child.disconnect();
          }),
      ),
    );
  }

  private failAll(error: Error): void {
    for (const waiter of this.waiting.values()) waiter.reject(error);
    this.waiting.clear();
  }
}
