// Passwords of the push endpoint's accounts. The config holds only salted scrypt hashes, in one
// self-describing string, `scrypt$N$r$p$salt$hash` (salt and hash in base64), so that the cost can
// be raised later without breaking the hashes already written. scrypt is in Node itself; argon2
// would need a native package and buys little for a handful of machine accounts.
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** 2^15 is the cost OWASP names for scrypt: about 50 ms and 32 MiB on a server core. */
export const DEFAULT_SCRYPT: ScryptParams = { N: 2 ** 15, r: 8, p: 1 };
const SALT_BYTES = 16;
const KEY_BYTES = 32;

interface ParsedHash extends ScryptParams {
  salt: Buffer;
  hash: Buffer;
}

const FORMAT = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

/** Why a stored hash cannot be used, or undefined when it can. For the config check. */
export function checkPasswordHash(encoded: string): string | undefined {
  const parsed = parseHash(encoded);
  return typeof parsed === 'string' ? parsed : undefined;
}

function parseHash(encoded: string): ParsedHash | string {
  const m = FORMAT.exec(encoded.trim());
  if (!m) return 'a password hash looks like scrypt$32768$8$1$<salt>$<hash>: make one with `sis2alma passwd`';
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  // Bounds keep a mistyped hash from asking for gigabytes of memory on every login.
  if (N < 2 ** 10 || N > 2 ** 20 || (N & (N - 1)) !== 0) return `the scrypt cost N must be a power of two between 1024 and 1048576, not ${N}`;
  if (r < 1 || r > 32 || p < 1 || p > 16) return `the scrypt parameters r=${r} p=${p} are out of range (r 1-32, p 1-16)`;
  const salt = Buffer.from(m[4]!, 'base64');
  const hash = Buffer.from(m[5]!, 'base64');
  if (salt.length < 8) return 'the salt of the password hash is shorter than 8 bytes';
  if (hash.length < 16) return 'the password hash is shorter than 16 bytes';
  return { N, r, p, salt, hash };
}

function derive(password: string, salt: Buffer, length: number, params: ScryptParams): Promise<Buffer> {
  const options: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r + 1024 * 1024 };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, length, options, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await derive(password, salt, KEY_BYTES, params);
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** True when `password` matches `encoded`; the comparison takes the same time wherever they differ. */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const parsed = parseHash(encoded);
  if (typeof parsed === 'string') return false;
  const candidate = await derive(password, parsed.salt, parsed.hash.length, parsed);
  return timingSafeEqual(candidate, parsed.hash);
}

/**
 * A hash no password matches, with the default cost: checked when the account name is unknown,
 * so that an unknown name takes as long to refuse as a wrong password.
 */
export async function decoyHash(): Promise<string> {
  return hashPassword(randomBytes(24).toString('base64'));
}
