// src/dates.ts, function by function: the expiry and purge dates every user carries are computed
// here, so a day too many or too few would go to Alma for the whole feed. Pure functions, fast.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { addPeriod, dayOfYearFrom, isValidYmd, localDate, parseIsoDate, toIsoDate, ymd } from '../src/shared/dates.js';

describe('localDate', () => {
  test('pads a one-digit month and day with a zero', () => {
    // Built from local fields, so the local date is the same whatever the machine's time zone.
    assert.equal(localDate(new Date(2024, 0, 5, 12, 0, 0)), '2024-01-05');
  });
  test('leaves two-digit months and days as they are', () => {
    assert.equal(localDate(new Date(2024, 10, 21, 12, 0, 0)), '2024-11-21');
  });
});

describe('toIsoDate and parseIsoDate', () => {
  test('round-trip a date in UTC', () => {
    assert.equal(toIsoDate(parseIsoDate('2024-02-29')), '2024-02-29');
    assert.equal(parseIsoDate('2024-03-01').getTime(), Date.UTC(2024, 2, 1));
  });
});

describe('addPeriod', () => {
  test('days add days', () => {
    assert.equal(addPeriod('2024-01-10', { amount: 5, unit: 'day' }), '2024-01-15');
    assert.equal(addPeriod('2024-12-30', { amount: 3, unit: 'day' }), '2025-01-02');
  });
  test('a negative number of days goes back', () => {
    assert.equal(addPeriod('2024-03-01', { amount: -1, unit: 'day' }), '2024-02-29');
  });
  test('weeks add seven days each', () => {
    assert.equal(addPeriod('2024-01-01', { amount: 2, unit: 'week' }), '2024-01-15');
    assert.equal(addPeriod('2024-02-22', { amount: 1, unit: 'week' }), '2024-02-29');
  });
  test('months keep the day of the month', () => {
    assert.equal(addPeriod('2024-01-15', { amount: 1, unit: 'month' }), '2024-02-15');
    assert.equal(addPeriod('2024-11-15', { amount: 3, unit: 'month' }), '2025-02-15');
  });
  test('a month added to the 31st ends on the last day of the target month', () => {
    assert.equal(addPeriod('2024-01-31', { amount: 1, unit: 'month' }), '2024-02-29');
    assert.equal(addPeriod('2023-01-31', { amount: 1, unit: 'month' }), '2023-02-28');
    assert.equal(addPeriod('2024-03-31', { amount: 1, unit: 'month' }), '2024-04-30');
  });
  test('years are twelve months; 29 February becomes 28 February in a common year', () => {
    assert.equal(addPeriod('2024-06-10', { amount: 2, unit: 'year' }), '2026-06-10');
    assert.equal(addPeriod('2024-02-29', { amount: 1, unit: 'year' }), '2025-02-28');
    assert.equal(addPeriod('2024-02-29', { amount: 4, unit: 'year' }), '2028-02-29');
  });
  test('the same date and period give the same answer when asked again', () => {
    const period = { amount: 1, unit: 'month' } as const;
    assert.equal(addPeriod('2025-01-31', period), '2025-02-28');
    assert.equal(addPeriod('2025-01-31', period), '2025-02-28');
    // The same numbers in another unit are another question.
    assert.equal(addPeriod('2025-01-31', { amount: 1, unit: 'day' }), '2025-02-01');
    assert.equal(addPeriod('2025-01-31', { amount: 1, unit: 'week' }), '2025-02-07');
    assert.equal(addPeriod('2025-01-31', { amount: 1, unit: 'year' }), '2026-01-31');
  });
  test('stays right past the size of its cache', () => {
    for (let i = 0; i < 10050; i++) {
      const expected = toIsoDate(new Date(Date.UTC(2000, 0, 1 + i)));
      assert.equal(addPeriod('2000-01-01', { amount: i, unit: 'day' }), expected);
    }
    assert.equal(addPeriod('2000-01-01', { amount: 1, unit: 'day' }), '2000-01-02');
  });
});

describe('isValidYmd', () => {
  test('accepts the last day of each month, and 29 February in a leap year only', () => {
    assert.equal(isValidYmd(2024, 1, 31), true);
    assert.equal(isValidYmd(2024, 2, 29), true);
    assert.equal(isValidYmd(2023, 2, 28), true);
    assert.equal(isValidYmd(2023, 2, 29), false);
    assert.equal(isValidYmd(2024, 4, 30), true);
    assert.equal(isValidYmd(2024, 4, 31), false);
    assert.equal(isValidYmd(2024, 12, 31), true);
    assert.equal(isValidYmd(2024, 1, 1), true);
  });
  test('rejects month 0 and month 13', () => {
    assert.equal(isValidYmd(2024, 0, 10), false);
    assert.equal(isValidYmd(2024, 13, 10), false);
  });
  test('rejects day 0 and negative days', () => {
    assert.equal(isValidYmd(2024, 3, 0), false);
    assert.equal(isValidYmd(2024, 3, -1), false);
  });
});

describe('ymd', () => {
  test('pads the year to four digits and the month and day to two', () => {
    assert.equal(ymd(5, 3, 7), '0005-03-07');
    assert.equal(ymd(2024, 11, 21), '2024-11-21');
  });
});

describe('dayOfYearFrom', () => {
  const end = { monthDay: '10-31', years: 1, from: '07-01' };
  test('the day in the run year plus years, one year more from the day "from" on', () => {
    assert.equal(dayOfYearFrom('2026-06-30', end), '2027-10-31');
    assert.equal(dayOfYearFrom('2026-07-01', end), '2028-10-31');
  });
  test('at the ends of the year', () => {
    assert.equal(dayOfYearFrom('2026-01-01', end), '2027-10-31');
    assert.equal(dayOfYearFrom('2026-12-31', end), '2028-10-31');
    assert.equal(dayOfYearFrom('2026-12-31', { monthDay: '01-01', years: 0 }), '2026-01-01');
    assert.equal(dayOfYearFrom('2026-12-31', { monthDay: '12-31', years: 0, from: '12-31' }), '2027-12-31');
  });
  test('without "from", no year more; from 01-01, always one more', () => {
    assert.equal(dayOfYearFrom('2026-11-21', { monthDay: '08-31', years: 1 }), '2027-08-31');
    assert.equal(dayOfYearFrom('2026-01-01', { monthDay: '08-31', years: 0, from: '01-01' }), '2027-08-31');
  });
  test('29 February is 28 February in a common year, and stays in a leap year', () => {
    assert.equal(dayOfYearFrom('2026-03-01', { monthDay: '02-29', years: 1 }), '2027-02-28');
    assert.equal(dayOfYearFrom('2027-03-01', { monthDay: '02-29', years: 1 }), '2028-02-29');
    assert.equal(dayOfYearFrom('2024-02-29', { monthDay: '02-29', years: 0, from: '03-01' }), '2024-02-29');
  });
});
