// How delivery words what went wrong, without a server: an error's first line without the
// prefixes ssh2-sftp-client puts before it, and a wait in seconds as the retry lines say it.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { DeliveryError, firstLine, formatSeconds } from '../src/delivery/target.js';

describe('firstLine', () => {
  test('the first line of an error or of anything thrown, without the leading "name: " and "name->: " prefixes', () => {
    assert.equal(firstLine(new Error('boom\nat the second line')), 'boom');
    assert.equal(firstLine('thrown as a string\nsecond'), 'thrown as a string');
    assert.equal(firstLine(42), '42');
    assert.equal(firstLine(new Error('connect: getConnection: All configured authentication methods failed')), 'All configured authentication methods failed');
    assert.equal(firstLine(new Error('_put: Write stream error: Failure /in/a.zip.part')), 'Write stream error: Failure /in/a.zip.part');
    assert.equal(firstLine(new Error('rename->: No such file')), 'No such file');
    assert.equal(firstLine(new Error('no prefix: here, after a space')), 'no prefix: here, after a space');
    assert.equal(firstLine(new Error('a1: digits are no prefix')), 'a1: digits are no prefix');
  });
});

describe('formatSeconds', () => {
  test('below a second to the hundredth, from a second on to the tenth, without trailing zeros', () => {
    assert.deepEqual([10, 250, 999, 1000, 1250, 1500, 2000, 30_000].map(formatSeconds), ['0.01 s', '0.25 s', '1 s', '1 s', '1.3 s', '1.5 s', '2 s', '30 s']);
  });
});

describe('DeliveryError', () => {
  test('is a RunError with its code, says whether a retry may help, and names a file only when given one', () => {
    const e = new DeliveryError('host_key_rejected', 'refused', false);
    assert.deepEqual([e.code, e.message, e.transient, e.exitCode, e.context], ['host_key_rejected', 'refused', false, 10, {}]);
    const f = new DeliveryError('delivery_failed', 'lost', true, '/in/a.zip');
    assert.deepEqual([f.code, f.transient, f.exitCode, f.context], ['delivery_failed', true, 6, { file: '/in/a.zip' }]);
  });
});
