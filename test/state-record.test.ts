// What the run state reads of a user's XML (src/state/user-record.ts) and how it writes a
// departure (src/state/departures.ts), on users written by the pipeline's own XML writer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emptyUser, type AlmaUser } from '../src/shared/alma.js';
import { userXml } from '../src/pipeline/xml.js';
import { changedFields, packBatch, packRecord, summarise, unpackBatch, unpackRecord } from '../src/state/user-record.js';
import { randomBytes } from 'node:crypto';
import { departurePurge, departureXml } from '../src/state/departures.js';
import type { DateRule } from '../src/mapping/model.js';
import { AlmaSchema } from '../src/pipeline/validate.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { MIGRATIONS, migrate, RecordReader, type RecordColumns } from '../src/state/store.js';

function user(change: (u: AlmaUser) => void = () => {}): string {
  const u = emptyUser('A&B-1');
  u.first_name = 'Ada';
  u.user_group = 'STAFF';
  u.expiry_date = '2027-12-31';
  u.status = 'ACTIVE';
  u.contact_info.emails.push({ preferred: true, email_address: 'ada@example.edu', email_types: ['work'] });
  u.contact_info.phones.push({ preferred: true, phone_number: '+64 9 555 0100', phone_types: ['mobile'] });
  u.user_identifiers.push({ id_type: 'BARCODE', value: 'B1' }, { id_type: 'UNIV_ID', value: 'U1' });
  u.user_notes.push({ note_type: 'GENERAL', note_text: 'Keeps this note', user_viewable: false, popup_note: false });
  change(u);
  return userXml(u);
}

test('summarise reads the primary id (unescaped), group, expiry and the kinds of value Alma deletes when absent', () => {
  const xml = user();
  const s = summarise(Buffer.from(xml));
  assert.deepEqual({ ...s, fingerprint: s.fingerprint.length }, {
    primaryId: 'A&B-1',
    key: 'a&b-1',
    fingerprint: 27,
    userGroup: 'STAFF',
    expiryDate: '2027-12-31',
    kinds: ['email', 'phone', 'notes', 'identifier:BARCODE', 'identifier:UNIV_ID'],
  });
  assert.notEqual(summarise(Buffer.from(user((u) => (u.first_name = 'Adah')))).fingerprint, s.fingerprint);
});

test('changedFields names the field that changed, and a part of the contact information on its own', () => {
  const before = user();
  assert.deepEqual(changedFields(before, user()), []);
  assert.deepEqual(changedFields(before, user((u) => (u.contact_info.phones[0]!.phone_number = '+64 9 555 0199'))), ['phones']);
  assert.deepEqual(changedFields(before, user((u) => (u.contact_info.emails = []))), ['emails']);
  assert.deepEqual(changedFields(before, user((u) => { u.user_group = 'STUDENT'; u.user_identifiers.pop(); })), ['user_group', 'user_identifiers']);
});

test('a record packs and unpacks to the same XML', () => {
  const xml = user();
  const packed = packRecord(Buffer.from(xml));
  assert.equal(unpackRecord(packed), xml);
  assert.ok(packed.length < xml.length / 2, `${packed.length} bytes for ${xml.length}`);
});

test('a departure keeps the whole record, adds its note after the notes it had, and stays valid against the schema', () => {
  const expired = departureXml(user(), { action: 'expire', afterMissingRuns: 1, note: 'Gone as of {run_date} <SIS>' }, '2026-12-01', '2026-11-30T02:00:00.000Z');
  assert.equal(expired, user((u) => {
    u.expiry_date = '2026-12-01';
    u.user_notes.push({ note_type: 'OTHER', note_text: 'Gone as of 2026-12-01 <SIS>', user_viewable: false, popup_note: false });
  }));
  const inactive = departureXml(user((u) => (u.user_notes = [])), { action: 'inactivate', afterMissingRuns: 1, note: '' }, '2026-12-01', '2026-11-30T02:00:00.000Z');
  assert.equal(inactive, user((u) => { u.status = 'INACTIVE'; u.user_notes = []; }));
  const schema = AlmaSchema.load();
  assert.deepEqual(schema.validate(`<?xml version="1.0" encoding="UTF-8"?>\n<users>\n${expired}${inactive}</users>\n`), []);
});

test('a batch is inflated only as far as the user asked for, and whole when its first part does not hold them', () => {
  // 64 users as the pipeline writes them: a changed user's last record is found by its end in the batch.
  const users = Array.from({ length: 64 }, (_, i) =>
    Buffer.from(user((u) => {
      u.primary_id = `P${i}`;
      u.first_name = randomBytes(12).toString('hex');
      u.last_name = randomBytes(12).toString('hex');
    })),
  );
  const whole = Buffer.concat(users);
  const batch = packBatch(whole);
  let end = 0;
  for (const [i, xml] of users.entries()) {
    end += xml.length;
    const out = unpackBatch(batch, end);
    assert.ok(out.length >= end, `user ${i}: ${out.length} bytes inflated, ${end} needed`);
    assert.ok(out.subarray(0, end).equals(whole.subarray(0, end)), `user ${i}`);
    // The first users cost a part of the batch, not all of it.
    if (i < 8) assert.ok(out.length < whole.length, `user ${i}: ${out.length} of ${whole.length} bytes inflated`);
  }
  assert.ok(unpackBatch(batch).equals(whole));
  // Users that deflate hardly at all (random bytes): the first part falls short, and the whole batch is inflated.
  const noise = Buffer.from(randomBytes(40_000).toString('base64'));
  const packed = packBatch(noise);
  for (const upTo of [1, 5_000, 30_000, noise.length]) assert.ok(unpackBatch(packed, upTo).subarray(0, upTo).equals(noise.subarray(0, upTo)), `${upTo} bytes`);
  assert.equal(unpackBatch(packed, 30_000).length, noise.length);
});

test('records kept in batches read back whole: across batch boundaries, a user larger than a batch, and after the migration from version 1', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sis2alma-records-'));
  try {
    const file = path.join(dir, 'state.db');
    const db = new Database(file);
    db.exec(MIGRATIONS[0] as string);
    db.exec("INSERT INTO runs VALUES (1, '2026-11-21T02:00:00.000Z', 'full', 'delivered', 'c', '', 'm', '', '{}', '{}', '[]', NULL); PRAGMA user_version = 1");
    // 150 people (more than two batches of 64), one of them larger than a batch (256 KB).
    const xmlOf = (i: number) => user((u) => {
      u.primary_id = `P${i}`;
      u.first_name = i === 70 ? 'x'.repeat(300_000) : `Name${i}`;
    });
    const insert = db.prepare("INSERT INTO people (key, primary_id, fingerprint, user_group, group_rule, expiry_date, kinds, record, first_seen, last_seen, last_run) VALUES (?, ?, '', 'STAFF', 'default', '', '', ?, '', '', 1)");
    for (let i = 1; i <= 150; i++) insert.run(`p${i}`, `P${i}`, i === 7 ? null : packRecord(Buffer.from(xmlOf(i))));
    db.transaction(() => migrate(db, file))();
    assert.equal(db.pragma('user_version', { simple: true }), 2);
    const reader = new RecordReader(db);
    const rows = db.prepare('SELECT key, record_batch, record_at, record_len FROM people ORDER BY rowid').all() as (RecordColumns & { key: string })[];
    assert.equal(rows.length, 150);
    for (const row of rows) assert.equal(reader.read(row), row.key === 'p7' ? undefined : xmlOf(Number(row.key.slice(1))), row.key);
    // Read again in another order, past the reader's cache.
    for (const row of [...rows].reverse()) if (row.key !== 'p7') assert.equal(reader.read(row), xmlOf(Number(row.key.slice(1))));
    // At most 64 users a batch, the large one alone in its own, and no batch that nobody points at.
    assert.equal(db.prepare('SELECT max(n) FROM (SELECT count(*) AS n FROM people GROUP BY record_batch)').pluck().get(), 64);
    assert.equal(db.prepare("SELECT count(*) FROM people WHERE record_batch = (SELECT record_batch FROM people WHERE key = 'p70')").pluck().get(), 1);
    assert.equal(db.prepare('SELECT count(DISTINCT record_batch) FROM people').pluck().get(), db.prepare('SELECT count(*) FROM records').pluck().get());
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the purge date of an expired departure: per the mapping when its rule counts from the expiry date, else the one last sent, never before the new expiry', () => {
  const year: DateRule = { kind: 'after_expiry', amount: 1, unit: 'year' };
  const rules = { purge: new Map<string, DateRule>([['STAFF', { kind: 'after_expiry', amount: 2, unit: 'year' }], ['GUEST', { kind: 'column', value: { kind: 'column', column: 'purge' } as never }], ['A&B', { kind: 'after_expiry', amount: 3, unit: 'year' }]]), defaultPurge: year };
  // The group's own rule, or the default for a group without one, from the run date (the new expiry date).
  assert.equal(departurePurge(rules, 'STAFF', '2031-01-01', '2026-12-02'), '2028-12-02');
  assert.equal(departurePurge(rules, 'STUDENT', '2031-01-01', '2026-12-02'), '2027-12-02');
  assert.equal(departurePurge(rules, undefined, undefined, '2026-12-02'), '2027-12-02');
  // days_after_expiry is the default in days.
  assert.equal(departurePurge({ purge: new Map(), defaultPurge: { kind: 'after_expiry', amount: 180, unit: 'day' } }, 'STAFF', undefined, '2026-12-02'), '2027-05-31');
  // A rule that needs the row: the purge date last sent, or the run date when that is earlier.
  assert.equal(departurePurge(rules, 'GUEST', '2031-01-01', '2026-12-02'), '2031-01-01');
  assert.equal(departurePurge(rules, 'GUEST', '2026-06-30', '2026-12-02'), '2026-12-02');
  assert.equal(departurePurge(rules, 'GUEST', undefined, '2026-12-02'), undefined);
  // No purge rules at all (the mapping has none): the same.
  assert.equal(departurePurge(undefined, 'STAFF', '2020-01-01', '2026-12-02'), '2026-12-02');
  assert.equal(departurePurge({ purge: new Map(), defaultPurge: undefined }, 'STAFF', '2030-01-01', '2026-12-02'), '2030-01-01');

  // In the record: a purge date set, or added where the pipeline writes it; inactivate leaves it.
  const config = { action: 'expire' as const, afterMissingRuns: 1, note: '', purge: rules };
  assert.equal(departureXml(user((u) => (u.purge_date = '2029-12-31')), config, '2026-12-02', '2026-11-30T02:00:00.000Z'), user((u) => { u.expiry_date = '2026-12-02'; u.purge_date = '2028-12-02'; }));
  const added = departureXml(user((u) => (u.user_group = 'A&B')), config, '2026-12-02', '2026-11-30T02:00:00.000Z');
  assert.equal(added, user((u) => { u.user_group = 'A&B'; u.expiry_date = '2026-12-02'; u.purge_date = '2029-12-02'; }));
  assert.equal(departureXml(user((u) => { u.user_group = 'GUEST'; u.purge_date = '2026-01-31'; }), config, '2026-12-02', '2026-11-30T02:00:00.000Z'), user((u) => { u.user_group = 'GUEST'; u.expiry_date = '2026-12-02'; u.purge_date = '2026-12-02'; }));
  assert.equal(departureXml(user((u) => (u.purge_date = '2029-12-31')), { ...config, action: 'inactivate' }, '2026-12-02', '2026-11-30T02:00:00.000Z'), user((u) => { u.purge_date = '2029-12-31'; u.status = 'INACTIVE'; }));
  assert.deepEqual(AlmaSchema.load().validate(`<?xml version="1.0" encoding="UTF-8"?>\n<users>\n${added}</users>\n`), []);
});

test('the migration from version 1 derives who is missing since when, and which run sent each person their record', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sis2alma-records-'));
  try {
    const file = path.join(dir, 'state.db');
    const db = new Database(file);
    db.exec(MIGRATIONS[0] as string);
    const run = db.prepare("INSERT INTO runs VALUES (?, ?, 'full', 'delivered', 'c', '', 'm', '', ?, '{}', '[]', NULL)");
    run.run(1, '2026-11-21T02:00:00.000Z', '{"users":3}');
    run.run(2, '2026-11-22T02:00:00.000Z', '{"users":2}');
    run.run(3, '2026-11-23T02:00:00.000Z', '{"users":1}');
    const person = db.prepare("INSERT INTO people (key, primary_id, fingerprint, user_group, group_rule, expiry_date, kinds, record, first_seen, last_seen, last_run, departed_run) VALUES (?, ?, '', 'STAFF', 'default', '', '', ?, '', '', ?, ?)");
    // p1 in every run, changed on run 3; p2 gone after run 1, no departure sent; p3 gone after run 2, its departure sent on run 3.
    // In the order they were first delivered, which is not the keys' order.
    person.run('p2', 'P2', packRecord(Buffer.from(user((u) => (u.primary_id = 'P2')))), 1, null);
    person.run('p3', 'P3', packRecord(Buffer.from(user((u) => (u.primary_id = 'P3')))), 2, 3);
    person.run('p1', 'P1', packRecord(Buffer.from(user((u) => (u.primary_id = 'P1')))), 3, null);
    const sent = db.prepare("INSERT INTO sent (key, run, change, fields, user_group, group_rule, rows) VALUES (?, ?, ?, '', 'STAFF', 'default', '[]')");
    for (const [key, at, change] of [['p1', 1, 'new'], ['p1', 3, 'changed'], ['p2', 1, 'new'], ['p3', 1, 'new'], ['p3', 3, 'departed'], ['p3', 3, 'departure sent']] as const) sent.run(key, at, change);
    db.pragma('user_version = 1');
    db.transaction(() => migrate(db, file))();
    // People keep their order: a night reads them beside its feed in it (last-night.ts).
    assert.equal(db.prepare('SELECT group_concat(key) FROM (SELECT key FROM people ORDER BY rowid)').pluck().get(), 'p2,p3,p1');
    assert.equal(db.prepare("SELECT group_concat(key || '|' || sent_run || '|' || coalesce(missing_since, '') || '|' || coalesce(departed_run, ''), ' ') FROM (SELECT * FROM people ORDER BY key)").pluck().get(), 'p1|3|| p2|1|2| p3|1|3|3');
    assert.equal(db.prepare("SELECT group_concat(id || ':' || people, ' ') FROM runs").pluck().get(), '1:3 2:2 3:1');
    // Only p2 is still to depart: the index of the missing covers the people whose departure is not sent.
    assert.equal(db.prepare('SELECT group_concat(key) FROM people WHERE missing_since IS NOT NULL AND departed_run IS NULL').pluck().get(), 'p2');
    assert.equal(new RecordReader(db).read(db.prepare("SELECT record_batch, record_at, record_len FROM people WHERE key = 'p3'").get() as RecordColumns), user((u) => (u.primary_id = 'P3')));
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a fingerprint is the SHA-1 of the user's bytes (base64url), as the state keeps it", async () => {
  const { createHash, randomBytes } = await import('node:crypto');
  const { fingerprintOf, FINGERPRINT_CHARS } = await import('../src/pipeline/user-sink.js');
  for (let i = 0; i < 500; i++) {
    const bytes = randomBytes(1 + i * 7);
    assert.equal(fingerprintOf(bytes), createHash('sha1').update(bytes).digest('base64url'));
    assert.equal(fingerprintOf(bytes).length, FINGERPRINT_CHARS);
  }
});
