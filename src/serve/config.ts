// The `serve:` section of the run config: the push endpoint's address, TLS, accounts, limits,
// mapping and guards, checked with every problem at its file:line:column, as the run config is
// (src/config/run-config.ts checks the rest of the file).
import { statSync } from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument, isMap, isScalar, isSeq, type Node, type Pair, type YAMLMap } from 'yaml';
import { closestOf } from '../shared/suggest.js';
import { checkRunConfig, formatProblem, keyOffset, readConfigText, type ConfigProblem, type RunConfig } from '../config/run-config.js';
import type { Guards } from '../pipeline/convert.js';
import { RunError } from '../shared/errors.js';
import { parseMaxRejected } from '../pipeline/report.js';
import { checkPasswordHash } from './passwd.js';

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
