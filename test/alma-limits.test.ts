// Alma's own limits and rules, each pinned at its edge: the files one zip may hold, which group
// wins a merge when a group is not in `priority`, when an expiry date is "in the past", and
// month-end dates in calendar arithmetic. Each case fails when the rule moves by one.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { checkMapping, formatProblem } from '../src/mapping/load.js';
import type { Mapping, GroupPolicy } from '../src/mapping/model.js';
import { compileMapping, type MapResult } from '../src/mapping/map.js';
import { mergeUsers, type MergeMember } from '../src/pipeline/merge.js';
import { addPeriod } from '../src/shared/dates.js';
import type { AlmaUser } from '../src/shared/alma.js';
import { convertCli, readZip, tempDir } from './helpers/run-cli.js';
import { makeTempDir } from './helpers/tmp.js';

describe("Alma's 50 XML files per zip", () => {
  test('51 files of one user each: the first zip holds exactly 50, the 51st starts <stem>_02.zip', async () => {
    const dir = tempDir();
    const input = path.join(dir, 'in.csv');
    const lines = ['username,givenname,surname,emailaddress,graduationyear,librarybarcode,enabled,staffmember'];
    for (let i = 1; i <= 51; i++) lines.push(`user${i},Given${i},Sur${i},user${i}@school.example,2028,BC${i},Y,N`);
    writeFileSync(input, lines.join('\n') + '\n');
    const run = await convertCli({ inputs: [input], args: ['--chunk-size', '1'] });
    assert.equal(run.code, 0, run.stderr);
    const stem = 'users_infiniti_20261121-020000';
    assert.deepEqual(run.outputs.zips.map((z) => path.basename(z)), [`${stem}.zip`, `${stem}_02.zip`]);
    const first = await readZip(run.outputs.zips[0]!);
    const second = await readZip(run.outputs.zips[1]!);
    assert.deepEqual(first.map((e) => e.name), Array.from({ length: 50 }, (_, i) => `${stem}_${String(i + 1).padStart(4, '0')}.xml`));
    assert.deepEqual(second.map((e) => e.name), [`${stem}_0051.xml`]);
    assert.deepEqual(run.outputs.report?.files, [`${stem}.zip`, `${stem}_02.zip`]);
  });
});

describe('merge: a group that is not in priority', () => {
  const policy: GroupPolicy = { rules: [], priority: new Map([['STAFF', 0], ['UNDERGRAD', 1]]), exceptions: [] };
  const member = (ordinal: number, user_group: string | undefined): MergeMember => ({
    ordinal,
    label: String(ordinal),
    user: { primary_id: 'p1', user_group, contact_info: { addresses: [], emails: [], phones: [] }, user_identifiers: [], user_statistics: [], user_notes: [] } as unknown as AlmaUser,
    warnings: [],
  });

  test('ranks after every listed group, even when its row comes first', () => {
    const decision = mergeUsers([member(1, 'VISITOR'), member(2, 'UNDERGRAD')], policy);
    assert.equal(decision.winner.ordinal, 2);
    assert.equal(decision.user.user_group, 'UNDERGRAD');
    assert.equal(decision.reason, 'UNDERGRAD wins over VISITOR by priority');
  });

  test('two groups not listed: the earlier row wins; a row with no group ranks after both', () => {
    const decision = mergeUsers([member(3, undefined), member(2, 'GUEST'), member(1, 'VISITOR')], policy);
    assert.equal(decision.winner.ordinal, 1);
    assert.equal(decision.user.user_group, 'VISITOR');
    const noGroupLast = mergeUsers([member(1, undefined), member(2, 'GUEST')], policy);
    assert.equal(noGroupLast.winner.ordinal, 2);
  });
});

/** A mapping whose only expiry rule is `rule`, checked as the pipeline checks it. */
function mappingWithExpiry(rule: string): Mapping {
  const dir = makeTempDir('sis2alma-limits-');
  const file = path.join(dir, 'mapping.yaml');
  const text = `source: test\nfields:\n  primary_id: "{id}"\nuser_group:\n  rules:\n    - group: PATRON\nexpiry:\n  default: ${rule}\n`;
  writeFileSync(file, text);
  const result = checkMapping(file);
  assert.deepEqual(result.problems.map(formatProblem), [], text);
  return result.mapping!;
}

function mapOne(mapping: Mapping, runDate: string): MapResult {
  return compileMapping(mapping, ['id'], runDate).map(['u1']);
}

describe('an expiry date in the past', () => {
  test('the run date itself is not in the past; the day before is, with the warning', () => {
    const sameDay = mapOne(mappingWithExpiry('{ date: 2026-11-21 }'), '2026-11-21');
    assert.ok(sameDay.ok);
    assert.equal(sameDay.user.expiry_date, '2026-11-21');
    assert.deepEqual(sameDay.warnings, []);
    const dayBefore = mapOne(mappingWithExpiry('{ date: 2026-11-20 }'), '2026-11-21');
    assert.ok(dayBefore.ok);
    assert.deepEqual(dayBefore.warnings, [{ kind: 'expiry_in_past', message: 'expiry date 2026-11-20 is before the run date 2026-11-21', value: '2026-11-20' }]);
    const dayAfter = mapOne(mappingWithExpiry('{ date: 2026-11-22 }'), '2026-11-21');
    assert.ok(dayAfter.ok);
    assert.deepEqual(dayAfter.warnings, []);
  });
});

describe('month-end dates', () => {
  test('31 January plus one month is the last day of February, in common and leap years', () => {
    assert.equal(addPeriod('2027-01-31', { amount: 1, unit: 'month' }), '2027-02-28');
    assert.equal(addPeriod('2028-01-31', { amount: 1, unit: 'month' }), '2028-02-29');
    assert.equal(addPeriod('2026-03-31', { amount: 1, unit: 'month' }), '2026-04-30');
    assert.equal(addPeriod('2026-08-31', { amount: 6, unit: 'month' }), '2027-02-28');
    assert.equal(addPeriod('2028-02-29', { amount: 1, unit: 'year' }), '2029-02-28');
    assert.equal(addPeriod('2026-01-30', { amount: 1, unit: 'month' }), '2026-02-28');
    assert.equal(addPeriod('2026-01-15', { amount: 1, unit: 'month' }), '2026-02-15');
    assert.equal(addPeriod('2026-12-31', { amount: 2, unit: 'month' }), '2027-02-28');
  });

  test('an expiry of one month after a run on 31 January ends on 28 February', () => {
    const result = mapOne(mappingWithExpiry('{ after_run: 1 month }'), '2027-01-31');
    assert.ok(result.ok);
    assert.equal(result.user.expiry_date, '2027-02-28');
  });
});
