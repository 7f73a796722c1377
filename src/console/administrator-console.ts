import { X509Certificate } from 'node:crypto';
import express, { type Request, type Response, type Router } from 'express';
import type Provider from 'oidc-provider';
import type { AssertionLog } from '../audit/assertion-log.ts';
import { InitialAccessTokenUses } from '../oidc/initial-access-token-uses.ts';
import { issueInitialAccessToken, MAX_INITIAL_TOKEN_DAYS, MAX_INITIAL_TOKEN_USES } from '../oidc/initial-access-tokens.ts';
import { localeOf } from '../pages/render.ts';
import { ApprovalRefused, awaitingApproval, NothingToDecide, UnknownSep, type SepRegistration } from '../sep/sep-registration.ts';
import type { SepStore } from '../sep/sep-store.ts';
import { RESERVED_PREFIX, registrationOf, type Sep } from '../sep/sep.ts';
import { SamlSepStore, type SamlSepRecord } from '../sep/saml-service-provider.ts';
import type { Database } from '../store/database.ts';
import { TileNotAllowed, type TileRequests } from '../tiles/tile-requests.ts';
import type { TileStore } from '../tiles/tile-store.ts';
import { actorOf, consoleMessages, renderConsole } from './console-page.ts';

export interface AdministratorConsoleDependencies {
  db: Database;
  tiles: TileStore;
  tileRequests: TileRequests;
  /** The provider in use now (it is replaced when the signing keys change): read per request. */
  readonly provider: Provider;
  seps: SepStore;
  registration: SepRegistration;
  log: AssertionLog;
}

/** The fields of a registration in the order an administrator reads them. */
const DIFF_FIELDS = [
  'name',
  'organisation',
  'description',
  'infoUrl',
  'group',
  'spType',
  'legalBasis',
  'minimumLoa',
  'allowedAttributes',
  'allowedMeans',
  'eidasEnabled',
  'redirectUris',
  'postLogoutRedirectUris',
  'frontchannelLogoutUri',
  'tokenEndpointAuthMethod',
  'jwks',
  'jwksUri',
  'idTokenEncryption',
  'idTokenSignedResponseAlg',
  'environment',
] as const;

/** A value as the diff shows it: lists one item a line, objects as their fields. */
function shown(value: unknown): string[] {
  if (value === null || value === undefined) return [];
  if (Array.isArray(value)) return value.map((item) => (typeof item === 'string' ? item : JSON.stringify(item)));
  if (typeof value === 'object') return Object.entries(value as Record<string, unknown>).map(([key, item]) => `${key}: ${typeof item === 'string' ? item : JSON.stringify(item)}`);
  return [String(value)];
}

/**
 * The side-by-side diff of what waits: for a change, the registration in force against the one
 * asked for; for a new registration, nothing in force against all of it.
 */
function diffOf(sep: Sep, saml?: SamlSepRecord): Array<{ field: string; inForce: string[]; requested: string[]; changed: boolean }> | null {
  const waiting = awaitingApproval(sep);
  if (!waiting) return null;
  // A SAML SeP's SP metadata is part of what is approved: a new one shows all of it, a change of the
  // registration shows it unchanged (new metadata is put in force by the operator, with its record).
  const samlRows = saml
    ? Object.entries(samlPartOf(saml)).map(([field, value]) => {
        const requested = shown(value);
        return { field: `saml.${field}`, inForce: waiting.kind === 'change' ? requested : [], requested, changed: waiting.kind === 'registration' };
      })
    : [];
  const before = waiting.kind === 'change' ? (registrationOf(sep) as unknown as Record<string, unknown>) : null;
  const after = (waiting.kind === 'change' ? waiting.reviewed : registrationOf(sep)) as Record<string, unknown>;
  const rows = DIFF_FIELDS.filter((field) => waiting.kind === 'registration' || field in after).map((field) => {
    const inForce = before ? shown(before[field]) : [];
    const requested = shown(after[field]);
    return { field, inForce, requested, changed: JSON.stringify(inForce) !== JSON.stringify(requested) };
  });
  return [...rows, ...samlRows];
}

/** What an administrator reads of SP metadata: endpoints, and each certificate by fingerprint and expiry. */
function samlPartOf(record: SamlSepRecord): Record<string, unknown> {
  const sp = record.serviceProvider;
  const certificate = (pem: string) => {
    const x509 = new X509Certificate(pem);
    return `SHA-256 ${x509.fingerprint256}, ${x509.subject.replace(/\n/g, ', ')}, valid until ${new Date(x509.validTo).toISOString().slice(0, 10)}`;
  };
  return {
    entityId: sp.entityId,
    assertionConsumerServices: sp.assertionConsumerServices.map((service) => `${service.url} (${service.binding.replace(/^.*:/, '')})`),
    singleLogout: sp.singleLogout ? `${sp.singleLogout.url} (${sp.singleLogout.binding.replace(/^.*:/, '')})` : null,
    signingCertificates: sp.signingCertificates.map(certificate),
    encryptionCertificate: sp.encryptionCertificate ? certificate(sp.encryptionCertificate) : null,
    assertionEncryption: sp.assertionEncryption ?? null,
    metadataSource: record.metadataSource,
  };
}

const reasonOf = (req: Request) => {
  const value = (req.body as Record<string, unknown>).reason;
  const text = typeof value === 'string' ? value.trim() : '';
  return text.length >= 5 && text.length <= 2000 ? text : null;
};

/**
 * The administrator's console (`/console/admin`): registrations and change requests waiting, each
 * with its diff against the version in force; approving or refusing exactly the version shown (the
 * form carries its digest, and `SepRegistration` refuses a decision on any other); suspending and
 * reinstating a SeP; initial access tokens. Every decision is logged by `SepRegistration` with the
 * administrator's name.
 */
export function administratorConsole(deps: AdministratorConsoleDependencies): Router {
  const router = express.Router();
  const tokenUses = new InitialAccessTokenUses(deps.db);
  const samlSeps = new SamlSepStore(deps.db);

  router.get('/', async (req: Request, res: Response) => {
    const c = consoleMessages(req);
    const seps = (await deps.seps.list()).filter((sep) => !sep.clientId.startsWith(RESERVED_PREFIX));
    const row = (sep: Sep) => ({ clientId: sep.clientId, name: sep.name[localeOf(req)], organisation: sep.organisation, group: sep.group, status: sep.status, waits: awaitingApproval(sep)?.kind ?? null });
    renderConsole(req, res, 'admin', { title: c.admin.title, waiting: seps.filter((sep) => awaitingApproval(sep)).map(row), all: seps.map(row) });
  });

  async function showSep(req: Request, res: Response, clientId: string, outcome: { notice?: string; problem?: string; problems?: string[] }, status = 200): Promise<void> {
    const c = consoleMessages(req);
    const sep = await deps.seps.find(clientId);
    if (!sep) {
      renderConsole(req, res, 'not-found', { title: c.notFound }, 404);
      return;
    }
    const review = await deps.registration.approvalReview(sep);
    const members = (await deps.seps.listGroup(review?.group ?? sep.group)).filter((other) => other.clientId !== sep.clientId);
    renderConsole(
      req,
      res,
      'sep',
      {
        title: c.sep.title(sep.name[localeOf(req)]),
        sep,
        own: sep.clientId.startsWith(RESERVED_PREFIX),
        waiting: awaitingApproval(sep)?.kind ?? null,
        diff: diffOf(sep, sep.protocol === 'saml' ? await samlSeps.find(sep.clientId) : undefined),
        review,
        declared: (awaitingApproval(sep)?.document ?? sep).organisation,
        members: members.map((other) => ({ clientId: other.clientId, organisation: other.organisation.name, status: other.status })),
        suspended: await deps.registration.wasSuspended(sep),
        notice: outcome.notice ?? null,
        problem: outcome.problem ?? null,
        problems: outcome.problems ?? null,
      },
      status,
    );
  }

  router.get('/seps/:clientId', async (req: Request, res: Response) => {
    await showSep(req, res, String(req.params.clientId), { notice: noticeOf(req) });
  });

  function noticeOf(req: Request): string | undefined {
    const c = consoleMessages(req);
    const done = req.query.done;
    return done === 'approved' ? c.sep.decidedApproved : done === 'refused' ? c.sep.decidedRefused : done === 'suspended' ? c.sep.suspended : done === 'reinstated' ? c.sep.reinstated : undefined;
  }

  /** A decision on one SeP; a refused one shows the SeP as it is now, with why nothing was done. */
  async function decide(req: Request, res: Response, done: string, action: (clientId: string) => Promise<unknown>): Promise<void> {
    const c = consoleMessages(req);
    const clientId = String(req.params.clientId);
    if (clientId.startsWith(RESERVED_PREFIX)) {
      await showSep(req, res, clientId, { problem: c.sep.own }, 403);
      return;
    }
    try {
      await action(clientId);
    } catch (err) {
      if (err instanceof UnknownSep) {
        renderConsole(req, res, 'not-found', { title: c.notFound }, 404);
        return;
      }
      if (err instanceof ApprovalRefused) {
        await showSep(req, res, clientId, err.code === 'stale_review' ? { problem: c.sep.stale } : { problem: c.sep.notApprovable, problems: [err.message] }, 409);
        return;
      }
      if (err instanceof NothingToDecide) {
        await showSep(req, res, clientId, { problem: c.sep.nothingToDecide, problems: [err.message] }, 409);
        return;
      }
      throw err;
    }
    res.redirect(303, `/console/admin/seps/${encodeURIComponent(clientId)}?done=${done}`);
  }

  /** A decision that needs the administrator's reason: without one, the SeP is shown again and nothing is done. */
  async function decideWithReason(req: Request, res: Response, done: string, action: (clientId: string, reason: string) => Promise<unknown>): Promise<void> {
    const reason = reasonOf(req);
    if (!reason) {
      await showSep(req, res, String(req.params.clientId), { problems: [consoleMessages(req).sep.reasonRequired] }, 400);
      return;
    }
    await decide(req, res, done, (clientId) => action(clientId, reason));
  }

  const digestOf = (req: Request) => {
    const value = (req.body as Record<string, unknown>).digest;
    // A form without the digest names no version: it matches none, and the decision is refused as stale.
    return typeof value === 'string' && /^[0-9a-f]{64}$/.test(value) ? value : '-';
  };

  router.post('/seps/:clientId/approve', async (req: Request, res: Response) => {
    await decide(req, res, 'approved', (clientId) => deps.registration.approve(clientId, actorOf(res), digestOf(req)));
  });

  router.post('/seps/:clientId/refuse', async (req: Request, res: Response) => {
    await decideWithReason(req, res, 'refused', (clientId, reason) => deps.registration.reject(clientId, actorOf(res), reason, digestOf(req)));
  });

  router.post('/seps/:clientId/suspend', async (req: Request, res: Response) => {
    await decideWithReason(req, res, 'suspended', (clientId, reason) => deps.registration.suspend(clientId, actorOf(res), reason));
  });

  router.post('/seps/:clientId/reinstate', async (req: Request, res: Response) => {
    await decideWithReason(req, res, 'reinstated', (clientId, reason) => deps.registration.reinstate(clientId, actorOf(res), reason));
  });

  async function showTokens(req: Request, res: Response, extra: { issued?: { token: string; expiresAt: number; uses: number }; problems?: string[] }, status = 200): Promise<void> {
    const c = consoleMessages(req);
    const now = Date.now();
    const tokens = (await tokenUses.list()).map((token) => ({ ...token, fingerprint: token.tokenSha256.slice(0, 16), state: token.expiresAt <= now ? 'expired' : token.usesLeft === 0 ? 'usedUp' : 'usable' }));
    renderConsole(req, res, 'tokens', { title: c.tokens.title, tokens, issued: extra.issued ?? null, problems: extra.problems ?? null, maxDays: MAX_INITIAL_TOKEN_DAYS, maxUses: MAX_INITIAL_TOKEN_USES }, status);
  }

  router.get('/tokens', async (req: Request, res: Response) => {
    await showTokens(req, res, {});
  });

  router.post('/tokens', async (req: Request, res: Response) => {
    const c = consoleMessages(req);
    const body = req.body as Record<string, unknown>;
    const days = /^\d{1,2}$/.test(String(body.days ?? '')) ? Number(body.days) : NaN;
    const uses = /^\d{1,3}$/.test(String(body.uses ?? '')) ? Number(body.uses) : NaN;
    const problems = [
      ...(days >= 1 && days <= MAX_INITIAL_TOKEN_DAYS ? [] : [`${c.tokens.days}: 1–${MAX_INITIAL_TOKEN_DAYS}`]),
      ...(uses >= 1 && uses <= MAX_INITIAL_TOKEN_USES ? [] : [`${c.tokens.uses}: 1–${MAX_INITIAL_TOKEN_USES}`]),
    ];
    if (problems.length) {
      await showTokens(req, res, { problems }, 400);
      return;
    }
    const issued = await issueInitialAccessToken(deps.provider, { tokenUses }, deps.log, actorOf(res), { days, uses });
    await showTokens(req, res, { issued }, 201);
  });

  /** Tiles waiting, and those published, each with its logo as it would be published. */
  async function showTiles(req: Request, res: Response, outcome: { notice?: string; problems?: string[] }, status = 200): Promise<void> {
    const c = consoleMessages(req);
    const names = new Map((await deps.seps.list()).map((sep) => [sep.clientId, sep.name[localeOf(req)]]));
    const shown = async (tileStatus: 'pending' | 'approved') =>
      Promise.all(
        (await deps.tiles.list({ status: tileStatus })).map(async (tile) => {
          const logo = await deps.tiles.logo(tile.id);
          return { ...tile, sepName: names.get(tile.sepId) ?? tile.sepId, logo: logo ? `data:${logo.type};base64,${logo.bytes.toString('base64')}` : null };
        }),
      );
    renderConsole(req, res, 'tiles', { title: c.tiles.title, pending: await shown('pending'), approved: await shown('approved'), notice: outcome.notice ?? null, problems: outcome.problems ?? null }, status);
  }

  router.get('/tiles', async (req: Request, res: Response) => {
    const c = consoleMessages(req);
    await showTiles(req, res, { notice: req.query.done === 'approved' ? c.tiles.approved : req.query.done === 'refused' ? c.tiles.refused : undefined });
  });

  /** A decision on one tile, logged by TileRequests with the administrator's name. */
  async function decideTile(req: Request, res: Response, done: string, action: (id: number) => Promise<unknown>): Promise<void> {
    const id = /^\d{1,12}$/.test(String(req.params.id)) ? Number(req.params.id) : NaN;
    try {
      await action(id);
    } catch (err) {
      if (!(err instanceof TileNotAllowed)) throw err;
      await showTiles(req, res, { problems: [err.message] }, err.code === 'not_found' ? 404 : 409);
      return;
    }
    res.redirect(303, `/console/admin/tiles?done=${done}`);
  }

  router.post('/tiles/:id/approve', async (req: Request, res: Response) => {
    await decideTile(req, res, 'approved', (id) => deps.tileRequests.approve(id, actorOf(res)));
  });

  router.post('/tiles/:id/refuse', async (req: Request, res: Response) => {
    const reason = reasonOf(req);
    if (!reason) {
      await showTiles(req, res, { problems: [consoleMessages(req).sep.reasonRequired] }, 400);
      return;
    }
    await decideTile(req, res, 'refused', (id) => deps.tileRequests.reject(id, actorOf(res), reason));
  });

  return router;
}

