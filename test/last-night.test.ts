// The cursor through the last night's people (src/state/last-night.ts), on a real SQLite file:
// which people it finds, how it follows a feed in another order, and that the people it reports
// unfound are exactly those missing from tonight's feed, whatever the order and how far it looks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { LastNight, type WindowSize } from '../src/state/last-night.js';

interface Person {
  rowid: number;
  key: string;
  fingerprint: string;
  group_rule: string;
  merge: string | null;
  kinds: string;
  missing_since: number | null;
}

/** A state's people table holding these people, in a temporary file; `use` gets the connection. */
function withPeople<T>(people: Person[], use: (db: Database.Database) => T): T {
  const dir = mkdtempSync(path.join(tmpdir(), 'sis2alma-last-night-'));
  const db = new Database(path.join(dir, 'state.db'));
  try {
    db.exec('CREATE TABLE people (key TEXT NOT NULL, fingerprint TEXT NOT NULL, group_rule TEXT NOT NULL, merge TEXT, kinds TEXT NOT NULL, missing_since INTEGER)');
    const insert = db.prepare('INSERT INTO people (rowid, key, fingerprint, group_rule, merge, kinds, missing_since) VALUES (@rowid, @key, @fingerprint, @group_rule, @merge, @kinds, @missing_since)');
    db.transaction(() => people.forEach((p) => insert.run(p)))();
    return use(db);
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function person(n: number, over: Partial<Person> = {}): Person {
  return { rowid: n, key: `p${n}`, fingerprint: `fp${n}`, group_rule: 'staff', merge: null, kinds: n % 2 ? 'email' : 'email phone', missing_since: null, ...over };
}

/**
 * Tonight's feed as the Night meets it: each user tried near the cursor, and looked up in the state
 * by key when it is not there (found() tells the cursor). Returns the users found near the cursor
 * and the rowids reported unfound at the end.
 */
function night(db: Database.Database, people: Person[], feed: Person[], size?: WindowSize): { inWindow: string[]; unfound: number[]; kinds: Map<string, number>; outOfOrder: number } {
  const last = new LastNight(db, 'main', size);
  const byKey = new Map(people.map((p) => [p.key, p]));
  const inWindow: string[] = [];
  for (const user of feed) {
    if (last.find(user.fingerprint, user.group_rule, user.merge) !== undefined) inWindow.push(user.key);
    else {
      const before = byKey.get(user.key);
      if (before) last.found(before.rowid, before.fingerprint === user.fingerprint && before.group_rule === user.group_rule && before.merge === user.merge && before.missing_since === null);
    }
  }
  return { inWindow, unfound: last.finish().sort((a, b) => a - b), kinds: last.kinds, outOfOrder: last.outOfOrder };
}

const SMALL: WindowSize = { ahead: 8, behind: 8, chunk: 4 };

test('a feed in last night\'s order: every unchanged user is found by the cursor; the unfound are the people who left', () => {
  const people = Array.from({ length: 200 }, (_, i) => person(i + 1));
  const feed = people.filter((p) => p.rowid % 10 !== 0);
  withPeople(people, (db) => {
    const { inWindow, unfound, kinds, outOfOrder } = night(db, people, feed, SMALL);
    assert.equal(inWindow.length, 180);
    assert.equal(outOfOrder, 0);
    assert.deepEqual(unfound, people.filter((p) => p.rowid % 10 === 0).map((p) => p.rowid));
    // Every person of the last night is counted by kinds, also those read only at the end.
    assert.deepEqual(Object.fromEntries(kinds), { email: 100, 'email phone': 100 });
  });
});

test('a user is unchanged only with the same fingerprint, group rule and merge reason', () => {
  const people = [person(1), person(2, { merge: 'priority' }), person(3)];
  withPeople(people, (db) => {
    const last = new LastNight(db, 'main', SMALL);
    assert.equal(last.find('fp1', 'students', null), undefined, 'another group rule');
    assert.equal(last.find('fp2', 'staff', null), undefined, 'no merge reason, where there was one');
    assert.equal(last.find('fp3', 'staff', ''), undefined, 'an empty merge reason is not none');
    assert.equal(last.find('fp2', 'staff', 'priority'), 2);
    assert.equal(last.find('fp2', 'staff', 'priority'), undefined, 'found once only');
    assert.deepEqual(last.finish(), [1, 3]);
  });
});

test('people missing since an earlier night are never found by the cursor, nor reported again', () => {
  const people = [person(1), person(2, { missing_since: 1 }), person(3), person(4, { missing_since: 2 })];
  withPeople(people, (db) => {
    const { inWindow, unfound, kinds } = night(db, people, [person(2), person(3)], SMALL);
    assert.deepEqual(inWindow, ['p3']);
    assert.deepEqual(unfound, [1]);
    assert.equal([...kinds.values()].reduce((a, b) => a + b, 0), 2);
  });
});

test('after a gap longer than the look-ahead (people who left, or new people), a few look-ups put the cursor back beside the feed', () => {
  const people = Array.from({ length: 300 }, (_, i) => person(i + 1));
  // 100 people in a row left, then the feed goes on as last night; 50 new people come between.
  const fresh = Array.from({ length: 50 }, (_, i) => person(1000 + i, { key: `new${i}` }));
  const feed = [...people.slice(0, 50), ...fresh, ...people.slice(150)];
  withPeople(people, (db) => {
    const { inWindow, unfound } = night(db, people, feed, SMALL);
    assert.deepEqual(unfound, people.slice(50, 150).map((p) => p.rowid));
    // Only the first few users after the gap had to be looked up.
    assert.equal(inWindow.length, 50 + 150 - 4);
  });
});

test('two neighbours written in the other order tonight are both found near the cursor, without a look-up', () => {
  const people = Array.from({ length: 40 }, (_, i) => person(i + 1));
  const feed = [...people];
  [feed[10], feed[11]] = [feed[11]!, feed[10]!];
  [feed[30], feed[33]] = [feed[33]!, feed[30]!];
  withPeople(people, (db) => {
    const { inWindow, unfound, outOfOrder } = night(db, people, feed, SMALL);
    assert.equal(inWindow.length, 40);
    assert.equal(outOfOrder, 0);
    assert.deepEqual(unfound, []);
  });
});

test('a gap longer than the look-ahead but inside the rows read at once: a few look-ups move the cursor past it', () => {
  const people = Array.from({ length: 200 }, (_, i) => person(i + 1));
  // 20 people in a row left; the cursor looks 4 rows ahead and reads 64 at once.
  const feed = [...people.slice(0, 30), ...people.slice(50)];
  withPeople(people, (db) => {
    const { inWindow, unfound, outOfOrder } = night(db, people, feed, { ahead: 4, behind: 4, chunk: 64 });
    assert.deepEqual(unfound, people.slice(30, 50).map((p) => p.rowid));
    assert.equal(outOfOrder, 4);
    assert.equal(inWindow.length, 180 - 4);
  });
});

test('a block of people first delivered after the others, in the middle of the feed: the cursor goes to them and comes back', () => {
  // Rows 201-220 were added on a later night (a new class): they are at the end of the table, and
  // a feed sorted by name has them in its middle.
  const people = Array.from({ length: 220 }, (_, i) => person(i + 1));
  const feed = [...people.slice(0, 100), ...people.slice(200), ...people.slice(100, 200)];
  withPeople(people, (db) => {
    const { inWindow, unfound, outOfOrder, kinds } = night(db, people, feed, { ahead: 8, behind: 8, chunk: 16 });
    assert.deepEqual(unfound, []);
    // Four look-ups into the block, four back out of it; every other user found by the cursor.
    assert.equal(outOfOrder, 8);
    assert.equal(inWindow.length, 220 - 8);
    assert.equal([...kinds.values()].reduce((a, b) => a + b, 0), 220);
  });
});

test('users looked up in another order than the last night\'s do not move the cursor', () => {
  const people = Array.from({ length: 120 }, (_, i) => person(i + 1));
  // Four unchanged users of far rows, in descending order, then the feed goes on as last night.
  const feed = [people[0]!, people[110]!, people[100]!, people[90]!, people[80]!, ...people.slice(1, 80), ...people.slice(81, 90), ...people.slice(91, 100), ...people.slice(101, 110), ...people.slice(111)];
  withPeople(people, (db) => {
    const { inWindow, unfound, outOfOrder } = night(db, people, feed, { ahead: 8, behind: 8, chunk: 16 });
    assert.deepEqual(unfound, []);
    assert.equal(outOfOrder, 4);
    assert.equal(inWindow.length, 116);
  });
});

test('a changed user written elsewhere in the feed than last night (rows merged then, one row now) does not move the cursor', () => {
  const people = Array.from({ length: 300 }, (_, i) => person(i + 1));
  // Person 280 changed and comes early tonight.
  const moved = { ...people[279]!, fingerprint: 'fp280-new' };
  const feed = [...people.slice(0, 20), moved, ...people.slice(20, 279), ...people.slice(280)];
  withPeople(people, (db) => {
    const { inWindow, unfound } = night(db, people, feed, SMALL);
    assert.deepEqual(unfound, []);
    // Every unchanged user was found where the cursor was: none had to be looked up.
    assert.equal(inWindow.length, 299);
  });
});

test('a feed in reverse order: correct, each user found by look-up', () => {
  const people = Array.from({ length: 100 }, (_, i) => person(i + 1));
  const feed = [...people].reverse().filter((p) => p.rowid !== 40);
  withPeople(people, (db) => {
    const { unfound, inWindow, outOfOrder } = night(db, people, feed, SMALL);
    assert.deepEqual(unfound, [40]);
    // Every user is found once, by the cursor or out of order (by a look-up).
    assert.equal(inWindow.length + outOfOrder, 99);
    assert.ok(outOfOrder > 50, `${outOfOrder} users out of order`);
  });
});

test('whatever the order of the feed and how far the cursor looks, the unfound are exactly the people of the last night not in the feed', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 120 }),
      fc.array(fc.nat(), { maxLength: 200 }),
      fc.func(fc.boolean()),
      fc.record({ ahead: fc.integer({ min: 1, max: 20 }), behind: fc.integer({ min: 0, max: 20 }), chunk: fc.integer({ min: 1, max: 10 }) }),
      fc.func(fc.boolean()),
      fc.func(fc.boolean()),
      (count, shuffle, leaves, size, missing, changes) => {
        // Rowids with gaps, as a state's are after people come and go.
        const people = Array.from({ length: count }, (_, i) => person(3 * i + 1 + (i % 2), { missing_since: missing(i) ? 1 : null }));
        const staying = people.filter((_, i) => !leaves(i));
        // Some change: found only by look-up.
        const feed = staying.map((p, i) => (changes(i) ? { ...p, fingerprint: `${p.fingerprint}-changed` } : p));
        shuffle.forEach((n, i) => {
          if (!feed.length) return;
          const a = i % feed.length;
          const b = n % feed.length;
          [feed[a], feed[b]] = [feed[b]!, feed[a]!];
        });
        return withPeople(people, (db) => {
          const { unfound } = night(db, people, feed, size);
          const expected = people.filter((p) => p.missing_since === null && !staying.includes(p)).map((p) => p.rowid);
          assert.deepEqual(unfound, expected);
          return true;
        });
      },
    ),
    { numRuns: 150 },
  );
});
