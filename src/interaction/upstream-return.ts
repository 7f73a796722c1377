import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { AssertionLog } from '../audit/assertion-log.ts';
import { loaAtLeast } from '../domain/loa.ts';
import { RegisterUnavailable } from '../identity/population-register.ts';
import { IdentityResolution, ResolutionFailed } from '../identity/resolution.ts';
import { logger } from '../log/logger.ts';
import type { BrokerMetrics } from '../metrics/broker-metrics.ts';
import type { ErrorCode } from '../pages/i18n.ts';
import type { Pseudonyms } from '../pseudonym/pseudonym.ts';
import type { SepStore } from '../sep/sep-store.ts';
import type { Database } from '../store/database.ts';
import { UpstreamRejected, type UpstreamIdentity } from '../upstream/contract.ts';
import type { IdentityMeansRegistry, RegisteredMeans } from '../upstream/identity-means-registry.ts';
import { MAX_SAML_RESPONSE_LENGTH } from '../upstream/saml/response-guard.ts';
import { CLOCK_SKEW_MS } from '../upstream/saml/saml-adapter.ts';
import type { UpstreamRequest, UpstreamRequestStore } from '../upstream/upstream-request-store.ts';
import { showCitizenError } from './citizen-errors.ts';

export interface UpstreamReturnDependencies {
  registry: IdentityMeansRegistry;
  requests: UpstreamRequestStore;
  resolution: IdentityResolution;
  seps: SepStore;
  log: AssertionLog;
  pseudonyms: Pseudonyms;
  db: Database;
  metrics: BrokerMetrics;
}

/** A refusal after the signature checks: the answer was genuine but cannot complete this login. */
class LoginRefused extends Error {
  readonly reason: string;
  readonly outward: ErrorCode;

  constructor(reason: string, outward: ErrorCode) {
    super(reason);
    this.reason = reason;
    this.outward = outward;
  }
}

/**
 * Where identity means answer: the assertion consumer service of each SAML means
 * (`/saml/<means>/acs`) and the redirect URI of each OIDC means (`/oidc/<means>/callback`). The
 * answer arrives cross-site (a SAML POST carries none of the citizen's cookies): the login is found
 * again from the answered request id (SAML) or state (OIDC) in the database, checked, resolved to a
 * person, and only then is the browser sent on to its interaction, where its own cookies bind the
 * result to it. Both protocols share every step after their adapter.
 */
export function upstreamReturnRoutes(deps: UpstreamReturnDependencies): Router {
  const router = express.Router();
  // No inflation: a browser never compresses a form post, and a deflate bomb is then just bytes.
  const form = express.urlencoded({ extended: false, limit: Math.ceil(MAX_SAML_RESPONSE_LENGTH * 1.1), parameterLimit: 5, inflate: false });

  async function accept(identity: UpstreamIdentity, request: UpstreamRequest): Promise<void> {
    const sep = await deps.seps.find(request.sepId);
    await deps.db.transaction(async (trx) => {
      if (!(await deps.requests.consume(identity.requestId, identity.means, trx))) throw new LoginRefused('replayed_response', 'unknown_request');
      if (!(await deps.requests.rememberAssertion(identity.means, identity.assertionId, identity.assertionExpiresAt.getTime(), trx))) {
        throw new LoginRefused('replayed_assertion', 'invalid_response');
      }
      await deps.log.append(
        {
          event: 'response_received',
          outcome: 'success',
          sepId: request.sepId,
          requestId: request.sepRequestId,
          means: identity.means,
          loa: identity.acr,
          detail: { upstreamRequestId: identity.requestId, assertionId: identity.assertionId, messageSha256: identity.messageHash, authority: identity.authority },
        },
        trx,
      );
      if (!loaAtLeast(identity.acr, request.minimumLoa)) throw new LoginRefused('loa_below_minimum', 'loa_too_low');
      // prompt=login / max_age: the means was asked to authenticate anew; an older authentication is not that.
      if (request.forceAuthn && identity.instant.getTime() < request.createdAt - CLOCK_SKEW_MS) throw new LoginRefused('authn_not_fresh', 'authn_failed');
      let resolved;
      try {
        resolved = await deps.resolution.resolve(identity, trx);
      } catch (err) {
        if (err instanceof ResolutionFailed) throw new LoginRefused(`resolution_${err.reason}`, 'not_identified');
        // The register is down: the citizen may try again in a few minutes (page with HTTP 503).
        if (err instanceof RegisterUnavailable) throw new LoginRefused('register_unavailable', 'register_unavailable');
        throw err;
      }
      await deps.requests.recordSuccess(identity.requestId, { personId: resolved.person.id, acr: identity.acr, authnInstant: identity.instant.getTime() }, trx);
      await deps.log.append(
        {
          event: 'identity_resolved',
          outcome: 'success',
          sepId: request.sepId,
          requestId: request.sepRequestId,
          means: identity.means,
          loa: identity.acr,
          pseudonym: sep ? deps.pseudonyms.forGroup(resolved.person.id, sep.group) : null,
          detail: {
            firstTime: resolved.firstTime,
            attributesAsserted: Object.keys(identity.attributes).sort(),
            // Values only where the operator turned value logging on for this SeP.
            ...(sep?.logAttributeValues ? { subject: identity.subject, attributeValues: identity.attributes } : {}),
          },
        },
        trx,
      );
    });
  }

  async function refuse(req: Request, res: Response, means: string, reason: string, outward: ErrorCode, requestId: string | undefined): Promise<void> {
    const request = requestId ? await deps.requests.find(requestId) : undefined;
    const known = request && request.means === means ? request : undefined;
    await deps.db.transaction(async (trx) => {
      if (known && known.outcome === null) await deps.requests.recordFailure(known.requestId, trx);
      await deps.log.append(
        { event: 'error', outcome: 'failure', sepId: known?.sepId ?? null, requestId: known?.sepRequestId ?? null, means, reason, detail: { stage: 'upstream_response', upstreamRequestId: known?.requestId ?? null } },
        trx,
      );
    });
    logger.warn('upstream response refused', { means, reason });
    if (known && known.consumedAt === null) {
      res.redirect(303, `/interaction/${known.interactionUid}/failed?reason=${outward}&means=${encodeURIComponent(means)}`);
      return;
    }
    showCitizenError(req, res, outward === 'invalid_response' ? 'invalid_response' : 'unknown_request');
  }

  /** One answer from one means, whatever its protocol: the adapter checks it, the rest is shared. */
  async function receive(req: Request, res: Response, next: NextFunction, means: string, entry: RegisteredMeans | undefined, input: Record<string, unknown>): Promise<void> {
    if (!entry) {
      showCitizenError(req, res, 'not_found');
      return;
    }
    const timed = deps.metrics.time('upstream_response', means);
    res.once('finish', () => timed());
    try {
      let identity: UpstreamIdentity;
      try {
        identity = await entry.adapter.handleResponse(input);
      } catch (err) {
        if (!(err instanceof UpstreamRejected)) throw err;
        await refuse(req, res, means, err.reason, err.outward, err.requestId);
        return;
      }
      const request = await deps.requests.find(identity.requestId);
      if (request) deps.metrics.observe('identity_means', request.means, (Date.now() - request.createdAt) / 1000);
      if (!request || request.means !== means) {
        await refuse(req, res, means, 'unknown_request', 'unknown_request', undefined);
        return;
      }
      try {
        await accept(identity, request);
      } catch (err) {
        if (!(err instanceof LoginRefused)) throw err;
        await refuse(req, res, means, err.reason, err.outward, identity.requestId);
        return;
      }
      res.redirect(303, `/interaction/${request.interactionUid}/upstream/${encodeURIComponent(identity.requestId)}`);
    } catch (err) {
      next(err);
    }
  }

  /** A body the form parser refuses (too large, compressed, another charset) is an answer refused like any other. */
  function readForm(req: Request, res: Response, next: NextFunction): void {
    form(req, res, (err?: unknown) => {
      if (!err) {
        next();
        return;
      }
      const type = (err as { type?: string }).type;
      const reason = type === 'entity.too.large' || type === 'parameters.too.many' ? 'response_too_large' : 'request_malformed';
      refuse(req, res, String(req.params.means), reason, 'invalid_response', undefined).catch(next);
    });
  }

  /** Only a configured SAML means has an ACS; checked before its body is read or anything is logged. */
  function knownSamlMeans(req: Request, res: Response, next: NextFunction): void {
    if (deps.registry.saml(String(req.params.means))) next();
    else showCitizenError(req, res, 'not_found');
  }

  router.post('/saml/:means/acs', knownSamlMeans, readForm, async (req, res, next) => {
    const means = String(req.params.means);
    await receive(req, res, next, means, deps.registry.saml(means), (req.body ?? {}) as Record<string, unknown>);
  });

  // The authorization response is a top-level GET; like the SAML POST it is found again by its state.
  router.get('/oidc/:means/callback', async (req, res, next) => {
    const means = String(req.params.means);
    await receive(req, res, next, means, deps.registry.oidc(means), req.query as Record<string, unknown>);
  });

  return router;
}
