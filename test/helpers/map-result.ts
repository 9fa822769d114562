// The outcome of mapping one row, asserted: the user written, or the row rejected.
import assert from 'node:assert/strict';
import type { MapResult, MappedUser, RejectedRow } from '../../src/mapping/map.js';

export function written(result: MapResult): MappedUser {
  assert.ok(result.ok, `expected a user, got ${JSON.stringify(!result.ok && result.problems)}`);
  return result;
}

export function rejected(result: MapResult): RejectedRow {
  assert.ok(!result.ok, `expected a rejection, got ${JSON.stringify(result.ok && result.user)}`);
  return result;
}
