// Who may push, without a server: the Basic header read, an unknown name checked against the decoy
// hash (never let in, even by the decoy's own password), a request without credentials costing no
// hash, the address's wait and its turn, and the throttle's doubling and forgetting. Fast, so that
// a changed rule is caught before the tests over real HTTPS (serve-auth.test.ts, serve.test.ts).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type http from 'node:http';
import { authenticate, LoginGate, LoginThrottle, type LoginContext } from '../src/serve/login.js';
import { hashPassword, verifyPassword } from '../src/serve/passwd.js';
import type { ServeConfig } from '../src/serve/config.js';

// The lowest cost a hash may have: these tests are about the decisions, not scrypt.
const CHEAP = { N: 1024, r: 8, p: 1 };
const USER = 'infiniti';
const PASSWORD = 'correct horse battery staple';
const [userHash, decoy] = await Promise.all([hashPassword(PASSWORD, CHEAP), hashPassword('the decoy password', CHEAP)]);

/** A request as authenticate() reads it: its headers and a socket that may close. */
function request(authorization?: string): http.IncomingMessage & { socket: EventEmitter & { destroyed: boolean } } {
  const socket = Object.assign(new EventEmitter(), { destroyed: false });
  return { headers: authorization === undefined ? {} : { authorization }, socket } as unknown as http.IncomingMessage & { socket: EventEmitter & { destroyed: boolean } };
}
const basic = (credentials: string) => 'Basic ' + Buffer.from(credentials).toString('base64');

function context(throttle = new LoginThrottle(), gate = new LoginGate(1, 0)): LoginContext {
  const config = { serve: { accounts: new Map([[USER, userHash]]) } } as unknown as ServeConfig;
  return { config, throttle, gate, decoy };
}

describe('authenticate', () => {
  test('the right name and password let the account in, and clear the address\'s failures', async () => {
    const ctx = context();
    ctx.throttle.failed('10.0.0.1', Date.now() - 60_000);
    assert.deepEqual(await authenticate(request(basic(`${USER}:${PASSWORD}`)), '10.0.0.1', ctx), { account: USER });
    assert.equal(ctx.throttle.delayFor('10.0.0.1', Date.now()), 0);
    assert.equal(ctx.gate.hashes, 1);
    // The turn was given back: the next login from the address is checked, not refused as busy.
    assert.deepEqual(await authenticate(request(basic(`${USER}:${PASSWORD}`)), '10.0.0.1', ctx), { account: USER });
  });

  test('the header is read as RFC 7617 has it: any case of "basic", spaces around the token; a password may hold colons', async () => {
    const withColons = await hashPassword('a:b:c', CHEAP);
    const ctx = context();
    (ctx.config.serve.accounts as Map<string, string>).set('colons', withColons);
    assert.deepEqual(await authenticate(request(`bAsIc   ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}  `), '10.0.0.2', ctx), { account: USER });
    assert.deepEqual(await authenticate(request(basic('colons:a:b:c')), '10.0.0.3', ctx), { account: 'colons' });
  });

  test('a wrong password, an unknown name, an empty name: refused, each after one hash, and the address slowed', async () => {
    for (const [credentials, client] of [[`${USER}:wrong`, '10.0.1.1'], [`nobody:${PASSWORD}`, '10.0.1.2'], [`:${PASSWORD}`, '10.0.1.3'], [`${USER}${PASSWORD}`, '10.0.1.4']] as const) {
      const ctx = context();
      assert.deepEqual(await authenticate(request(basic(credentials)), client, ctx), { refused: 'wrong' }, credentials);
      assert.equal(ctx.gate.hashes, 1, `${credentials}: one hash, as a known name costs`);
      assert.equal(ctx.throttle.delayFor(client, Date.now()), 1000, credentials);
    }
  });

  test('credentials without a colon have no name, even where an account\'s password is empty', async () => {
    const ctx = context();
    (ctx.config.serve.accounts as Map<string, string>).set('emptypw', await hashPassword('', CHEAP));
    assert.deepEqual(await authenticate(request(basic('emptypw:')), '10.0.7.1', ctx), { account: 'emptypw' });
    assert.deepEqual(await authenticate(request(basic('emptypwX')), '10.0.7.2', ctx), { refused: 'wrong' });
  });

  test('with no wait due the password is checked at once, without waiting on the socket', async () => {
    const ctx = context();
    const req = request(basic(`${USER}:${PASSWORD}`));
    // Gone already: a check that waited on the socket, even for 0 ms, would answer 'gone'.
    req.socket.destroyed = true;
    assert.deepEqual(await authenticate(req, '10.0.7.3', ctx), { account: USER });
    assert.equal(ctx.gate.hashes, 1);
  });

  test('an unknown name is checked against the decoy hash, and the decoy\'s own password does not let it in', async () => {
    assert.equal(await verifyPassword('the decoy password', decoy), true);
    const ctx = context();
    assert.deepEqual(await authenticate(request(basic('nobody:the decoy password')), '10.0.2.1', ctx), { refused: 'wrong' });
    assert.equal(ctx.gate.hashes, 1);
  });

  test('no credentials, or a header that is not Basic: refused without a hash, and the address slowed', async () => {
    for (const [header, client] of [[undefined, '10.0.3.1'], ['Bearer abc', '10.0.3.2'], [`Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')} trailing`, '10.0.3.3'], ['Basic', '10.0.3.4'], [`XBasic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`, '10.0.3.5']] as const) {
      const ctx = context();
      assert.deepEqual(await authenticate(request(header), client, ctx), { refused: 'wrong' }, String(header));
      assert.equal(ctx.gate.hashes, 0, String(header));
      assert.equal(ctx.throttle.delayFor(client, Date.now()), 1000, String(header));
    }
  });

  test('an address with a login in check is refused at once with its wait in whole seconds, at least 1', async () => {
    const ctx = context(new LoginThrottle(1500, 60_000));
    assert.equal(ctx.gate.enter('10.0.4.1'), true);
    assert.deepEqual(await authenticate(request(basic(`${USER}:${PASSWORD}`)), '10.0.4.1', ctx), { refused: 'address busy', retryAfter: 1 });
    ctx.throttle.failed('10.0.4.1', Date.now());
    ctx.throttle.failed('10.0.4.1', Date.now());
    assert.deepEqual(await authenticate(request(basic(`${USER}:${PASSWORD}`)), '10.0.4.1', ctx), { refused: 'address busy', retryAfter: 3 });
    assert.equal(ctx.gate.hashes, 0);
    // Its own turn is not taken from it by the refusal.
    assert.equal(ctx.gate.enter('10.0.4.1'), false);
  });

  test('too many hashes waiting: refused as server busy, with Retry-After 1', async () => {
    const ctx = context(new LoginThrottle(), new LoginGate(1, 0));
    let release!: () => void;
    const holding = ctx.gate.hash(() => new Promise<void>((resolve) => (release = resolve)));
    assert.deepEqual(await authenticate(request(basic(`${USER}:${PASSWORD}`)), '10.0.5.1', ctx), { refused: 'server busy', retryAfter: 1 });
    release();
    await holding;
    assert.deepEqual(await authenticate(request(basic(`${USER}:${PASSWORD}`)), '10.0.5.1', ctx), { account: USER });
  });

  test('a failing address waits before its check, and stops listening for the hang-up after it', async () => {
    const ctx = context(new LoginThrottle(200, 200));
    ctx.throttle.failed('10.0.6.1', Date.now());
    const started = Date.now();
    const req = request(basic(`${USER}:${PASSWORD}`));
    assert.deepEqual(await authenticate(req, '10.0.6.1', ctx), { account: USER });
    assert.ok(Date.now() - started >= 190, `waited ${Date.now() - started} ms`);
    assert.equal(req.socket.listenerCount('close'), 0);
  });

  test('a client that hangs up during its wait is let go at once, and costs no hash', { timeout: 10_000 }, async () => {
    // A wait far longer than the test may take: only the hang-up can end it in time.
    const ctx = context(new LoginThrottle(60_000, 60_000));
    ctx.throttle.failed('10.0.6.2', Date.now());
    const req = request(basic(`${USER}:${PASSWORD}`));
    const login = authenticate(req, '10.0.6.2', ctx);
    req.socket.destroyed = true;
    req.socket.emit('close');
    assert.deepEqual(await login, { refused: 'gone' });
    assert.equal(ctx.gate.hashes, 0);
    assert.equal(ctx.gate.enter('10.0.6.2'), true, 'the address\'s turn was given back');
  });
});

describe('LoginThrottle', () => {
  test('the wait doubles from the base with each failure, capped; the count itself stops at 32', () => {
    const t = new LoginThrottle(1, 2 ** 40);
    for (let i = 0; i < 40; i++) t.failed('a', i);
    assert.equal(t.delayFor('a', 40), 2 ** 31);
  });

  test('an address is forgotten only after forgetMs without a failure; a failure within it counts on', () => {
    const t = new LoginThrottle(100, 10_000, 1000);
    t.failed('a', 0);
    assert.equal(t.delayFor('a', 1000), 100);
    assert.equal(t.delayFor('a', 1001), 0);
    t.failed('a', 1000);
    assert.equal(t.delayFor('a', 1000), 200);
    t.failed('a', 2001);
    assert.equal(t.delayFor('a', 2001), 100, 'counting starts again after a gap longer than forgetMs');
  });

  test('at most maxAddresses are kept: the one whose last failure is oldest goes first', () => {
    const t = new LoginThrottle(100, 10_000, 60_000, 2);
    t.failed('a', 0);
    t.failed('b', 1);
    t.failed('a', 2);
    t.failed('c', 3);
    assert.deepEqual([t.delayFor('a', 4), t.delayFor('b', 4), t.delayFor('c', 4)], [200, 0, 100]);
  });
});
