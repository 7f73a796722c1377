import type { Request, Response } from 'express';
import { showCitizenError } from './citizen-errors.ts';
import { logger } from '../log/logger.ts';
import { describeDatabaseError } from '../store/database-unavailable.ts';

/** What a client is told to wait before trying again while the database is out of reach. */
export const RETRY_AFTER_SECONDS = 5;

/** The OAuth error a SeP or API client receives (RFC 6749 4.1.2.1 `temporarily_unavailable`). */
export const UNAVAILABLE_BODY = {
  error: 'temporarily_unavailable',
  error_description: 'Brána cannot reach its database; nothing was changed. Retry later.',
} as const;

/**
 * 503 for a request that needs the database while it cannot be reached: the citizen's browser gets
 * the error page in Czech or English, a SeP or API client gets JSON. Either may retry.
 */
export function respondServiceUnavailable(req: Request, res: Response, err: unknown): void {
  logger.warn('request failed: database unavailable', { method: req.method, ...describeDatabaseError(err) });
  if (res.headersSent) return;
  res.set('Retry-After', String(RETRY_AFTER_SECONDS));
  if (req.accepts(['html', 'json']) === 'html') {
    showCitizenError(req, res, 'service_unavailable');
    return;
  }
  res.status(503).set('Cache-Control', 'no-store').json(UNAVAILABLE_BODY);
}
