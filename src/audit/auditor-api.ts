import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { OperatorCredentials } from '../access/operator-credentials.ts';
import { operatorOf, requireOperator } from '../access/require-operator.ts';
import { logger } from '../log/logger.ts';
import { respondServiceUnavailable } from '../pages/service-unavailable.ts';
import { isDatabaseUnavailable } from '../store/database-unavailable.ts';
import type { Database } from '../store/database.ts';
import { auditAccessForbidden, auditExported, auditQueried, type AuditReader } from './audit-events.ts';
import { describeAuditFilter, FILTER_PARAMETERS, InvalidAuditFilter, parseAuditFilter, type AuditFilter } from './audit-filter.ts';
import type { AuditTrail } from './audit-trail.ts';
import { EXPORT_FORMATS, sinkOf, writeExport, type ExportFormat } from './export.ts';
import { verifyStoredLog } from './verification.ts';

export interface AuditorApiDependencies {
  db: Database;
  audit: AuditTrail;
  operators: OperatorCredentials;
}

class BadQuery extends Error {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(problems.join('; '));
    this.problems = problems;
  }
}

const PAGING = ['limit', 'after'] as const;

function single(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new BadQuery([`${name}: must be given once`]);
  return value;
}

/** The filter of a request; any parameter the endpoint does not know is refused, not ignored. */
function filterOf(req: Request, extra: readonly string[]): AuditFilter {
  const input: Record<string, string> = {};
  const unknown: string[] = [];
  for (const [name, value] of Object.entries(req.query)) {
    if ((FILTER_PARAMETERS as readonly string[]).includes(name)) input[name] = single(value, name)!;
    else if (!extra.includes(name)) unknown.push(`${name}: is not a parameter of this endpoint`);
  }
  if (unknown.length) throw new BadQuery(unknown);
  try {
    return parseAuditFilter(input);
  } catch (err) {
    if (err instanceof InvalidAuditFilter) throw new BadQuery(err.problems);
    throw err;
  }
}

function wholeNumber(value: string | undefined, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d{1,16}$/.test(value) || Number(value) < min || Number(value) > max) throw new BadQuery([`${name}: must be a whole number from ${min} to ${max}`]);
  return Number(value);
}

/**
 * The auditors' API under `/audit`: read-only, for the auditor role only (an administrator gets
 * 403, and the attempt is logged). Every query is written to the assertion log, with the auditor's
 * name and filter, before any record leaves: an auditor cannot look without leaving a trace.
 */
export function auditorApi(deps: AuditorApiDependencies): Router {
  const router = express.Router();
  const { log } = deps.audit;

  router.use(
    requireOperator(deps.operators, 'auditor', {
      onForbidden: async (operator, req) => {
        await log.append(auditAccessForbidden({ operator: operator.name, role: operator.role, path: req.path }));
      },
    }),
  );

  // Nothing under /audit writes: every other method is refused before it reaches a handler.
  router.use((req, res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD') {
      next();
      return;
    }
    res.status(405).set('Allow', 'GET, HEAD').json({ error: 'method_not_allowed', error_description: 'the audit API is read-only' });
  });

  const readerOf = (res: Response): AuditReader => ({ via: 'api', operator: operatorOf(res).name });

  router.get('/records', async (req, res, next) => {
    try {
      const filter = filterOf(req, PAGING);
      const limit = wholeNumber(single(req.query.limit, 'limit'), 'limit', 1, 1000, 100);
      const after = wholeNumber(single(req.query.after, 'after'), 'after', 0, Number.MAX_SAFE_INTEGER, 0);
      await log.append(auditQueried(readerOf(res), { filter: describeAuditFilter(filter), limit, after }));
      const records = await log.query(filter, { afterSeq: after, limit });
      res.set('Cache-Control', 'no-store').json({
        records: records.map((record) => ({ ...record, time: new Date(record.at).toISOString() })),
        next: records.length === limit ? records[records.length - 1]!.seq : null,
      });
    } catch (err) {
      next(err);
    }
  });

  router.get('/export', async (req, res, next) => {
    let started = false;
    try {
      const filter = filterOf(req, ['format']);
      const format = single(req.query.format, 'format') ?? 'jsonl';
      if (!(EXPORT_FORMATS as readonly string[]).includes(format)) throw new BadQuery([`format: must be one of ${EXPORT_FORMATS.join(', ')}`]);
      await log.append(auditExported(readerOf(res), { filter: describeAuditFilter(filter), format }));
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      res
        .status(200)
        .set('Cache-Control', 'no-store')
        .type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8')
        .set('Content-Disposition', `attachment; filename="brana-audit-${stamp}.${format}"`);
      started = true;
      await writeExport(deps.db, deps.audit.checkpoints, filter, format as ExportFormat, sinkOf(res));
      res.end();
    } catch (err) {
      if (!started) {
        next(err);
        return;
      }
      // The headers are gone: cut the export short rather than let it look complete.
      logger.error('audit export failed', { error: (err as Error).message });
      res.destroy();
    }
  });

  router.get('/checkpoints', async (_req, res, next) => {
    try {
      await log.append(auditQueried(readerOf(res), { what: 'checkpoints' }));
      const checkpoints = await deps.audit.checkpoints.list();
      res.set('Cache-Control', 'no-store').json({ checkpoints: checkpoints.map(({ seq, hash, count, at, kid, jws }) => ({ seq, hash, count, at: new Date(at).toISOString(), kid, jws })) });
    } catch (err) {
      next(err);
    }
  });

  router.get('/verify', async (_req, res, next) => {
    try {
      await log.append(auditQueried(readerOf(res), { what: 'verify' }));
      await log.settled();
      res.set('Cache-Control', 'no-store').json(await verifyStoredLog(deps.db, deps.audit.keys.publicJwks, deps.audit.seal));
    } catch (err) {
      next(err);
    }
  });

  router.get('/public-key', (_req, res) => {
    res.json(deps.audit.keys.publicJwks);
  });

  router.use((_req, res) => {
    res.status(404).json({ error: 'not_found', error_description: 'no such audit endpoint' });
  });

  router.use((err: Error, req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof BadQuery) {
      res.status(400).json({ error: 'invalid_request', error_description: err.message, problems: err.problems });
      return;
    }
    if (isDatabaseUnavailable(err)) {
      respondServiceUnavailable(req, res, err);
      return;
    }
    logger.error('audit API request failed', { error: err.message });
    res.status(500).json({ error: 'server_error', error_description: 'the request could not be completed; nothing was returned' });
  });

  return router;
}
