// Validation by libxml2's own streaming validator, `xmllint --stream` (Debian's libxml2-utils).
// It validates as it reads: no document is built and the compiled schema is not thrown away per
// user, so it costs about a third of the CPU of libxmljs2's parse-then-validate and a few
// megabytes of memory (bench/RESULTS.md).
//
// Each batch of users is in a temporary file (validate-batches.ts writes it), and a small shell
// started once runs xmllint on each file it is told of. Starting xmllint straight from this
// process cost about 15 ms a batch (fork copies the page tables of a process of 450 MB); from the
// shell it costs about 1 ms.
//
// xmllint says only which lines are wrong. The users on those lines are checked again with
// AlmaSchema.check (libxmljs2), alone, so that the report gives the same messages, with every
// problem of the user, as the libxmljs2 validators do.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { RunError } from '../shared/errors.js';
import type { AlmaSchema, XmlProblem } from './validate.js';
import { cleanMessage } from './validate.js';

const BATCH_TIMEOUT_MS = 10 * 60 * 1000;
const USER_START = Buffer.from('  <user>\n');
const NEWLINE = 0x0a;
/** xmllint's exit code when the document is well-formed but not valid. */
const XMLLINT_INVALID = 3;

/**
 * The shell: for each file named on its input, xmllint's messages, then a line with a marker no
 * message can hold (a random one per run) and xmllint's exit code.
 */
const LAUNCHER = 'while IFS= read -r f; do "$1" --stream --noout --nonet --schema "$2" "$f" 2>&1; echo "@@$3 $?"; done';

/** Whether `xmllint` can be started (it is on the PATH and runs). */
export function xmllintAvailable(command = 'xmllint'): boolean {
  const probe = spawnSync(command, ['--version'], { stdio: 'ignore', timeout: 10_000 });
  return probe.error === undefined && probe.status === 0;
}

interface Waiter {
  file: string;
  resolve: (problems: XmlProblem[]) => void;
  reject: (error: Error) => void;
}

export class XmllintValidator {
  private readonly shells: { process: ChildProcess; waiting: Waiter[]; output: string }[];
  private readonly marker = `@@${randomUUID()}`;
  private next = 0;
  private failed: Error | undefined;

  constructor(
    private readonly schema: AlmaSchema,
    /** How many batches may be validated at once: the cores left beside the main process. */
    readonly size: number,
    command = 'xmllint',
  ) {
    this.shells = Array.from({ length: size }, () => {
      // In a process group of its own, so that stopping it stops the xmllint it is running too.
      const child = spawn('/bin/sh', ['-c', LAUNCHER, 'sis2alma-validate', command, schema.path, this.marker.slice(2)], { stdio: ['pipe', 'pipe', 'inherit'], detached: true });
      const shell = { process: child, waiting: [] as Waiter[], output: '' };
      child.stdout!.setEncoding('utf8');
      child.stdout!.on('data', (text: string) => {
        shell.output += text;
        for (let end = shell.output.indexOf(this.marker); end >= 0; end = shell.output.indexOf(this.marker)) {
          const lineEnd = shell.output.indexOf('\n', end);
          if (lineEnd < 0) break;
          const code = Number(shell.output.slice(end + this.marker.length, lineEnd).trim());
          const messages = shell.output.slice(0, end);
          shell.output = shell.output.slice(lineEnd + 1);
          const waiter = shell.waiting.shift();
          if (waiter) this.settle(waiter, code, messages);
        }
      });
      child.stdin!.on('error', () => {});
      child.on('error', (error) => this.failAll(new RunError('schema_invalid', `cannot start the shell that runs ${command}: ${error.message}; set SIS2ALMA_VALIDATOR=libxmljs2`)));
      child.on('exit', (code, signal) => {
        if (shell.waiting.length) this.failAll(new Error(`the shell that runs xmllint stopped (${signal ?? `exit code ${code}`})`));
      });
      return shell;
    });
  }

  /**
   * Validates the <users> document in a file, written by userXml (each user starting with
   * "  <user>" on a line of its own); resolves to its problems, each with the index of its user
   * ([] when valid).
   */
  async validate(file: string): Promise<XmlProblem[]> {
    if (this.failed) throw this.failed;
    const shell = this.shells[this.next++ % this.shells.length]!;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.failAll(new Error(`xmllint gave no answer in ${BATCH_TIMEOUT_MS / 60000} minutes`)), BATCH_TIMEOUT_MS);
      timer.unref();
      shell.waiting.push({
        file,
        resolve: (problems) => {
          clearTimeout(timer);
          resolve(problems);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      shell.process.stdin!.write(file + '\n');
    });
  }

  private settle(waiter: Waiter, code: number, output: string): void {
    if (code === 0) return waiter.resolve([]);
    if (code === XMLLINT_INVALID) {
      try {
        return waiter.resolve(this.explain(readFileSync(waiter.file), output.replaceAll(waiter.file + ':', '-:')));
      } catch (error) {
        return waiter.reject(error as Error);
      }
    }
    const first = output.split('\n').find((line) => line.trim() !== '') ?? `exit code ${code}`;
    waiter.reject(new RunError('schema_invalid', `xmllint could not validate against ${this.schema.path}: ${first.trim()}`, { file: this.schema.path }));
  }

  private failAll(error: Error): void {
    this.failed ??= error;
    for (const shell of this.shells) {
      for (const waiter of shell.waiting.splice(0)) waiter.reject(error);
      killGroup(shell.process);
    }
  }

  async close(): Promise<void> {
    await Promise.all(
      this.shells.map(async ({ process: child, waiting }) => {
        const exited = new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(undefined) : child.once('exit', resolve)));
        // A batch still out means the run stopped early: its xmllint need not finish.
        if (waiting.length) killGroup(child);
        for (const waiter of waiting.splice(0)) waiter.reject(new Error('the run ended before validation did'));
        child.stdin!.end();
        await exited;
      }),
    );
  }

  /** Ends the shells and the xmllint each is running, at once. */
  kill(): void {
    for (const shell of this.shells) killGroup(shell.process);
  }

  /** Turns xmllint's "-:LINE: ... error : MESSAGE" lines into problems of the users on those lines. */
  private explain(document: Buffer, output: string): XmlProblem[] {
    const users = userLines(document);
    const reported = new Map<number, XmlProblem[]>();
    const outside: XmlProblem[] = [];
    for (const line of output.split('\n')) {
      const m = /^-:(\d+): (?:[^:]*error : )?(.*)$/.exec(line);
      if (!m) continue;
      const problem: XmlProblem = { line: Number(m[1]), message: cleanMessage(m[2]!) };
      const index = userAtLine(users.starts, problem.line);
      if (index < 0) outside.push(problem);
      else reported.set(index, [...(reported.get(index) ?? []), { ...problem, userIndex: index }]);
    }
    if (reported.size === 0 && outside.length === 0) {
      outside.push({ line: 0, message: `xmllint found the document invalid but said nowhere why: ${output.trim().slice(0, 500)}` });
    }
    // The users at fault, alone in a document of their own, through libxmljs2: every problem of each.
    const indexes = [...reported.keys()].sort((a, b) => a - b);
    const alone = Buffer.concat([Buffer.from('<users>\n'), ...indexes.map((i) => document.subarray(users.offsets[i]!, users.offsets[i + 1]!)), Buffer.from('</users>\n')]);
    const aloneStarts = userLines(alone).starts;
    const detailed = new Map<number, XmlProblem[]>();
    for (const problem of this.schema.check(alone).problems) {
      if (problem.userIndex === undefined) continue;
      const index = indexes[problem.userIndex]!;
      detailed.set(index, [...(detailed.get(index) ?? []), { ...problem, line: users.starts[index]! + (problem.line - aloneStarts[problem.userIndex]!), userIndex: index }]);
    }
    return [...outside, ...indexes.flatMap((i) => detailed.get(i) ?? reported.get(i)!)];
  }
}

function killGroup(child: ChildProcess): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

/**
 * Where each user starts: its line (1-based) and its byte offset; offsets has one more entry, the
 * end of the last user.
 */
function userLines(document: Buffer): { starts: number[]; offsets: number[] } {
  const starts: number[] = [];
  const offsets: number[] = [];
  let line = 1;
  let from = 0;
  for (let at = document.indexOf(USER_START); at >= 0; at = document.indexOf(USER_START, at + USER_START.length)) {
    line += countNewlines(document, from, at);
    from = at;
    starts.push(line);
    offsets.push(at);
  }
  const close = document.lastIndexOf('</users>');
  offsets.push(close < 0 ? document.length : close);
  return { starts, offsets };
}

function countNewlines(buffer: Buffer, from: number, to: number): number {
  let n = 0;
  for (let at = buffer.indexOf(NEWLINE, from); at >= 0 && at < to; at = buffer.indexOf(NEWLINE, at + 1)) n++;
  return n;
}

/** Index of the user whose lines hold `line`, or -1 before the first user or after the last. */
function userAtLine(starts: number[], line: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (starts[mid]! <= line) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}
