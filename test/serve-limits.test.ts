// The push endpoint's limits at their edges, over plain HTTP on 127.0.0.1: a request of exactly
// max_request_bytes is taken and one byte more is refused, whether its Content-Length announces it
// or it comes chunked and is counted while read; and the content type is read as a media type
// (any case, the whole name), so that anything else gets the answer that says what to send.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadServeConfig } from '../src/serve/config.js';
import { startServer, type RunningServer } from '../src/serve/server.js';
import { hashPassword } from '../src/serve/passwd.js';
import type { Logger } from '../src/shared/log.js';
import { INFINITI_MAPPING } from './helpers/run-cli.js';
import { makeTempDir } from './helpers/tmp.js';

const USER = 'infiniti';
const PASSWORD = 'correct horse battery staple';
const LIMIT = 1024;
const BOUNDARY = 'sis2alma-limit';
const AUTH = 'Basic ' + Buffer.from(`${USER}:${PASSWORD}`).toString('base64');
const NOT_MULTIPART = 'Send the CSV file as multipart/form-data, e.g. curl -F "file=@users.csv".';
const TOO_LARGE = 'The request is larger than this server accepts (1 KB). Ask the library to raise serve.max_request_bytes.';

/** A multipart body of exactly `size` bytes: a padding field, then a CSV with the header alone. */
function bodyOf(size: number): Buffer {
  const head = `--${BOUNDARY}\r\nContent-Disposition: form-data; name="padding"\r\n\r\n`;
  const tail = `\r\n--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="users.csv"\r\nContent-Type: text/csv\r\n\r\nusername,enabled,staffmember\r\n\r\n--${BOUNDARY}--\r\n`;
  const body = Buffer.from(head + 'x'.repeat(size - head.length - tail.length) + tail);
  assert.equal(body.length, size);
  return body;
}

interface Answer {
  status: number;
  json: { success: boolean; summary: string };
}

/** One POST; `chunked` sends the body in two chunks with no Content-Length. */
function post(url: string, body: Buffer, options: { chunked?: boolean; contentType?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { authorization: AUTH, 'content-type': options.contentType ?? `multipart/form-data; boundary=${BOUNDARY}` };
    if (!options.chunked) headers['content-length'] = body.length;
    const req = request(`${url}/api/import/users`, { method: 'POST', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Answer['json'] }));
    });
    // A refused request may be cut off before its body is sent: the answer is what counts.
    req.on('error', (error: NodeJS.ErrnoException) => (error.code === 'EPIPE' || error.code === 'ECONNRESET' ? undefined : reject(error)));
    if (options.chunked) {
      req.write(body.subarray(0, 100));
      setTimeout(() => req.end(body.subarray(100)), 20);
    } else req.end(body);
  });
}

describe('the push endpoint at its limits', () => {
  const work = makeTempDir('sis2alma-serve-limits-');
  const lines: string[] = [];
  let server: RunningServer;
  before(async () => {
    const configFile = path.join(work, 'config.yaml');
    writeFileSync(
      configFile,
      [
        `mapping: ${INFINITI_MAPPING}`,
        'output_dir: out',
        'delivery:',
        '  target: dir',
        `  dir: ${path.join(work, 'alma')}`,
        '  create_dir: true',
        '  retries: 0',
        'serve:',
        '  host: 127.0.0.1',
        '  port: 0',
        `  max_request_bytes: ${LIMIT}`,
        '  accounts:',
        `    - username: ${USER}`,
        `      password_hash: "${await hashPassword(PASSWORD, { N: 1024, r: 8, p: 1 })}"`,
        '',
      ].join('\n'),
    );
    const log: Logger = { info: (m) => lines.push(m), warn: (m) => lines.push(m), id: (v) => v };
    server = await startServer(loadServeConfig(configFile), { log });
  });
  after(async () => {
    await server?.close();
  });

  test('a Content-Length of exactly max_request_bytes is taken; one byte more is refused from the header', async () => {
    const exact = await post(server.url, bodyOf(LIMIT));
    assert.equal(exact.status, 200, exact.json.summary);
    assert.equal(exact.json.success, true);
    const over = await post(server.url, bodyOf(LIMIT + 1));
    assert.deepEqual(over, { status: 413, json: { success: false, summary: TOO_LARGE } });
    assert.equal(lines.filter((l) => l === `import by "${USER}" from 127.0.0.1: 413, ${LIMIT + 1} bytes announced`).length, 1, lines.join('\n'));
  });

  test('chunked, with no Content-Length: exactly max_request_bytes is taken; one byte more is refused while counting', async () => {
    const exact = await post(server.url, bodyOf(LIMIT), { chunked: true });
    assert.equal(exact.status, 200, exact.json.summary);
    assert.equal(exact.json.success, true);
    const over = await post(server.url, bodyOf(LIMIT + 1), { chunked: true });
    assert.deepEqual(over, { status: 413, json: { success: false, summary: TOO_LARGE } });
    assert.equal(lines.filter((l) => l === `import by "${USER}" from 127.0.0.1: 413, over the limit of ${LIMIT} bytes`).length, 1, lines.join('\n'));
  });

  test('the content type is multipart/form-data in any case, and nothing that merely contains or extends it', async () => {
    const upper = await post(server.url, bodyOf(600), { contentType: `Multipart/Form-Data; boundary=${BOUNDARY}` });
    assert.equal(upper.status, 200, upper.json.summary);
    assert.equal(upper.json.success, true);
    for (const contentType of [`multipart/form-datax; boundary=${BOUNDARY}`, `text/plain; multipart/form-data; boundary=${BOUNDARY}`, '']) {
      assert.deepEqual(await post(server.url, bodyOf(600), { contentType }), { status: 400, json: { success: false, summary: NOT_MULTIPART } }, contentType);
    }
    assert.equal(lines.filter((l) => l === `import by "${USER}" from 127.0.0.1: 400, not multipart/form-data`).length, 3, lines.join('\n'));
  });
});

describe('an upload that takes too long', () => {
  test('is stopped after request_timeout_seconds, which the answer gives in seconds', { timeout: 20_000 }, async () => {
    const work = makeTempDir('sis2alma-serve-timeout-');
    const configFile = path.join(work, 'config.yaml');
    writeFileSync(
      configFile,
      [`mapping: ${INFINITI_MAPPING}`, 'output_dir: out', 'delivery:', '  target: dir', `  dir: ${path.join(work, 'alma')}`, '  create_dir: true', 'serve:', '  host: 127.0.0.1', '  port: 0', '  request_timeout_seconds: 2', '  accounts:', `    - username: ${USER}`, `      password_hash: "${await hashPassword(PASSWORD, { N: 1024, r: 8, p: 1 })}"`, ''].join('\n'),
    );
    const said: string[] = [];
    const server = await startServer(loadServeConfig(configFile), { log: { info: (m) => said.push(m), warn: (m) => said.push(m), id: (v) => v } });
    try {
      const answer = await new Promise<Answer>((resolve, reject) => {
        const req = request(`${server.url}/api/import/users`, { method: 'POST', headers: { authorization: AUTH, 'content-type': `multipart/form-data; boundary=${BOUNDARY}` } }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Answer['json'] }));
        });
        req.on('error', reject);
        // The start of a body, and then nothing.
        req.write(bodyOf(600).subarray(0, 100));
      });
      assert.deepEqual(answer, { status: 408, json: { success: false, summary: 'The upload took longer than 2 seconds and was stopped.' } });
      assert.deepEqual(said.filter((l) => l.startsWith('import by')), [`import by "${USER}" from 127.0.0.1: 408, upload timed out`]);
    } finally {
      await server.close();
    }
  });
});
