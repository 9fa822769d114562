// The run config: what the nightly job converts and where it delivers. It is separate from the
// librarian's mapping file because campus IT owns it (hosts, keys, folders) and it changes for
// other reasons. It goes YAML → checked (every problem with its file:line:column) → normalised,
// with WrittenRunConfig for what the operator wrote and RunConfig for what the job uses.
// Secrets never live in this file: it names an environment variable or a file that holds them.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument, isMap, isScalar, isSeq, type Node, type Pair, type YAMLMap } from 'yaml';
import { RunError } from '../shared/errors.js';
import { closestOf } from '../shared/suggest.js';
import type { Guards } from '../pipeline/convert.js';

// ---- What the operator writes -------------------------------------------------------------

export type StalePolicy = 'report' | 'rename' | 'stop';

export interface WrittenRunConfig {
  mapping: string;
  inputs: string | string[];
  encoding?: string;
  output_dir: string;
  archive?: { dir?: string; keep_days?: number };
  guards?: { max_rejected?: string | number; min_users?: number };
  delivery: WrittenDelivery;
}

interface WrittenDeliveryCommon {
  retries?: number;
  retry_delay_seconds?: number;
  stale?: StalePolicy;
}

export interface WrittenDirDelivery extends WrittenDeliveryCommon {
  target: 'dir';
  dir: string;
  create_dir?: boolean;
}

export interface WrittenSftpDelivery extends WrittenDeliveryCommon {
  target: 'sftp';
  host: string;
  port?: number;
  username: string;
  private_key_file?: string;
  passphrase_env?: string;
  passphrase_file?: string;
  password_env?: string;
  password_file?: string;
  host_key?: string | string[];
  known_hosts?: string;
  remote_dir: string;
  timeout_seconds?: number;
}

export type WrittenDelivery = WrittenDirDelivery | WrittenSftpDelivery;

// ---- What the job uses -------------------------------------------------------------------

/** Where a secret is read from at connect time; the config never holds the secret itself. */
export type SecretSource = { env: string } | { file: string };

export interface DeliveryCommon {
  /** Extra attempts after the first one fails for a reason that may pass (lost connection, timeout). */
  retries: number;
  /** Wait before the first retry; doubled for each further one. */
  retryDelayMs: number;
  stale: StalePolicy;
}

export interface DirDeliveryConfig extends DeliveryCommon {
  target: 'dir';
  dir: string;
  /** Make the folder when it is missing; off by default so an unmounted share is noticed. */
  createDir: boolean;
}

export type SftpAuth =
  | { kind: 'key'; privateKeyFile: string; passphrase?: SecretSource }
  | { kind: 'password'; password: SecretSource };

export type HostKeyCheck =
  /** Fingerprints as `ssh-keygen -lf` prints them; keyTypes narrows the key the server is asked for. */
  | { kind: 'fingerprint'; fingerprints: string[]; keyTypes: string[] }
  | { kind: 'known_hosts'; file: string };

export interface SftpDeliveryConfig extends DeliveryCommon {
  target: 'sftp';
  host: string;
  port: number;
  username: string;
  auth: SftpAuth;
  hostKey: HostKeyCheck;
  remoteDir: string;
  timeoutMs: number;
}

export type DeliveryConfig = DirDeliveryConfig | SftpDeliveryConfig;

export interface RunConfig {
  /** Absolute path of the config file, for messages. */
  configFile: string;
  mappingFile: string;
  inputs: string[];
  encoding?: string;
  outputDir: string;
  archive: { dir: string; keepDays: number };
  guards: Guards;
  delivery: DeliveryConfig;
}

export interface ConfigProblem {
  file: string;
  line: number;
  column: number;
  message: string;
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.file}:${p.line}:${p.column}: ${p.message}`;
}

export const DEFAULTS = {
  port: 22,
  retries: 3,
  retryDelaySeconds: 30,
  timeoutSeconds: 30,
  keepDays: 30,
  stale: 'stop' as StalePolicy,
};

const TOP_KEYS = ['mapping', 'inputs', 'encoding', 'output_dir', 'archive', 'guards', 'delivery'];
const ARCHIVE_KEYS = ['dir', 'keep_days'];
const GUARD_KEYS = ['max_rejected', 'min_users'];
const COMMON_DELIVERY_KEYS = ['target', 'retries', 'retry_delay_seconds', 'stale'];
const DIR_KEYS = [...COMMON_DELIVERY_KEYS, 'dir', 'create_dir'];
const SFTP_KEYS = [
  ...COMMON_DELIVERY_KEYS,
  'host',
  'port',
  'username',
  'private_key_file',
  'passphrase_env',
  'passphrase_file',
  'password_env',
  'password_file',
  'host_key',
  'known_hosts',
  'remote_dir',
  'timeout_seconds',
];
const FINGERPRINT = /^(SHA256:[A-Za-z0-9+/]{43}=?|MD5:(?:[0-9a-fA-F]{2}:){15}[0-9a-fA-F]{2})$/;
/** ssh-keygen's `(ED25519)` suffix → the host key algorithms that give a key of that type. */
const KEY_TYPE_ALGORITHMS: Record<string, string[]> = {
  RSA: ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
  ED25519: ['ssh-ed25519'],
  ECDSA: ['ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521'],
};

/** The text of a config file, or RunError('config_invalid') saying why it cannot be read. */
export function readConfigText(file: string): { absolute: string; text: string } {
  const absolute = path.resolve(file);
  try {
    return { absolute, text: readFileSync(absolute, 'utf8') };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'cannot be read (permission denied)' : `cannot be read (${code ?? 'error'})`;
    throw new RunError('config_invalid', `run config ${file} ${why}`, { file });
  }
}

/** Reads, checks and normalises a run config; throws RunError('config_invalid') listing every problem. */
export function loadRunConfig(file: string, env: NodeJS.ProcessEnv = process.env): RunConfig {
  const { absolute, text } = readConfigText(file);
  const { config, problems } = checkRunConfig(text, absolute, env);
  if (!config || problems.length > 0) {
    throw new RunError('config_invalid', problems.map(formatProblem).join('\n'), { file: absolute });
  }
  return config;
}

/**
 * The check itself: text in, config or problems out. It looks at the files the config names for
 * secrets (they must exist and be private), because a nightly job should fail on the day the
 * config is written, not on the first night.
 */
/** What else a config file may hold, for commands that extend the run config (serve). */
export interface RunConfigShape {
  /** Top-level sections another module checks (e.g. serve:); passed over here. */
  sections?: string[];
  /** False for a push config: the file pushed is the input. */
  inputsRequired?: boolean;
  /** False when another section names the mapping; the config's mappingFile is then ''. */
  mappingRequired?: boolean;
}

export function checkRunConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env, shape: RunConfigShape = {}): { config?: RunConfig; problems: ConfigProblem[] } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const problems: ConfigProblem[] = [];
  const at = (offset: number, message: string) => {
    const pos = lineCounter.linePos(offset);
    problems.push({ file, line: pos.line, column: pos.col, message });
  };
  const atNode = (node: Node | null | undefined, fallback: number, message: string) => at(node?.range?.[0] ?? fallback, message);
  // Only the first syntax error: the ones after it are mostly echoes of it.
  const syntax = doc.errors[0];
  if (syntax) {
    at(syntax.pos[0], `YAML: ${syntax.message.split('\n')[0]}`);
    return { problems };
  }
  const base = path.dirname(file);
  const resolvePath = (p: string) => path.resolve(base, p);

  const root = doc.contents;
  if (!isMap(root)) {
    atNode(root as Node | null, 0, 'the run config must be a map of keys (mapping:, inputs:, output_dir:, delivery:)');
    return { problems };
  }

  const top = readMap(root, [...TOP_KEYS, ...(shape.sections ?? [])], 'the run config', at);
  const mappingRequired = shape.mappingRequired ?? true;
  const inputsRequired = shape.inputsRequired ?? true;
  const mapping = stringField(top, 'mapping', mappingRequired, at, root);
  let inputs: string[] = [];
  const inputsPair = top.get('inputs');
  if (!inputsPair) {
    if (inputsRequired) atNode(root, 0, 'missing key "inputs": the CSV file (or list of files) to convert');
  } else if (isScalar(inputsPair.value) && typeof inputsPair.value.value === 'string' && inputsPair.value.value !== '') {
    inputs = [inputsPair.value.value];
  } else if (isSeq(inputsPair.value) && inputsPair.value.items.length > 0) {
    for (const item of inputsPair.value.items) {
      if (isScalar(item) && typeof item.value === 'string' && item.value !== '') inputs.push(item.value);
      else atNode(item as Node, 0, 'each entry of "inputs" must be a file name');
    }
  } else {
    atNode(inputsPair.value as Node, keyOffset(inputsPair), '"inputs" must be a file name or a non-empty list of file names');
  }
  const encoding = stringField(top, 'encoding', false, at, root);
  const outputDir = stringField(top, 'output_dir', true, at, root);

  let archiveDir: string | undefined;
  let keepDays = DEFAULTS.keepDays;
  const archivePair = top.get('archive');
  if (archivePair) {
    if (!isMap(archivePair.value)) {
      atNode(archivePair.value as Node, keyOffset(archivePair), '"archive" must be a map with dir: and keep_days:');
    } else {
      const archive = readMap(archivePair.value, ARCHIVE_KEYS, '"archive"', at);
      archiveDir = stringField(archive, 'dir', false, at, archivePair.value);
      keepDays = numberField(archive, 'keep_days', { min: 1, integer: true }, at) ?? keepDays;
    }
  }

  const guards: Guards = {};
  const guardsPair = top.get('guards');
  if (guardsPair) {
    if (!isMap(guardsPair.value)) {
      atNode(guardsPair.value as Node, keyOffset(guardsPair), '"guards" must be a map with max_rejected: and min_users:');
    } else {
      const g = readMap(guardsPair.value, GUARD_KEYS, '"guards"', at);
      const mr = g.get('max_rejected');
      if (mr) {
        const v = isScalar(mr.value) ? mr.value.value : undefined;
        const s = typeof v === 'number' ? String(v) : typeof v === 'string' ? v.trim() : undefined;
        if (s !== undefined && /^\d+(\.\d+)?%$|^\d+$/.test(s)) guards.maxRejected = s;
        else atNode(mr.value as Node, keyOffset(mr), `"max_rejected" must be a count (25) or a share of all rows ("5%"), not ${show(v)}`);
      }
      const mu = numberField(g, 'min_users', { min: 0, integer: true }, at);
      if (mu !== undefined) guards.minUsers = mu;
    }
  }

  let delivery: DeliveryConfig | undefined;
  const deliveryPair = top.get('delivery');
  if (!deliveryPair) atNode(root, 0, 'missing key "delivery": where the zips go (target: sftp or target: dir)');
  else if (!isMap(deliveryPair.value)) atNode(deliveryPair.value as Node, keyOffset(deliveryPair), '"delivery" must be a map starting with target: sftp or target: dir');
  else delivery = checkDelivery(deliveryPair.value, at, resolvePath, env);

  problems.sort((a, b) => a.line - b.line || a.column - b.column);
  if (problems.length > 0 || (mappingRequired && !mapping) || !outputDir || (inputsRequired && inputs.length === 0) || !delivery) return { problems };
  const outputAbs = resolvePath(outputDir);
  return {
    problems,
    config: {
      configFile: file,
      mappingFile: mapping ? resolvePath(mapping) : '',
      inputs: inputs.map(resolvePath),
      ...(encoding ? { encoding } : {}),
      outputDir: outputAbs,
      archive: { dir: archiveDir ? resolvePath(archiveDir) : path.join(outputAbs, 'archive'), keepDays },
      guards,
      delivery,
    },
  };
}

type At = (offset: number, message: string) => void;

function checkDelivery(node: YAMLMap, at: At, resolvePath: (p: string) => string, env: NodeJS.ProcessEnv): DeliveryConfig | undefined {
  const targetPair = node.items.find((p) => isScalar(p.key) && p.key.value === 'target') as Pair<Node, Node> | undefined;
  const target = targetPair && isScalar(targetPair.value) ? targetPair.value.value : undefined;
  if (target !== 'sftp' && target !== 'dir') {
    at(targetPair?.value?.range?.[0] ?? node.range?.[0] ?? 0, `"delivery.target" must be sftp or dir, not ${show(target)}`);
    return undefined;
  }
  const keys = target === 'sftp' ? SFTP_KEYS : DIR_KEYS;
  const fields = readMap(node, keys, `"delivery" with target ${target}`, at);
  let failed = false;
  const note: At = (offset, message) => {
    failed = true;
    at(offset, message);
  };
  const retries = numberField(fields, 'retries', { min: 0, integer: true, max: 20 }, note) ?? DEFAULTS.retries;
  const retryDelay = numberField(fields, 'retry_delay_seconds', { min: 0 }, note) ?? DEFAULTS.retryDelaySeconds;
  let stale: StalePolicy = DEFAULTS.stale;
  const stalePair = fields.get('stale');
  if (stalePair) {
    const v = isScalar(stalePair.value) ? stalePair.value.value : undefined;
    if (v === 'report' || v === 'rename' || v === 'stop') stale = v;
    else note(stalePair.value?.range?.[0] ?? keyOffset(stalePair), `"stale" must be report, rename or stop, not ${show(v)}`);
  }
  const common: DeliveryCommon = { retries, retryDelayMs: Math.round(retryDelay * 1000), stale };

  if (target === 'dir') {
    const dir = stringField(fields, 'dir', true, note, node);
    let createDir = false;
    const cd = fields.get('create_dir');
    if (cd) {
      const v = isScalar(cd.value) ? cd.value.value : undefined;
      if (typeof v === 'boolean') createDir = v;
      else note(cd.value?.range?.[0] ?? keyOffset(cd), `"create_dir" must be true or false, not ${show(v)}`);
    }
    if (failed || !dir) return undefined;
    return { target: 'dir', dir: resolvePath(dir), createDir, ...common };
  }

  const host = stringField(fields, 'host', true, note, node);
  const port = numberField(fields, 'port', { min: 1, max: 65535, integer: true }, note) ?? DEFAULTS.port;
  const username = stringField(fields, 'username', true, note, node);
  const remoteDir = stringField(fields, 'remote_dir', true, note, node);
  const timeout = numberField(fields, 'timeout_seconds', { min: 0.1 }, note) ?? DEFAULTS.timeoutSeconds;

  // Exactly one way to log in, as ssh would be told with -i or a password prompt.
  const authKeys = ['private_key_file', 'password_env', 'password_file'].filter((k) => fields.has(k));
  let auth: SftpAuth | undefined;
  if (authKeys.length !== 1) {
    const where = authKeys.length > 1 ? fields.get(authKeys[1]!)! : undefined;
    note(where ? keyOffset(where) : node.range?.[0] ?? 0, authKeys.length === 0
      ? 'the sftp target needs one of private_key_file, password_env or password_file'
      : `use only one of private_key_file, password_env and password_file (found ${authKeys.join(' and ')})`);
  } else if (authKeys[0] === 'private_key_file') {
    const keyFile = secretFile(fields, 'private_key_file', 'private key', note, resolvePath);
    const passphrase = secretSource(fields, 'passphrase_env', 'passphrase_file', 'key passphrase', note, resolvePath, env);
    if (keyFile) auth = { kind: 'key', privateKeyFile: keyFile, ...(passphrase ? { passphrase } : {}) };
  } else {
    for (const k of ['passphrase_env', 'passphrase_file']) {
      const p = fields.get(k);
      if (p) note(keyOffset(p), `"${k}" only goes with private_key_file`);
    }
    const password = secretSource(fields, 'password_env', 'password_file', 'password', note, resolvePath, env);
    if (password) auth = { kind: 'password', password };
  }

  // No option trusts any key: the operator must say which key the server has.
  let hostKey: HostKeyCheck | undefined;
  const hk = fields.get('host_key');
  const kh = fields.get('known_hosts');
  if (hk && kh) note(keyOffset(kh), 'use either host_key or known_hosts, not both');
  else if (!hk && !kh)
    note(node.range?.[0] ?? 0, 'the sftp target needs host_key (the server key\'s fingerprint, as `ssh-keygen -lf` prints it) or known_hosts (a known_hosts file)');
  else if (hk) {
    const items: Node[] = isSeq(hk.value) ? (hk.value.items as Node[]) : [hk.value as Node];
    const fingerprints: string[] = [];
    const keyTypes = new Set<string>();
    for (const item of items) {
      const raw = isScalar(item) && typeof item.value === 'string' ? item.value.trim() : undefined;
      const parsed = raw ? parseFingerprintLine(raw) : undefined;
      if (!parsed) {
        note(item?.range?.[0] ?? keyOffset(hk), `"host_key" must be a fingerprint like SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8 (from ssh-keygen -lf), not ${show(raw ?? (isScalar(item) ? item.value : undefined))}`);
        continue;
      }
      fingerprints.push(parsed.fingerprint);
      if (parsed.keyType) keyTypes.add(parsed.keyType);
      else keyTypes.add('*');
    }
    // A fingerprint without its (TYPE) suffix may be of any key type: then the server picks.
    const algorithms = keyTypes.has('*') ? [] : [...keyTypes].flatMap((t) => KEY_TYPE_ALGORITHMS[t] ?? []);
    if (fingerprints.length > 0) hostKey = { kind: 'fingerprint', fingerprints, keyTypes: algorithms };
  } else if (kh) {
    const file = stringField(fields, 'known_hosts', true, note, node);
    if (file) {
      const abs = resolvePath(file);
      const st = statSync(abs, { throwIfNoEntry: false });
      if (!st || !st.isFile()) note(kh.value?.range?.[0] ?? keyOffset(kh), `known_hosts file ${abs} does not exist`);
      else hostKey = { kind: 'known_hosts', file: abs };
    }
  }

  if (failed || !host || !username || !remoteDir || !auth || !hostKey) return undefined;
  return { target: 'sftp', host, port, username, auth, hostKey, remoteDir, timeoutMs: Math.round(timeout * 1000), ...common };
}

/** `SHA256:abc…`, or a whole `ssh-keygen -lf` line (`256 SHA256:abc… comment (ED25519)`). */
export function parseFingerprintLine(line: string): { fingerprint: string; keyType?: string } | undefined {
  const parts = line.split(/\s+/);
  const fingerprint = parts.find((p) => FINGERPRINT.test(p));
  if (!fingerprint) return undefined;
  const type = /\((RSA|ED25519|ECDSA)(?:-SK)?\)$/.exec(line)?.[1];
  return { fingerprint: fingerprint.replace(/=$/, ''), ...(type ? { keyType: type } : {}) };
}

export function keyOffset(pair: Pair): number {
  return (pair.key as Node | null)?.range?.[0] ?? 0;
}

/** The pairs of a map by key name; unknown keys are reported with the closest valid key. */
function readMap(node: YAMLMap, valid: string[], what: string, at: At): Map<string, Pair<Node, Node>> {
  const out = new Map<string, Pair<Node, Node>>();
  for (const pair of node.items as Pair<Node, Node>[]) {
    const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
    if (key === undefined) {
      at(keyOffset(pair), `${what}: keys must be plain names`);
      continue;
    }
    if (!valid.includes(key)) {
      const near = closestOf(key, valid);
      at(keyOffset(pair), `unknown key "${key}" in ${what}${near ? ` (did you mean "${near}"?)` : ` (valid keys: ${valid.join(', ')})`}`);
      continue;
    }
    out.set(key, pair);
  }
  return out;
}

function stringField(fields: Map<string, Pair<Node, Node>>, key: string, required: boolean, at: At, parent: Node): string | undefined {
  const pair = fields.get(key);
  if (!pair) {
    if (required) at(parent.range?.[0] ?? 0, `missing key "${key}"`);
    return undefined;
  }
  const v = isScalar(pair.value) ? pair.value.value : undefined;
  if (typeof v === 'string' && v.trim() !== '') return v;
  if (typeof v === 'number' && key === 'host') return String(v);
  at(pair.value?.range?.[0] ?? keyOffset(pair), `"${key}" must be a non-empty text, not ${show(v)}`);
  return undefined;
}

function numberField(fields: Map<string, Pair<Node, Node>>, key: string, rule: { min: number; max?: number; integer?: boolean }, at: At): number | undefined {
  const pair = fields.get(key);
  if (!pair) return undefined;
  const v = isScalar(pair.value) ? pair.value.value : undefined;
  const ok = typeof v === 'number' && Number.isFinite(v) && v >= rule.min && (rule.max === undefined || v <= rule.max) && (!rule.integer || Number.isInteger(v));
  if (ok) return v;
  const range = rule.max !== undefined ? `between ${rule.min} and ${rule.max}` : `${rule.min} or more`;
  at(pair.value?.range?.[0] ?? keyOffset(pair), `"${key}" must be ${rule.integer ? 'a whole number' : 'a number'} ${range}, not ${show(v)}`);
  return undefined;
}

/** A file that holds a secret must exist and be readable by its owner only, as ssh insists for keys. */
function secretFile(fields: Map<string, Pair<Node, Node>>, key: string, what: string, at: At, resolvePath: (p: string) => string): string | undefined {
  const pair = fields.get(key)!;
  const v = isScalar(pair.value) ? pair.value.value : undefined;
  const offset = pair.value?.range?.[0] ?? keyOffset(pair);
  if (typeof v !== 'string' || v.trim() === '') {
    at(offset, `"${key}" must be the path of the ${what} file, not ${show(v)}`);
    return undefined;
  }
  const abs = resolvePath(v);
  let st;
  try {
    st = statSync(abs);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    at(offset, `${what} file ${abs} ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code})`}`);
    return undefined;
  }
  if (!st.isFile()) {
    at(offset, `${what} file ${abs} is not a file`);
    return undefined;
  }
  if ((st.mode & 0o077) !== 0) {
    at(offset, `${what} file ${abs} is readable by others (mode ${(st.mode & 0o777).toString(8)}): run chmod 600 ${abs}`);
    return undefined;
  }
  return abs;
}

function secretSource(fields: Map<string, Pair<Node, Node>>, envKey: string, fileKey: string, what: string, at: At, resolvePath: (p: string) => string, env: NodeJS.ProcessEnv): SecretSource | undefined {
  const e = fields.get(envKey);
  const f = fields.get(fileKey);
  if (e && f) {
    at(keyOffset(f), `use either ${envKey} or ${fileKey}, not both`);
    return undefined;
  }
  if (e) {
    const name = isScalar(e.value) ? e.value.value : undefined;
    const offset = e.value?.range?.[0] ?? keyOffset(e);
    if (typeof name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      // The value is not repeated: someone may have written the secret itself here.
      at(offset, `"${envKey}" must be the name of an environment variable (letters, digits and _, like SIS2ALMA_SFTP_PASSWORD), not the ${what} itself`);
      return undefined;
    }
    if (!env[name]) {
      at(offset, `environment variable ${name} (the ${what}, named by ${envKey}) is not set`);
      return undefined;
    }
    return { env: name };
  }
  if (f) {
    const file = secretFile(fields, fileKey, what, at, resolvePath);
    return file ? { file } : undefined;
  }
  return undefined;
}

function show(v: unknown): string {
  if (v === undefined || v === null) return 'nothing';
  if (typeof v === 'string') return `"${v}"`;
  return JSON.stringify(v);
}

