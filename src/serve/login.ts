// Who may push: Basic auth against the accounts' scrypt hashes (passwd.ts), slowed down per
// failing address (LoginThrottle) and bounded in parallel (LoginGate), so that guessing is no
// faster in parallel than in sequence and a flood cannot take the CPU from the imports.
import type http from 'node:http';
import { availableParallelism } from 'node:os';
import type { ServeConfig } from './config.js';
import { verifyPassword } from './passwd.js';

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

/** What a login check needs of the server. */
export interface LoginContext {
  config: ServeConfig;
  throttle: LoginThrottle;
  gate: LoginGate;
  /** A hash an unknown account name is checked against, so that it costs what a known one does. */
  decoy: string;
}

export type Login = { refused?: undefined; account: string } | { refused: 'wrong' | 'gone' } | { refused: 'address busy' | 'server busy'; retryAfter: number };

/**
 * Checks the Basic credentials, after the address's wait, one login per address at a time and a
 * bounded number of hashes at once (LoginGate). A client that leaves during its wait costs no hash.
 */
export async function authenticate(req: http.IncomingMessage, client: string, ctx: LoginContext): Promise<Login> {
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
    // Equivalent mutants marked below: without a Basic header (m null) nothing is hashed and the
    // login is refused whatever `decoded` holds; without a name before a colon the name is '', and
    // no account has that name (the config's schema: a name without a colon, not empty).
    // Stryker disable next-line StringLiteral: see above
    const m = /^Basic\s+([A-Za-z0-9+/=._~-]+)\s*$/i.exec(req.headers.authorization ?? '');
    // Stryker disable next-line StringLiteral: see above
    const decoded = m ? Buffer.from(m[1]!, 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    // Stryker disable next-line EqualityOperator,StringLiteral: see above
    const username = colon > 0 ? decoded.slice(0, colon) : '';
    // Stryker disable next-line ConditionalExpression,EqualityOperator,StringLiteral: see above
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

