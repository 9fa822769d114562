// Packaging for Alma's SIS load: one or more zips, each holding at most 50 XML files and at most
// 4 GB (Alma's limits), each XML file at most chunkSize users. Everything is streamed: users go
// through a deflate stream straight into a zip written under a temporary name; only commit()
// gives the zips their final names, so a crash or a tripped guard never leaves a half-written or
// unwanted zip under a final name.
import type { WriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import zlib from 'node:zlib';
import yazl from 'yazl';
import { RunError } from '../shared/errors.js';
import { ownerOnlyStream } from './report.js';
import { XML_DECLARATION, USERS_OPEN, USERS_CLOSE, provenanceComment, type Provenance } from './xml.js';

// yazl computes each entry's CRC-32 with buffer-crc32, in JavaScript: about 0.65 s of the main
// thread per 100,000 users (bench/RESULTS.md). Node 20.15 and later have zlib's own, in C, with the
// same result; where it is there, yazl's copy of buffer-crc32 is pointed at it.
// Stryker disable next-line BlockStatement: without the block yazl computes the same CRCs itself, slower
{
  const crc32 = createRequire(createRequire(import.meta.url).resolve('yazl'))('buffer-crc32') as { unsigned: (buffer: Buffer, previous?: number) => number };
  const native = (zlib as { crc32?: (data: Buffer, value?: number) => number }).crc32;
  // Stryker disable next-line ConditionalExpression: Node 20.19 (package.json's engines) has zlib.crc32; either function gives the same CRCs
  if (native) crc32.unsigned = (buffer, previous) => native(buffer, previous ?? 0);
}

export const ALMA_MAX_FILES_PER_ZIP = 50;
export const ALMA_MAX_ZIP_BYTES = 4 * 1024 ** 3;
const WRITE_CHUNK = 256 * 1024;
/**
 * zlib's level 3 (its fast method): on this XML it deflates at level 1's speed, 2.3 times faster
 * than the default 6, to a zip 26% larger (24 MB of XML: 38 ms and 1.49 MB against 89 ms and
 * 1.18 MB). At 1,000,000 users that is 4.6 CPU seconds saved for about 30 MB more to upload.
 */
const DEFLATE_LEVEL = 3;

export interface PackageOptions {
  outDir: string;
  /** Shared start of every name, e.g. users_infiniti_20261121-020000. */
  stem: string;
  chunkSize: number;
  provenance: Omit<Provenance, 'part'>;
  maxFilesPerZip?: number;
  maxZipBytes?: number;
}

export interface ZipSummary {
  /** Final path of the zip (it exists only after commit). */
  file: string;
  entries: { name: string; users: number; bytes: number }[];
}

export function timestampForNames(now: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${now.getFullYear()}${pad(now.getMonth() + 1)}${pad(now.getDate())}-${pad(now.getHours())}${pad(now.getMinutes())}${pad(now.getSeconds())}`;
}

interface OpenZip {
  summary: ZipSummary;
  temp: string;
  zip: yazl.ZipFile;
  out: WriteStream;
  closed: Promise<unknown>;
  bytes: number;
}

interface OpenEntry {
  stream: PassThrough;
  users: number;
  bytes: number;
}

export class Packager {
  private readonly maxFiles: number;
  private readonly maxBytes: number;
  private zip?: OpenZip;
  private entry?: OpenEntry;
  private fileNumber = 0;
  private readonly done: { summary: ZipSummary; temp: string }[] = [];
  // Stryker disable next-line ArrayDeclaration: a value that is no promise is awaited as it is
  private readonly closing: Promise<unknown>[] = [];
  private chunk = Buffer.allocUnsafeSlow(WRITE_CHUNK);
  private chunkLength = 0;

  constructor(private readonly options: PackageOptions) {
    this.maxFiles = options.maxFilesPerZip ?? ALMA_MAX_FILES_PER_ZIP;
    // Deflate never makes XML larger, so counting bytes before compression keeps under the limit;
    // the margin covers the zip's own headers and directory.
    this.maxBytes = Math.floor((options.maxZipBytes ?? ALMA_MAX_ZIP_BYTES) * 0.99) - 64 * 1024;
  }

  /**
   * Adds one user's XML (as userXml writes it), as text or UTF-8 bytes, copied at once. Returns a
   * promise only when the caller must wait (a file or zip to close, or the zip behind): a million
   * users a night, each awaited, made garbage enough to cost V8 seconds.
   */
  add(userXml: string | Buffer): Promise<void> | undefined {
    const size = Buffer.byteLength(userXml);
    if (!this.entry || this.entry.users >= this.options.chunkSize || this.zip!.bytes + size + USERS_CLOSE.length > this.maxBytes) return this.addInNewFile(userXml, size);
    this.entry.users++;
    return this.write(userXml);
  }

  private async addInNewFile(userXml: string | Buffer, size: number): Promise<void> {
    if (this.entry) await this.closeEntry();
    // A zip is closed only between files: yazl finishes a zip once its last entry has ended.
    if (this.zip && (this.zip.summary.entries.length >= this.maxFiles || this.zip.bytes + size + 1024 > this.maxBytes)) await this.closeZip();
    await this.openEntry();
    this.entry!.users++;
    await this.write(userXml);
  }

  /** Closes the last file and zip; returns the zips (still under their temporary names). */
  async finish(): Promise<ZipSummary[]> {
    if (this.entry) await this.closeEntry();
    if (this.zip) await this.closeZip();
    await Promise.all(this.closing);
    return this.done.map((z) => z.summary);
  }

  /** Gives every finished zip its final name. */
  async commit(): Promise<string[]> {
    for (const z of this.done) await rename(z.temp, z.summary.file);
    return this.done.map((z) => z.summary.file);
  }

  /** Removes every zip of this run, finished or not. */
  async abort(): Promise<void> {
    // Stryker disable next-line ConditionalExpression: an entry's stream left open goes with its zip, whose file is removed all the same
    if (this.entry) this.entry.stream.end();
    if (this.zip) {
      this.zip.zip.end();
      this.zip.out.destroy();
      this.done.push({ summary: this.zip.summary, temp: this.zip.temp });
      this.zip = undefined;
      this.entry = undefined;
    }
    await Promise.allSettled(this.closing);
    await Promise.all(this.done.map((z) => rm(z.temp, { force: true })));
  }

  private async openEntry(): Promise<void> {
    if (!this.zip) this.openZip();
    this.fileNumber++;
    const name = `${this.options.stem}_${String(this.fileNumber).padStart(4, '0')}.xml`;
    // Stryker disable next-line ObjectLiteral: the buffer's size changes how often writes wait, not the zip
    const stream = new PassThrough({ highWaterMark: 1 << 20 });
    this.zip!.zip.addReadStream(stream, name, { compressionLevel: DEFLATE_LEVEL, mtime: new Date(this.options.provenance.runTime) });
    this.entry = { stream, users: 0, bytes: 0 };
    this.zip!.summary.entries.push({ name, users: 0, bytes: 0 });
    await this.write(XML_DECLARATION + provenanceComment({ ...this.options.provenance, part: `file ${this.fileNumber}` }) + USERS_OPEN);
  }

  private async closeEntry(): Promise<void> {
    const entry = this.entry!;
    await this.write(USERS_CLOSE);
    await this.drain();
    const summary = this.zip!.summary.entries[this.zip!.summary.entries.length - 1]!;
    summary.users = entry.users;
    summary.bytes = entry.bytes;
    entry.stream.end();
    this.entry = undefined;
  }

  private openZip(): void {
    const n = this.done.length + 1;
    const file = path.join(this.options.outDir, `${this.options.stem}${n === 1 ? '' : `_${String(n).padStart(2, '0')}`}.zip`);
    const temp = `${file}.partial`;
    const zip = new yazl.ZipFile();
    const out = ownerOnlyStream(temp);
    const closed = new Promise((resolve, reject) => {
      out.on('close', () => resolve(undefined));
      out.on('error', (error: NodeJS.ErrnoException) => reject(new RunError('output_failed', `cannot write ${temp}: ${error.code ?? error.message}`, { file: temp })));
    });
    closed.catch(() => {});
    zip.outputStream.pipe(out);
    this.zip = { summary: { file, entries: [] }, temp, zip, out, closed, bytes: 0 };
  }

  private async closeZip(): Promise<void> {
    const z = this.zip!;
    z.zip.end();
    this.zip = undefined;
    this.done.push({ summary: z.summary, temp: z.temp });
    this.closing.push(z.closed);
    await z.closed;
  }

  /**
   * Copies writes into chunks of 256 KB of its own: deflate costs per chunk, and one user is only a
   * few kilobytes (a profile showed zlib's per-chunk work as the largest cost of packaging); and
   * the caller may reuse its buffer as soon as add() is called.
   */
  private write(data: string | Buffer): Promise<void> | undefined {
    // Stryker disable next-line ConditionalExpression: Buffer.from copies bytes it is given, to the same bytes
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    this.entry!.bytes += bytes.length;
    this.zip!.bytes += bytes.length;
    const n = Math.min(bytes.length, WRITE_CHUNK - this.chunkLength);
    bytes.copy(this.chunk, this.chunkLength, 0, n);
    this.chunkLength += n;
    // Stryker disable next-line ConditionalExpression: writeRest with room left in the chunk only drains it sooner: the same bytes in the same order
    if (this.chunkLength < WRITE_CHUNK) return undefined;
    return this.writeRest(bytes, n);
  }

  private async writeRest(bytes: Buffer, from: number): Promise<void> {
    await this.drain();
    while (from < bytes.length) {
      const left = bytes.length - from;
      // Stryker disable next-line ArithmeticOperator: the chunk is empty here (drained before the loop and whenever full), so WRITE_CHUNK ± 0
      const n = Math.min(left, WRITE_CHUNK - this.chunkLength);
      bytes.copy(this.chunk, this.chunkLength, from, from + n);
      this.chunkLength += n;
      from += n;
      // Stryker disable next-line ConditionalExpression: draining a chunk before it is full sends the same bytes in the same order
      if (this.chunkLength === WRITE_CHUNK) await this.drain();
    }
  }

  private async drain(): Promise<void> {
    if (this.chunkLength === 0) return;
    const chunk = this.chunk.subarray(0, this.chunkLength);
    this.chunk = Buffer.allocUnsafeSlow(WRITE_CHUNK);
    this.chunkLength = 0;
    // Stryker disable next-line BlockStatement,ConditionalExpression: not waiting changes memory only (the entry's stream holds what the zip has not taken), not the zip
    if (!this.entry!.stream.write(chunk)) {
      // The zip consumes this entry's stream; wait for it, or for the output to fail.
      await Promise.race([once(this.entry!.stream, 'drain'), this.zip!.closed]);
    }
  }
}
