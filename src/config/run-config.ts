// The run config: what the nightly job converts and where it delivers. It is separate from the
// librarian's mapping file because campus IT owns it (hosts, keys, folders) and it changes for
// other reasons. It goes YAML → checked against its JSON Schema (config/shape.ts), then for what a
// schema cannot say (every problem with its file:line:column and YAML path) → normalised, with
// WrittenRunConfig for what the operator wrote and RunConfig for what the job uses.
// Secrets never live in this file: it names an environment variable or a file that holds them.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { ValidateFunction } from 'ajv';
import { RunError } from '../shared/errors.js';
import { CHANGE_GUARD_DEFAULTS, DEFAULTS, DEFAULT_DEPARTURE_NOTE, runConfigSchema } from './shape.js';
import { checkAgainst, compileSchema, formatProblem, inFileOrder, parseYaml, withoutEchoes, type Locator, type PathItem, type Problem } from '../shared/yaml-check.js';
import type { Guards } from '../pipeline/convert.js';

// ---- What the operator writes -------------------------------------------------------------

export type StalePolicy = typeof DEFAULTS.stale;

export interface WrittenRunConfig {
  mapping: string;
  inputs: string | string[];
  encoding?: string;
  output_dir: string;
  archive?: { dir?: string; keep_days?: number };
  guards?: {
    max_rejected?: string | number;
    min_users?: number;
    max_departures?: string | number;
    max_group_changes?: string | number;
    max_field_loss?: string | number | Record<string, string | number>;
    max_new_users?: string | number;
    accept_changes_on?: string;
  };
  state?: { dir?: string; enabled?: boolean; mode?: 'full' | 'delta'; full_every?: string | number };
  departures?: { action: 'expire' | 'inactivate'; after_missing_runs?: number; note?: string };
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
  /** The guards against the last delivered night (the run state, src/state/), each a count or a share. */
  changeGuards: ChangeGuards;
  /** Where the run state lives; absent when the config turns it off. */
  state?: StateConfig;
  /** Send the people who left the feed once more, expired or inactive; absent: they are only counted. */
  departures?: DeparturesConfig;
  delivery: DeliveryConfig;
}

/** The run state's folder, and whether a night sends everyone (full) or only what changed (delta). */
export interface StateConfig {
  dir: string;
  mode: 'full' | 'delta';
  /** With delta: a weekday ('sunday') or a number of days since the last full run, when a night is full. */
  fullEvery?: string | number;
}

/** What `run` sends for a person who has left the feed (src/state/departures.ts). */
export interface DeparturesConfig {
  action: 'expire' | 'inactivate';
  /** Nights a person must be missing (tonight included) before their departure is sent. */
  afterMissingRuns: number;
  /** The external note's text; {run_date} and {last_seen} are filled in. */
  note: string;
}

/** Limits on what may change since the last delivered night: each a count ("25") or a share ("5%"), as max_rejected. */
export interface ChangeGuards {
  maxDepartures: string;
  maxGroupChanges: string;
  maxFieldLoss: FieldLossLimits;
  maxNewUsers: string;
  /** guards.accept_changes_on: the run date (YYYY-MM-DD, local) whose changes are accepted, as --accept-changes does. */
  acceptChangesOn?: string;
}

/** max_field_loss: one limit for every kind (perKind false), or a limit per kind (email, identifier:BARCODE, ...) and the default for the others. */
export interface FieldLossLimits {
  default: string;
  kinds: Record<string, string>;
  perKind: boolean;
}

/** The max_field_loss limit for one kind as the state records it (email, identifier:BARCODE), and the key that set it, for the trip message. */
export function fieldLossLimit(limits: FieldLossLimits, kind: string): { limit: string; key: string } {
  if (!limits.perKind) return { limit: limits.default, key: 'max_field_loss' };
  const own = Object.hasOwn(limits.kinds, kind) ? limits.kinds[kind] : undefined;
  return own !== undefined ? { limit: own, key: `max_field_loss.${kind}` } : { limit: limits.default, key: 'max_field_loss.default' };
}

/** A problem in a config file, with its file:line:column and YAML path. */
export type ConfigProblem = Problem;

export { DEFAULTS, CHANGE_GUARD_DEFAULTS, formatProblem };

/** ssh-keygen's `(ED25519)` suffix → the host key algorithms that give a key of that type. */
const KEY_TYPE_ALGORITHMS: Record<string, string[]> = {
  RSA: ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
  ED25519: ['ssh-ed25519'],
  ECDSA: ['ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521'],
};
const FINGERPRINT = /^(SHA256:[A-Za-z0-9+/]{43}=?|MD5:(?:[0-9a-fA-F]{2}:){15}[0-9a-fA-F]{2})$/;

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
 * The run state's folder a run config names, for `sis2alma history`, which reads nothing else of
 * it: a config whose secrets are not at hand (an environment variable unset in this shell) still
 * names its state. Undefined when the config turns the state off.
 */
export function stateDirOf(file: string): string | undefined {
  const { absolute, text } = readConfigText(file);
  const { config, rest, problems } = (() => {
    const { written, where, problems: syntax } = parseYaml(text, absolute, { firstErrorOnly: true });
    if (syntax.length) return { problems: syntax };
    return checkWrittenConfig(validateRunConfig, written, where, {});
  })() as { config?: RunConfig; rest?: Partial<WrittenRunConfig>; problems: ConfigProblem[] };
  if (config) return config.state?.dir;
  if (!rest?.output_dir || problems.some((p) => p.path.startsWith('state') || p.path === 'output_dir'))
    throw new RunError('config_invalid', problems.map(formatProblem).join('\n'), { file: absolute });
  if (rest.state?.enabled === false) return undefined;
  const resolve = (p: string) => path.resolve(path.dirname(absolute), p);
  return rest.state?.dir ? resolve(rest.state.dir) : path.join(resolve(rest.output_dir), 'state');
}

const validateRunConfig = compileSchema(runConfigSchema);

/**
 * The check itself: text in, config or problems out. It looks at the files the config names for
 * secrets (they must exist and be private), because a nightly job should fail on the day the
 * config is written, not on the first night.
 */
export function checkRunConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): { config?: RunConfig; problems: ConfigProblem[] } {
  const { written, where, problems: syntax } = parseYaml(text, file, { firstErrorOnly: true });
  if (syntax.length) return { problems: syntax };
  return checkWrittenConfig(validateRunConfig, written, where, env);
}

/**
 * A config file's schema, then the checks it cannot express on what the schema let through: the
 * run config's, and the serve config's, which has the same keys and a serve: section.
 */
export function checkWrittenConfig(
  validate: ValidateFunction,
  written: unknown,
  where: Locator,
  env: NodeJS.ProcessEnv,
): { config?: RunConfig; rest?: Partial<WrittenRunConfig>; refused: string[]; problems: ConfigProblem[] } {
  const shape = checkAgainst(validate, written, where);
  const w = (shape.rest ?? {}) as Partial<WrittenRunConfig>;
  const later: ConfigProblem[] = [];
  const resolvePath = (p: string) => path.resolve(path.dirname(where.file), p);
  const delivery = w.delivery ? deliveryOf(w.delivery, where, later, resolvePath, env) : undefined;
  const acceptOn = w.guards?.accept_changes_on;
  if (acceptOn !== undefined && !isCalendarDate(acceptOn)) later.push(where.at(['guards', 'accept_changes_on'], `${acceptOn} is not a day of the calendar (YYYY-MM-DD)`));
  const problems = inFileOrder([...shape.problems, ...withoutEchoes(later, shape.refused)]);
  const result = { ...(shape.rest ? { rest: w } : {}), refused: shape.refused, problems };
  if (problems.length > 0 || !shape.complete || !delivery) return result;
  const outputAbs = resolvePath(w.output_dir!);
  const inputs = w.inputs === undefined ? [] : typeof w.inputs === 'string' ? [w.inputs] : w.inputs;
  const guards = guardsOf(w.guards);
  return {
    ...result,
    config: {
      configFile: where.file,
      mappingFile: w.mapping ? resolvePath(w.mapping) : '',
      inputs: inputs.map(resolvePath),
      ...(w.encoding ? { encoding: w.encoding } : {}),
      outputDir: outputAbs,
      archive: { dir: w.archive?.dir ? resolvePath(w.archive.dir) : path.join(outputAbs, 'archive'), keepDays: w.archive?.keep_days ?? DEFAULTS.keepDays },
      guards,
      changeGuards: changeGuardsOf(w.guards),
      ...(w.state?.enabled === false ? {} : { state: { dir: w.state?.dir ? resolvePath(w.state.dir) : path.join(outputAbs, 'state'), mode: w.state?.mode ?? 'full', ...(w.state?.full_every !== undefined ? { fullEvery: w.state.full_every } : {}) } }),
      ...(w.departures ? { departures: { action: w.departures.action, afterMissingRuns: w.departures.after_missing_runs ?? 1, note: w.departures.note ?? DEFAULT_DEPARTURE_NOTE } } : {}),
      delivery,
    },
  };
}

/** The guards against the last delivered night, with their defaults. */
export function changeGuardsOf(written: WrittenRunConfig['guards']): ChangeGuards {
  const of = (value: string | number | undefined, fallback: string) => (value === undefined ? fallback : String(value).trim());
  const fieldLoss = written?.max_field_loss;
  const perKind = typeof fieldLoss === 'object' && fieldLoss !== null;
  return {
    maxDepartures: of(written?.max_departures, CHANGE_GUARD_DEFAULTS.maxDepartures),
    maxGroupChanges: of(written?.max_group_changes, CHANGE_GUARD_DEFAULTS.maxGroupChanges),
    maxFieldLoss: perKind
      ? {
          default: of(fieldLoss.default, CHANGE_GUARD_DEFAULTS.maxFieldLoss),
          kinds: Object.fromEntries(Object.entries(fieldLoss).filter(([kind]) => kind !== 'default').map(([kind, limit]) => [kind, of(limit, CHANGE_GUARD_DEFAULTS.maxFieldLoss)])),
          perKind: true,
        }
      : { default: of(fieldLoss, CHANGE_GUARD_DEFAULTS.maxFieldLoss), kinds: {}, perKind: false },
    maxNewUsers: of(written?.max_new_users, CHANGE_GUARD_DEFAULTS.maxNewUsers),
    ...(written?.accept_changes_on !== undefined ? { acceptChangesOn: written.accept_changes_on } : {}),
  };
}

/** YYYY-MM-DD naming a day that exists (not 2026-02-30). */
function isCalendarDate(text: string): boolean {
  const [y, m, d] = text.split('-').map(Number);
  const date = new Date(Date.UTC(y!, m! - 1, d!));
  return date.getUTCFullYear() === y && date.getUTCMonth() === m! - 1 && date.getUTCDate() === d;
}

type Note = (at: PathItem[], message: string, key?: boolean) => void;

/** The delivery the job uses, once the schema has passed what is there; undefined when something is wrong or missing. */
function deliveryOf(
  d: Partial<WrittenDelivery>,
  where: Locator,
  problems: ConfigProblem[],
  resolvePath: (p: string) => string,
  env: NodeJS.ProcessEnv,
): DeliveryConfig | undefined {
  let failed = false;
  const note: Note = (at, message, key = false) => {
    failed = true;
    problems.push(where.at(['delivery', ...at], message, key));
  };
  const common: DeliveryCommon = {
    retries: d.retries ?? DEFAULTS.retries,
    retryDelayMs: Math.round((d.retry_delay_seconds ?? DEFAULTS.retryDelaySeconds) * 1000),
    stale: d.stale ?? DEFAULTS.stale,
  };
  if (d.target === 'dir') return d.dir ? { target: 'dir', dir: resolvePath(d.dir), createDir: d.create_dir ?? false, ...common } : undefined;
  if (d.target !== 'sftp') return undefined;
  const s = d as Partial<WrittenSftpDelivery>;

  // Exactly one way to log in, as ssh would be told with -i or a password prompt.
  const authKeys = (['private_key_file', 'password_env', 'password_file'] as const).filter((k) => s[k] !== undefined);
  let auth: SftpAuth | undefined;
  if (authKeys.length !== 1) {
    if (authKeys.length === 0) note([], 'the sftp target needs one of private_key_file, password_env or password_file');
    else note([authKeys[1]!], `use only one of private_key_file, password_env and password_file (found ${authKeys.join(' and ')})`, true);
  } else if (authKeys[0] === 'private_key_file') {
    const keyFile = secretFile(['private_key_file'], s.private_key_file!, 'private key', note, resolvePath);
    const passphrase = secretSource(s, 'passphrase_env', 'passphrase_file', 'key passphrase', note, resolvePath, env);
    if (keyFile) auth = { kind: 'key', privateKeyFile: keyFile, ...(passphrase ? { passphrase } : {}) };
  } else {
    for (const k of ['passphrase_env', 'passphrase_file'] as const) if (s[k] !== undefined) note([k], 'only goes with private_key_file', true);
    const password = secretSource(s, 'password_env', 'password_file', 'password', note, resolvePath, env);
    if (password) auth = { kind: 'password', password };
  }

  // No option trusts any key: the operator must say which key the server has.
  let hostKey: HostKeyCheck | undefined;
  if (s.host_key !== undefined && s.known_hosts !== undefined) note(['known_hosts'], 'use either host_key or known_hosts, not both', true);
  else if (s.host_key === undefined && s.known_hosts === undefined)
    note([], "the sftp target needs host_key (the server key's fingerprint, as `ssh-keygen -lf` prints it) or known_hosts (a known_hosts file)");
  else if (s.host_key !== undefined) {
    const fingerprints: string[] = [];
    const keyTypes = new Set<string>();
    for (const line of typeof s.host_key === 'string' ? [s.host_key] : s.host_key) {
      const parsed = parseFingerprintLine(line.trim())!;
      fingerprints.push(parsed.fingerprint);
      // A fingerprint without its (TYPE) suffix may be of any key type: then the server picks.
      keyTypes.add(parsed.keyType ?? '*');
    }
    const algorithms = keyTypes.has('*') ? [] : [...keyTypes].flatMap((t) => KEY_TYPE_ALGORITHMS[t] ?? []);
    hostKey = { kind: 'fingerprint', fingerprints, keyTypes: algorithms };
  } else {
    const abs = resolvePath(s.known_hosts!);
    const st = statSync(abs, { throwIfNoEntry: false });
    if (!st || !st.isFile()) note(['known_hosts'], `known_hosts file ${abs} does not exist`);
    else hostKey = { kind: 'known_hosts', file: abs };
  }

  if (failed || !s.host || !s.username || !s.remote_dir || !auth || !hostKey) return undefined;
  return {
    target: 'sftp',
    host: String(s.host),
    port: s.port ?? DEFAULTS.port,
    username: s.username,
    auth,
    hostKey,
    remoteDir: s.remote_dir,
    timeoutMs: Math.round((s.timeout_seconds ?? DEFAULTS.timeoutSeconds) * 1000),
    ...common,
  };
}

/** `SHA256:abc…`, or a whole `ssh-keygen -lf` line (`256 SHA256:abc… comment (ED25519)`). */
export function parseFingerprintLine(line: string): { fingerprint: string; keyType?: string } | undefined {
  const parts = line.split(/\s+/);
  const fingerprint = parts.find((p) => FINGERPRINT.test(p));
  if (!fingerprint) return undefined;
  const type = /\((RSA|ED25519|ECDSA)(?:-SK)?\)$/.exec(line)?.[1];
  return { fingerprint: fingerprint.replace(/=$/, ''), ...(type ? { keyType: type } : {}) };
}

/**
 * A file that holds a secret must exist and be readable by its owner only, as ssh insists for
 * keys. `at` is the path below the section `note` reports in.
 */
export function secretFile(at: PathItem[], name: string, what: string, note: Note, resolvePath: (p: string) => string): string | undefined {
  const abs = resolvePath(name);
  let st;
  try {
    st = statSync(abs);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    note(at, `${what} file ${abs} ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code})`}`);
    return undefined;
  }
  if (!st.isFile()) {
    note(at, `${what} file ${abs} is not a file`);
    return undefined;
  }
  if ((st.mode & 0o077) !== 0) {
    note(at, `${what} file ${abs} is readable by others (mode ${(st.mode & 0o777).toString(8)}): run chmod 600 ${abs}`);
    return undefined;
  }
  return abs;
}

function secretSource(
  s: Partial<WrittenSftpDelivery>,
  envKey: 'password_env' | 'passphrase_env',
  fileKey: 'password_file' | 'passphrase_file',
  what: string,
  note: Note,
  resolvePath: (p: string) => string,
  env: NodeJS.ProcessEnv,
): SecretSource | undefined {
  const name = s[envKey];
  const file = s[fileKey];
  if (name !== undefined && file !== undefined) {
    note([fileKey], `use either ${envKey} or ${fileKey}, not both`, true);
    return undefined;
  }
  if (name !== undefined) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      // The value is not repeated: someone may have written the secret itself here.
      note([envKey], `must be the name of an environment variable (letters, digits and _, like SIS2ALMA_SFTP_PASSWORD), not the ${what} itself`);
      return undefined;
    }
    if (!env[name]) {
      note([envKey], `environment variable ${name} (the ${what}, named by ${envKey}) is not set`);
      return undefined;
    }
    return { env: name };
  }
  if (file !== undefined) {
    const abs = secretFile([fileKey], file, what, note, resolvePath);
    return abs ? { file: abs } : undefined;
  }
  return undefined;
}

/** The guards as written (a share may be written as a number or a string), for a run or for the push endpoint, whose default share differs. */
export function guardsOf(written: { max_rejected?: string | number; min_users?: number } | undefined, maxRejected?: string): Guards {
  const guards: Guards = {};
  if (written?.max_rejected !== undefined) guards.maxRejected = String(written.max_rejected).trim();
  else if (maxRejected !== undefined) guards.maxRejected = maxRejected;
  if (written?.min_users !== undefined) guards.minUsers = written.min_users;
  return guards;
}
