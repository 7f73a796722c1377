import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type Provider from 'oidc-provider';
import { z } from 'zod';
import type { OperatorCredentials } from '../access/operator-credentials.ts';
import { operatorOf, requireOperator } from '../access/require-operator.ts';
import type { AssertionLog } from '../audit/assertion-log.ts';
import { describeIssues } from '../config/configuration-error.ts';
import { logger } from '../log/logger.ts';
import { respondServiceUnavailable } from '../pages/service-unavailable.ts';
import { isDatabaseUnavailable } from '../store/database-unavailable.ts';
import { InitialAccessTokenUses } from '../oidc/initial-access-token-uses.ts';
import { DEFAULT_INITIAL_TOKEN_DAYS, DEFAULT_INITIAL_TOKEN_USES, MAX_INITIAL_TOKEN_DAYS, MAX_INITIAL_TOKEN_USES, issueInitialAccessToken } from '../oidc/initial-access-tokens.ts';
import { ApprovalRefused, NothingToDecide, UnknownSep, type SepRegistration } from '../sep/sep-registration.ts';
import type { SepStore } from '../sep/sep-store.ts';
import type { Database } from '../store/database.ts';
import { TileNotAllowed, type TileRequests } from '../tiles/tile-requests.ts';
import type { TileStore } from '../tiles/tile-store.ts';
import type { TileStatus } from '../tiles/tile.ts';
import { reviewOf } from './sep-administration.ts';
import { SamlSepStore } from '../sep/saml-service-provider.ts';
import type { MetadataStatus } from '../upstream/metadata/metadata-source.ts';

export interface AdminDependencies {
  db: Database;
  operators: OperatorCredentials;
  provider: Provider;
  seps: SepStore;
  registration: SepRegistration;
  log: AssertionLog;
  publicUrl: URL;
  tiles: TileStore;
  tileRequests: TileRequests;
  /** SP metadata of SAML SePs kept current from its URL: each SeP's refresh state, and a refresh now. */
  spMetadata?: { status(clientId: string): MetadataStatus | undefined; refresh(clientId: string): Promise<MetadataStatus | undefined> };
}

const TILE_STATUSES: TileStatus[] = ['pending', 'approved', 'rejected', 'withdrawn', 'superseded'];
const tileId = (req: Request) => {
  const id = String(req.params.id);
  if (!/^\d{1,12}$/.test(id)) throw new AdminRequestError(404, 'not_found', 'no such tile');
  return Number(id);
};

/** A request the administrator can correct: 4xx with an OAuth-style JSON body. */
export class AdminRequestError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, description: string) {
    super(description);
    this.status = status;
    this.code = code;
  }
}

const actorOf = (res: Response) => `admin:${operatorOf(res).name}`;

export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body ?? {});
  if (!parsed.success) throw new AdminRequestError(400, 'invalid_request', describeIssues(parsed.error.issues).join('; '));
  return parsed.data;
}


/** An approval names the version the administrator reviewed: `approval.digest` of `GET /admin/seps/:id`. */
const approval = z
  .object({ digest: z.string({ error: 'required: the approval.digest of the version you reviewed (GET /admin/seps/<client id>)' }).regex(/^[0-9a-f]{64}$/, 'must be the 64 hex digits of approval.digest') })
  .strict();

const decision = z.object({ reason: z.string().trim().min(1).max(2000) }).strict();

/**
 * The administrators' API (`/admin`, an admin bearer credential): review and approve SeP
 * registrations and their changes, and hand out initial access tokens for self-service
 * registration. Every decision is an administrative event in the assertion log.
 */
export function adminRoutes(deps: AdminDependencies, extend?: (router: Router) => void): Router {
  const router = express.Router();
  const tokenUses = new InitialAccessTokenUses(deps.db);
  const samlSeps = new SamlSepStore(deps.db);
  router.use(requireOperator(deps.operators, 'admin'));
  router.use(express.json({ limit: '10kb' }));

  router.get(
    '/seps',
    async (req: Request, res: Response) => {
      const status = req.query.status;
      if (status !== undefined && status !== 'pending' && status !== 'active' && status !== 'disabled') throw new AdminRequestError(400, 'invalid_request', 'status: must be pending, active or disabled');
      const seps = await deps.seps.list({ status, changePending: req.query.changePending === 'true' ? true : undefined });
      res.json(await Promise.all(seps.map((sep) => reviewOf(deps.seps, deps.registration, sep, samlSeps))));
    },
  );

  router.get(
    '/seps/:clientId',
    async (req: Request, res: Response) => {
      const sep = await deps.seps.find(String(req.params.clientId));
      if (!sep) throw new AdminRequestError(404, 'not_found', 'no such SeP');
      const refresh = deps.spMetadata?.status(sep.clientId);
      res.json({ ...(await reviewOf(deps.seps, deps.registration, sep, samlSeps)), ...(refresh ? { samlMetadataRefresh: refresh } : {}) });
    },
  );

  // An operator's refresh of a SAML SeP's metadata from the https URL it was registered from: its
  // state either way (a failure keeps the metadata in force, and says why).
  router.post(
    '/seps/:clientId/saml-metadata/refresh',
    async (req: Request, res: Response) => {
      const status = await deps.spMetadata?.refresh(String(req.params.clientId));
      if (!status) throw new AdminRequestError(404, 'not_found', 'no SAML SeP registered from an https URL with this client id');
      res.status(status.error ? 502 : 200).json(status);
    },
  );

  router.post(
    '/seps/:clientId/approve',
    async (req: Request, res: Response) => {
      const { digest } = parseBody(approval, req.body);
      res.json({ clientId: req.params.clientId, ...(await deps.registration.approve(String(req.params.clientId), actorOf(res), digest)) });
    },
  );

  router.post(
    '/seps/:clientId/reject',
    async (req: Request, res: Response) => {
      const { reason } = parseBody(decision, req.body);
      res.json({ clientId: req.params.clientId, ...(await deps.registration.reject(String(req.params.clientId), actorOf(res), reason)) });
    },
  );

  router.post(
    '/initial-access-tokens',
    async (req: Request, res: Response) => {
      const { days, uses } = parseBody(
        z.object({ days: z.number().positive().max(MAX_INITIAL_TOKEN_DAYS).default(DEFAULT_INITIAL_TOKEN_DAYS), uses: z.number().int().min(1).max(MAX_INITIAL_TOKEN_USES).default(DEFAULT_INITIAL_TOKEN_USES) }).strict(),
        req.body,
      );
      const issued = await issueInitialAccessToken(deps.provider, { tokenUses }, deps.log, actorOf(res), { days, uses });
      res
        .status(201)
        .set('Cache-Control', 'no-store')
        .json({ initial_access_token: issued.token, expires_at: new Date(issued.expiresAt).toISOString(), uses: issued.uses, registration_endpoint: new URL('/reg', deps.publicUrl).href });
    },
  );

  router.get(
    '/tiles',
    async (req: Request, res: Response) => {
      const status = req.query.status;
      if (status !== undefined && !TILE_STATUSES.includes(status as TileStatus)) throw new AdminRequestError(400, 'invalid_request', `status: must be one of ${TILE_STATUSES.join(', ')}`);
      const tiles = await deps.tiles.list({ status: status as TileStatus | undefined });
      // The logo goes along so that the administrator sees what would be published.
      res.json(await Promise.all(tiles.map(async (tile) => ({ ...tile, logo: `data:${tile.logoType};base64,${(await deps.tiles.logo(tile.id))!.bytes.toString('base64')}` }))));
    },
  );

  router.post(
    '/tiles/:id/approve',
    async (req: Request, res: Response) => {
      res.json(await deps.tileRequests.approve(tileId(req), actorOf(res)));
    },
  );

  router.post(
    '/tiles/:id/reject',
    async (req: Request, res: Response) => {
      const { reason } = parseBody(decision, req.body);
      res.json(await deps.tileRequests.reject(tileId(req), actorOf(res), reason));
    },
  );

  extend?.(router);

  router.use((err: Error, req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof AdminRequestError) {
      res.status(err.status).json({ error: err.code, error_description: err.message });
      return;
    }
    if (err instanceof UnknownSep) {
      res.status(404).json({ error: 'not_found', error_description: err.message });
      return;
    }
    if (err instanceof TileNotAllowed) {
      res.status(err.code === 'not_found' ? 404 : 409).json({ error: err.code, error_description: err.message });
      return;
    }
    if (err instanceof ApprovalRefused) {
      res.status(409).json({ error: err.code, error_description: err.message });
      return;
    }
    if (err instanceof NothingToDecide) {
      res.status(409).json({ error: 'nothing_to_decide', error_description: err.message });
      return;
    }
    if ((err as { type?: string }).type === 'entity.parse.failed') {
      res.status(400).json({ error: 'invalid_request', error_description: 'the body is not valid JSON' });
      return;
    }
    if (isDatabaseUnavailable(err)) {
      respondServiceUnavailable(req, res, err);
      return;
    }
    logger.error('admin request failed', { error: err.message });
    res.status(500).json({ error: 'server_error' });
  });
  return router;
}
