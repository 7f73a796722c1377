import express, { type Router } from 'express';
import { outageLog } from '../log/outage-log.ts';
import type { Readiness } from './readiness.ts';

/**
 * `/healthz`: the process is up and serving HTTP (a container health check; restart it if not).
 * `/readyz`: every readiness check passes (a load balancer's check; send it traffic only if so).
 * Both are public, so they say which check fails but not why in raw words (a raw error may name
 * hosts, addresses or files): the raw errors go to the node's log, once per failing set of checks
 * and interval (a load balancer asks every few seconds).
 */
export function healthRoutes(readiness: Readiness): Router {
  const router = express.Router();
  router.get('/healthz', (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const report = await readiness.report();
    const failed = Object.entries(report.checks).filter(([, check]) => !check.ok || check.error !== undefined);
    if (failed.length) {
      const kind = failed.map(([name, check]) => `${name}${reasonOf(check.detail)}`).join(',');
      outageLog.report('warn', 'readiness check failed', kind, Object.fromEntries(failed.map(([name, check]) => [name, check.error ?? null])));
    }
    const checks = Object.fromEntries(Object.entries(report.checks).map(([name, { error: _error, ...check }]) => [name, check]));
    res.status(report.ready ? 200 : 503).set('Cache-Control', 'no-store').json({ ...report, checks });
  });
  return router;
}

function reasonOf(detail: unknown): string {
  const reason = (detail as { reason?: unknown } | undefined)?.reason;
  return typeof reason === 'string' ? `:${reason}` : '';
}
