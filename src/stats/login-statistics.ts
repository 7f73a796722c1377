import type { Database } from '../store/database.ts';
import { addDays, formatDate, isoWeek, mondayOf, pragueMidnight, pragueTime, TIME_ZONE, type CalendarDate } from './prague-weeks.ts';

/**
 * The statistics the seed presentation shows, computed from the assertion log: logins per week in
 * total and per identity means, the growth of registrations (citizens resolved for the first
 * time, the seed's "Nárůst registrací"), logins per SeP and failures by reason. A login is a token
 * issued to a SeP; a failure is an error or a refused consent.
 */
export interface WeekStatistics {
  week: string;
  monday: string;
  logins: number;
  byMeans: Record<string, number>;
  registrations: number;
  /** Everyone resolved for the first time up to the end of this week. */
  registeredPersons: number;
}

/** The most rows a table shows; the rest are summed in one row named OTHER_ROWS. */
export const TOP_ROWS = 20;
/** A name no SeP id or reason can have. */
export const OTHER_ROWS = '(other)';

/**
 * The largest rows, and the rest summed in one: the reasons and SeP ids come from the log, where
 * anyone who reaches Brána can add new ones, so a table never grows with them.
 */
function topRows(sorted: Array<{ id: string; n: number }>): Array<{ id: string; n: number }> {
  if (sorted.length <= TOP_ROWS) return sorted;
  return [...sorted.slice(0, TOP_ROWS), { id: OTHER_ROWS, n: sorted.slice(TOP_ROWS).reduce((sum, row) => sum + row.n, 0) }];
}

export interface LoginStatistics {
  timeZone: string;
  from: string;
  to: string;
  weeks: WeekStatistics[];
  means: Array<{ id: string; logins: number }>;
  loginsBySep: Array<{ sepId: string; logins: number }>;
  failuresByReason: Array<{ reason: string; count: number }>;
  totals: { logins: number; registrations: number; registeredPersons: number; failures: number };
  /** Logins by the protocol the SeP speaks (OpenID Connect, SAML 2.0). */
  loginsByProtocol: { oidc: number; saml: number };
}

export interface StatisticsPeriod {
  /** The last day of the period (Prague calendar). */
  until: CalendarDate;
  /** How many ISO weeks, ending with the week of `until`. */
  weeks: number;
}

const HOUR_MS = 3_600_000;
// In canonical JSON a string value cannot contain this text unescaped: only the real member matches.
const FIRST_TIME = '%"firstTime":true%';
const SAML_PROTOCOL = '%"protocol":"saml"%';

export function defaultPeriod(now = Date.now()): StatisticsPeriod {
  const today = pragueTime(now);
  return { until: { year: today.year, month: today.month, day: today.day }, weeks: 12 };
}

interface HourRow {
  hour: number | string;
  key: string | null;
  n: number | string;
}

export async function loginStatistics(db: Database, period: StatisticsPeriod): Promise<LoginStatistics> {
  const lastMonday = mondayOf(period.until);
  const firstMonday = addDays(lastMonday, -7 * (period.weeks - 1));
  const from = pragueMidnight(firstMonday);
  const to = pragueMidnight(addDays(lastMonday, 7));

  const weeks: WeekStatistics[] = [];
  const weekIndex = new Map<string, WeekStatistics>();
  for (let i = 0; i < period.weeks; i += 1) {
    const monday = addDays(firstMonday, 7 * i);
    const week = { week: isoWeek(monday), monday: formatDate(monday), logins: 0, byMeans: {}, registrations: 0, registeredPersons: 0 };
    weeks.push(week);
    weekIndex.set(week.week, week);
  }
  // Records are grouped by hour in the database, and hours into Prague weeks here (exact across
  // summer time, cheap for any number of records).
  const weekOfHour = new Map<number, WeekStatistics | undefined>();
  const weekOf = (hour: number) => {
    if (!weekOfHour.has(hour)) {
      const local = pragueTime(hour * HOUR_MS);
      weekOfHour.set(hour, weekIndex.get(isoWeek(local)));
    }
    return weekOfHour.get(hour);
  };
  const hourly = (event: string, keyColumn: string | null, extra?: (query: ReturnType<Database>) => void) => {
    const query = db('assertion_log')
      .select(db.raw('at / 3600000 as hour'), keyColumn ? db.raw('?? as ??', [keyColumn, 'key']) : db.raw('null as ??', ['key']))
      .count({ n: '*' })
      .where('event', event)
      .andWhere('at', '>=', from)
      .andWhere('at', '<', to)
      .groupByRaw(keyColumn ? `at / 3600000, ${keyColumn}` : 'at / 3600000');
    extra?.(query);
    return query as unknown as Promise<HourRow[]>;
  };

  const meansTotals = new Map<string, number>();
  for (const row of await hourly('token_issued', 'means')) {
    const week = weekOf(Number(row.hour));
    if (!week) continue;
    const n = Number(row.n);
    const means = row.key ?? 'unknown';
    week.logins += n;
    week.byMeans[means] = (week.byMeans[means] ?? 0) + n;
    meansTotals.set(means, (meansTotals.get(means) ?? 0) + n);
  }

  for (const row of await hourly('identity_resolved', null, (query) => query.andWhere('detail', 'like', FIRST_TIME))) {
    const week = weekOf(Number(row.hour));
    if (week) week.registrations += Number(row.n);
  }
  const before = (await db('assertion_log').where('event', 'identity_resolved').andWhere('detail', 'like', FIRST_TIME).andWhere('at', '<', from).count({ n: '*' }).first()) as { n: number | string };
  let registered = Number(before.n);
  for (const week of weeks) {
    registered += week.registrations;
    week.registeredPersons = registered;
  }

  const bySep = (await db('assertion_log').select('sep_id').count({ n: '*' }).where('event', 'token_issued').andWhere('at', '>=', from).andWhere('at', '<', to).groupBy('sep_id')) as Array<{ sep_id: string | null; n: number | string }>;
  const failures = (await db('assertion_log')
    .select('reason')
    .count({ n: '*' })
    .whereIn('event', ['error', 'consent_refused'])
    .andWhere('at', '>=', from)
    .andWhere('at', '<', to)
    .groupBy('reason')) as Array<{ reason: string | null; n: number | string }>;

  const saml = (await db('assertion_log').where('event', 'token_issued').andWhere('detail', 'like', SAML_PROTOCOL).andWhere('at', '>=', from).andWhere('at', '<', to).count({ n: '*' }).first()) as { n: number | string };

  const byCount = <T extends { id: string }>(a: T & { n: number }, b: T & { n: number }) => b.n - a.n || (a.id < b.id ? -1 : 1);
  const loginsBySep = topRows(bySep.map((row) => ({ id: row.sep_id ?? 'unknown', n: Number(row.n) })).sort(byCount)).map((row) => ({ sepId: row.id, logins: row.n }));
  const failuresByReason = topRows(failures.map((row) => ({ id: row.reason ?? 'unknown', n: Number(row.n) })).sort(byCount)).map((row) => ({ reason: row.id, count: row.n }));
  const means = [...meansTotals].map(([id, n]) => ({ id, n })).sort(byCount).map((row) => ({ id: row.id, logins: row.n }));

  const logins = weeks.reduce((sum, week) => sum + week.logins, 0);
  return {
    timeZone: TIME_ZONE,
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    weeks,
    means,
    loginsBySep,
    failuresByReason,
    loginsByProtocol: { oidc: logins - Number(saml.n), saml: Number(saml.n) },
    totals: {
      logins,
      registrations: weeks.reduce((sum, week) => sum + week.registrations, 0),
      registeredPersons: registered,
      failures: failuresByReason.reduce((sum, row) => sum + row.count, 0),
    },
  };
}
