// The mapping threads (src/pipeline/map-worker.ts), seen from the main thread: pieces of an export go out
// in turn and come back in the order they went, so that rows keep their order and numbers.
import { Worker } from 'node:worker_threads';
import v8 from 'node:v8';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { IdIndex } from './merge.js';
import type { Mapping } from '../mapping/model.js';
import type { Piece } from './read.js';
import type { IdsResult, MapPieceResult, ParsedPiece, WorkerRequest } from './map-worker.js';
import { FIELD_SEPARATOR, ID_TEXT_SEPARATOR } from './map-separators.js';

const WORKER = fileURLToPath(new URL('./map-worker.js', import.meta.url));
const YOUNG_GENERATION_MB = 32;
const PIECE_TIMEOUT_MS = 10 * 60 * 1000;

/**
 * How many mapping threads each pass uses: in the first, the threads are all that runs; in the
 * second, the main thread and xmllint need a core between them. SIS2ALMA_MAP_THREADS sets both.
 */
export function threadCounts(): { first: number; second: number } {
  const forced = Number(process.env.SIS2ALMA_MAP_THREADS);
  if (Number.isInteger(forced) && forced >= 1) return { first: forced, second: forced };
  const cores = availableParallelism();
  return { first: Math.min(4, cores), second: Math.max(1, Math.min(4, cores - 2)) };
}

/** Row i's ids, from a piece's answer: [primary_id, then id_type, value, note, status of each identifier]. */
export function idsText(result: MapPieceResult, i: number): string[] {
  return result.idText.slice(i === 0 ? 0 : result.idTextEnds[i - 1], result.idTextEnds[i]).split(ID_TEXT_SEPARATOR);
}

/** Record i's values, from a parsed piece. */
export function recordValues(piece: ParsedPiece, i: number): string[] {
  const record = piece.records[i]!;
  return typeof record === 'string' ? record.split(FIELD_SEPARATOR) : record;
}

export class MapPool {
  private workers: Worker[];
  private readonly waiting = new Map<number, { resolve: (value: never) => void; reject: (error: Error) => void }>();
  private next = 0;
  private recycled = 0;
  private failed: Error | undefined;

  constructor(size = threadCounts().first) {
    // bin/sis2alma starts Node with --max-semi-space-size=4: the main thread keeps few young
    // objects, and a small young generation saves it 24 MB. V8 reads that flag again for every
    // isolate it makes, and it would override the threads' own size (resourceLimits, below),
    // where a small one costs: the threads make megabytes of short-lived strings a piece, and
    // with 4 MB they spent 4 times as long in scavenges (bench/RESULTS.md). Unset, it leaves the
    // threads to resourceLimits; the main thread's heap is made already and keeps its size.
    v8.setFlagsFromString('--max-semi-space-size=0');
    this.workers = Array.from({ length: size }, () => {
      // A larger young generation than V8's default: each piece makes megabytes of short-lived
      // strings, and collecting them in a small space cost a third of a thread's time
      // (bench/RESULTS.md: 8.6 s → 7.6 s at 100,000 rows with 64 MB; 32 MB is as fast with
      // pieces of 128 KB, and holds less).
      const worker = new Worker(WORKER, { resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB } });
      worker.on('message', (m: { id: number }) => {
        const waiter = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        waiter?.resolve(m as never);
      });
      worker.on('error', (error) => {
        // The message for the terminal; the stack only with SIS2ALMA_DEBUG (src/cli.ts).
        const failure = new Error(`a mapping thread failed: ${error.message}`);
        failure.stack = error.stack;
        this.failAll(failure);
      });
      worker.on('exit', (code) => {
        if (this.waiting.size) this.failAll(new Error(`a mapping thread stopped (exit code ${code})`));
      });
      return worker;
    });
  }

  get size(): number {
    return this.workers.length;
  }

  /**
   * Stops the threads beyond `size` (call between passes, when no piece is out). In the second
   * pass the main thread and xmllint take a core's worth of work between them: on two cores, a
   * second mapping thread only made the three wait on each other, and held about 200 MB more at
   * 100,000 rows (bench/RESULTS.md).
   */
  async shrink(size: number): Promise<void> {
    const extra = this.workers.slice(Math.max(1, size));
    this.workers = this.workers.slice(0, Math.max(1, size));
    await Promise.all(extra.map((w) => w.terminate()));
  }

  /**
   * The export the next pieces come from: its header, the mapping and the run date. The mapping
   * goes as it was loaded and checked here (a copy, by structured clone), so that the threads
   * load neither the YAML parser nor the mapping's schema checker.
   */
  startFile(mapping: Mapping, header: string[], runDate: string, file = '', fingerprints = false): void {
    this.broadcast({ type: 'file', mapping, header, runDate, file, fingerprints });
  }

  /** The primary-id index (in shared memory) the second pass looks rows up in. */
  shareIndex(index: IdIndex): void {
    this.broadcast({ type: 'index', memory: index.memory });
  }

  ids(piece: Piece): Promise<IdsResult> {
    return this.request((id) => ({ type: 'ids', id, bytes: piece.bytes }));
  }

  map(piece: Piece): Promise<MapPieceResult> {
    return this.request((id) => ({ type: 'map', id, bytes: piece.bytes }));
  }

  /** Only parses the piece, for a thread that maps its rows itself (mapping explain and diff). */
  parse(piece: Piece): Promise<ParsedPiece> {
    return this.request((id) => ({ type: 'parse', id, bytes: piece.bytes }));
  }

  /** Gives a piece's XML buffer back to the threads, to write later pieces into; `xml` may not be used after. */
  recycle(xml: Uint8Array): void {
    const buffer = xml.buffer as ArrayBuffer;
    this.workers[this.recycled++ % this.workers.length]!.postMessage({ type: 'recycle', buffer } satisfies WorkerRequest, [buffer]);
  }

  /**
   * Runs `task` on each piece, a few at a time, and yields the results in the pieces' order. At
   * most two pieces a thread are out at once, so that memory does not grow with the file.
   */
  async *inOrder<T>(pieces: AsyncIterable<Piece>, task: (piece: Piece) => Promise<T>): AsyncGenerator<{ piece: Piece; result: T }> {
    const queue: { piece: Piece; result: Promise<T> }[] = [];
    const depth = this.workers.length * 2;
    for await (const piece of pieces) {
      const result = task(piece);
      result.catch(() => {}); // awaited in order below
      queue.push({ piece, result });
      if (queue.length >= depth) {
        const oldest = queue.shift()!;
        yield { piece: oldest.piece, result: await oldest.result };
      }
    }
    while (queue.length) {
      const oldest = queue.shift()!;
      yield { piece: oldest.piece, result: await oldest.result };
    }
  }

  async close(): Promise<void> {
    this.failAll(new Error('the run ended before mapping did'));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private request<T>(make: (id: number) => WorkerRequest): Promise<T> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      // A piece takes milliseconds; a thread that has not answered in minutes is stuck (a
      // pathological pattern in a mapping, say), and a stuck run would hold the run's lock.
      const timer = setTimeout(() => this.failAll(new Error(`a mapping thread gave no answer in ${PIECE_TIMEOUT_MS / 60000} minutes`)), PIECE_TIMEOUT_MS);
      timer.unref();
      const settle = <V>(done: (value: V) => void) => (value: V) => {
        clearTimeout(timer);
        done(value);
      };
      this.waiting.set(id, { resolve: settle(resolve as (value: never) => void), reject: settle(reject) });
      this.workers[id % this.workers.length]!.postMessage(make(id));
    });
  }

  private broadcast(request: WorkerRequest): void {
    for (const worker of this.workers) worker.postMessage(request);
  }

  private failAll(error: Error): void {
    this.failed ??= error;
    for (const waiter of this.waiting.values()) waiter.reject(error);
    this.waiting.clear();
  }
}
