import express, { type Router } from 'express';
import { OPERATOR_ROLES, type OperatorCredentials } from '../access/operator-credentials.ts';
import { requireOperator } from '../access/require-operator.ts';
import type { BrokerMetrics } from './broker-metrics.ts';

/**
 * `/metrics` in Prometheus text format, for any operator credential (a `monitor` one is meant for
 * the Prometheus server: `authorization: { credentials: brana_monitor_… }` in its scrape config).
 * Only aggregate numbers: no SeP, no citizen.
 */
export function metricsRoute(metrics: BrokerMetrics, operators: OperatorCredentials): Router {
  const router = express.Router();
  router.get('/metrics', requireOperator(operators, OPERATOR_ROLES), async (_req, res, next) => {
    try {
      const text = await metrics.registry.metrics();
      res.set('Cache-Control', 'no-store').type(metrics.registry.contentType).send(text);
    } catch (err) {
      next(err);
    }
  });
  return router;
}
