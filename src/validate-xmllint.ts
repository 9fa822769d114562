// Validation by libxml2's own streaming validator, `xmllint --stream` (Debian's libxml2-utils),
// one process per batch of users, reading the batch from a pipe. It validates as it reads: no
// document is built and the compiled schema is not thrown away per user, so it costs about a
// third of the CPU of libxmljs2's parse-then-validate and a few megabytes of memory
// (bench/RESULTS.md). A process starts and compiles the schema in about 3 ms.
//
// xmllint says only which lines are wrong. The users on those lines are checked again with
// AlmaSchema.check (libxmljs2), alone, so that the report gives the same messages, with every
// problem of the user, as the libxmljs2 validators do.
import { spawn, spawnSync } from 'node:child_process';
import { RunError } from './errors.js';
import type { AlmaSchema, XmlProblem } from './validate.js';
import { cleanMessage } from './validate.js';

const BATCH_TIMEOUT_MS = 10 * 60 * 1000;
const USER_START = Buffer.from('  <user>\n');
const NEWLINE = 0x0a;
/** xmllint's exit code when the document is well-formed but not valid. */
const XMLLINT_INVALID = 3;

/** Whether `xmllint` can be started (it is on the PATH and runs). */
export function xmllintAvailable(command = 'xmllint'): boolean {
  const probe = spawnSync(command, ['--version'], { stdio: 'ignore', timeout: 10_000 });
  return probe.error === undefined && probe.status === 0;
}

export class XmllintValidator {
  private readonly running = new Set<ReturnType<typeof spawn>>();

  constructor(
    private readonly schema: AlmaSchema,
    /** How many batches may be validated at once: the cores left beside the main process. */
    readonly size: number,
    private readonly command = 'xmllint',
  ) {}

  /**
   * Validates one <users> document (in parts) written by userXml (each user starting with "  <user>" on a
   * line of its own); resolves to its problems, each with the index of its user ([] when valid).
   */
  validate(parts: Buffer[]): Promise<XmlProblem[]> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.command, ['--stream', '--noout', '--nonet', '--schema', this.schema.path, '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
      this.running.add(child);
      const timer = setTimeout(() => {
        child.kill();
        reject(new Error(`xmllint gave no answer in ${BATCH_TIMEOUT_MS / 60000} minutes`));
      }, BATCH_TIMEOUT_MS);
      timer.unref();
      const stderr: Buffer[] = [];
      child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
      // xmllint may stop reading (a schema it cannot compile); its exit code says why.
      child.stdin!.on('error', () => {});
      child.on('error', (error) => {
        clearTimeout(timer);
        this.running.delete(child);
        reject(new RunError('schema_invalid', `cannot start ${this.command} to validate: ${error.message}; install libxml2-utils, or set SIS2ALMA_VALIDATOR=libxmljs2`));
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        this.running.delete(child);
        const output = Buffer.concat(stderr).toString('utf8');
        if (code === 0) return resolve([]);
        if (code === XMLLINT_INVALID) {
          try {
            return resolve(this.explain(Buffer.concat(parts), output));
          } catch (error) {
            return reject(error);
          }
        }
        const first = output.split('\n').find((line) => line.trim() !== '') ?? `exit code ${code ?? signal}`;
        reject(new RunError('schema_invalid', `xmllint could not validate against ${this.schema.path}: ${first.trim()}`, { file: this.schema.path }));
      });
      // Parts that lie one after another in memory (users one mapping thread wrote) go as one write.
      const stdin = child.stdin!;
      stdin.cork();
      for (const part of coalesce(parts)) stdin.write(part);
      stdin.end();
    });
  }

  async close(): Promise<void> {
    for (const child of this.running) child.kill();
    this.running.clear();
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

function coalesce(parts: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  let run: Buffer | undefined;
  for (const part of parts) {
    if (run && run.buffer === part.buffer && run.byteOffset + run.byteLength === part.byteOffset) {
      run = Buffer.from(run.buffer, run.byteOffset, run.byteLength + part.byteLength);
      continue;
    }
    if (run) out.push(run);
    run = part;
  }
  if (run) out.push(run);
  return out;
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
