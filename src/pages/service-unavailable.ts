import type { Request, Response } from 'express';
import { showCitizenError } from './citizen-errors.ts';
import { outageLog } from '../log/outage-log.ts';
import { databaseFailureKind, describeDatabaseError } from '../store/database-unavailable.ts';
import { currentRequestWrites, type RequestWrites } from '../store/request-writes.ts';

/** What a client is told to wait before trying again while the database is out of reach. */
export const RETRY_AFTER_SECONDS = 5;

/**
 * The OAuth error a SeP or API client receives (RFC 6749 4.1.2.1 `temporarily_unavailable`) when
 * the request wrote nothing before the database went: it may simply be sent again.
 */
export const UNAVAILABLE_BODY = {
  error: 'temporarily_unavailable',
  error_description: 'Brána cannot reach its database; nothing was changed. Retry later.',
} as const;

/**
 * The same when the database went after a write of the request was committed, or while its commit
 * was on the way: part of it may be done (at /token: the code may be redeemed, and a retry refused).
 */
export const UNAVAILABLE_PART_WAY_BODY = {
  error: 'temporarily_unavailable',
  error_description: 'Brána lost its database part-way through this request; some of it may have been done. Retry later.',
} as const;

/** The true one of the two for this request (RequestWrites counts what it may have written). */
export function unavailableBody(writes: RequestWrites | undefined = currentRequestWrites()): typeof UNAVAILABLE_BODY | typeof UNAVAILABLE_PART_WAY_BODY {
  return writes?.mayHaveChanged ? UNAVAILABLE_PART_WAY_BODY : UNAVAILABLE_BODY;
}

/** One line per kind of database failure and interval in the node's log, whichever route met it. */
export function logDatabaseUnavailable(err: unknown, where: Record<string, unknown>, writes: RequestWrites | undefined = currentRequestWrites()): void {
  const partWay = writes?.mayHaveChanged ? { partWay: true } : {};
  outageLog.report('warn', 'request failed: database unavailable', databaseFailureKind(err), { ...where, ...describeDatabaseError(err), ...partWay });
}

/**
 * 503 for a request that needs the database while it cannot be reached: the citizen's browser gets
 * the error page in Czech or English, a SeP or API client gets JSON. Either may retry.
 */
export function respondServiceUnavailable(req: Request, res: Response, err: unknown): void {
  logDatabaseUnavailable(err, { method: req.method });
  if (res.headersSent) return;
  res.set('Retry-After', String(RETRY_AFTER_SECONDS));
  if (req.accepts(['html', 'json']) === 'html') {
    showCitizenError(req, res, 'service_unavailable');
    return;
  }
  res.status(503).set('Cache-Control', 'no-store').json(unavailableBody());
}
