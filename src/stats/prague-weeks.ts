/**
 * Calendar weeks as the Czech public counts them: ISO weeks (Monday to Sunday) in Europe/Prague,
 * summer time included. Statistics group logins into these weeks.
 */
export const TIME_ZONE = 'Europe/Prague';

const parts = new Intl.DateTimeFormat('en-CA', { timeZone: TIME_ZONE, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', hourCycle: 'h23' });

export interface CalendarDate {
  year: number;
  month: number;
  day: number;
}

/** The Prague calendar date and hour of an instant. */
export function pragueTime(ms: number): CalendarDate & { hour: number } {
  const out: Record<string, number> = {};
  for (const part of parts.formatToParts(new Date(ms))) if (part.type !== 'literal') out[part.type] = Number(part.value);
  return { year: out.year!, month: out.month!, day: out.day!, hour: out.hour! };
}

export function formatDate(date: CalendarDate): string {
  return `${String(date.year).padStart(4, '0')}-${String(date.month).padStart(2, '0')}-${String(date.day).padStart(2, '0')}`;
}

export function parseDate(value: string): CalendarDate | undefined {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!match) return undefined;
  const date = { year: Number(match[1]), month: Number(match[2]), day: Number(match[3]) };
  const check = new Date(Date.UTC(date.year, date.month - 1, date.day));
  return check.getUTCFullYear() === date.year && check.getUTCMonth() === date.month - 1 && check.getUTCDate() === date.day ? date : undefined;
}

export function addDays(date: CalendarDate, days: number): CalendarDate {
  const moved = new Date(Date.UTC(date.year, date.month - 1, date.day + days));
  return { year: moved.getUTCFullYear(), month: moved.getUTCMonth() + 1, day: moved.getUTCDate() };
}

/** The Monday that starts the ISO week of a date. */
export function mondayOf(date: CalendarDate): CalendarDate {
  const weekday = new Date(Date.UTC(date.year, date.month - 1, date.day)).getUTCDay() || 7;
  return addDays(date, 1 - weekday);
}

/** `2024-W09` for a date in the ISO week 9 of 2024 (the ISO year may differ from the calendar year). */
export function isoWeek(date: CalendarDate): string {
  const thursday = new Date(Date.UTC(date.year, date.month - 1, date.day));
  thursday.setUTCDate(thursday.getUTCDate() + 4 - (thursday.getUTCDay() || 7));
  const yearStart = Date.UTC(thursday.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((thursday.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${thursday.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}

/** The instant a Prague calendar day begins. */
export function pragueMidnight(date: CalendarDate): number {
  const guess = Date.UTC(date.year, date.month - 1, date.day);
  const seen = pragueTime(guess);
  const offset = Date.UTC(seen.year, seen.month - 1, seen.day, seen.hour) - guess;
  return guess - offset;
}
