// Host keys: the server must be who the config says it is, by a pinned fingerprint (as
// `ssh-keygen -lf` prints it) or by a known_hosts file read as OpenSSH reads it. Nothing ever
// trusts any key.
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { RunError } from '../shared/errors.js';
import type { SftpDeliveryConfig } from '../config/run-config.js';
import type { ConnectionState } from './sftp-errors.js';

/** The fingerprint of a host key blob as `ssh-keygen -lf` prints it: SHA256 + unpadded base64. */
export function fingerprintOf(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

function md5FingerprintOf(blob: Buffer): string {
  return 'MD5:' + (createHash('md5').update(blob).digest('hex').match(/../g) ?? []).join(':');
}

/** The key type named inside a host key blob (`ssh-ed25519`, `ssh-rsa`, ...). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const n = blob.readUInt32BE(0);
  return n > 0 && n < 64 && blob.length >= 4 + n ? blob.subarray(4, 4 + n).toString('latin1') : 'unknown';
}

export interface KnownHostKeys {
  keys: { type: string; blob: Buffer }[];
  revoked: Buffer[];
}

/**
 * The keys a known_hosts file lists for a host, as OpenSSH reads it: `[host]:port` for a port other
 * than 22, hashed `|1|salt|hash` names, comma lists, `*`/`?` wildcards, `!` negations and
 * @revoked lines. @cert-authority lines are skipped: certificates are not supported.
 */
export function knownHostKeys(text: string, host: string, port: number): KnownHostKeys {
  const name = (port === 22 ? host : `[${host}]:${port}`).toLowerCase();
  const out: KnownHostKeys = { keys: [], revoked: [] };
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    // Stryker disable next-line ConditionalExpression: a blank line has too few fields, and no host name holds the `#` a comment's first field starts with
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let marker: string | undefined;
    if (fields[0]!.startsWith('@')) marker = fields.shift();
    if (fields.length < 3) continue;
    const [patterns, type, key] = fields as [string, string, string];
    if (marker === '@cert-authority') continue;
    if (!hostMatches(patterns, name)) continue;
    const blob = Buffer.from(key, 'base64');
    if (marker === '@revoked') out.revoked.push(blob);
    else out.keys.push({ type, blob });
  }
  return out;
}

function hostMatches(patterns: string, name: string): boolean {
  if (patterns.startsWith('|1|')) {
    const [, , salt, hash] = patterns.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  let matched = false;
  for (const raw of patterns.split(',')) {
    const negated = raw.startsWith('!');
    const pattern = (negated ? raw.slice(1) : raw).toLowerCase();
    const re = new RegExp('^' + pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$');
    if (re.test(name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

const ALGORITHMS_FOR_KEY_TYPE: Record<string, string[]> = {
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
};

export function hostVerifier(cfg: SftpDeliveryConfig, state: ConnectionState): { verify: (key: Buffer) => boolean; algorithms: string[] } {
  const server = `${cfg.host}:${cfg.port}`;
  const seen = (blob: Buffer) => `${fingerprintOf(blob)} (${keyTypeOf(blob)})`;
  if (cfg.hostKey.kind === 'fingerprint') {
    const { fingerprints: wanted, keyTypes } = cfg.hostKey;
    return {
      algorithms: keyTypes,
      verify: (blob) => {
        if (wanted.includes(fingerprintOf(blob)) || wanted.includes(md5FingerprintOf(blob))) return true;
        // A server with several host keys presents the type ssh2 prefers (ed25519 first); a
        // fingerprint of its RSA key only matches when the config asks for that type.
        const hint = keyTypes.length === 0
          ? '; if the provider gave the fingerprint of another key type, write host_key as ssh-keygen -lf prints it, ending in (RSA), (ECDSA) or (ED25519)'
          : '; if the server\'s key really changed, check the new fingerprint with the provider before putting it in the config';
        state.hostKeyProblem = `host key of ${server} is ${seen(blob)}, which is not the host_key in the config (${wanted.join(', ')}): connection refused${hint}`;
        return false;
      },
    };
  }
  const file = cfg.hostKey.file;
  let known: KnownHostKeys;
  try {
    known = knownHostKeys(readFileSync(file, 'utf8'), cfg.host, cfg.port);
  } catch (error) {
    // Stryker disable next-line StringLiteral: readFileSync's errors all carry a code
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new RunError('config_invalid', `known_hosts file ${file} cannot be read (${code})`, { file });
  }
  // As OpenSSH does, ask the server for a key of a type we know for it, so a server with several
  // host keys presents the one we can check.
  const algorithms = [...new Set(known.keys.flatMap((k) => ALGORITHMS_FOR_KEY_TYPE[k.type] ?? []))];
  return {
    algorithms,
    verify: (blob) => {
      if (known.revoked.some((r) => r.equals(blob))) {
        state.hostKeyProblem = `host key of ${server} is ${seen(blob)}, which ${file} marks @revoked: connection refused`;
        return false;
      }
      if (known.keys.some((k) => k.blob.equals(blob))) return true;
      const entry = cfg.port === 22 ? cfg.host : `[${cfg.host}]:${cfg.port}`;
      state.hostKeyProblem = known.keys.length === 0
        ? `host key of ${server} is ${seen(blob)}, and ${file} has no entry for ${entry}: connection refused; add the server's key after checking its fingerprint with the provider`
        : `host key of ${server} is ${seen(blob)}, which does not match the key(s) for ${entry} in ${file}: connection refused (the server's key changed, or this is not the server)`;
      return false;
    },
  };
}
