// src/merge.ts on its own: the index of ids (IdIndex), the people who wait for their other rows
// (PeopleInWaiting, byRealId) and mergeUsers, the decision of which row of a person wins and what
// the one user sent to Alma carries.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { IdIndex, PeopleInWaiting, byRealId, hashInto, idKey, mergeUsers, type MergeMember } from '../src/pipeline/merge.js';
import { emptyUser, type AlmaUser } from '../src/shared/alma.js';
import type { GroupPolicy } from '../src/mapping/model.js';
import type { RowWarning } from '../src/shared/errors.js';

describe('idKey', () => {
  test('compares ids without case', () => {
    assert.equal(idKey('AbC-12'), 'abc-12');
  });
});

describe('IdIndex', () => {
  test('finds nothing in an empty index', () => {
    const index = new IdIndex();
    assert.equal(index.find('a'), -1);
    assert.equal(index.size, 0);
  });

  test('upsert inserts a key once; find returns its slot', () => {
    const index = new IdIndex(16);
    const a = index.upsert('a');
    assert.equal(a.isNew, true);
    const again = index.upsert('a');
    assert.deepEqual(again, { slot: a.slot, isNew: false });
    assert.equal(index.find('a'), a.slot);
    assert.equal(index.find('b'), -1);
    assert.equal(index.size, 1);
    const b = index.upsert('b');
    assert.equal(b.isNew, true);
    assert.notEqual(b.slot, a.slot);
    assert.equal(index.size, 2);
    // Keys are exact: the caller lowers their case (idKey).
    assert.equal(index.find('A'), -1);
  });

  test('a new key starts with values 0, 0; set and first and second keep two numbers a key', () => {
    const index = new IdIndex(16);
    const { slot } = index.upsert('a');
    assert.equal(index.first(slot), 0);
    assert.equal(index.second(slot), 0);
    index.set(slot, 7, 3);
    const other = index.upsert('b').slot;
    index.set(other, 9, 4);
    assert.equal(index.first(slot), 7);
    assert.equal(index.second(slot), 3);
    assert.equal(index.first(other), 9);
    assert.equal(index.second(other), 4);
  });

  test('an index of one value a key keeps the first and answers 0 for the second', () => {
    const index = new IdIndex(16, { values: 1 });
    const a = index.upsert('a').slot;
    const b = index.upsert('b').slot;
    index.set(a, 7, 3);
    index.set(b, 9, 4);
    assert.equal(index.first(a), 7);
    assert.equal(index.second(a), 0);
    assert.equal(index.first(b), 9);
    assert.equal(index.second(b), 0);
    assert.equal(index.bytes, 22 * 3 * 4);
  });

  test('is sized for its capacity at three-quarters full, never under 16 slots', () => {
    assert.equal(new IdIndex(1).bytes, 16 * 4 * 4);
    assert.equal(new IdIndex(16).bytes, 22 * 4 * 4);
    assert.equal(new IdIndex(100, { values: 1 }).bytes, 134 * 3 * 4);
    assert.equal(new IdIndex().bytes, Math.ceil(65536 / 0.75) * 4 * 4);
  });

  test('grows by half once it would be more than three-quarters full, keeping every key and value', () => {
    const index = new IdIndex(16); // 22 slots: 16 keys fit
    for (let k = 0; k < 16; k++) index.set(index.upsert(`id${k}`).slot, k + 1, 2 * k);
    assert.equal(index.bytes, 22 * 4 * 4);
    index.set(index.upsert('id16').slot, 17, 32);
    assert.equal(index.bytes, 33 * 4 * 4);
    for (let k = 17; k < 1000; k++) index.set(index.upsert(`id${k}`).slot, k + 1, 2 * k);
    assert.equal(index.size, 1000);
    for (let k = 0; k < 1000; k++) {
      const slot = index.find(`id${k}`);
      assert.ok(slot >= 0, `id${k} is found`);
      assert.equal(index.first(slot), k + 1);
      assert.equal(index.second(slot), 2 * k);
      assert.equal(index.upsert(`id${k}`).isNew, false);
    }
    for (let k = 1000; k < 1100; k++) assert.equal(index.find(`id${k}`), -1);
    assert.equal(index.size, 1000);
  });

  test('an index of 16 slots holds 12 keys and grows to 24 at the 13th', () => {
    const index = new IdIndex(1);
    for (let k = 0; k < 12; k++) index.upsert(`id${k}`);
    assert.equal(index.bytes, 16 * 4 * 4);
    index.upsert('id12');
    assert.equal(index.bytes, 24 * 4 * 4);
    for (let k = 0; k < 13; k++) assert.ok(index.find(`id${k}`) >= 0);
  });

  test('reserve makes room for a capacity in one step, and never shrinks', () => {
    const index = new IdIndex(16);
    for (let k = 0; k < 10; k++) index.set(index.upsert(`id${k}`).slot, k + 1, 0);
    index.reserve(1000);
    assert.equal(index.bytes, Math.ceil(1000 / 0.75) * 4 * 4);
    index.reserve(100);
    assert.equal(index.bytes, Math.ceil(1000 / 0.75) * 4 * 4);
    for (let k = 0; k < 10; k++) assert.equal(index.first(index.find(`id${k}`)), k + 1);
    for (let k = 10; k < 750; k++) index.upsert(`id${k}`);
    assert.equal(index.bytes, Math.ceil(1000 / 0.75) * 4 * 4, '750 keys fit in what was reserved for 1,000');
    const small = new IdIndex(16);
    small.reserve(12); // 16 slots: fewer than it has
    assert.equal(small.bytes, 22 * 4 * 4);
  });

  test('reserve that needs no more room keeps the table, so a view of it stays valid', () => {
    const index = new IdIndex(1); // 16 slots
    const slots = new Map<string, number>();
    for (let k = 0; k < 12; k++) slots.set(`id${k}`, index.upsert(`id${k}`).slot);
    const table = index.memory.table;
    index.reserve(12); // ceil(12 / 0.75) = 16: room enough
    assert.equal(index.memory.table, table);
    for (const [key, slot] of slots) assert.equal(index.find(key), slot);
  });

  test('a shared index lives in shared memory, another in ordinary memory', () => {
    assert.ok(new IdIndex(16, { shared: true }).memory.table.buffer instanceof SharedArrayBuffer);
    assert.ok(!(new IdIndex(16).memory.table.buffer instanceof SharedArrayBuffer));
    const grown = new IdIndex(16, { shared: true });
    grown.reserve(1000);
    assert.ok(grown.memory.table.buffer instanceof SharedArrayBuffer);
  });

  test('a view reads what another index holds', () => {
    const index = new IdIndex(16, { shared: true });
    for (let k = 0; k < 40; k++) index.set(index.upsert(`id${k}`).slot, k + 1, k + 100);
    const memory = index.memory;
    assert.equal(memory.width, 4);
    assert.equal(memory.used, 40);
    const view = IdIndex.view(memory);
    assert.equal(view.size, 40);
    assert.equal(view.bytes, index.bytes);
    for (let k = 0; k < 40; k++) {
      const slot = view.find(`id${k}`);
      assert.equal(slot, index.find(`id${k}`));
      assert.equal(view.first(slot), k + 1);
      assert.equal(view.second(slot), k + 100);
    }
    assert.equal(view.find('id40'), -1);

    const narrow = new IdIndex(16, { values: 1 });
    for (let k = 0; k < 20; k++) narrow.set(narrow.upsert(`id${k}`).slot, k + 1, 0);
    assert.equal(narrow.memory.width, 3);
    const narrowView = IdIndex.view(narrow.memory);
    for (let k = 0; k < 20; k++) {
      const slot = narrowView.find(`id${k}`);
      assert.equal(narrowView.first(slot), k + 1);
      assert.equal(narrowView.second(slot), 0);
    }
  });

  test('hashInto writes the two hashes find uses, where it is told', () => {
    const index = new IdIndex(16);
    for (let k = 0; k < 30; k++) index.set(index.upsert(`id${k}`).slot, k + 1, 0);
    const out = new Uint32Array(6);
    hashInto('id7', out, 2);
    hashInto('id8', out, 4);
    assert.equal(out[0], 0);
    assert.equal(out[1], 0);
    assert.equal(index.findHashed(out[2]!, out[3]!), index.find('id7'));
    assert.equal(index.findHashed(out[4]!, out[5]!), index.find('id8'));
    assert.notEqual(index.find('id7'), index.find('id8'));
    // The same key from another thread's hashes is the same slot.
    const other = new IdIndex(16);
    const { slot, isNew } = other.upsertHashed(out[2]!, out[3]!);
    assert.equal(isNew, true);
    assert.equal(other.find('id7'), slot);
    assert.deepEqual(other.upsert('id7'), { slot, isNew: false });
  });

  test('the two hashes are cyrb53’s: its published values for a, b, revenge and revenue', () => {
    // cyrb53 (bryc, public domain) returns 2^32 · (h2 & (2^21 - 1)) + h1 of these two halves.
    const out = new Uint32Array(2);
    const cyrb53 = (key: string) => {
      hashInto(key, out, 0);
      return 4294967296 * (2097151 & out[1]!) + out[0]!;
    };
    assert.equal(cyrb53('a'), 7929297801672961);
    assert.equal(cyrb53('b'), 8684336938537663);
    assert.equal(cyrb53('revenge'), 4051478007546757);
    assert.equal(cyrb53('revenue'), 8309097637345594);
  });

  test('two keys that share one of their two hashes are still two keys', () => {
    // k52057 and k55858 share the first hash; k148396 and k187270 the second, and their first slot in 22.
    const out = new Uint32Array(4);
    hashInto('k52057', out, 0);
    hashInto('k55858', out, 2);
    assert.equal(out[0], out[2]);
    hashInto('k148396', out, 0);
    hashInto('k187270', out, 2);
    assert.equal(out[1], out[3]);
    for (const [x, y] of [['k52057', 'k55858'], ['k148396', 'k187270']] as const) {
      const index = new IdIndex(16);
      const sx = index.upsert(x).slot;
      assert.equal(index.find(y), -1);
      const sy = index.upsert(y);
      assert.equal(sy.isNew, true);
      assert.notEqual(sy.slot, sx);
      assert.equal(index.find(x), sx);
      assert.equal(index.find(y), sy.slot);
    }
  });

  test('different keys get different hashes, and the second hash is never 0', () => {
    const firsts = new Set<number>();
    const seconds = new Set<number>();
    const out = new Uint32Array(2);
    for (const key of ['', 'a', 'b', 'ab', 'ba', 'abc', 'acb', 'x'.repeat(100), 'x'.repeat(101)]) {
      hashInto(key, out, 0);
      assert.notEqual(out[1], 0);
      firsts.add(out[0]!);
      seconds.add(out[1]!);
    }
    assert.equal(firsts.size, 9);
    assert.equal(seconds.size, 9);
  });
});

describe('PeopleInWaiting', () => {
  test('a person of one row is complete at once', () => {
    const people = new PeopleInWaiting<string>();
    assert.deepEqual(people.arrive(1, 1, 'r1'), ['r1']);
    assert.deepEqual(people.incomplete(), []);
  });

  test('a person of three rows is complete at the third, rows in order; a rejected row counts but is not kept', () => {
    const people = new PeopleInWaiting<string>();
    assert.equal(people.arrive(4, 3, 'a1'), undefined);
    assert.equal(people.arrive(9, 2, 'b1'), undefined);
    assert.equal(people.arrive(4, 3, undefined), undefined);
    assert.deepEqual(people.incomplete(), [['a1'], ['b1']]);
    assert.deepEqual(people.arrive(4, 3, 'a3'), ['a1', 'a3']);
    assert.deepEqual(people.incomplete(), [['b1']]);
    assert.deepEqual(people.arrive(9, 2, 'b2'), ['b1', 'b2']);
    assert.deepEqual(people.incomplete(), []);
    // The slot is free again for a later person.
    assert.equal(people.arrive(4, 2, 'c1'), undefined);
    assert.deepEqual(people.incomplete(), [['c1']]);
  });

  test('a person whose rows are all rejected is complete with no rows', () => {
    const people = new PeopleInWaiting<string>();
    assert.equal(people.arrive(2, 2, undefined), undefined);
    assert.deepEqual(people.arrive(2, 2, undefined), []);
  });
});

describe('byRealId', () => {
  test('groups rows by their id without case, in the order of their first row', () => {
    const rows = [
      { id: 'B', n: 1 },
      { id: 'a', n: 2 },
      { id: 'b', n: 3 },
      { id: 'A', n: 4 },
      { id: 'c', n: 5 },
    ];
    assert.deepEqual(
      byRealId(rows, (r) => r.id).map((g) => g.map((r) => r.n)),
      [[1, 3], [2, 4], [5]],
    );
  });
});

// ---- mergeUsers ----

function policy(priority: string[] = [], exceptions: GroupPolicy['exceptions'] = []): GroupPolicy {
  return { rules: [], priority: new Map(priority.map((g, i) => [g, i])), exceptions };
}

function user(primary_id: string, fields: Partial<AlmaUser> = {}): AlmaUser {
  return { ...emptyUser(primary_id), ...fields };
}

function member(ordinal: number, fields: Partial<AlmaUser> = {}): MergeMember {
  return { ordinal, label: String(ordinal), user: user('P1', fields), warnings: [] };
}

const email = (email_address: string, preferred = false) => ({ email_address, preferred, email_types: ['personal'] });
const phone = (phone_number: string, preferred = false) => ({ phone_number, preferred, phone_types: ['home'] });
const address = (line1: string, postal_code?: string, preferred = false) => ({ line1, preferred, address_types: ['home'], ...(postal_code === undefined ? {} : { postal_code }) });

describe('mergeUsers: the winner', () => {
  test('rows of one group: the earliest row wins', () => {
    const d = mergeUsers([member(5, { user_group: 'STAFF', first_name: 'five' }), member(2, { user_group: 'STAFF', first_name: 'two' }), member(9, { user_group: 'STAFF', first_name: 'nine' })], policy());
    assert.equal(d.winner.ordinal, 2);
    assert.equal(d.user.first_name, 'two');
    assert.equal(d.reason, 'same group STAFF');
  });

  test('the group of higher priority wins over an earlier row', () => {
    const d = mergeUsers([member(1, { user_group: 'STUDENT' }), member(2, { user_group: 'STAFF' })], policy(['STAFF', 'STUDENT']));
    assert.equal(d.winner.ordinal, 2);
    assert.equal(d.user.user_group, 'STAFF');
    assert.equal(d.reason, 'STAFF wins over STUDENT by priority');
  });

  test('a listed group wins over an unlisted one, which wins over a row with no group', () => {
    const p = policy(['STAFF', 'STUDENT']);
    const three = mergeUsers([member(1), member(2, { user_group: 'GUEST' }), member(3, { user_group: 'STUDENT' }), member(4, { user_group: 'STAFF' })], p);
    assert.equal(three.winner.ordinal, 4);
    assert.equal(three.reason, 'STAFF wins over GUEST, STUDENT by priority');
    const unlisted = mergeUsers([member(1), member(2, { user_group: 'GUEST' })], p);
    assert.equal(unlisted.winner.ordinal, 2);
    assert.equal(unlisted.user.user_group, 'GUEST');
    const listedLast = mergeUsers([member(1, { user_group: 'GUEST' }), member(2, { user_group: 'STUDENT' })], p);
    assert.equal(listedLast.winner.ordinal, 2);
  });

  test('an active row wins over an inactive one whatever the priority; INACTIVE in any case', () => {
    const d = mergeUsers([member(1, { user_group: 'STAFF', status: 'inactive' }), member(2, { user_group: 'STUDENT', status: 'ACTIVE' })], policy(['STAFF', 'STUDENT']));
    assert.equal(d.winner.ordinal, 2);
    assert.equal(d.user.user_group, 'STUDENT');
    assert.equal(d.user.status, 'ACTIVE');
    assert.equal(d.reason, 'STUDENT (the active row) wins');
    const noStatus = mergeUsers([member(1, { user_group: 'STAFF', status: 'INACTIVE' }), member(2, { user_group: 'STUDENT' })], policy(['STAFF', 'STUDENT']));
    assert.equal(noStatus.winner.ordinal, 2);
    assert.equal(noStatus.reason, 'STUDENT (the active row) wins');
  });

  test('when every row is inactive, or every row active, priority decides and says so', () => {
    const p = policy(['STAFF', 'STUDENT']);
    const inactive = mergeUsers([member(1, { user_group: 'STUDENT', status: 'INACTIVE' }), member(2, { user_group: 'STAFF', status: 'INACTIVE' })], p);
    assert.equal(inactive.winner.ordinal, 2);
    assert.equal(inactive.reason, 'STAFF wins over STUDENT by priority');
    const active = mergeUsers([member(1, { user_group: 'STUDENT', status: 'ACTIVE' }), member(2, { user_group: 'STAFF', status: 'ACTIVE' })], p);
    assert.equal(active.winner.ordinal, 2);
    assert.equal(active.reason, 'STAFF wins over STUDENT by priority');
  });

  test('an active row of the winning group beats the same group’s inactive earlier row', () => {
    const d = mergeUsers([member(1, { user_group: 'STAFF', status: 'INACTIVE' }), member(2, { user_group: 'STAFF' })], policy(['STAFF']));
    assert.equal(d.winner.ordinal, 2);
    assert.equal(d.reason, 'same group STAFF');
  });

  test('an active winner with no status is not made inactive by a losing row’s INACTIVE; it keeps no status (active)', () => {
    const d = mergeUsers([member(1, { user_group: 'STAFF', status: 'INACTIVE' }), member(2, { user_group: 'STUDENT' })], policy(['STAFF', 'STUDENT']));
    assert.equal(d.winner.ordinal, 2);
    assert.equal(d.user.status, undefined);
    assert.equal(d.reason, 'STUDENT (the active row) wins');
  });

  test('an exception gives its group when the person has all of its groups, and its row wins', () => {
    const p = policy(['STAFF', 'UNDERGRAD'], [
      { name: 'nobody', groups: ['STAFF', 'ALUMNI'], group: 'ALUMNI' },
      { name: 'staff undergrads', groups: ['STAFF', 'UNDERGRAD'], group: 'UNDERGRAD' },
    ]);
    const d = mergeUsers([member(1, { user_group: 'STAFF', first_name: 'staff' }), member(2, { user_group: 'UNDERGRAD', first_name: 'student' })], p);
    assert.equal(d.winner.ordinal, 2);
    assert.equal(d.user.user_group, 'UNDERGRAD');
    assert.equal(d.user.first_name, 'student');
    assert.equal(d.reason, 'exception "staff undergrads" gives UNDERGRAD');
  });

  test('an exception whose group no row has keeps the winner and gives the group', () => {
    const p = policy(['STAFF', 'STUDENT'], [{ name: 'both', groups: ['STAFF', 'STUDENT'], group: 'SPECIAL' }]);
    const d = mergeUsers([member(1, { user_group: 'STUDENT' }), member(2, { user_group: 'STAFF' })], p);
    assert.equal(d.winner.ordinal, 2);
    assert.equal(d.user.user_group, 'SPECIAL');
    assert.equal(d.reason, 'exception "both" gives SPECIAL');
    const none = mergeUsers([member(1, { user_group: 'STUDENT' }), member(2, { user_group: 'STUDENT' })], p);
    assert.equal(none.user.user_group, 'STUDENT');
    assert.equal(none.reason, 'same group STUDENT');
  });
});

describe('mergeUsers: what the user carries', () => {
  test('the winner’s fields first; the other rows fill the ones it leaves empty, best-ranked first', () => {
    const d = mergeUsers(
      [
        member(1, { user_group: 'STUDENT', first_name: 'Ann', middle_name: 'M', job_category: 'student' }),
        member(2, { user_group: 'STAFF', first_name: 'Anne' }),
        member(3, { user_group: 'GUEST', middle_name: 'X', last_name: 'Lee', job_category: 'guest' }),
      ],
      policy(['STAFF', 'STUDENT']),
    );
    assert.deepEqual(d.user, user('P1', { user_group: 'STAFF', first_name: 'Anne', middle_name: 'M', job_category: 'student', last_name: 'Lee' }));
    assert.deepEqual(d.warnings, []);
  });

  test('the latest expiry and purge dates of the rows', () => {
    const d = mergeUsers(
      [
        member(1, { expiry_date: '2026-06-30', purge_date: '2027-06-30' }),
        member(2, { expiry_date: '2027-01-31' }),
        member(3, { expiry_date: '2025-01-01', purge_date: '2026-01-01' }),
      ],
      policy(),
    );
    assert.equal(d.user.expiry_date, '2027-01-31');
    assert.equal(d.user.purge_date, '2027-06-30');
    const fromOthers = mergeUsers([member(1), member(2, { expiry_date: '2026-06-30', purge_date: '2027-06-30' })], policy());
    assert.equal(fromOthers.user.expiry_date, '2026-06-30');
    assert.equal(fromOthers.user.purge_date, '2027-06-30');
    const later = mergeUsers([member(1, { purge_date: '2027-01-01' }), member(2, { purge_date: '2028-01-01' })], policy());
    assert.equal(later.user.purge_date, '2028-01-01');
    const none = mergeUsers([member(1), member(2)], policy());
    assert.equal(none.user.expiry_date, undefined);
    assert.equal(none.user.purge_date, undefined);
  });

  test('lists join without repeats: identifiers by type and value without case, emails without case, phones by digits', () => {
    const d = mergeUsers(
      [
        member(1, {
          user_identifiers: [{ id_type: 'BARCODE', value: 'B1' }],
          contact_info: { emails: [email('a@x.org')], phones: [phone('+1 555 0100'), phone('n/a')], addresses: [] },
        }),
        member(2, {
          user_identifiers: [{ id_type: 'BARCODE', value: 'b1' }, { id_type: 'UNIV_ID', value: 'U2' }, { id_type: 'UNIV_ID', value: 'u2' }],
          contact_info: { emails: [email('A@X.ORG'), email('b@x.org')], phones: [phone('15550100'), phone('555-0199'), phone('n/a'), phone('none')], addresses: [] },
        }),
      ],
      policy(),
    );
    assert.deepEqual(d.user.user_identifiers, [{ id_type: 'BARCODE', value: 'B1' }, { id_type: 'UNIV_ID', value: 'U2' }]);
    assert.deepEqual(d.user.contact_info.emails, [email('a@x.org', true), email('b@x.org')]);
    assert.deepEqual(d.user.contact_info.phones, [phone('+1 555 0100', true), phone('n/a'), phone('555-0199'), phone('none')]);
    assert.deepEqual(d.warnings, []);
  });

  test('addresses join by first line and postal code without case; statistics by category and type; notes by type and text', () => {
    const note = (note_type: string, note_text: string) => ({ note_type, note_text, user_viewable: false, popup_note: false });
    const d = mergeUsers(
      [
        member(1, {
          contact_info: { emails: [], phones: [], addresses: [address('1 Main St', '12345'), address('9 Elm Rd')] },
          user_statistics: [{ statistic_category: 'ENG', category_type: 'DEPT' }, { statistic_category: 'LAW' }],
          user_notes: [note('OTHER', 'hello')],
        }),
        member(2, {
          contact_info: { emails: [], phones: [], addresses: [address('1 MAIN ST', '12345'), address('1 Main St', '99999'), address('9 elm rd', '')] },
          user_statistics: [{ statistic_category: 'ENG', category_type: 'DEPT' }, { statistic_category: 'ENG', category_type: 'FAC' }, { statistic_category: 'LAW', category_type: '' }],
          user_notes: [note('OTHER', 'hello'), note('OTHER', 'Hello'), note('POPUP', 'hello')],
        }),
      ],
      policy(),
    );
    assert.deepEqual(d.user.contact_info.addresses, [address('1 Main St', '12345', true), address('9 Elm Rd'), address('1 Main St', '99999')]);
    assert.deepEqual(d.user.user_statistics, [{ statistic_category: 'ENG', category_type: 'DEPT' }, { statistic_category: 'LAW' }, { statistic_category: 'ENG', category_type: 'FAC' }]);
    assert.deepEqual(d.user.user_notes, [note('OTHER', 'hello'), note('OTHER', 'Hello'), note('POPUP', 'hello')]);
  });

  test('the parts of a key never run together: two items that would spell the same joined text are both kept', () => {
    const note = (note_type: string, note_text: string) => ({ note_type, note_text, user_viewable: false, popup_note: false });
    const d = mergeUsers(
      [
        member(1, {
          user_identifiers: [{ id_type: 'T1', value: '23' }],
          contact_info: { emails: [], phones: [], addresses: [address('1 Main', '12345')] },
          user_statistics: [{ statistic_category: 'AB', category_type: 'C' }],
          user_notes: [note('OTHER', 'x')],
        }),
        member(2, {
          user_identifiers: [{ id_type: 'T12', value: '3' }],
          contact_info: { emails: [], phones: [], addresses: [address('1 Main1', '2345')] },
          user_statistics: [{ statistic_category: 'A', category_type: 'BC' }],
          user_notes: [note('OTHE', 'Rx')],
        }),
      ],
      policy(),
    );
    assert.deepEqual(d.user.user_identifiers, [{ id_type: 'T1', value: '23' }, { id_type: 'T12', value: '3' }]);
    assert.deepEqual(d.user.contact_info.addresses, [address('1 Main', '12345', true), address('1 Main1', '2345')]);
    assert.deepEqual(d.user.user_statistics, [{ statistic_category: 'AB', category_type: 'C' }, { statistic_category: 'A', category_type: 'BC' }]);
    assert.deepEqual(d.user.user_notes, [note('OTHER', 'x'), note('OTHE', 'Rx')]);
  });

  test('a value another row carries as an identifier of another type is left out, with Alma’s rule within a user', () => {
    const d = mergeUsers(
      [member(1, { user_identifiers: [{ id_type: 'BARCODE', value: 'B1' }] }), member(2, { user_identifiers: [{ id_type: 'UNIV_ID', value: 'b1' }, { id_type: 'OTHER', value: 'p1' }] })],
      policy(),
    );
    assert.deepEqual(d.user.user_identifiers, [{ id_type: 'BARCODE', value: 'B1' }]);
    assert.deepEqual(d.warnings, [
      { kind: 'duplicate_identifier', message: "identifier UNIV_ID 'b1' repeats this user's BARCODE and was left out", value: 'b1' },
      { kind: 'duplicate_identifier', message: "identifier OTHER 'p1' repeats this user's primary_id and was left out", value: 'p1' },
    ]);
  });

  test('one preferred address, email and phone: the winner’s; the other rows’ are kept unflagged, and named', () => {
    const rows = [
      member(1, { user_group: 'STUDENT', contact_info: { addresses: [address('2 Oak Ave', undefined, true)], emails: [email('s@x.org', true)], phones: [phone('555-0101', true)] } }),
      member(2, { user_group: 'STAFF', contact_info: { addresses: [address('1 Main St', undefined, true)], emails: [email('w@x.org', true)], phones: [phone('555-0202', true)] } }),
    ];
    const d = mergeUsers(rows, policy(['STAFF', 'STUDENT']));
    assert.equal(d.winner.ordinal, 2);
    assert.deepEqual(d.user.contact_info, {
      addresses: [address('1 Main St', undefined, true), address('2 Oak Ave')],
      emails: [email('w@x.org', true), email('s@x.org')],
      phones: [phone('555-0202', true), phone('555-0101')],
    });
    assert.deepEqual(d.warnings, [
      { kind: 'extra_preferred', message: "row 1's preferred address '2 Oak Ave' is kept but not preferred: row 2's is (Alma takes one preferred address)", value: '2 Oak Ave' },
      { kind: 'extra_preferred', message: "row 1's preferred email 's@x.org' is kept but not preferred: row 2's is (Alma takes one preferred email)", value: 's@x.org' },
      { kind: 'extra_preferred', message: "row 1's preferred phone '555-0101' is kept but not preferred: row 2's is (Alma takes one preferred phone)", value: '555-0101' },
    ]);
    // The rows' own users are not changed.
    assert.equal(rows[0]!.user.contact_info.emails[0]!.preferred, true);
    assert.equal(rows[0]!.user.user_group, 'STUDENT');
  });

  test('each kind’s preferred item is looked up in its own list', () => {
    const d = mergeUsers(
      [
        member(1, { contact_info: { addresses: [], emails: [], phones: [phone('555-0101', true)] } }),
        member(2, { contact_info: { addresses: [], emails: [email('e@x.org', true)], phones: [phone('555-0202'), phone('555-0303', true)] } }),
      ],
      policy(),
    );
    assert.deepEqual(d.warnings, [
      { kind: 'extra_preferred', message: "row 2's preferred phone '555-0303' is kept but not preferred: row 1's is (Alma takes one preferred phone)", value: '555-0303' },
    ]);
  });

  test('when the winner has no preferred email, the first other row that has one keeps it', () => {
    const d = mergeUsers(
      [member(1, { contact_info: { addresses: [], emails: [email('w@x.org')], phones: [] } }), member(2, { contact_info: { addresses: [], emails: [email('two@x.org', true)], phones: [] } }), member(3, { contact_info: { addresses: [], emails: [email('three@x.org', true)], phones: [] } })],
      policy(),
    );
    assert.deepEqual(d.warnings, [
      { kind: 'extra_preferred', message: "row 3's preferred email 'three@x.org' is kept but not preferred: row 2's is (Alma takes one preferred email)", value: 'three@x.org' },
    ]);
  });

  test('the same preferred value in another row (in any case) is no second preferred one', () => {
    const d = mergeUsers(
      [member(1, { contact_info: { addresses: [], emails: [email('a@x.org', true)], phones: [] } }), member(2, { contact_info: { addresses: [], emails: [email('A@X.org', true), email('b@x.org')], phones: [] } })],
      policy(),
    );
    assert.deepEqual(d.warnings, []);
    assert.deepEqual(d.user.contact_info.emails, [email('a@x.org', true), email('b@x.org')]);
  });

  test('a preferred address without a first line is named by an empty one', () => {
    const bare = (preferred: boolean) => ({ preferred, city: 'Town', address_types: ['home'] });
    const d = mergeUsers(
      [member(1, { contact_info: { addresses: [address('1 Main St', undefined, true)], emails: [], phones: [] } }), member(2, { contact_info: { addresses: [bare(true)], emails: [], phones: [] } })],
      policy(),
    );
    assert.deepEqual(d.warnings, [
      { kind: 'extra_preferred', message: "row 2's preferred address '' is kept but not preferred: row 1's is (Alma takes one preferred address)", value: '' },
    ]);
  });

  test('lists only other rows have (blocks, resource-sharing libraries, notices) are joined in a list of the merged user’s own: the rows are left as they were', () => {
    const block = (block_description: string) => ({ block_type: 'GENERAL', block_description });
    const notice = (code: string, value: boolean) => ({ code, value });
    const rows = [
      member(1, { user_group: 'STAFF' }),
      member(2, { user_blocks: [block('Lost card')], rs_libraries: ['MAIN'], library_notices: [notice('N1', true)] }),
      member(3, { user_blocks: [block('Fees')], rs_libraries: ['LAW'], library_notices: [notice('N1', false), notice('N2', true)] }),
    ];
    const d = mergeUsers(rows, policy(['STAFF']));
    assert.equal(d.winner.ordinal, 1);
    assert.deepEqual(d.user.user_blocks, [block('Lost card'), block('Fees')]);
    assert.deepEqual(d.user.rs_libraries, ['MAIN', 'LAW']);
    assert.deepEqual(d.user.library_notices, [notice('N1', true), notice('N2', true)]);
    assert.equal(rows[0]!.user.user_blocks, undefined);
    assert.deepEqual(rows[1]!.user.user_blocks, [block('Lost card')]);
    assert.deepEqual(rows[1]!.user.rs_libraries, ['MAIN']);
    assert.deepEqual(rows[1]!.user.library_notices, [notice('N1', true)]);
  });

  test('the warnings of mergeUsers are its own: the members’ are left to the caller', () => {
    const own: RowWarning = { kind: 'duplicate_identifier', message: 'mine', value: 'x' };
    const d = mergeUsers([{ ...member(1), warnings: [own] }, member(2)], policy());
    assert.deepEqual(d.warnings, []);
  });
});
