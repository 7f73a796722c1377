import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type Provider from 'oidc-provider';
import { logger } from '../log/logger.ts';
import { respondServiceUnavailable } from '../pages/service-unavailable.ts';
import { isDatabaseUnavailable } from '../store/database-unavailable.ts';
import type { SepRegistration } from './sep-registration.ts';
import type { SepStore } from './sep-store.ts';

export interface SepSelfServiceDependencies {
  provider: Provider;
  seps: SepStore;
  registration: SepRegistration;
}

/** A SeP's request refused: an OAuth-style JSON error. */
export class SepRequestError extends Error {
  readonly status: number;
  readonly code: string;
  readonly problems: string[];

  constructor(status: number, code: string, description: string, problems: string[] = []) {
    super(description);
    this.status = status;
    this.code = code;
    this.problems = problems;
  }
}

/**
 * What a SeP does for itself beside RFC 7592, at `/reg/<client id>/…`, authenticated like RFC 7592
 * with its registration access token: rotate its client secret, and (registered by the tiles
 * module) request a Citizen-Portal tile.
 */
export function sepSelfServiceRoutes(deps: SepSelfServiceDependencies, extend?: (router: Router, authenticate: (req: Request) => Promise<string>) => void): Router {
  const router = express.Router();

  /** The SeP whose registration access token this is; it must be the one the URL names. */
  async function authenticate(req: Request): Promise<string> {
    const match = /^Bearer ([A-Za-z0-9_-]{20,200})$/.exec(req.headers.authorization ?? '');
    const token = match ? await deps.provider.RegistrationAccessToken.find(match[1]!) : undefined;
    const sep = token?.clientId === req.params.clientId ? await deps.seps.find(String(req.params.clientId)) : undefined;
    if (!token || !sep || sep.status === 'disabled') throw new SepRequestError(401, 'invalid_token', 'a registration access token of this SeP is required');
    return sep.clientId;
  }

  router.post('/:clientId/client-secret', async (req, res, next) => {
    try {
      const clientId = await authenticate(req);
      const secret = await deps.registration.rotateSecret(clientId, 'self-service (registration API)');
      res.set('Cache-Control', 'no-store').json({ client_id: clientId, client_secret: secret, client_secret_expires_at: 0 });
    } catch (err) {
      next(err);
    }
  });

  extend?.(router, authenticate);

  router.use((err: Error, req: Request, res: Response, next: NextFunction) => {
    if (err instanceof SepRequestError) {
      if (err.status === 401) res.set('WWW-Authenticate', 'Bearer error="invalid_token"');
      res.status(err.status).json({ error: err.code, error_description: err.message, ...(err.problems.length ? { problems: err.problems } : {}) });
      return;
    }
    if ((err as { type?: string }).type === 'entity.parse.failed' || (err as { type?: string }).type === 'entity.too.large') {
      res.status(400).json({ error: 'invalid_request', error_description: (err as { type?: string }).type === 'entity.too.large' ? 'the body is too large' : 'the body is not valid JSON' });
      return;
    }
    if (isDatabaseUnavailable(err)) {
      respondServiceUnavailable(req, res, err);
      return;
    }
    logger.error('SeP self-service request failed', { error: err.message });
    next(err);
  });
  return router;
}
