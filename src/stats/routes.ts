import express, { type Request, type Response, type Router } from 'express';
import { z } from 'zod';
import { OPERATOR_ROLES, type OperatorCredentials } from '../access/operator-credentials.ts';
import { requireOperator } from '../access/require-operator.ts';
import { describeIssues } from '../config/configuration-error.ts';
import { MESSAGES } from '../pages/i18n.ts';
import { localeOf, renderPage, type PageData } from '../pages/render.ts';
import type { SepStore } from '../sep/sep-store.ts';
import type { Database } from '../store/database.ts';
import type { AssertionLog } from '../audit/assertion-log.ts';
import type { IdentityMeansRegistry } from '../upstream/identity-means-registry.ts';
import { horizontalBars, lineWithArea, stackedColumns } from './charts.ts';
import { defaultPeriod, loginStatistics, type LoginStatistics, type StatisticsPeriod } from './login-statistics.ts';
import { parseDate } from './prague-weeks.ts';

export interface StatisticsDependencies {
  db: Database;
  seps: SepStore;
  registry: IdentityMeansRegistry;
  operators: OperatorCredentials;
  /** The numbers count every record committed before the request (staged ones are chained first). */
  log: Pick<AssertionLog, 'settled'>;
}

const periodSchema = z
  .object({
    weeks: z.coerce.number().int().min(1).max(260).optional(),
    until: z
      .string()
      .refine((value) => parseDate(value) !== undefined, 'must be a date (2024-03-01)')
      .optional(),
  })
  .strict();

function periodOf(req: Request): StatisticsPeriod | string[] {
  const parsed = periodSchema.safeParse(req.query);
  if (!parsed.success) return describeIssues(parsed.error.issues);
  const period = defaultPeriod();
  return { until: parsed.data.until ? parseDate(parsed.data.until)! : period.until, weeks: parsed.data.weeks ?? period.weeks };
}

type Named<T> = T & { name: { cs: string; en: string } | null };

interface NamedStatistics extends Omit<LoginStatistics, 'means' | 'loginsBySep'> {
  means: Array<Named<LoginStatistics['means'][number]>>;
  loginsBySep: Array<Named<LoginStatistics['loginsBySep'][number]>>;
}

async function namedStatistics(deps: Omit<StatisticsDependencies, 'operators'>, period: StatisticsPeriod): Promise<NamedStatistics> {
  await deps.log.settled();
  const statistics = await loginStatistics(deps.db, period);
  const seps = new Map((await deps.seps.list()).map((sep) => [sep.clientId, sep.name]));
  return {
    ...statistics,
    means: statistics.means.map((row) => ({ ...row, name: deps.registry.get(row.id)?.means.name ?? null })),
    loginsBySep: statistics.loginsBySep.map((row) => ({ ...row, name: seps.get(row.sepId) ?? null })),
  };
}

/**
 * What the statistics page shows for the period a request asks for (`weeks`, `until`): the numbers,
 * the charts drawn from them, or the problems with the period. The operators' console shows the
 * same (the `stats-body` template).
 */
export async function statisticsPage(deps: Omit<StatisticsDependencies, 'operators'>, req: Request): Promise<PageData> {
  const locale = localeOf(req);
  const t = MESSAGES[locale].stats;
  const period = periodOf(req);
  if (Array.isArray(period)) return { title: t.title, problems: period, statistics: null };
  const statistics = await namedStatistics(deps, period);
  const labels = statistics.weeks.map((week) => week.week.slice(5));
  const meansName = (row: NamedStatistics['means'][number]) => row.name?.[locale] ?? row.id;
  const charts = {
    logins: stackedColumns(
      'logins',
      t.loginsPerWeek,
      labels,
      statistics.means.map((row) => ({ name: meansName(row), values: statistics.weeks.map((week) => week.byMeans[row.id] ?? 0) })),
    ),
    registrations: lineWithArea('registrations', t.registrations, labels, statistics.weeks.map((week) => week.registeredPersons)),
    seps: horizontalBars('seps', t.loginsBySep, statistics.loginsBySep.map((row) => ({ label: row.name?.[locale] ?? row.sepId, value: row.logins }))),
    failures: horizontalBars('failures', t.failuresByReason, statistics.failuresByReason.map((row) => ({ label: row.reason, value: row.count }))),
  };
  return {
    title: t.title,
    problems: null,
    statistics,
    charts,
    meansNames: statistics.means.map(meansName),
    period: { from: statistics.weeks[0]!.monday, weeks: period.weeks },
    jsonLink: `/stats.json?weeks=${period.weeks}&until=${req.query.until ? String(req.query.until) : ''}`.replace(/&until=$/, ''),
  };
}

/**
 * `/stats` (a dashboard with charts) and `/stats.json` (the same numbers) for operators of every
 * role: they are aggregates, with no citizen in them. A browser asks for the credential itself
 * (HTTP Basic, the token as the password); scripts send it as a bearer token.
 */
export function statisticsRoutes(deps: StatisticsDependencies): Router {
  const router = express.Router();
  const guard = requireOperator(deps.operators, OPERATOR_ROLES, { basic: true });

  router.get('/stats.json', guard, async (req, res, next) => {
    try {
      const period = periodOf(req);
      if (Array.isArray(period)) {
        res.status(400).json({ error: 'invalid_request', error_description: period.join('; '), problems: period });
        return;
      }
      res.set('Cache-Control', 'no-store').json(await namedStatistics(deps, period));
    } catch (err) {
      next(err);
    }
  });

  router.get('/stats', guard, async (req: Request, res: Response, next) => {
    try {
      const page = await statisticsPage(deps, req);
      renderPage(req, res, 'stats', page, page.problems ? 400 : 200);
    } catch (err) {
      next(err);
    }
  });

  return router;
}
