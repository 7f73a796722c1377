import express, { type Router } from 'express';
import type { Readiness } from './readiness.ts';

/**
 * `/healthz`: the process is up and serving HTTP (a container health check; restart it if not).
 * `/readyz`: every readiness check passes (a load balancer's check; send it traffic only if so).
 */
export function healthRoutes(readiness: Readiness): Router {
  const router = express.Router();
  router.get('/healthz', (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const report = await readiness.report();
    res.status(report.ready ? 200 : 503).set('Cache-Control', 'no-store').json(report);
  });
  return router;
}
