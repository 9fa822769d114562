// Host keys without a server: a known_hosts file read as OpenSSH reads it (comments, markers,
// hashed names, patterns and negations), the key type inside a key blob, and the verifier's
// decisions and words for a pinned fingerprint or a known_hosts file. Fast, so that a changed
// rule is caught before the tests against a real sshd (deliver.test.ts, delivery-safety.test.ts).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fingerprintOf, hostVerifier, keyTypeOf, knownHostKeys } from '../src/delivery/host-keys.js';
import type { ConnectionState } from '../src/delivery/sftp-errors.js';
import type { HostKeyCheck, SftpDeliveryConfig } from '../src/config/run-config.js';
import { RunError } from '../src/shared/errors.js';
import { makeTempDir } from './helpers/tmp.js';

/** A key blob as SSH writes it: the type's length, the type, then the key's own bytes. */
function blobOf(type: string, body: string): Buffer {
  const name = Buffer.from(type, 'latin1');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(name.length);
  return Buffer.concat([length, name, Buffer.from(body)]);
}

const ed = blobOf('ssh-ed25519', 'the first key');
const other = blobOf('ssh-ed25519', 'another key');
const rsa = blobOf('ssh-rsa', 'an rsa key');
const third = blobOf('ssh-ed25519', 'a third key');
const line = (patterns: string, blob: Buffer, type = keyTypeOf(blob)) => `${patterns} ${type} ${blob.toString('base64')}`;
const hashed = (name: string, salt = Buffer.from('0123456789abcdef0123')) => `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
const found = (text: string, host = 'sftp.example.org', port = 22) => knownHostKeys(text, host, port).keys.map((k) => `${k.type} ${k.blob.toString('latin1')}`);

describe('a known_hosts file read as OpenSSH reads it', () => {
  test('comments, blank lines, CRLF, short lines and @cert-authority lines give no key; the key type is the line\'s', () => {
    const text = [
      '# sftp.example.org ssh-ed25519 ' + other.toString('base64'),
      '',
      '   ',
      `sftp.example.org ssh-ed25519`,
      `@cert-authority sftp.example.org ${line('', other).trim()}`,
      `  ${line('sftp.example.org', rsa)}  `,
      line('elsewhere.example.org', other),
      line('sftp.example.org', ed, 'ssh-ed25519'),
      // Fields apart by a tab and by runs of spaces, and a comment after the key that ends in `#`.
      `sftp.example.org\tssh-ed25519  ${third.toString('base64')} a comment, not a marker #`,
    ].join('\r\n');
    const r = knownHostKeys(text, 'sftp.example.org', 22);
    assert.deepEqual(r.keys.map((k) => [k.type, k.blob.toString('latin1')]), [['ssh-rsa', rsa.toString('latin1')], ['ssh-ed25519', ed.toString('latin1')], ['ssh-ed25519', third.toString('latin1')]]);
    assert.deepEqual(r.revoked, []);
  });

  test('@revoked lines give revoked keys only, for the host they name', () => {
    const r = knownHostKeys([`@revoked sftp.example.org ${line('', other).trim()}`, `@revoked elsewhere.example.org ${line('', rsa).trim()}`, line('sftp.example.org', ed)].join('\n'), 'sftp.example.org', 22);
    assert.deepEqual(r.revoked.map((b) => b.toString('latin1')), [other.toString('latin1')]);
    assert.deepEqual(r.keys.map((k) => k.blob.toString('latin1')), [ed.toString('latin1')]);
  });

  test('names are compared without case; `?` is one character, `*` any run, `.` only a dot; the whole name must match', () => {
    const key = `ssh-ed25519 ${ed.toString('latin1')}`;
    assert.deepEqual(found(line('SFTP.Example.ORG', ed), 'Sftp.example.org'), [key]);
    assert.deepEqual(found(line('sftp?.example.org', ed), 'sftp1.example.org'), [key]);
    assert.deepEqual(found(line('sftp?.example.org', ed), 'sftp12.example.org'), []);
    assert.deepEqual(found(line('sftp?.example.org', ed), 'sftp.example.org'), []);
    assert.deepEqual(found(line('*.example.org', ed), 'a.b.example.org'), [key]);
    assert.deepEqual(found(line('sftp.example.org', ed), 'sftpxexample.org'), []);
    assert.deepEqual(found(line('example.org', ed), 'sftp.example.org'), []);
    assert.deepEqual(found(line('sftp.example', ed), 'sftp.example.org'), []);
    assert.deepEqual(found(line('sftp.example.org', ed), 'sftp.example.org.evil'), []);
    assert.deepEqual(found(line('(sftp|ftp).example.org', ed), 'sftp.example.org'), []);
    assert.deepEqual(found(line('(sftp|ftp).example.org', ed), '(sftp|ftp).example.org'), [key]);
  });

  test('a negated pattern refuses the name wherever it stands in the list, and alone matches nothing', () => {
    const key = `ssh-ed25519 ${ed.toString('latin1')}`;
    assert.deepEqual(found(line('!sftp.example.org,*.example.org', ed)), []);
    assert.deepEqual(found(line('*.example.org,!SFTP.example.org', ed)), []);
    assert.deepEqual(found(line('!other.example.org', ed)), []);
    assert.deepEqual(found(line('!other.example.org,sftp.example.org', ed)), [key]);
    assert.deepEqual(found(line('other.example.org,sftp.example.org', ed)), [key]);
  });

  test('hashed names: the HMAC of the name (with [host]:port off port 22) matches; another name, a broken entry or a pattern does not', () => {
    const key = `ssh-ed25519 ${ed.toString('latin1')}`;
    assert.deepEqual(found(line(hashed('sftp.example.org'), ed)), [key]);
    assert.deepEqual(found(line(hashed('[sftp.example.org]:2222'), ed), 'sftp.example.org', 2222), [key]);
    assert.deepEqual(found(line(hashed('sftp.example.org'), ed), 'sftp.example.org', 2222), []);
    assert.deepEqual(found(line(hashed('other.example.org'), ed)), []);
    assert.deepEqual(found(line('|1||', ed)), []);
    assert.deepEqual(found(line(`|1|${Buffer.from('salt').toString('base64')}|`, ed)), []);
    // Read as a hashed entry, never as a pattern: its `|` and `*` are not wildcards.
    assert.deepEqual(found(line('|1|*|*', ed)), []);
  });
});

describe('the key type inside a key blob', () => {
  test('a length of 1 to 63 that the blob holds names the type; anything else is unknown', () => {
    assert.equal(keyTypeOf(ed), 'ssh-ed25519');
    assert.equal(keyTypeOf(blobOf('x', '')), 'x');
    assert.equal(keyTypeOf(blobOf('t'.repeat(63), '')), 't'.repeat(63));
    assert.equal(keyTypeOf(blobOf('t'.repeat(64), '')), 'unknown');
    assert.equal(keyTypeOf(blobOf('', 'rest')), 'unknown');
    assert.equal(keyTypeOf(Buffer.from([0, 0, 0])), 'unknown');
    assert.equal(keyTypeOf(Buffer.from([0, 0, 0, 3, 0x61, 0x62])), 'unknown');
    assert.equal(keyTypeOf(Buffer.from([0, 0, 0, 2, 0x61, 0x62])), 'ab');
  });
});

function sftpConfig(hostKey: HostKeyCheck, port = 22): SftpDeliveryConfig {
  return { target: 'sftp', host: 'sftp.example.org', port, username: 'alma', auth: { kind: 'key', privateKeyFile: '/k' }, hostKey, remoteDir: '/in', timeoutMs: 1000, retries: 0, retryDelayMs: 10, stale: 'report' };
}

const md5 = (blob: Buffer) => 'MD5:' + createHash('md5').update(blob).digest('hex').match(/../g)!.join(':');

describe('the host key verifier', () => {
  test('a pinned fingerprint: SHA256 or MD5 of the key is accepted; any other key is refused with what was seen and what to do', () => {
    const state: ConnectionState = { lost: false };
    const pinned = hostVerifier(sftpConfig({ kind: 'fingerprint', fingerprints: [fingerprintOf(ed)], keyTypes: [] }), state);
    assert.deepEqual(pinned.algorithms, []);
    assert.equal(pinned.verify(ed), true);
    assert.equal(state.hostKeyProblem, undefined);
    assert.equal(hostVerifier(sftpConfig({ kind: 'fingerprint', fingerprints: ['SHA256:x', md5(ed)], keyTypes: [] }), state).verify(ed), true);
    assert.equal(state.hostKeyProblem, undefined);
    assert.equal(pinned.verify(other), false);
    assert.equal(
      state.hostKeyProblem,
      `host key of sftp.example.org:22 is ${fingerprintOf(other)} (ssh-ed25519), which is not the host_key in the config (${fingerprintOf(ed)}): connection refused; if the provider gave the fingerprint of another key type, write host_key as ssh-keygen -lf prints it, ending in (RSA), (ECDSA) or (ED25519)`,
    );
    const typed = hostVerifier(sftpConfig({ kind: 'fingerprint', fingerprints: [fingerprintOf(rsa), md5(ed)], keyTypes: ['rsa-sha2-512'] }, 2222), state);
    assert.deepEqual(typed.algorithms, ['rsa-sha2-512']);
    assert.equal(typed.verify(other), false);
    assert.equal(
      state.hostKeyProblem,
      `host key of sftp.example.org:2222 is ${fingerprintOf(other)} (ssh-ed25519), which is not the host_key in the config (${fingerprintOf(rsa)}, ${md5(ed)}): connection refused; if the server's key really changed, check the new fingerprint with the provider before putting it in the config`,
    );
  });

  test('a known_hosts file: listed keys pass, revoked ones are refused first, and the key types asked for are those it lists', () => {
    const dir = makeTempDir('sis2alma-host-keys-');
    const file = path.join(dir, 'known_hosts');
    writeFileSync(file, [line('sftp.example.org', rsa), line('sftp.example.org', ed), line('sftp.example.org', blobOf('ssh-rsa', 'a second rsa key')), line('sftp.example.org', blobOf('ssh-dss', 'old')), `@revoked * ${line('', other).trim()}`, line('sftp.example.org', other)].join('\n'));
    const state: ConnectionState = { lost: false };
    const known = hostVerifier(sftpConfig({ kind: 'known_hosts', file }), state);
    assert.deepEqual(known.algorithms, ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa', 'ssh-ed25519']);
    assert.equal(known.verify(ed), true);
    assert.equal(known.verify(rsa), true);
    assert.equal(state.hostKeyProblem, undefined);
    assert.equal(known.verify(other), false);
    assert.equal(state.hostKeyProblem, `host key of sftp.example.org:22 is ${fingerprintOf(other)} (ssh-ed25519), which ${file} marks @revoked: connection refused`);
    const unknown = blobOf('ssh-ed25519', 'a key nobody listed');
    assert.equal(known.verify(unknown), false);
    assert.equal(state.hostKeyProblem, `host key of sftp.example.org:22 is ${fingerprintOf(unknown)} (ssh-ed25519), which does not match the key(s) for sftp.example.org in ${file}: connection refused (the server's key changed, or this is not the server)`);
  });

  test('a known_hosts file without the host: every key refused, the entry it lacks named with its port', () => {
    const dir = makeTempDir('sis2alma-host-keys-');
    const file = path.join(dir, 'known_hosts');
    writeFileSync(file, line('sftp.example.org', ed) + '\n');
    const state: ConnectionState = { lost: false };
    const verifier = hostVerifier(sftpConfig({ kind: 'known_hosts', file }, 2222), state);
    assert.deepEqual(verifier.algorithms, []);
    assert.equal(verifier.verify(ed), false);
    assert.equal(
      state.hostKeyProblem,
      `host key of sftp.example.org:2222 is ${fingerprintOf(ed)} (ssh-ed25519), and ${file} has no entry for [sftp.example.org]:2222: connection refused; add the server's key after checking its fingerprint with the provider`,
    );
  });

  test('a known_hosts file that cannot be read is a config problem naming it', () => {
    const file = path.join(makeTempDir('sis2alma-host-keys-'), 'missing');
    assert.throws(
      () => hostVerifier(sftpConfig({ kind: 'known_hosts', file }), { lost: false }),
      (error: unknown) => error instanceof RunError && error.code === 'config_invalid' && error.message === `known_hosts file ${file} cannot be read (ENOENT)` && error.context.file === file,
    );
  });
});
