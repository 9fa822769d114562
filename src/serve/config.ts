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
import { randomBytes } from 'node:crypto';
import { createWriteStream, readFileSync, statSync, promises as fsp, type WriteStream } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import type { SecureContextOptions } from 'node:tls';
import path from 'node:path';
import busboy from 'busboy';
import { LineCounter, parseDocument, isMap, isScalar, isSeq, type Node, type Pair, type YAMLMap } from 'yaml';
import { closestOf } from '../shared/suggest.js';
import { checkRunConfig, formatProblem, keyOffset, readConfigText, type ConfigProblem, type RunConfig } from '../config/run-config.js';
import type { Guards } from '../pipeline/convert.js';
import { archiveFiles } from '../delivery/archive.js';
import { createTarget } from '../delivery/deliver.js';
import { runJob, type RunJobResult } from '../job/run-job.js';
import { RunError } from '../shared/errors.js';
import { loadMapping } from '../mapping/load.js';
import { silentLogger, type Logger } from '../shared/log.js';
import { addToReport, parseMaxRejected, type Report } from '../pipeline/report.js';
import { checkPasswordHash, decoyHash, verifyPassword } from './passwd.js';

export const IMPORT_PATH = '/api/import/users';

// ---- The `serve:` section of the run config ---------------------------------------------------

export interface ServeSettings {
  host: string;
  port: number;
  tls?: { certFile: string; keyFile: string };
  /** username → `scrypt$...` hash. */
  accounts: Map<string, string>;
  maxRequestBytes: number;
  requestTimeoutMs: number;
  /** The mapping pushes are converted with (the run config's `mapping` unless serve names one). */
  mappingFile: string;
  /** Pushes have their own guards: by default every good row is imported, as Infiniti does. */
  guards: Guards;
  /** A name for the output files in place of the mapping's `source`. */
  source?: string;
  /** Take the client address from X-Forwarded-For (only behind a reverse proxy that sets it). */
  trustProxy: boolean;
}

export interface ServeConfig {
  run: RunConfig;
  serve: ServeSettings;
}

export const SERVE_DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  maxRequestBytes: 100 * 1024 * 1024,
  requestTimeoutSeconds: 300,
  maxRejected: '100%',
};

const SERVE_KEYS = ['host', 'port', 'tls', 'accounts', 'max_request_bytes', 'request_timeout_seconds', 'mapping', 'source', 'guards', 'trust_proxy'];
const TLS_KEYS = ['cert_file', 'key_file'];
const ACCOUNT_KEYS = ['username', 'password_hash'];
const GUARD_KEYS = ['max_rejected', 'min_users'];

/** Reads, checks and normalises a run config with a `serve:` section; throws RunError('config_invalid') listing every problem. */
export function loadServeConfig(file: string, env: NodeJS.ProcessEnv = process.env): ServeConfig {
  const { absolute, text } = readConfigText(file);
  const { config, problems } = checkServeConfig(text, absolute, env);
  if (!config || problems.length > 0) throw new RunError('config_invalid', problems.map(formatProblem).join('\n'), { file: absolute });
  return config;
}

/**
 * A push config is a run config (mapping, output, guards, delivery) with a `serve:` section, and
 * without `inputs` (the file pushed is the input); the serve section may name its own mapping.
 */
export function checkServeConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): { config?: ServeConfig; problems: ConfigProblem[] } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const problems: ConfigProblem[] = [];
  const at: At = (offset, message) => {
    const pos = lineCounter.linePos(offset);
    problems.push({ file, line: pos.line, column: pos.col, message });
  };
  for (const error of doc.errors) at(error.pos[0], `YAML: ${error.message.split('\n')[0]}`);
  if (doc.errors.length > 0) return { problems };
  const root = doc.contents;
  if (!isMap(root)) return checkRunConfig(text, file, env) as { problems: ConfigProblem[] };

  const pairs = root.items as Pair<Node, Node>[];
  const servePair = pairs.find((p) => isScalar(p.key) && p.key.value === 'serve');
  if (!servePair) {
    at(root.range?.[0] ?? 0, 'missing key "serve": the push endpoint\'s settings (host, port, accounts)');
    return { problems };
  }
  const base = path.dirname(file);
  const settings = checkServeSection(servePair, at, (p) => path.resolve(base, p));

  const run = checkRunConfig(text, file, env, { sections: ['serve'], inputsRequired: false, mappingRequired: !settings.mappingFile });
  problems.push(...run.problems);
  problems.sort((a, b) => a.line - b.line || a.column - b.column);
  if (problems.length > 0 || !run.config || !settings.ok) return { problems };
  const s = settings.value;
  return {
    problems,
    config: {
      run: run.config,
      serve: { ...s, mappingFile: settings.mappingFile ?? run.config.mappingFile },
    },
  };
}

type At = (offset: number, message: string) => void;

function checkServeSection(
  pair: Pair<Node, Node>,
  at: At,
  resolvePath: (p: string) => string,
): { ok: boolean; value: Omit<ServeSettings, 'mappingFile'>; mappingFile?: string } {
  let ok = true;
  const note: At = (offset, message) => {
    ok = false;
    at(offset, message);
  };
  const value: Omit<ServeSettings, 'mappingFile'> = {
    host: SERVE_DEFAULTS.host,
    port: SERVE_DEFAULTS.port,
    accounts: new Map(),
    maxRequestBytes: SERVE_DEFAULTS.maxRequestBytes,
    requestTimeoutMs: SERVE_DEFAULTS.requestTimeoutSeconds * 1000,
    guards: { maxRejected: SERVE_DEFAULTS.maxRejected },
    trustProxy: false,
  };
  const node = pair.value;
  if (!isMap(node)) {
    note(node?.range?.[0] ?? keyOffset(pair), '"serve" must be a map with host:, port:, accounts: (and tls:, max_request_bytes:, ...)');
    return { ok, value };
  }
  const fields = readMap(node, SERVE_KEYS, '"serve"', note);
  const host = text(fields, 'host', note);
  if (host) value.host = host;
  const port = whole(fields, 'port', 0, 65535, note);
  if (port !== undefined) value.port = port;

  const tlsPair = fields.get('tls');
  if (tlsPair) {
    if (!isMap(tlsPair.value)) note(tlsPair.value?.range?.[0] ?? keyOffset(tlsPair), '"tls" must be a map with cert_file: and key_file:');
    else {
      const tls = readMap(tlsPair.value, TLS_KEYS, '"serve.tls"', note);
      const cert = existingFile(tls, 'cert_file', 'certificate', false, tlsPair.value, note, resolvePath);
      const key = existingFile(tls, 'key_file', 'private key', true, tlsPair.value, note, resolvePath);
      if (cert && key) value.tls = { certFile: cert, keyFile: key };
    }
  }

  const accountsPair = fields.get('accounts');
  if (!accountsPair) note(node.range?.[0] ?? 0, 'missing key "accounts": at least one { username, password_hash } (make the hash with `sis2alma passwd`)');
  else if (!isSeq(accountsPair.value) || accountsPair.value.items.length === 0)
    note(accountsPair.value?.range?.[0] ?? keyOffset(accountsPair), '"accounts" must be a list of { username, password_hash }');
  else {
    for (const item of accountsPair.value.items as Node[]) {
      if (!isMap(item)) {
        note(item?.range?.[0] ?? keyOffset(accountsPair), 'each account must be a map with username: and password_hash:');
        continue;
      }
      const account = readMap(item, ACCOUNT_KEYS, 'an account', note);
      const username = text(account, 'username', note, item);
      const hash = text(account, 'password_hash', note, item);
      // Basic auth sends `name:password`, so a colon in the name would make it unreachable.
      if (username && username.includes(':')) note(account.get('username')!.value!.range![0], `the username "${username}" must not contain a colon`);
      else if (username && value.accounts.has(username)) note(account.get('username')!.value!.range![0], `the username "${username}" is listed twice`);
      if (hash) {
        const why = checkPasswordHash(hash);
        if (why) note(account.get('password_hash')!.value!.range![0], why);
      }
      if (username && hash) value.accounts.set(username, hash.trim());
    }
  }

  const maxPair = fields.get('max_request_bytes');
  if (maxPair) {
    const raw = isScalar(maxPair.value) ? maxPair.value.value : undefined;
    const bytes = parseBytes(raw);
    if (bytes === undefined) note(maxPair.value?.range?.[0] ?? keyOffset(maxPair), `"max_request_bytes" must be a size such as 104857600 or "100MB" (at least 1KB), not ${show(raw)}`);
    else value.maxRequestBytes = bytes;
  }
  const timeoutPair = fields.get('request_timeout_seconds');
  if (timeoutPair) {
    const raw = isScalar(timeoutPair.value) ? timeoutPair.value.value : undefined;
    if (typeof raw === 'number' && Number.isFinite(raw) && raw >= 1 && raw <= 86400) value.requestTimeoutMs = Math.round(raw * 1000);
    else note(timeoutPair.value?.range?.[0] ?? keyOffset(timeoutPair), `"request_timeout_seconds" must be a number between 1 and 86400, not ${show(raw)}`);
  }
  const mapping = text(fields, 'mapping', note);
  const source = text(fields, 'source', note);
  if (source !== undefined) {
    if (/^[A-Za-z0-9_-]+$/.test(source)) value.source = source;
    else note(fields.get('source')!.value!.range![0], `"source" names the output files: use letters, digits, - and _ only, not ${show(source)}`);
  }
  const proxyPair = fields.get('trust_proxy');
  if (proxyPair) {
    const raw = isScalar(proxyPair.value) ? proxyPair.value.value : undefined;
    if (typeof raw === 'boolean') value.trustProxy = raw;
    else note(proxyPair.value?.range?.[0] ?? keyOffset(proxyPair), `"trust_proxy" must be true or false, not ${show(raw)}`);
  }
  const guardsPair = fields.get('guards');
  if (guardsPair) {
    if (!isMap(guardsPair.value)) note(guardsPair.value?.range?.[0] ?? keyOffset(guardsPair), '"guards" must be a map with max_rejected: and min_users:');
    else {
      const g = readMap(guardsPair.value, GUARD_KEYS, '"serve.guards"', note);
      const mr = g.get('max_rejected');
      if (mr) {
        const raw = isScalar(mr.value) ? mr.value.value : undefined;
        const s = typeof raw === 'number' ? String(raw) : typeof raw === 'string' ? raw.trim() : '';
        if (parseMaxRejected(s)) value.guards.maxRejected = s;
        else note(mr.value?.range?.[0] ?? keyOffset(mr), `"max_rejected" must be a count (25) or a share of all rows ("5%"), not ${show(raw)}`);
      }
      const mu = whole(g, 'min_users', 0, Number.MAX_SAFE_INTEGER, note);
      if (mu !== undefined) value.guards.minUsers = mu;
    }
  }
  return { ok, value, ...(mapping ? { mappingFile: resolvePath(mapping) } : {}) };
}

/** `104857600`, `"100MB"`, `"512 KiB"`: K/M/G count in 1024s, as disk tools do. */
export function parseBytes(raw: unknown): number | undefined {
  let bytes: number | undefined;
  if (typeof raw === 'number' && Number.isInteger(raw)) bytes = raw;
  else if (typeof raw === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(?:([KMG])i?B?|B)?\s*$/i.exec(raw);
    if (m) bytes = Math.floor(Number(m[1]) * 1024 ** (m[2] ? 'KMG'.indexOf(m[2].toUpperCase()) + 1 : 0));
  }
  return bytes !== undefined && bytes >= 1024 ? bytes : undefined;
}


function readMap(node: YAMLMap, valid: string[], what: string, at: At): Map<string, Pair<Node, Node>> {
  const out = new Map<string, Pair<Node, Node>>();
  for (const pair of node.items as Pair<Node, Node>[]) {
    const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
    if (key === undefined || !valid.includes(key)) {
      const near = key === undefined ? undefined : closestOf(key, valid);
      at(keyOffset(pair), `unknown key ${show(key)} in ${what}${near ? ` (did you mean "${near}"?)` : ` (valid keys: ${valid.join(', ')})`}`);
      continue;
    }
    out.set(key, pair);
  }
  return out;
}

function text(fields: Map<string, Pair<Node, Node>>, key: string, at: At, requiredIn?: Node): string | undefined {
  const pair = fields.get(key);
  if (!pair) {
    if (requiredIn) at(requiredIn.range?.[0] ?? 0, `missing key "${key}"`);
    return undefined;
  }
  const v = isScalar(pair.value) ? pair.value.value : undefined;
  if (typeof v === 'string' && v.trim() !== '') return v;
  at(pair.value?.range?.[0] ?? keyOffset(pair), `"${key}" must be a non-empty text, not ${show(v)}`);
  return undefined;
}

function whole(fields: Map<string, Pair<Node, Node>>, key: string, min: number, max: number, at: At): number | undefined {
  const pair = fields.get(key);
  if (!pair) return undefined;
  const v = isScalar(pair.value) ? pair.value.value : undefined;
  if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) return v;
  at(pair.value?.range?.[0] ?? keyOffset(pair), `"${key}" must be a whole number between ${min} and ${max}, not ${show(v)}`);
  return undefined;
}

function existingFile(
  fields: Map<string, Pair<Node, Node>>,
  key: string,
  what: string,
  secret: boolean,
  parent: Node,
  at: At,
  resolvePath: (p: string) => string,
): string | undefined {
  const name = text(fields, key, at, parent);
  if (!name) return undefined;
  const offset = fields.get(key)!.value!.range![0];
  const abs = resolvePath(name);
  const st = statSync(abs, { throwIfNoEntry: false });
  if (!st || !st.isFile()) {
    at(offset, `${what} file ${abs} ${st ? 'is not a file' : 'does not exist'}`);
    return undefined;
  }
  if (secret && (st.mode & 0o077) !== 0) {
    at(offset, `${what} file ${abs} is readable by others (mode ${(st.mode & 0o777).toString(8)}): run chmod 600 ${abs}`);
    return undefined;
  }
  return abs;
}

function show(v: unknown): string {
  if (v === undefined || v === null) return 'nothing';
  if (typeof v === 'string') return `"${v}"`;
  return JSON.stringify(v);
}

// ---- The answer -------------------------------------------------------------------------------

/** The JSON body of every answer, in the shape of the Infiniti import's. */
export interface PushAnswer {
  success: boolean;
  summary: string;
  /** Row number → what happened to it; only when some row failed. */
  details?: Record<string, string>;
}

// ---- Failing logins ---------------------------------------------------------------------------

/**
 * Each failed login from an address makes that address's next attempts wait longer (doubling
 * from `baseMs` up to `maxMs`), which turns guessing into years while an SIS with a mistyped
 * password still gets its 401 at once the first time. Addresses are forgotten after `forgetMs`
 * without a failure, and the table is bounded so that a flood of addresses cannot fill memory.
 */
export class LoginThrottle {
  private readonly failures = new Map<string, { count: number; last: number }>();
  constructor(
    private readonly baseMs = 1000,
    private readonly maxMs = 30_000,
    private readonly forgetMs = 15 * 60_000,
    private readonly maxAddresses = 10_000,
  ) {}

  delayFor(address: string, now: number): number {
    const entry = this.failures.get(address);
    if (!entry || now - entry.last > this.forgetMs) return 0;
    return Math.min(this.maxMs, this.baseMs * 2 ** (entry.count - 1));
  }

  failed(address: string, now: number): void {
    const entry = this.failures.get(address);
    const count = entry && now - entry.last <= this.forgetMs ? entry.count + 1 : 1;
    // Re-inserting keeps the map in order of last failure, so the oldest is dropped first.
    this.failures.delete(address);
    this.failures.set(address, { count: Math.min(count, 32), last: now });
    if (this.failures.size > this.maxAddresses) this.failures.delete(this.failures.keys().next().value!);
  }

  succeeded(address: string): void {
    this.failures.delete(address);
  }
}

/**
 * Bounds the password checks, each an scrypt hash (about 50 ms of a core and 32 MiB). An address
 * has one login in check at a time, its throttle wait included, and a request from an address
 * that has one is refused at once without a hash (429): guessing in parallel is then no faster
 * than guessing in sequence, wait for wait. Across addresses, `maxHashing` hashes run at once and
 * `maxWaiting` more wait for their turn; a request beyond that is refused (503), so that a flood
 * from many addresses cannot take the CPU from the imports, nor Node's thread pool, which scrypt
 * shares with their file work. A semaphore of a dozen lines needs no package.
 */
export class LoginGate {
  private readonly checking = new Set<string>();
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  /** Hashes computed, and the most computed at once. */
  hashes = 0;
  peak = 0;
  constructor(
    readonly maxHashing = Math.max(1, Math.floor(availableParallelism() / 2)),
    readonly maxWaiting = 32,
  ) {}

  /** Takes the address's turn; false while another login from it is in check. */
  enter(address: string): boolean {
    if (this.checking.has(address)) return false;
    this.checking.add(address);
    return true;
  }

  leave(address: string): void {
    this.checking.delete(address);
  }

  /** Runs one hash when its turn comes, or answers 'busy' at once when too many wait already. */
  async hash<T>(work: () => Promise<T>): Promise<T | 'busy'> {
    if (this.running < this.maxHashing) this.running++;
    else if (this.waiting.length < this.maxWaiting) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else return 'busy';
    this.hashes++;
    this.peak = Math.max(this.peak, this.running);
    try {
      return await work();
    } finally {
      // The slot passes to the next in line, or is given back.
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}

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
      log.warn(`serve: internal error: ${error instanceof Error ? error.message : String(error)}`);
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

interface Context {
  config: ServeConfig;
  log: Logger;
  now: () => Date;
  throttle: LoginThrottle;
  gate: LoginGate;
  decoy: string;
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
    ctx.log.warn(`serve: ${timestamp(ctx.now())} login from ${client}: the client closed the connection before its password was checked`);
    return;
  }
  if (login.refused === 'address busy') {
    ctx.log.warn(`serve: ${timestamp(ctx.now())} refused login from ${client}: 429, another login from this address is being checked`);
    return reply(429, { success: false, summary: 'Another login from this address is being checked. Send one request at a time.' }, { 'Retry-After': String(login.retryAfter) });
  }
  if (login.refused === 'server busy') {
    ctx.log.warn(`serve: ${timestamp(ctx.now())} refused login from ${client}: 503, too many logins are waiting to be checked`);
    return reply(503, { success: false, summary: 'The server is checking too many logins. Try again shortly.' }, { 'Retry-After': String(login.retryAfter) });
  }
  if (login.refused) {
    ctx.log.warn(`serve: ${timestamp(ctx.now())} refused login from ${client}: 401`);
    return reply(401, { success: false, summary: 'Unauthorised. Check credentials.' }, { 'WWW-Authenticate': 'Basic realm="sis2alma", charset="UTF-8"' });
  }
  const { account } = login;
  const who = `${JSON.stringify(account)} from ${client}`;

  const length = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(length) && length > serve.maxRequestBytes) {
    ctx.log.warn(`serve: ${timestamp(ctx.now())} import by ${who}: 413, ${length} bytes announced`);
    return reply(413, tooLarge(serve.maxRequestBytes));
  }
  if (!/^multipart\/form-data\b/i.test(req.headers['content-type'] ?? '')) {
    ctx.log.warn(`serve: ${timestamp(ctx.now())} import by ${who}: 400, not multipart/form-data`);
    return reply(400, { success: false, summary: 'Send the CSV file as multipart/form-data, e.g. curl -F "file=@users.csv".' });
  }

  const lockKey = ctx.config.run.outputDir;
  if (running.has(lockKey)) {
    ctx.log.warn(`serve: ${timestamp(ctx.now())} import by ${who}: 409, another import of this source is running`);
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
      ctx.log.warn(`serve: ${timestamp(ctx.now())} import by ${who}: the client closed the connection during the upload`);
      return undefined;
    }
    ctx.log.warn(`serve: ${timestamp(ctx.now())} import by ${who}: ${upload.status}, ${upload.log}`);
    return { status: upload.status, body: { success: false, summary: upload.summary } };
  }
  if (!upload.file) {
    ctx.log.warn(`serve: ${timestamp(ctx.now())} import by ${who}: 400, no file part`);
    return { status: 400, body: { success: false, summary: 'No file was sent: send the CSV as a file part, e.g. curl -F "file=@users.csv".' } };
  }
  const { status, body, line } = await runImport(ctx, temp, upload.file, account, client);
  (status === 200 && body.success ? ctx.log.info : ctx.log.warn)(`serve: ${line}`);
  return { status, body };
}

interface ReceivedFile {
  /** The file name the client gave, for the report; never used as a path. */
  name: string;
  bytes: number;
}

type Upload = { ok: true; file?: ReceivedFile } | { ok: false; status: 0 | 400 | 408 | 413 | 500; summary: string; log: string };

/**
 * Streams the first file part to `temp` (the rest of the request is parsed and dropped) while
 * counting every byte of the request; past `limit` bytes or `timeoutMs` it stops reading at once.
 */
function receiveUpload(req: http.IncomingMessage, temp: string, limit: number, timeoutMs: number): Promise<Upload> {
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

function tooLarge(limit: number): { success: false; summary: string } {
  return { success: false, summary: `The request is larger than this server accepts (${describeBytes(limit)}). Ask the library to raise serve.max_request_bytes.` };
}

function describeBytes(n: number): string {
  return n >= 1024 * 1024 ? `${+(n / 1024 / 1024).toFixed(1)} MB` : `${+(n / 1024).toFixed(1)} KB`;
}

/** The import itself: what `sis2alma run` does, with the upload as the input. */
async function runImport(ctx: Context, temp: string, file: ReceivedFile, account: string, client: string): Promise<{ status: number; body: PushAnswer; line: string }> {
  const { config, log } = ctx;
  const now = ctx.now();
  const head = `${timestamp(now)} import by ${JSON.stringify(account)} from ${client}, ${file.bytes} bytes`;
  const pushConfig: RunConfig = { ...config.run, mappingFile: config.serve.mappingFile, guards: config.serve.guards };
  // runJob's own log lines are about the files, never the patrons; warnings (retries) are kept,
  // but not the delivery's list of the zips waiting in Alma's folder: with `stale: report` it
  // grows with every push, and the import line says it in a bounded form (waitingZips).
  const jobLog: Logger = {
    info: () => {},
    warn: (m) => {
      if (!STALE_REPORT.test(m)) log.warn(`serve: ${m}`);
    },
    id: log.id,
  };
  const shown = file.name ? JSON.stringify(file.name) : 'the uploaded file';

  let job: RunJobResult;
  try {
    job = await runJob(pushConfig, { now, log: jobLog, inputs: [temp], ...(config.serve.source ? { source: config.serve.source } : {}) });
  } catch (error) {
    if (!(error instanceof RunError)) throw error;
    // Messages about the input may quote a value: the caller sent it, but the log gets the code only.
    const where = [error.context.row !== undefined ? `row ${error.context.row}` : '', error.context.column !== undefined ? `column ${error.context.column}` : ''].filter(Boolean).join(' ');
    if (error.code === 'input_invalid' || error.code === 'input_unreadable') {
      return { status: 400, body: { success: false, summary: `The file could not be read: ${error.message.split(temp).join(shown)}` }, line: `${head}: 400, ${error.code}${where ? ` at ${where}` : ''}` };
    }
    if (error.code === 'busy') {
      return { status: 409, body: { success: false, summary: 'Another import of this source is running. Try again when it has finished.' }, line: `${head}: 409, ${error.message}` };
    }
    return {
      status: 500,
      body: { success: false, summary: 'The server could not run the import. Ask the library to check the sis2alma log.' },
      line: `${head}: 500, ${error.code}: ${error.message.split(temp).join('upload')}`,
    };
  }

  const report = JSON.parse(await fsp.readFile(job.reportFile, 'utf8')) as Report;
  const push = { account, client, file_name: file.name, bytes: file.bytes, received: now.toISOString() };
  await addToReport(job.reportFile, { push });
  // Every push keeps its report, also when nothing was delivered (no users, a guard, a failure).
  // The zips may be in Alma's folder already: a failing archive must not turn the answer into an
  // error that makes the SIS push the same file again.
  let archive: string;
  try {
    archive = job.archiveFolder
      ? (await copyOver(job.reportFile, path.join(job.archiveFolder, path.basename(job.reportFile))), job.archiveFolder)
      : await archiveFiles(config.run.archive, [job.reportFile], now);
  } catch (error) {
    archive = `${job.reportFile} (not archived: ${error instanceof Error ? error.message : String(error)})`;
  }

  const c = report.counts;
  const counts = `rows ${c.rows}, users ${c.users}, merged ${c.merged}, rejected ${c.rejected}`;
  const names = job.delivered.map((d) => path.basename(d.file));
  const details = c.rejected > 0 && report.details ? { details: report.details } : {};
  const waiting = job.stale.length ? `; ${waitingZips(job.stale, config.run)}` : '';
  const tail = `${counts}; delivered ${names.length ? names.join(', ') : 'nothing'}${waiting}; report in ${archive}`;
  if (job.deliveryError) {
    return {
      status: 502,
      body: { success: false, summary: `${report.summary} Not delivered: the file could not be passed on to Alma. Ask the library to check the sis2alma log.`, ...details },
      line: `${head}: 502, ${tail}; delivery failed: ${job.deliveryError.message}`,
    };
  }
  const delivered = names.length ? ` Delivered to Alma as ${names.join(', ')}.` : '';
  return { status: 200, body: { success: report.success, summary: report.summary + delivered, ...details }, line: `${head}: 200, ${tail}` };
}

/** deliver.ts's warning for zips left waiting under `stale: report`, which lists every one. */
const STALE_REPORT = / still holds \d+ zip\(s\) Alma has not processed: /;

/**
 * The zips that were waiting in Alma's folder before this push, for the import line: how many,
 * where, and by name the first two and the last (the names carry the time of their push, so the
 * first says since when Alma's job has not run), whatever their number.
 */
function waitingZips(names: string[], run: RunConfig): string {
  const target = createTarget(run.delivery);
  const where = run.delivery.target === 'dir' ? target.remotePath('') : `${target.label}${target.remotePath('')}`;
  const sorted = [...names].sort();
  const shown = sorted.length <= 3 ? sorted.join(', ') : `${sorted[0]}, ${sorted[1]}, ... (${sorted.length - 3} more), ${sorted.at(-1)}`;
  const what = run.delivery.stale === 'rename' ? 'renamed to .stale' : 'left for Alma to load';
  return `${sorted.length} zip${sorted.length === 1 ? '' : 's'} Alma had not loaded yet ${sorted.length === 1 ? 'was' : 'were'} waiting in ${where} (${what}): ${shown}`;
}

async function copyOver(from: string, to: string): Promise<void> {
  await fsp.copyFile(from, `${to}.tmp`);
  await fsp.rename(`${to}.tmp`, to);
}

type Login = { refused?: undefined; account: string } | { refused: 'wrong' | 'gone' } | { refused: 'address busy' | 'server busy'; retryAfter: number };

/**
 * Checks the Basic credentials, after the address's wait, one login per address at a time and a
 * bounded number of hashes at once (LoginGate). A client that leaves during its wait costs no hash.
 */
async function authenticate(req: http.IncomingMessage, client: string, ctx: Context): Promise<Login> {
  const { gate, throttle } = ctx;
  if (!gate.enter(client)) return { refused: 'address busy', retryAfter: Math.max(1, Math.ceil(throttle.delayFor(client, Date.now()) / 1000)) };
  try {
    const wait = throttle.delayFor(client, Date.now());
    if (wait > 0) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          req.socket.off('close', done);
          resolve();
        };
        const timer = setTimeout(done, wait);
        req.socket.once('close', done);
      });
      if (req.socket.destroyed) return { refused: 'gone' };
    }
    const m = /^Basic\s+([A-Za-z0-9+/=._~-]+)\s*$/i.exec(req.headers.authorization ?? '');
    const decoded = m ? Buffer.from(m[1]!, 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    const username = colon > 0 ? decoded.slice(0, colon) : '';
    const password = colon > 0 ? decoded.slice(colon + 1) : '';
    const hash = ctx.config.serve.accounts.get(username);
    // An unknown name costs a full hash too, so the time taken does not tell which names exist. A
    // request with no credentials at all has no name to hide and costs nothing.
    let ok = false;
    if (m !== null) {
      const matched = await gate.hash(() => verifyPassword(password, hash ?? ctx.decoy));
      if (matched === 'busy') return { refused: 'server busy', retryAfter: 1 };
      ok = matched && hash !== undefined;
    }
    if (ok) throttle.succeeded(client);
    else throttle.failed(client, Date.now());
    return ok ? { account: username } : { refused: 'wrong' };
  } finally {
    gate.leave(client);
  }
}

function clientAddress(req: http.IncomingMessage, trustProxy: boolean): string {
  const direct = (req.socket.remoteAddress ?? 'unknown').replace(/^::ffff:/, '');
  if (!trustProxy) return direct;
  // The proxy appends the address it saw; anything left of it was written by the client.
  const forwarded = String(req.headers['x-forwarded-for'] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return forwarded.at(-1) ?? direct;
}

function timestamp(now: Date): string {
  return now.toISOString();
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

/**
 * An upload cut short by a crash stays behind as `.upload-*.csv`, with patron data in it. One
 * older than the request timeout cannot belong to an upload still running, so it goes.
 */
async function removeLeftoverUploads(outputDir: string, timeoutMs: number): Promise<void> {
  const names = await fsp.readdir(outputDir).catch(() => [] as string[]);
  const cutoff = Date.now() - timeoutMs - 60_000;
  for (const name of names) {
    if (!/^\.upload-[0-9a-f]+\.csv$/.test(name)) continue;
    const file = path.join(outputDir, name);
    const st = await fsp.stat(file).catch(() => undefined);
    if (st && st.mtimeMs < cutoff) await fsp.rm(file, { force: true }).catch(() => {});
  }
}
