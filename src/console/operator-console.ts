import express, { type Request, type Response, type Router } from 'express';
import type { AssertionLog } from '../audit/assertion-log.ts';
import { signingKeyStates } from '../operations/key-rotation.ts';
import type { Readiness } from '../operations/readiness.ts';
import type { SepStore } from '../sep/sep-store.ts';
import { statisticsPage } from '../stats/routes.ts';
import type { Database } from '../store/database.ts';
import type { IdentityMeansRegistry } from '../upstream/identity-means-registry.ts';
import { consoleMessages, renderConsole } from './console-page.ts';

export interface OperatorConsoleDependencies {
  db: Database;
  seps: SepStore;
  registry: IdentityMeansRegistry;
  log: AssertionLog;
  readiness: Readiness;
  /** The shared ID-token signing keys file (`keys/oidc-signing.jwks.json`). */
  signingKeysFile: string;
}

const DAY_MS = 24 * 3600 * 1000;

/** The certificates a means' metadata names, with the whole days left until each expires. */
function certificatesOf(summary: Record<string, unknown> | null, now: number): Array<{ sha256: string; notAfter: string; days: number }> {
  const listed = Array.isArray(summary?.signingCertificates) ? (summary.signingCertificates as Array<{ sha256?: unknown; notAfter?: unknown }>) : [];
  return listed.flatMap((certificate) =>
    typeof certificate.sha256 === 'string' && typeof certificate.notAfter === 'string' ? [{ sha256: certificate.sha256, notAfter: certificate.notAfter, days: Math.floor((Date.parse(certificate.notAfter) - now) / DAY_MS) }] : [],
  );
}

/**
 * The operator's console (`/console/operations`): each means' metadata (source, state, last and
 * next refresh, certificates and their days to expiry, last error), the signing keys' rotation
 * state, this node's readiness checks, and the statistics — the same numbers as `/stats`, from
 * the same code. It reads only; nothing here changes Brána.
 */
export function operatorConsole(deps: OperatorConsoleDependencies): Router {
  const router = express.Router();

  router.get('/', async (req: Request, res: Response) => {
    const c = consoleMessages(req);
    const now = Date.now();
    const means = deps.registry.metadataDetail().map((status) => ({ ...status, name: deps.registry.get(status.means)?.means.name ?? null, certificates: certificatesOf(status.summary, now) }));
    const rotations = await deps.log.query({ event: 'keys_rotated' }, { order: 'desc', limit: 20 });
    const lastRotation = rotations.find((record) => record.detail.purpose === 'oidc-signing') ?? null;
    const [readiness, statistics] = await Promise.all([deps.readiness.report(), statisticsPage(deps, req)]);
    renderConsole(req, res, 'operations', {
      ...statistics,
      title: c.operations.title,
      means,
      keys: signingKeyStates(deps.signingKeysFile, now),
      lastRotation: lastRotation ? { at: lastRotation.at, actor: String(lastRotation.detail.actor ?? '') } : null,
      readiness: { ready: readiness.ready, checks: Object.entries(readiness.checks).map(([name, result]) => ({ name, ok: result.ok, detail: result.detail === undefined ? '' : JSON.stringify(result.detail) })) },
    });
  });

  return router;
}
