// src/across-users.ts on its own: Alma's rules across users (an identifier value is unique in the
// feed and never another user's primary id; the first row to carry it keeps it), both for a user
// built in the main thread (check) and for one a mapping thread wrote as XML (checkWritten).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { AcrossUsers } from '../src/pipeline/across-users.js';
import { IdIndex, hashInto, idKey } from '../src/pipeline/merge.js';
import { ID_TEXT_SEPARATOR } from '../src/pipeline/map-separators.js';
import type { MapPieceResult } from '../src/pipeline/map-worker.js';
import type { AlmaUser } from '../src/shared/alma.js';
import type { RowWarning } from '../src/shared/errors.js';
import { userXml } from '../src/pipeline/xml.js';

type Id = [id_type: string, value: string, note?: string];

function user(primary_id: string, ids: Id[] = []): AlmaUser {
  return {
    primary_id,
    contact_info: { addresses: [], emails: [], phones: [] },
    user_identifiers: ids.map(([id_type, value, note]) => (note === undefined ? { id_type, value } : { id_type, value, note })),
    user_notes: [],
    user_statistics: [],
  };
}

/** The primary ids of the feed, row 1 first, as convert's first pass indexes them (first row, number of rows). */
function primaryIndex(ids: string[]): IdIndex {
  const index = new IdIndex(16);
  for (const [k, id] of ids.entries()) {
    const { slot, isNew } = index.upsert(idKey(id));
    index.set(slot, isNew ? k + 1 : index.first(slot), isNew ? 1 : index.second(slot) + 1);
  }
  return index;
}

const label = (ordinal: number) => `staff.csv:${ordinal}`;

function across(primaryIds: string[]): AcrossUsers {
  return new AcrossUsers(primaryIndex(primaryIds), label, 16);
}

/** A piece as a mapping thread answers it, with every row written (map-worker.ts's mapPiece). */
function piece(users: AlmaUser[]): { result: MapPieceResult; xml: Buffer[] } {
  const n = users.length;
  const count = users.reduce((sum, u) => sum + u.user_identifiers.length, 0);
  const result: MapPieceResult = {
    id: 0,
    rows: n,
    xml: new Uint8Array(0),
    ends: new Uint32Array(n),
    primaryHashes: new Uint32Array(2 * n),
    idHashes: new Uint32Array(2 * count),
    idStarts: new Uint32Array(n + 1),
    idText: '',
    idTextEnds: new Uint32Array(n),
    groupRules: new Uint16Array(n),
    others: [],
  };
  let k = 0;
  for (const [i, u] of users.entries()) {
    hashInto(idKey(u.primary_id), result.primaryHashes, 2 * i);
    result.idText += u.primary_id;
    for (const identifier of u.user_identifiers) {
      hashInto(idKey(identifier.value), result.idHashes, 2 * k++);
      result.idText += ID_TEXT_SEPARATOR + identifier.id_type + ID_TEXT_SEPARATOR + identifier.value + ID_TEXT_SEPARATOR + (identifier.note ?? '') + ID_TEXT_SEPARATOR + (identifier.status ?? '');
    }
    result.idStarts[i + 1] = k;
    result.idTextEnds[i] = result.idText.length;
  }
  return { result, xml: users.map((u) => Buffer.from(userXml(u))) };
}

const usedBy = (idType: string, value: string, row: string): RowWarning => ({
  kind: 'duplicate_identifier',
  message: `identifier ${idType} '${value}' is already used by row ${row}, which keeps it; left out here`,
  value,
});
const primaryOf = (idType: string, value: string, row: string): RowWarning => ({
  kind: 'duplicate_identifier',
  message: `identifier ${idType} '${value}' is the primary id of the user in row ${row}, which keeps it; left out here`,
  value,
});

describe('AcrossUsers.check', () => {
  test('a user whose identifiers nobody else has keeps them all, with no warning', () => {
    const rules = across(['P1']);
    const u = user('P1', [['BARCODE', 'B1'], ['UNIV_ID', 'U1', 'from HR']]);
    const warnings: RowWarning[] = [];
    rules.check(u, 1, warnings);
    assert.deepEqual(u.user_identifiers, [{ id_type: 'BARCODE', value: 'B1' }, { id_type: 'UNIV_ID', value: 'U1', note: 'from HR' }]);
    assert.deepEqual(warnings, []);
  });

  test('an identifier that repeats the user’s own primary id (in any case) is kept', () => {
    const rules = across(['P1']);
    const u = user('P1', [['UNIV_ID', 'p1']]);
    const warnings: RowWarning[] = [];
    rules.check(u, 1, warnings);
    assert.deepEqual(u.user_identifiers, [{ id_type: 'UNIV_ID', value: 'p1' }]);
    assert.deepEqual(warnings, []);
  });

  test('an identifier that is another user’s primary id is left out, naming that user’s row', () => {
    const rules = across(['P1', 'P2', 'P3']);
    const u = user('P1', [['UNIV_ID', 'p3'], ['BARCODE', 'B1']]);
    const warnings: RowWarning[] = [];
    rules.check(u, 1, warnings);
    assert.deepEqual(u.user_identifiers, [{ id_type: 'BARCODE', value: 'B1' }]);
    assert.deepEqual(warnings, [primaryOf('UNIV_ID', 'p3', 'staff.csv:3')]);
  });

  test('the primary id in the index’s first slot is found like any other', () => {
    // A key whose hash puts it in slot 0 of an empty index of 22 slots (IdIndex(16)).
    const out = new Uint32Array(2);
    let key = '';
    for (let k = 0; ; k++) {
      hashInto(`z${k}`, out, 0);
      if (out[0]! % 22 === 0) {
        key = `z${k}`;
        break;
      }
    }
    const index = primaryIndex([key, 'P2']);
    assert.equal(index.find(key), 0);
    const rules = new AcrossUsers(index, label, 16);
    const u = user('P2', [['UNIV_ID', key.toUpperCase()]]);
    const warnings: RowWarning[] = [];
    rules.check(u, 2, warnings);
    assert.deepEqual(u.user_identifiers, []);
    assert.deepEqual(warnings, [primaryOf('UNIV_ID', key.toUpperCase(), 'staff.csv:1')]);
  });

  test('an identifier whose hash shares one half with the user’s own primary id is still another user’s primary id', () => {
    // k52057 and k55858 share the first of their two hashes; k148396 and k187270 the second.
    for (const [x, y] of [['k52057', 'k55858'], ['k148396', 'k187270']] as const) {
      const rules = across([x, y]);
      const u = user(x, [['UNIV_ID', y]]);
      const warnings: RowWarning[] = [];
      rules.check(u, 1, warnings);
      assert.deepEqual(u.user_identifiers, []);
      assert.deepEqual(warnings, [primaryOf('UNIV_ID', y, 'staff.csv:2')]);
    }
  });

  test('the first row to carry a value keeps it; a later one loses it, whatever its case', () => {
    const rules = across(['P1', 'P2', 'P3']);
    const first: RowWarning[] = [];
    const a = user('P1');
    rules.check(a, 1, first);
    const b = user('P2', [['BARCODE', 'B7']]);
    rules.check(b, 2, first);
    assert.deepEqual(first, []);
    const c = user('P3', [['UNIV_ID', 'U3'], ['BARCODE', 'b7'], ['OTHER', 'X3']]);
    const warnings: RowWarning[] = [];
    rules.check(c, 3, warnings);
    assert.deepEqual(c.user_identifiers, [{ id_type: 'UNIV_ID', value: 'U3' }, { id_type: 'OTHER', value: 'X3' }]);
    assert.deepEqual(warnings, [usedBy('BARCODE', 'b7', 'staff.csv:2')]);
    assert.deepEqual(b.user_identifiers, [{ id_type: 'BARCODE', value: 'B7' }]);
  });

  test('losing the first identifier keeps the ones after it, in order', () => {
    const rules = across(['P1', 'P2']);
    rules.check(user('P1', [['BARCODE', 'B1']]), 1, []);
    const u = user('P2', [['BARCODE', 'B1'], ['UNIV_ID', 'U2'], ['OTHER', 'X2']]);
    const warnings: RowWarning[] = [];
    rules.check(u, 2, warnings);
    assert.deepEqual(u.user_identifiers, [{ id_type: 'UNIV_ID', value: 'U2' }, { id_type: 'OTHER', value: 'X2' }]);
    assert.deepEqual(warnings, [usedBy('BARCODE', 'B1', 'staff.csv:1')]);
  });

  test('a user who loses every identifier is left with none, and one warning each', () => {
    const rules = across(['P1', 'P2']);
    rules.check(user('P1', [['BARCODE', 'B1'], ['OTHER', 'X1']]), 1, []);
    const u = user('P2', [['BARCODE', 'b1'], ['UNIV_ID', 'P1'], ['OTHER', 'x1']]);
    const warnings: RowWarning[] = [];
    rules.check(u, 2, warnings);
    assert.deepEqual(u.user_identifiers, []);
    assert.deepEqual(warnings, [usedBy('BARCODE', 'b1', 'staff.csv:1'), primaryOf('UNIV_ID', 'P1', 'staff.csv:1'), usedBy('OTHER', 'x1', 'staff.csv:1')]);
  });

  test('warnings are added after those the user already has', () => {
    const rules = across(['P1', 'P2']);
    rules.check(user('P1', [['BARCODE', 'B1']]), 1, []);
    const earlier: RowWarning = { kind: 'duplicate_identifier', message: 'earlier', value: 'e' };
    const warnings: RowWarning[] = [earlier];
    rules.check(user('P2', [['BARCODE', 'B1']]), 2, warnings);
    assert.deepEqual(warnings, [earlier, usedBy('BARCODE', 'B1', 'staff.csv:1')]);
  });
});

describe('AcrossUsers.indexBytes', () => {
  test('is the identifier index’s table: three words a slot, a quarter of the slots left free', () => {
    // 100 values → ceil(100 / 0.75) = 134 slots of 3 words of 4 bytes.
    assert.equal(new AcrossUsers(primaryIndex([]), label, 100).indexBytes, 134 * 3 * 4);
    // Never fewer than 16 slots.
    assert.equal(new AcrossUsers(primaryIndex([]), label, 1).indexBytes, 16 * 3 * 4);
  });
});

describe('AcrossUsers.checkWritten', () => {
  test('a user who keeps every identifier gets the XML the thread wrote, untouched', () => {
    const rules = across(['P1', 'P2']);
    const users = [user('P1', [['BARCODE', 'B1'], ['UNIV_ID', 'p1']]), user('P2', [['BARCODE', 'B2']])];
    const { result, xml } = piece(users);
    for (const i of [0, 1]) {
      const warnings: RowWarning[] = [];
      assert.equal(rules.checkWritten(result, i, xml[i]!, i + 1, warnings), xml[i]);
      assert.deepEqual(warnings, []);
    }
  });

  test('a user who loses identifiers is written again without them, notes kept, and told why', () => {
    const rules = across(['P1', 'P2', 'P3']);
    const users = [
      user('P1', [['BARCODE', 'B1', 'card'], ['OTHER', 'X1']]),
      user('P2', [['UNIV_ID', 'U2', 'from HR'], ['BARCODE', 'b1'], ['OTHER', 'O2'], ['OTHER', 'p3'], ['INST_ID', 'I2']]),
    ];
    const { result, xml } = piece(users);
    assert.equal(rules.checkWritten(result, 0, xml[0]!, 1, []), xml[0]);
    const warnings: RowWarning[] = [];
    const out = rules.checkWritten(result, 1, xml[1]!, 2, warnings);
    const expected = user('P2', [['UNIV_ID', 'U2', 'from HR'], ['OTHER', 'O2'], ['INST_ID', 'I2']]);
    assert.equal(out.toString('utf8'), userXml(expected));
    assert.deepEqual(warnings, [usedBy('BARCODE', 'b1', 'staff.csv:1'), primaryOf('OTHER', 'p3', 'staff.csv:3')]);
  });

  test('a later piece’s user loses a value an earlier piece’s user keeps, and the value is recorded once', () => {
    const rules = across(['P1', 'P2', 'P3']);
    const one = piece([user('P1', [['BARCODE', 'B1']])]);
    assert.equal(rules.checkWritten(one.result, 0, one.xml[0]!, 1, []), one.xml[0]);
    const two = piece([user('P2', [['BARCODE', 'B2']]), user('P3', [['BARCODE', 'B1'], ['BARCODE', 'b2']])]);
    assert.equal(rules.checkWritten(two.result, 0, two.xml[0]!, 2, []), two.xml[0]);
    const warnings: RowWarning[] = [];
    const out = rules.checkWritten(two.result, 1, two.xml[1]!, 3, warnings);
    assert.equal(out.toString('utf8'), userXml(user('P3')));
    assert.deepEqual(warnings, [usedBy('BARCODE', 'B1', 'staff.csv:1'), usedBy('BARCODE', 'b2', 'staff.csv:2')]);
  });

  test('says so when the XML does not hold the identifiers as written', () => {
    const rules = across(['P1', 'P2']);
    rules.check(user('P1', [['BARCODE', 'B1']]), 1, []);
    const { result } = piece([user('P2', [['BARCODE', 'B1']])]);
    assert.throws(() => rules.checkWritten(result, 0, Buffer.from(userXml(user('P2'))), 2, []), {
      message: 'the XML of user P2 has no <user_identifiers> as written: cannot leave an identifier out',
    });
  });

  test('check and checkWritten make the same decisions', () => {
    const users = [
      user('P1', [['BARCODE', 'B1']]),
      user('P2', [['BARCODE', 'b1'], ['UNIV_ID', 'U2']]),
      user('P3', [['UNIV_ID', 'u2'], ['OTHER', 'p1'], ['OTHER', 'p3']]),
    ];
    const byCheck = across(['P1', 'P2', 'P3']);
    const byXml = across(['P1', 'P2', 'P3']);
    const { result, xml } = piece(users);
    for (const [i, u] of users.entries()) {
      const w1: RowWarning[] = [];
      const w2: RowWarning[] = [];
      const written = byXml.checkWritten(result, i, xml[i]!, i + 1, w2);
      const checked = structuredClone(u);
      byCheck.check(checked, i + 1, w1);
      assert.equal(written.toString('utf8'), userXml(checked));
      assert.deepEqual(w2, w1);
    }
  });
});
