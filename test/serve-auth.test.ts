// The push endpoint's two defences that a timer or a status code alone does not show, over real
// HTTPS on 127.0.0.1: an unknown account name costs the same scrypt derivation as a known one with
// a wrong password (counted, with its cost, at node:crypto, so no duration is compared), and an
// upload announced over the limit is refused from its Content-Length before any body is sent.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import path from 'node:path';
import { loadServeConfig } from '../src/serve/config.js';
import { startServer, type RunningServer } from '../src/serve/server.js';
import { DEFAULT_SCRYPT, hashPassword } from '../src/serve/passwd.js';
import type { Logger } from '../src/shared/log.js';
import { INFINITI_MAPPING } from './helpers/run-cli.js';
import { makeTempDir } from './helpers/tmp.js';
import { toolMissing } from './helpers/tools.js';

const USER = 'infiniti';
const PASSWORD = 'correct horse battery staple';
const noOpenssl = spawnSync('openssl', ['version'], { stdio: 'ignore' }).error ? 'openssl is not installed (Debian package openssl)' : undefined;

// Every scrypt derivation in this process, with its cost, as passwd.ts's `import { scrypt }` sees
// it: the ESM binding of a built-in follows its CommonJS export after syncBuiltinESMExports.
type Derivation = { keylen: number; N: number; r: number; p: number };
const derivations: Derivation[] = [];
const crypto = createRequire(import.meta.url)('node:crypto') as { scrypt: (...args: unknown[]) => void };
const realScrypt = crypto.scrypt;
crypto.scrypt = function (this: unknown, password: unknown, salt: unknown, keylen: number, options: Derivation, callback: unknown) {
  derivations.push({ keylen, N: options.N, r: options.r, p: options.p });
  return realScrypt.call(this, password, salt, keylen, options, callback);
} as typeof crypto.scrypt;
syncBuiltinESMExports();

interface Site {
  server: RunningServer;
  lines: string[];
  out: string;
}

describe('the push endpoint over HTTPS', { skip: toolMissing(noOpenssl) }, () => {
  const work = makeTempDir('sis2alma-serve-auth-');
  let site: Site;

  before(async () => {
    const tls = path.join(work, 'tls');
    mkdirSync(tls);
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-keyout', path.join(tls, 'key.pem'), '-out', path.join(tls, 'cert.pem')], { encoding: 'utf8' });
    assert.equal(made.status, 0, `openssl could not make a test certificate: ${made.stderr}`);
    chmodSync(path.join(tls, 'key.pem'), 0o600);
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
        '  tls:',
        `    cert_file: ${path.join(tls, 'cert.pem')}`,
        `    key_file: ${path.join(tls, 'key.pem')}`,
        '  max_request_bytes: 1MB',
        // A server that waited for the body would answer 408 after this, not hang the test.
        '  request_timeout_seconds: 5',
        '  accounts:',
        `    - username: ${USER}`,
        // The account's hash has the default cost, as `sis2alma passwd` makes it.
        `      password_hash: "${await hashPassword(PASSWORD)}"`,
        '',
      ].join('\n'),
    );
    const lines: string[] = [];
    const log: Logger = { info: (m) => lines.push(m), warn: (m) => lines.push(m), id: (v) => v };
    site = { server: await startServer(loadServeConfig(configFile), { log }), lines, out: path.join(work, 'out') };
  });
  after(async () => {
    await site?.server.close();
  });

  /** One POST over HTTPS with Basic credentials and a small multipart body; the status it got. */
  function postAs(username: string, password: string): Promise<number> {
    const boundary = 'sis2alma-test';
    const body = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="users.csv"\r\nContent-Type: text/csv\r\n\r\nusername,enabled,staffmember\r\n--${boundary}--\r\n`;
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        `${site.server.url}/api/import/users`,
        {
          method: 'POST',
          rejectUnauthorized: false,
          headers: {
            authorization: 'Basic ' + Buffer.from(`${username}:${password}`).toString('base64'),
            'content-type': `multipart/form-data; boundary=${boundary}`,
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  test('an unknown name costs the same scrypt derivation as a known name with a wrong password', async () => {
    const expected = { keylen: 32, N: DEFAULT_SCRYPT.N, r: DEFAULT_SCRYPT.r, p: DEFAULT_SCRYPT.p };
    derivations.length = 0;
    assert.equal(await postAs('nobody', PASSWORD), 401);
    const unknownName = derivations.splice(0);
    assert.equal(await postAs(USER, 'not the password at all'), 401);
    const wrongPassword = derivations.splice(0);
    assert.deepEqual(wrongPassword, [expected]);
    assert.deepEqual(unknownName, [expected], 'an unknown name is checked against a decoy hash of the same cost');
  });

  test('a Content-Length over the limit is answered 413 at once, though no byte of the body was sent', { timeout: 30_000 }, async () => {
    const announced = 1024 ** 4;
    const head = [
      'POST /api/import/users HTTP/1.1',
      `Host: 127.0.0.1:${site.server.port}`,
      'Authorization: Basic ' + Buffer.from(`${USER}:${PASSWORD}`).toString('base64'),
      'Content-Type: multipart/form-data; boundary=x',
      `Content-Length: ${announced}`,
      '',
      '',
    ].join('\r\n');
    const response = await new Promise<string>((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: site.server.port, rejectUnauthorized: false }, () => socket.write(head));
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        text += chunk;
        const [headers, body] = text.split('\r\n\r\n');
        const length = /\r\ncontent-length: (\d+)/i.exec(headers ?? '')?.[1];
        // The whole answer is here: stop without ever sending the body.
        if (length !== undefined && body !== undefined && Buffer.byteLength(body) >= Number(length)) {
          socket.destroy();
          resolve(text);
        }
      });
      socket.on('error', reject);
      socket.on('close', () => resolve(text));
    });
    const [headers, body] = response.split('\r\n\r\n');
    assert.equal(headers!.split('\r\n')[0], 'HTTP/1.1 413 Payload Too Large');
    assert.deepEqual(JSON.parse(body!), { success: false, summary: 'The request is larger than this server accepts (1 MB). Ask the library to raise serve.max_request_bytes.' });
    assert.equal(site.lines.filter((l) => l === `import by "${USER}" from 127.0.0.1: 413, ${announced} bytes announced`).length, 1, site.lines.join('\n'));
    assert.deepEqual(existsSync(site.out) ? readdirSync(site.out).filter((f) => f.startsWith('.upload-')) : [], []);
  });
});
