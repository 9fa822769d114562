// `sis2alma serve`: the push endpoint. A school's SIS that can only push a file on a schedule runs
//   curl -X POST -F "file=@users.csv" https://USER:PASSWORD@HOST/api/import/users
// and reads back JSON in the shape Concord Infiniti's patron import answers with. Each request is
//
//   route → Basic auth (slowed down per failing address, one check per address and a few hashes
//   at once) → size check → per-source lock →
//   stream the first file part to a temp file (busboy) → runJob (convert → guards → deliver →
//   archive), exactly as `sis2alma run` → keep the report in the archive → log one line → answer.
//
// The upload is streamed to disk and never held in memory; its size and the time to receive it
// are bounded. The answer's status says whether the import ran (200, even with failed rows), the
// caller's fault (400, 401, 409, 413, 408, 429), or the server's or the delivery's (5xx).
//
// This file starts the server and handles each request; the wing's other files do the rest:
// config.ts (the `serve:` section), login.ts (Basic auth, its throttle and gate), passwd.ts (the
// accounts' hashes), upload.ts (receiving the file) and import.ts (the import and its answer).
import { randomBytes } from 'node:crypto';
import { readFileSync, promises as fsp } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { SecureContextOptions } from 'node:tls';
import path from 'node:path';
import { RunError } from '../shared/errors.js';
import { loadMapping } from '../mapping/load.js';
import { silentLogger, type Logger } from '../shared/log.js';
import { decoyHash } from './passwd.js';
import type { ServeConfig } from './config.js';
import { LoginGate, LoginThrottle, authenticate, type LoginContext } from './login.js';
import { receiveUpload, removeLeftoverUploads, tooLarge } from './upload.js';
import { runImport, type ImportContext, type PushAnswer } from './import.js';

export const IMPORT_PATH = '/api/import/users';

// ---- The server -------------------------------------------------------------------------------

export interface ServerOptions {
  log?: Logger;
  /** The clock, read once per import for the run time. */
  now?: () => Date;
  throttle?: LoginThrottle;
  gate?: LoginGate;
}

export interface RunningServer {
  /** `https://127.0.0.1:8443` (the port actually bound when the config says 0). */
  url: string;
  port: number;
  /** Stops taking requests, lets imports that are running finish, then resolves. */
  close(): Promise<void>;
  /**
   * Takes a config read again (SIGHUP): accounts, limits, guards, mapping, output, delivery and
   * the TLS certificate apply to the requests that come after; imports running finish with the
   * config they began with. Throws RunError('config_invalid'), keeping the config it has, when the
   * new one changes what only a restart can (host, port, HTTPS on or off) or its mapping or
   * certificate cannot be used.
   */
  reload(config: ServeConfig): void;
}

/**
 * What HTTPS offers: TLS 1.2 and 1.3 with the AEAD suites of Mozilla's "intermediate" profile
 * (ECDHE with AES-GCM or ChaCha20-Poly1305; TLS 1.3's three). Node's default list would also take
 * CBC with SHA-1, CCM8 and ARIA in TLS 1.2. The profile's DHE suites are left out: they need a
 * dhparam file, and every client that has them has ECDHE too.
 */
const TLS_PROFILE: SecureContextOptions = {
  minVersion: 'TLSv1.2',
  ciphers: [
    'TLS_AES_128_GCM_SHA256',
    'TLS_AES_256_GCM_SHA384',
    'TLS_CHACHA20_POLY1305_SHA256',
    'ECDHE-ECDSA-AES128-GCM-SHA256',
    'ECDHE-RSA-AES128-GCM-SHA256',
    'ECDHE-ECDSA-AES256-GCM-SHA384',
    'ECDHE-RSA-AES256-GCM-SHA384',
    'ECDHE-ECDSA-CHACHA20-POLY1305',
    'ECDHE-RSA-CHACHA20-POLY1305',
  ].join(':'),
};

/** Imports running, by output folder: one at a time per source, across every server in this process. */
const running = new Set<string>();

/** Starts listening; throws RunError when the certificate, mapping or address cannot be used. */
export async function startServer(config: ServeConfig, options: ServerOptions = {}): Promise<RunningServer> {
  const log = options.log ?? silentLogger;
  const { serve } = config;
  // A broken mapping should stop the server at start, not fail every push at 3 a.m.
  loadMapping(serve.mappingFile);
  const tls = serve.tls && readTls(config);
  await removeLeftoverUploads(config.run.outputDir, serve.requestTimeoutMs);

  const context: Context = {
    config,
    log,
    now: options.now ?? (() => new Date()),
    throttle: options.throttle ?? new LoginThrottle(),
    gate: options.gate ?? new LoginGate(),
    decoy: await decoyHash(),
    imports: new Set(),
  };
  const onRequest = (expectContinue: boolean) => (req: http.IncomingMessage, res: http.ServerResponse) => {
    // The request keeps the config it came in under, whatever a reload does meanwhile.
    const work = handle(req, res, { ...context }, expectContinue).catch((error: unknown) => {
      log.warn(`internal error: ${error instanceof Error ? error.message : String(error)}`);
      if (!res.headersSent) answer(req, res, 500, { success: false, summary: 'The server failed while handling the import. Ask the library to check the sis2alma log.' });
      else res.destroy();
    });
    context.imports.add(work);
    void work.finally(() => context.imports.delete(work));
  };

  let server: http.Server;
  if (tls) {
    try {
      server = https.createServer({ ...tls, ...TLS_PROFILE }, onRequest(false));
    } catch (error) {
      throw tlsUnusable(config, error);
    }
  } else {
    server = http.createServer(onRequest(false));
  }
  // Answer `Expect: 100-continue` only after the login and size checks, so a refused upload is never sent.
  server.on('checkContinue', onRequest(true));
  // Node's own limits back up the per-request timer (which answers in JSON first).
  server.requestTimeout = serve.requestTimeoutMs + 10_000;
  server.headersTimeout = Math.min(60_000, serve.requestTimeoutMs);

  await new Promise<void>((resolve, reject) => {
    const fail = (error: NodeJS.ErrnoException) => {
      const why = error.code === 'EADDRINUSE' ? 'is already in use' : error.code === 'EACCES' ? 'needs more privileges (ports below 1024 need root or CAP_NET_BIND_SERVICE)' : `cannot be used (${error.code ?? error.message})`;
      reject(new RunError('config_invalid', `the address ${serve.host}:${serve.port} ${why}`, { file: config.run.configFile }));
    };
    server.once('error', fail);
    server.listen(serve.port, serve.host, () => {
      server.off('error', fail);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = serve.host.includes(':') ? `[${serve.host}]` : serve.host;
  return {
    url: `${serve.tls ? 'https' : 'http'}://${host}:${port}`,
    port,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await Promise.allSettled([...context.imports]);
      server.closeIdleConnections();
      await closed;
    },
    reload: (next) => {
      const was = context.config.serve;
      const now = next.serve;
      const changed = [was.host !== now.host && 'host', was.port !== now.port && 'port', !was.tls !== !now.tls && (now.tls ? 'tls (HTTPS on)' : 'tls (HTTPS off)')].filter(Boolean);
      if (changed.length) throw new RunError('config_invalid', `${changed.join(', ')} changed: restart the server for that`, { file: next.run.configFile });
      loadMapping(now.mappingFile);
      if (now.tls) {
        const files = readTls(next);
        try {
          (server as https.Server).setSecureContext({ ...files, ...TLS_PROFILE });
        } catch (error) {
          throw tlsUnusable(next, error);
        }
      }
      server.requestTimeout = now.requestTimeoutMs + 10_000;
      server.headersTimeout = Math.min(60_000, now.requestTimeoutMs);
      context.config = next;
    },
  };
}

function tlsUnusable(config: ServeConfig, error: unknown): RunError {
  const { certFile, keyFile } = config.serve.tls!;
  return new RunError('config_invalid', `the TLS certificate ${certFile} or key ${keyFile} cannot be used: ${(error as Error).message}`, { file: certFile });
}

function readTls(config: ServeConfig): { cert: Buffer; key: Buffer } {
  const { tls } = config.serve;
  try {
    return { cert: readFileSync(tls!.certFile), key: readFileSync(tls!.keyFile) };
  } catch (error) {
    throw new RunError('config_invalid', `cannot read the TLS certificate or key (${(error as NodeJS.ErrnoException).code ?? 'error'})`, { file: config.run.configFile });
  }
}

interface Context extends LoginContext, ImportContext {
  imports: Set<Promise<void>>;
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse, ctx: Context, expectContinue: boolean): Promise<void> {
  const { serve } = ctx.config;
  const client = clientAddress(req, serve.trustProxy);
  const reply = (status: number, body: PushAnswer, headers: Record<string, string> = {}) => answer(req, res, status, body, headers, Math.min(DRAIN_MS, serve.requestTimeoutMs));
  const pathname = new URL(req.url ?? '/', 'http://localhost').pathname.replace(/\/+$/, '');
  if (pathname !== IMPORT_PATH) return reply(404, { success: false, summary: `Not found: send the CSV file with POST to ${IMPORT_PATH}.` });
  if (req.method !== 'POST') return reply(405, { success: false, summary: `Use POST to send the CSV file to ${IMPORT_PATH}.` }, { Allow: 'POST' });

  const login = await authenticate(req, client, ctx);
  if (login.refused === 'gone') {
    ctx.log.warn(`login from ${client}: the client closed the connection before its password was checked`);
    return;
  }
  if (login.refused === 'address busy') {
    ctx.log.warn(`refused login from ${client}: 429, another login from this address is being checked`);
    return reply(429, { success: false, summary: 'Another login from this address is being checked. Send one request at a time.' }, { 'Retry-After': String(login.retryAfter) });
  }
  if (login.refused === 'server busy') {
    ctx.log.warn(`refused login from ${client}: 503, too many logins are waiting to be checked`);
    return reply(503, { success: false, summary: 'The server is checking too many logins. Try again shortly.' }, { 'Retry-After': String(login.retryAfter) });
  }
  if (login.refused) {
    ctx.log.warn(`refused login from ${client}: 401`);
    return reply(401, { success: false, summary: 'Unauthorised. Check credentials.' }, { 'WWW-Authenticate': 'Basic realm="sis2alma", charset="UTF-8"' });
  }
  const { account } = login;
  const who = `${JSON.stringify(account)} from ${client}`;

  const length = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(length) && length > serve.maxRequestBytes) {
    ctx.log.warn(`import by ${who}: 413, ${length} bytes announced`);
    return reply(413, tooLarge(serve.maxRequestBytes));
  }
  // Stryker disable next-line StringLiteral: with no content type any default but a multipart one is refused alike
  if (!/^multipart\/form-data\b/i.test(req.headers['content-type'] ?? '')) {
    ctx.log.warn(`import by ${who}: 400, not multipart/form-data`);
    return reply(400, { success: false, summary: 'Send the CSV file as multipart/form-data, e.g. curl -F "file=@users.csv".' });
  }

  const lockKey = ctx.config.run.outputDir;
  if (running.has(lockKey)) {
    ctx.log.warn(`import by ${who}: 409, another import of this source is running`);
    return reply(409, { success: false, summary: 'Another import of this source is running. Try again when it has finished.' });
  }
  running.add(lockKey);
  const temp = path.join(ctx.config.run.outputDir, `.upload-${randomBytes(8).toString('hex')}.csv`);
  let result: { status: number; body: PushAnswer } | undefined;
  try {
    result = await receiveAndImport(req, res, ctx, temp, account, client, expectContinue);
  } finally {
    // Gone before the answer, so that a caller who has its answer finds no upload left behind.
    await fsp.rm(temp, { force: true }).catch(() => {});
    running.delete(lockKey);
  }
  if (result) reply(result.status, result.body);
}

/** The answer to give, or undefined when the client has gone. */
async function receiveAndImport(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  ctx: Context,
  temp: string,
  account: string,
  client: string,
  expectContinue: boolean,
): Promise<{ status: number; body: PushAnswer } | undefined> {
  const { serve } = ctx.config;
  const who = `${JSON.stringify(account)} from ${client}`;
  await fsp.mkdir(ctx.config.run.outputDir, { recursive: true });
  if (expectContinue) res.writeContinue();
  const upload = await receiveUpload(req, temp, serve.maxRequestBytes, serve.requestTimeoutMs);
  if (!upload.ok) {
    if (upload.status === 0) {
      ctx.log.warn(`import by ${who}: the client closed the connection during the upload`);
      return undefined;
    }
    ctx.log.warn(`import by ${who}: ${upload.status}, ${upload.log}`);
    return { status: upload.status, body: { success: false, summary: upload.summary } };
  }
  if (!upload.file) {
    ctx.log.warn(`import by ${who}: 400, no file part`);
    return { status: 400, body: { success: false, summary: 'No file was sent: send the CSV as a file part, e.g. curl -F "file=@users.csv".' } };
  }
  const { status, body, line } = await runImport(ctx, temp, upload.file, account, client);
  (status === 200 && body.success ? ctx.log.info : ctx.log.warn)(line);
  return { status, body };
}

function clientAddress(req: http.IncomingMessage, trustProxy: boolean): string {
  const direct = (req.socket.remoteAddress ?? 'unknown').replace(/^::ffff:/, '');
  if (!trustProxy) return direct;
  // The proxy appends the address it saw; anything left of it was written by the client.
  const forwarded = String(req.headers['x-forwarded-for'] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return forwarded.at(-1) ?? direct;
}


/**
 * What is read and dropped of a refused request's body, at most: several times the files schools
 * push (30,000 users are about 3 MB). The time is bounded by request_timeout_seconds too. Neither
 * bound lets a client hold a connection open for long.
 */
const DRAIN_BYTES = 16 * 1024 * 1024;
const DRAIN_MS = 10_000;

/**
 * Sends the JSON answer. A refusal may come before the body has been read (a wrong password, a
 * Content-Length over the limit) or halfway through it (413). Many clients send the whole body
 * before they read anything (python-requests does), and a connection closed with bytes unread is
 * reset, which takes the answer with it: such a client sees a TLS EOF instead of the JSON. So the
 * rest of the body is read and dropped, up to DRAIN_BYTES and `drainMs`, before the connection is
 * closed; past either bound it is cut. A request that announces more than DRAIN_BYTES, and one that
 * ran out of time (408), are answered and closed at once: draining would not reach their end.
 */
function answer(req: http.IncomingMessage, res: http.ServerResponse, status: number, body: PushAnswer, headers: Record<string, string> = {}, drainMs = DRAIN_MS): void {
  if (res.headersSent) return;
  const json = JSON.stringify(body) + '\n';
  const unread = !req.complete;
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(json),
    'Cache-Control': 'no-store',
    ...(unread ? { Connection: 'close' } : {}),
    ...headers,
  });
  const announced = Number(req.headers['content-length'] ?? 0);
  if (!unread || req.destroyed || status === 408 || announced > DRAIN_BYTES) {
    res.end(json);
    return;
  }
  // Node closes a `Connection: close` connection as soon as its answer ends, so the answer is
  // written whole now (its length is in the headers, the client can read it) and ended once the
  // body has been read.
  res.write(json);
  let drained = 0;
  let finished = false;
  const finish = (how: 'end' | 'cut' | 'gone') => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    req.off('data', count);
    if (how === 'cut') req.socket.destroy();
    else if (how === 'end') res.end();
  };
  const count = (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > DRAIN_BYTES) finish('cut');
  };
  const timer = setTimeout(() => finish('cut'), drainMs);
  req.on('data', count);
  req.once('end', () => finish('end'));
  res.once('close', () => finish('gone'));
  req.resume();
}
