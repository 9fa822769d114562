// Receiving a push: the first file part of a multipart/form-data request is streamed to a
// temporary file (busboy), never held in memory; its size and the time to receive it are bounded.
import { createWriteStream, promises as fsp, type WriteStream } from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import busboy from 'busboy';

export interface ReceivedFile {
  /** The file name the client gave, for the report; never used as a path. */
  name: string;
  bytes: number;
}

export type Upload = { ok: true; file?: ReceivedFile } | { ok: false; status: 0 | 400 | 408 | 413 | 500; summary: string; log: string };

/**
 * Streams the first file part to `temp` (the rest of the request is parsed and dropped) while
 * counting every byte of the request; past `limit` bytes or `timeoutMs` it stops reading at once.
 */
export function receiveUpload(req: http.IncomingMessage, temp: string, limit: number, timeoutMs: number): Promise<Upload> {
  return new Promise((resolve) => {
    let settled = false;
    let stopping = false;
    let received = 0;
    let file: ReceivedFile | undefined;
    let writer: WriteStream | undefined;
    let written: Promise<void> = Promise.resolve();
    let parser: busboy.Busboy;

    const settle = (result: Upload) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.off('data', count);
      resolve(result);
    };
    // The upload file is opened asynchronously; the answer waits until it is closed, so that the
    // caller's removal of `temp` cannot come before the file exists and leave it behind.
    const stop = (result: Upload) => {
      if (settled || stopping) return;
      stopping = true;
      req.unpipe(parser);
      parser.removeAllListeners('file');
      if (!writer) return settle(result);
      writer.destroy();
      const done = () => settle(result);
      written.then(done, done);
      clearTimeout(timer);
      req.off('data', count);
    };
    const count = (chunk: Buffer) => {
      received += chunk.length;
      if (received > limit) stop({ ok: false, status: 413, ...tooLarge(limit), log: `over the limit of ${limit} bytes` });
    };
    const timer = setTimeout(
      () => stop({ ok: false, status: 408, summary: `The upload took longer than ${Math.round(timeoutMs / 1000)} second${Math.round(timeoutMs / 1000) === 1 ? '' : 's'} and was stopped.`, log: 'upload timed out' }),
      timeoutMs,
    );

    try {
      parser = busboy({ headers: req.headers, defParamCharset: 'utf8', limits: { files: 1, fileSize: limit, fields: 100, parts: 200, fieldSize: 64 * 1024 } });
    } catch (error) {
      settle({ ok: false, status: 400, summary: `The request is not multipart/form-data that can be read: ${(error as Error).message}.`, log: 'unreadable multipart headers' });
      return;
    }
    parser.on('file', (_field, stream, info) => {
      if (file) {
        stream.resume();
        return;
      }
      file = { name: (info.filename ?? '').slice(0, 200), bytes: 0 };
      const out = createWriteStream(temp, { flags: 'wx', mode: 0o600 });
      writer = out;
      written = new Promise<void>((done, fail) => {
        out.on('close', done);
        out.on('error', fail);
      });
      written.catch(() => {});
      stream.on('limit', () => stop({ ok: false, status: 413, ...tooLarge(limit), log: `file over the limit of ${limit} bytes` }));
      stream.pipe(out);
    });
    parser.on('error', (error: Error) => stop({ ok: false, status: 400, summary: `The request is not well-formed multipart/form-data (${error.message}).`, log: 'malformed multipart body' }));
    parser.on('close', () => {
      if (stopping) return;
      written.then(
        () => {
          if (file && writer) file.bytes = writer.bytesWritten;
          settle({ ok: true, ...(file ? { file } : {}) });
        },
        (error: NodeJS.ErrnoException) => stop({ ok: false, status: 500, summary: 'The server could not store the upload. Ask the library to check the sis2alma log.', log: `cannot write ${temp} (${error.code ?? error.message})` }),
      );
    });
    req.on('data', count);
    req.on('close', () => {
      if (!req.complete) stop({ ok: false, status: 0, summary: '', log: '' });
    });
    req.pipe(parser);
  });
}

export function tooLarge(limit: number): { success: false; summary: string } {
  return { success: false, summary: `The request is larger than this server accepts (${describeBytes(limit)}). Ask the library to raise serve.max_request_bytes.` };
}

function describeBytes(n: number): string {
  return n >= 1024 * 1024 ? `${+(n / 1024 / 1024).toFixed(1)} MB` : `${+(n / 1024).toFixed(1)} KB`;
}


/**
 * An upload cut short by a crash stays behind as `.upload-*.csv`, with patron data in it. One
 * older than the request timeout cannot belong to an upload still running, so it goes.
 */
export async function removeLeftoverUploads(outputDir: string, timeoutMs: number): Promise<void> {
  const names = await fsp.readdir(outputDir).catch(() => [] as string[]);
  const cutoff = Date.now() - timeoutMs - 60_000;
  for (const name of names) {
    if (!/^\.upload-[0-9a-f]+\.csv$/.test(name)) continue;
    const file = path.join(outputDir, name);
    const st = await fsp.stat(file).catch(() => undefined);
    if (st && st.mtimeMs < cutoff) await fsp.rm(file, { force: true }).catch(() => {});
  }
}
