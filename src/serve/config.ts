// The `serve:` section of the run config: the push endpoint's address, TLS, accounts, limits,
// mapping and guards, checked with every problem at its file:line:column, as the run config is
// (src/config/run-config.ts checks the rest of the file).
import { statSync } from 'node:fs';
import path from 'node:path';
import { checkWrittenConfig, formatProblem, guardsOf, readConfigText, secretFile, type ConfigProblem, type RunConfig } from '../config/run-config.js';
import { SERVE_DEFAULTS, serveConfigSchema } from '../config/shape.js';
import { compileSchema, inFileOrder, parseYaml, withoutEchoes, type Locator, type PathItem } from '../shared/yaml-check.js';
import type { Guards } from '../pipeline/convert.js';
import { RunError } from '../shared/errors.js';
import { checkPasswordHash } from './passwd.js';

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

export { SERVE_DEFAULTS };

/** Reads, checks and normalises a run config with a `serve:` section; throws RunError('config_invalid') listing every problem. */
export function loadServeConfig(file: string, env: NodeJS.ProcessEnv = process.env): ServeConfig {
  const { absolute, text } = readConfigText(file);
  const { config, problems } = checkServeConfig(text, absolute, env);
  if (!config || problems.length > 0) throw new RunError('config_invalid', problems.map(formatProblem).join('\n'), { file: absolute });
  return config;
}

const validateServeConfig = compileSchema(serveConfigSchema);

/**
 * A push config is a run config (mapping, output, guards, delivery) with a `serve:` section, and
 * without `inputs` (the file pushed is the input); the serve section may name its own mapping.
 */
export function checkServeConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): { config?: ServeConfig; problems: ConfigProblem[] } {
  const { written, where, problems: syntax } = parseYaml(text, file);
  if (syntax.length) return { problems: syntax };
  const run = checkWrittenConfig(validateServeConfig, written, where, env);
  const later: ConfigProblem[] = [];
  const serve = (run.rest as { serve?: Partial<WrittenServe> } | undefined)?.serve;
  const settings = serve ? serveSettingsOf(serve, where, later, (p) => path.resolve(path.dirname(file), p)) : undefined;
  // A date would let every push of that day through: a push is let through one at a time.
  if (run.rest?.guards?.accept_changes_on !== undefined)
    later.push(where.at(['guards', 'accept_changes_on'], `is for sis2alma run; to let one push through, create the file accept-changes in the account's state folder`, true));
  const problems = inFileOrder([...run.problems, ...withoutEchoes(later, run.refused)]);
  if (problems.length > 0 || !run.config || !settings) return { problems };
  return { problems, config: { run: run.config, serve: { ...settings, mappingFile: settings.mappingFile ?? run.config.mappingFile } } };
}

/** What the operator writes under serve: (its shape is serveConfigSchema's). */
interface WrittenServe {
  host: string;
  port: number;
  tls: { cert_file: string; key_file: string };
  accounts: Partial<{ username: string; password_hash: string }>[];
  max_request_bytes: number | string;
  request_timeout_seconds: number;
  mapping: string;
  source: string;
  guards: { max_rejected?: number | string; min_users?: number };
  trust_proxy: boolean;
}

/** The checks on serve: that its schema cannot express; undefined when one fails. */
function serveSettingsOf(
  w: Partial<WrittenServe>,
  where: Locator,
  problems: ConfigProblem[],
  resolvePath: (p: string) => string,
): (Omit<ServeSettings, 'mappingFile'> & { mappingFile?: string }) | undefined {
  let ok = true;
  const note = (at: PathItem[], message: string, key = false) => {
    ok = false;
    problems.push(where.at(['serve', ...at], message, key));
  };
  let tls: ServeSettings['tls'];
  if (w.tls) {
    const certFile = existingFile(['tls', 'cert_file'], w.tls.cert_file, 'certificate', note, resolvePath);
    const keyFile = secretFile(['tls', 'key_file'], w.tls.key_file, 'private key', note, resolvePath);
    if (certFile && keyFile) tls = { certFile, keyFile };
  }
  const accounts = new Map<string, string>();
  (w.accounts ?? []).forEach(({ username, password_hash: hash }, i) => {
    // What the schema refused is gone (and said already): check what is left.
    if (username !== undefined && accounts.has(username)) note(['accounts', i, 'username'], `the username "${username}" is listed twice`);
    const why = hash === undefined ? undefined : checkPasswordHash(hash);
    if (why) note(['accounts', i, 'password_hash'], why);
    if (username !== undefined && hash !== undefined) accounts.set(username, hash.trim());
  });
  let maxRequestBytes = SERVE_DEFAULTS.maxRequestBytes;
  if (w.max_request_bytes !== undefined) {
    const bytes = parseBytes(w.max_request_bytes);
    if (bytes === undefined) note(['max_request_bytes'], `must be a size such as 104857600 or "100MB" (at least 1KB), not ${JSON.stringify(w.max_request_bytes)}`);
    else maxRequestBytes = bytes;
  }
  const guards = guardsOf(w.guards, SERVE_DEFAULTS.maxRejected);
  if (!ok) return undefined;
  return {
    host: w.host ?? SERVE_DEFAULTS.host,
    port: w.port ?? SERVE_DEFAULTS.port,
    ...(tls ? { tls } : {}),
    accounts,
    maxRequestBytes,
    requestTimeoutMs: Math.round((w.request_timeout_seconds ?? SERVE_DEFAULTS.requestTimeoutSeconds) * 1000),
    guards,
    ...(w.source !== undefined ? { source: w.source } : {}),
    trustProxy: w.trust_proxy ?? false,
    ...(w.mapping !== undefined ? { mappingFile: resolvePath(w.mapping) } : {}),
  };
}

function existingFile(at: PathItem[], name: string, what: string, note: (at: PathItem[], message: string) => void, resolvePath: (p: string) => string): string | undefined {
  const abs = resolvePath(name);
  const st = statSync(abs, { throwIfNoEntry: false });
  if (st && st.isFile()) return abs;
  note(at, `${what} file ${abs} ${st ? 'is not a file' : 'does not exist'}`);
  return undefined;
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


