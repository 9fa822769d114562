// Validation in child processes: batches go out in order, results come back by id, and the
// caller keeps only a few batches in flight, so memory stays bounded while both cores work.
import { fork, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { RunError } from '../shared/errors.js';
import type { AlmaSchema, XmlProblem } from './validate.js';
import type { BatchRequest, BatchResponse } from './validate-worker.js';
import { XmllintValidator, xmllintAvailable } from './validate-xmllint.js';

/** What the pipeline needs of a validator: batches in, problems (with user indexes) out. */
export interface Validators {
  /** How many batches it validates at once. */
  readonly size: number;
  /** Users per batch that suit it. */
  readonly batchUsers: number;
  /** What it is, for the log. */
  readonly name: string;
  /** Validates the <users> document in this file (written by userXml, one user after another). */
  validate(file: string): Promise<XmlProblem[]>;
  close(): Promise<void>;
  /** Ends its processes at once, for a run stopped by a signal (src/shared/on-stop.ts): nothing reads the batches after it. */
  kill(): void;
}

export type ValidatorChoice = 'auto' | 'xmllint' | 'libxmljs2';

/**
 * xmllint's streaming validation when it is installed (about three times cheaper, and flat in
 * memory), else libxmljs2 in child processes. SIS2ALMA_VALIDATOR=xmllint|libxmljs2 forces one.
 */
export function startValidators(schema: AlmaSchema, choice: ValidatorChoice = validatorChoice()): Validators {
  const cores = availableParallelism();
  const haveXmllint = choice !== 'libxmljs2' && xmllintAvailable();
  if (choice === 'xmllint' && !haveXmllint) throw new RunError('usage', 'SIS2ALMA_VALIDATOR is xmllint, but xmllint cannot be started: install it (Debian: apt-get install libxml2-utils) or leave SIS2ALMA_VALIDATOR unset');
  if (haveXmllint) {
    // The main process keeps one core busy reading, mapping and writing.
    // Batches of 2,500 users (about 5.5 MB): fewer cost more memory in flight, more cost more
    // messages and xmllint starts (bench/RESULTS.md: at 1,000,000 users, 5,000 → 2,500: 494 →
    // 445 MB at the same speed; 1,000: 2.5 s slower).
    const xmllint = new XmllintValidator(schema, Math.max(1, Math.min(2, cores - 1)));
    return { size: xmllint.size, batchUsers: 2500, name: 'xmllint --stream', validate: (file) => xmllint.validate(file), close: () => xmllint.close(), kill: () => xmllint.kill() };
  }
  // libxml2's documents live outside V8's heap and are freed only when the validator collects
  // them; batches of 500, each followed by a collection, keep the validators near Node's own size
  // (bench/RESULTS.md: 613 MB → 386 MB at 100k rows, at the same CPU time as 1000).
  const pool = new ValidationPool(schema.path);
  return { size: pool.size, batchUsers: 500, name: 'libxmljs2', validate: (file) => pool.validate(file), close: () => pool.close(), kill: () => pool.kill() };
}

function validatorChoice(): ValidatorChoice {
  const value = process.env.SIS2ALMA_VALIDATOR;
  if (value === undefined || value === '' || value === 'auto') return 'auto';
  if (value === 'xmllint' || value === 'libxmljs2') return value;
  throw new RunError('usage', `SIS2ALMA_VALIDATOR is '${value}'; it can be auto, xmllint or libxmljs2`);
}

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
    schemaPath: string,
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
      // A process that cannot be signalled or written to: the batches waiting on it fail, never the run with an unhandled event.
      child.on('error', (error) => {
        if (!this.closing) this.failAll(new Error(`a validation process failed (${error.message})`));
      });
      return child;
    });
  }

  get size(): number {
    return this.children.length;
  }

  /** Validates the <users> document in a file; resolves to its problems ([] when valid). */
  validate(file: string): Promise<XmlProblem[]> {
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
      const request: BatchRequest = { id, file };
      // A validator killed by a signal's undo step (the run is stopping) cannot take the batch:
      // the send fails here, and the batch with it, instead of as an unhandled EPIPE.
      this.children[id % this.children.length]!.send(request, (error) => {
        if (!error || !this.waiting.has(id)) return;
        this.waiting.get(id)!.reject(new Error(`cannot hand a batch to a validation process (${error.message})`));
        this.waiting.delete(id);
      });
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

  kill(): void {
    this.closing = true;
    for (const child of this.children) child.kill('SIGKILL');
  }

  private failAll(error: Error): void {
    for (const waiter of this.waiting.values()) waiter.reject(error);
    this.waiting.clear();
  }
}
