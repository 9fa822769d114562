// Dates are handled as Alma writes them, YYYY-MM-DD strings, which compare correctly as text.
// Arithmetic is done in UTC so that no time zone or daylight-saving change can shift a day.

export type Period = { amount: number; unit: 'day' | 'week' | 'month' | 'year' };

export function toIsoDate(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/** The local calendar date of a moment, as the operator's clock shows it. */
export function localDate(now: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
}

export function parseIsoDate(text: string): Date {
  const [y, m, d] = text.split('-').map(Number);
  return new Date(Date.UTC(y!, m! - 1, d!));
}

/** Results of addPeriod: a run computes the same few expiry and purge dates for every row. */
const added = new Map<string, string>();

/** Adds a period; a month or year added to the 31st (or 29 February) ends on the last day of the target month. */
export function addPeriod(date: string, period: Period): string {
  const key = `${date} ${period.amount} ${period.unit}`;
  let result = added.get(key);
  // Stryker disable next-line ConditionalExpression: "true" computes the period again on every call, which gives the same date (the cache saves time only)
  if (result === undefined) {
    // Stryker disable next-line ConditionalExpression,EqualityOperator: the bound only limits the cache's memory; cleared sooner, later or never, every call still returns the same date
    if (added.size > 10000) added.clear();
    added.set(key, (result = computePeriod(date, period)));
  }
  return result;
}

function computePeriod(date: string, { amount, unit }: Period): string {
  const d = parseIsoDate(date);
  if (unit === 'day' || unit === 'week') {
    d.setUTCDate(d.getUTCDate() + amount * (unit === 'week' ? 7 : 1));
    return toIsoDate(d);
  }
  const months = unit === 'year' ? amount * 12 : amount;
  const day = d.getUTCDate();
  const target = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + months, 1));
  const lastDay = new Date(Date.UTC(target.getUTCFullYear(), target.getUTCMonth() + 1, 0)).getUTCDate();
  target.setUTCDate(Math.min(day, lastDay));
  return toIsoDate(target);
}

export function isValidYmd(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false;
  const lastDay = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return day <= lastDay;
}

export function ymd(year: number, month: number, day: number): string {
  return `${String(year).padStart(4, '0')}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

/**
 * A day of the year counted from the run date, as term ends are said ("31 October of next year,
 * or of the year after once July has begun"): monthDay (MM-DD) in the run date's year plus
 * `years`, and one year more once the run date has reached `from` (MM-DD), when given. 29 February
 * in a common year is 28 February.
 */
export function dayOfYearFrom(runDate: string, { monthDay, years, from }: { monthDay: string; years: number; from?: string }): string {
  const later = from !== undefined && runDate.slice(5) >= from ? 1 : 0;
  const year = Number(runDate.slice(0, 4)) + years + later;
  const month = Number(monthDay.slice(0, 2));
  const day = Number(monthDay.slice(3));
  const lastDay = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return ymd(year, month, Math.min(day, lastDay));
}
