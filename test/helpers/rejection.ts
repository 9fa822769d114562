// The RunError a promise is rejected with; fails the test when it resolves or rejects with anything else.
import assert from 'node:assert/strict';
import { RunError } from '../../src/shared/errors.js';

export async function rejection(promise: Promise<unknown>): Promise<RunError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof RunError, `expected a RunError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected the delivery to fail');
}
