import { createHmac, timingSafeEqual } from 'node:crypto';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type Provider from 'oidc-provider';
import { errors as oidcErrors, type InteractionResults } from 'oidc-provider';
import type { AssertionLog } from '../audit/assertion-log.ts';
import { requestIdOf } from '../audit/request-id.ts';
import type { ConsentStore } from '../consent/consent-store.ts';
import { releaseDecision } from '../consent/release-policy.ts';
import { attribute, inReadingOrder } from '../domain/attributes.ts';
import { loaUri, type Loa } from '../domain/loa.ts';
import type { IdentityMeans } from '../means/identity-means.ts';
import type { BrokerMetrics } from '../metrics/broker-metrics.ts';
import { buildGrant } from '../oidc/grants.ts';
import { isErrorCode, MESSAGES, type ErrorCode } from '../pages/i18n.ts';
import { localeOf, renderPage } from '../pages/render.ts';
import type { Pseudonyms } from '../pseudonym/pseudonym.ts';
import type { Sep } from '../sep/sep.ts';
import type { SepStore } from '../sep/sep-store.ts';
import type { Database } from '../store/database.ts';
import type { IdentityMeansRegistry } from '../upstream/identity-means-registry.ts';
import { MetadataUnavailable } from '../upstream/metadata/metadata-source.ts';
import type { UpstreamRequestStore } from '../upstream/upstream-request-store.ts';
import { logger } from '../log/logger.ts';
import { respondServiceUnavailable } from '../http/service-unavailable.ts';
import { isDatabaseUnavailable } from '../store/database-unavailable.ts';
import { isClientError, showCitizenError } from '../pages/citizen-errors.ts';
import { requiredLoa } from './login-requirements.ts';

export interface InteractionDependencies {
  provider: Provider;
  seps: SepStore;
  registry: IdentityMeansRegistry;
  requests: UpstreamRequestStore;
  consents: ConsentStore;
  log: AssertionLog;
  pseudonyms: Pseudonyms;
  db: Database;
  publicUrl: URL;
  formKey: Buffer;
  metrics: BrokerMetrics;
}

type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;

interface LoginContext {
  interaction: Interaction;
  sep: Sep;
  minimum: Loa;
  /** The means that qualify for this login by policy (LoA, the SeP's means, eIDAS). */
  candidates: IdentityMeans[];
  /** Of those, the ones that can be used now (their metadata is current). */
  available: IdentityMeans[];
  sepRequestId: string | null;
}

class InteractionGone extends Error {}

/**
 * The citizen's side of a login, between oidc-provider's authorization endpoint and its resume:
 * choosing an identity means, handing over to it, coming back, and consenting.
 */
export function interactionRoutes(deps: InteractionDependencies): Router {
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '10kb', parameterLimit: 10, inflate: false });

  const consentToken = (uid: string) => createHmac('sha256', deps.formKey).update(`consent:${uid}`).digest('base64url');

  /** The interaction this browser is in, and that it is the one the URL names. */
  async function details(req: Request, res: Response): Promise<Interaction> {
    let interaction: Interaction;
    try {
      interaction = await deps.provider.interactionDetails(req, res);
    } catch (err) {
      if (err instanceof oidcErrors.SessionNotFound) throw new InteractionGone();
      throw err;
    }
    if (interaction.uid !== req.params.uid) throw new InteractionGone();
    return interaction;
  }

  async function loginContext(interaction: Interaction): Promise<LoginContext> {
    const sep = await deps.seps.find(String(interaction.params.client_id));
    if (!sep || sep.status !== 'active') throw new InteractionGone();
    const minimum = requiredLoa(sep.minimumLoa, interaction.params);
    const candidates = deps.registry.qualifying(minimum, sep);
    const available = candidates.filter((means) => deps.registry.available(means.id));
    return { interaction, sep, minimum, candidates, available, sepRequestId: requestIdOf(interaction.params.code_challenge) };
  }

  /** The means is stopped (its metadata expired or cannot be loaded): say so and offer the others. */
  async function showUnavailable(req: Request, res: Response, login: LoginContext, meansId: string, reason: string): Promise<void> {
    await deps.log.append({
      event: 'error',
      outcome: 'failure',
      sepId: login.sep.clientId,
      requestId: login.sepRequestId,
      means: meansId,
      reason,
      detail: { stage: 'means_selection' },
    });
    showCitizenError(req, res, 'means_unavailable', { uid: login.interaction.uid, alternatives: login.available.filter((means) => means.id !== meansId), afterCode: 'means_unavailable' });
  }

  async function startUpstream(req: Request, res: Response, login: LoginContext, meansId: string): Promise<void> {
    const means = login.candidates.find((candidate) => candidate.id === meansId);
    const entry = means ? deps.registry.get(means.id) : undefined;
    if (!means || !entry) {
      showCitizenError(req, res, 'means_unavailable', { uid: login.interaction.uid, alternatives: login.available });
      return;
    }
    if (!deps.registry.available(means.id)) {
      await showUnavailable(req, res, login, means.id, 'means_metadata_unavailable');
      return;
    }
    const { interaction, sep } = login;
    const timed = deps.metrics.time('upstream_request', means.id);
    const reasons = interaction.prompt.reasons ?? [];
    const forceAuthn = reasons.includes('login_prompt') || reasons.includes('max_age') || interaction.params.max_age !== undefined;
    let handoff;
    try {
      handoff = await entry.adapter.startLogin({
        interactionUid: interaction.uid,
        sepId: sep.clientId,
        sepRequestId: login.sepRequestId,
        minimumLoa: login.minimum,
        forceAuthn,
        spType: sep.spType,
      });
    } catch (err) {
      if (!(err instanceof MetadataUnavailable)) throw err;
      await showUnavailable(req, res, login, means.id, 'means_metadata_unavailable');
      return;
    }
    await deps.log.append({
      event: 'request_sent_upstream',
      outcome: 'success',
      sepId: sep.clientId,
      requestId: login.sepRequestId,
      means: means.id,
      loa: login.minimum,
      detail: { upstreamRequestId: handoff.requestId, forceAuthn },
    });
    timed();
    if (handoff.kind === 'redirect') {
      res.redirect(303, handoff.url);
      return;
    }
    renderPage(req, res, 'autopost', { title: means.name[localeOf(req)], heading: means.name[localeOf(req)], action: handoff.url, fields: handoff.fields });
  }

  function meansForPage(req: Request, list: IdentityMeans[]) {
    const locale = localeOf(req);
    return list.map((means) => ({
      id: means.id,
      name: means.name[locale],
      loa: means.loa,
      administrator: means.administrator[locale],
      logo: means.logoFile ? `/means/${means.id}/logo.svg` : null,
    }));
  }

  /**
   * The selection page: only the means that qualify and can be used now, and a notice naming those
   * that qualify but are stopped. idp_hint, or a single qualifying means, goes straight there.
   */
  async function showSelection(req: Request, res: Response, login: LoginContext): Promise<void> {
    const idpHint = login.interaction.params.idp_hint;
    if (typeof idpHint === 'string' && login.candidates.some((means) => means.id === idpHint)) {
      await startUpstream(req, res, login, idpHint);
      return;
    }
    if (login.candidates.length === 1) {
      await startUpstream(req, res, login, login.candidates[0]!.id);
      return;
    }
    const locale = localeOf(req);
    const unavailable = login.candidates.filter((means) => !login.available.includes(means));
    renderPage(req, res, 'selection', {
      title: MESSAGES[locale].selection.title,
      uid: login.interaction.uid,
      sepName: login.sep.name[locale],
      minimumLoa: login.minimum,
      means: meansForPage(req, login.available),
      notice: unavailable.length ? MESSAGES[locale].selection.unavailable(unavailable.map((means) => means.name[locale]).join(', ')) : null,
    });
  }

  async function finishWithGrant(req: Request, res: Response, interaction: Interaction, sep: Sep, kind: 'one-time' | 'permanent' | 'not-required', permanent: boolean): Promise<void> {
    const accountId = interaction.session?.accountId;
    if (!accountId) throw new InteractionGone();
    const decision = releaseDecision(interaction.params, sep.allowedAttributes);
    const grant = buildGrant(deps.provider, accountId, sep.clientId, decision, interaction.params.scope);
    const grantId = await grant.save();
    await deps.db.transaction(async (trx) => {
      if (permanent) await deps.consents.grantPermanent(accountId, sep.clientId, decision.consentable, trx);
      await deps.log.append(
        {
          event: 'consent_given',
          outcome: 'success',
          sepId: sep.clientId,
          requestId: requestIdOf(interaction.params.code_challenge),
          pseudonym: deps.pseudonyms.forGroup(accountId, sep.group),
          detail: { kind: permanent ? 'permanent' : kind, attributes: decision.consentable, refusedBySepRegistration: decision.refused, grantId },
        },
        trx,
      );
    });
    const result: InteractionResults = { consent: { grantId } };
    await deps.provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
  }

  async function showConsent(req: Request, res: Response, interaction: Interaction): Promise<void> {
    const sep = await deps.seps.find(String(interaction.params.client_id));
    const accountId = interaction.session?.accountId;
    if (!sep || sep.status !== 'active' || !accountId) throw new InteractionGone();
    const decision = releaseDecision(interaction.params, sep.allowedAttributes);
    if (!decision.consentable.length) {
      await finishWithGrant(req, res, interaction, sep, 'not-required', false);
      return;
    }
    if (await deps.consents.findPermanent(accountId, sep.clientId, decision.consentable)) {
      await finishWithGrant(req, res, interaction, sep, 'permanent', false);
      return;
    }
    const locale = localeOf(req);
    renderPage(req, res, 'consent', {
      title: MESSAGES[locale].consent.title,
      uid: interaction.uid,
      sepName: sep.name[locale],
      organisationName: sep.organisation.name,
      organisationId: sep.organisation.id,
      attributes: inReadingOrder(decision.consentable).map((id) => attribute(id).label[locale]),
      csrf: consentToken(interaction.uid),
    });
  }

  /** A form posted to an interaction must come from Brána's own pages. */
  function sameOrigin(req: Request, res: Response, next: NextFunction): void {
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== deps.publicUrl.origin) {
      showCitizenError(req, res, 'bad_request');
      return;
    }
    next();
  }

  // Express 5 hands a rejected handler to the error handler at the end of this router.
  router.get(
    '/:uid',
    async (req: Request, res: Response) => {
      const interaction = await details(req, res);
      if (interaction.prompt.name === 'login') {
        await showSelection(req, res, await loginContext(interaction));
      } else if (interaction.prompt.name === 'consent') {
        await showConsent(req, res, interaction);
      } else {
        showCitizenError(req, res, 'bad_request');
      }
    },
  );

  router.post(
    '/:uid/means',
    sameOrigin,
    form,
    async (req: Request, res: Response) => {
      const interaction = await details(req, res);
      if (interaction.prompt.name !== 'login') throw new InteractionGone();
      const login = await loginContext(interaction);
      const chosen = (req.body as Record<string, unknown>).means;
      await startUpstream(req, res, login, typeof chosen === 'string' ? chosen : '');
    },
  );

  /** The browser comes back here (a same-site GET, so its cookies come along) after the ACS accepted an answer. */
  router.get(
    '/:uid/upstream/:requestId',
    async (req: Request, res: Response) => {
      const interaction = await details(req, res);
      const answer = await deps.requests.successfulAnswerFor(interaction.uid, String(req.params.requestId));
      if (interaction.prompt.name !== 'login' || !answer?.personId || !answer.acr) throw new InteractionGone();
      const result: InteractionResults = {
        login: {
          accountId: answer.personId,
          acr: loaUri(answer.acr),
          amr: [answer.means],
          ts: Math.floor((answer.authnInstant ?? Date.now()) / 1000),
          remember: false,
        },
      };
      await deps.provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
    },
  );

  /** After a means failed: what happened, the other means that still qualify, and trying again. */
  router.get(
    '/:uid/failed',
    async (req: Request, res: Response) => {
      const interaction = await details(req, res);
      const code: ErrorCode = isErrorCode(req.query.reason) ? req.query.reason : 'authn_failed';
      if (interaction.prompt.name !== 'login') throw new InteractionGone();
      const login = await loginContext(interaction);
      const failed = login.available.find((means) => means.id === req.query.means);
      showCitizenError(req, res, code, {
        uid: interaction.uid,
        alternatives: login.available.filter((means) => means !== failed),
        ...(failed && code !== 'loa_too_low' ? { retry: failed } : {}),
        afterCode: code,
        reference: typeof req.query.ref === 'string' ? req.query.ref.slice(0, 40) : undefined,
      });
    },
  );

  router.post(
    '/:uid/abort',
    sameOrigin,
    form,
    async (req: Request, res: Response) => {
      const interaction = await details(req, res);
      // Giving up on an error page: the SeP learns what went wrong before, never more than its code.
      const after = (req.body as Record<string, unknown> | undefined)?.after;
      const failure = isErrorCode(after) ? after : null;
      await deps.log.append({
        event: 'error',
        outcome: 'failure',
        sepId: String(interaction.params.client_id),
        requestId: requestIdOf(interaction.params.code_challenge),
        reason: 'cancelled_by_citizen',
        detail: failure ? { after: failure } : {},
      });
      const description = failure ? `The citizen gave up the login after the identity means failed (${failure})` : 'The citizen cancelled the login';
      await deps.provider.interactionFinished(req, res, { error: 'access_denied', error_description: description }, { mergeWithLastSubmission: false });
    },
  );

  router.post(
    '/:uid/consent',
    sameOrigin,
    form,
    async (req: Request, res: Response) => {
      const timed = deps.metrics.time('consent');
      res.once('finish', () => timed());
      const interaction = await details(req, res);
      const body = req.body as Record<string, unknown>;
      const expected = Buffer.from(consentToken(interaction.uid));
      const given = Buffer.from(typeof body.csrf === 'string' ? body.csrf : '');
      if (interaction.prompt.name !== 'consent' || given.length !== expected.length || !timingSafeEqual(given, expected)) {
        showCitizenError(req, res, 'bad_request');
        return;
      }
      const sep = await deps.seps.find(String(interaction.params.client_id));
      const accountId = interaction.session?.accountId;
      if (!sep || sep.status !== 'active' || !accountId) throw new InteractionGone();
      if (body.decision === 'agree') {
        await finishWithGrant(req, res, interaction, sep, 'one-time', body.permanent === 'yes');
        return;
      }
      await deps.log.append({
        event: 'consent_refused',
        outcome: 'failure',
        sepId: sep.clientId,
        requestId: requestIdOf(interaction.params.code_challenge),
        pseudonym: deps.pseudonyms.forGroup(accountId, sep.group),
        reason: 'refused_by_citizen',
        detail: { attributes: releaseDecision(interaction.params, sep.allowedAttributes).consentable },
      });
      await deps.provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'The citizen refused to release the requested data' }, { mergeWithLastSubmission: false });
    },
  );

  router.use((err: Error, req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof InteractionGone) {
      showCitizenError(req, res, 'session_expired');
      return;
    }
    if (isClientError(err)) {
      showCitizenError(req, res, 'bad_request');
      return;
    }
    if (isDatabaseUnavailable(err)) {
      respondServiceUnavailable(req, res, err);
      return;
    }
    logger.error('interaction failed', { error: err.message, path: req.path.replace(/\/[^/]+$/, '/…') });
    showCitizenError(req, res, 'server_error');
  });

  return router;
}
