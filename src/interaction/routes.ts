import { createHmac, timingSafeEqual } from 'node:crypto';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type Provider from 'oidc-provider';
import { errors as oidcErrors } from 'oidc-provider';
import { helpDeskReferenceOf } from '../audit/help-desk-reference.ts';
import { requestIdOf } from '../audit/request-id.ts';
import type { ConsentStore } from '../consent/consent-store.ts';
import { releaseDecision } from '../consent/release-policy.ts';
import { attribute, inReadingOrder } from '../domain/attributes.ts';
import type { Loa } from '../domain/loa.ts';
import { isResentCheck, type AnswerAcceptance } from '../login/answer-acceptance.ts';
import type { LoginCompletion, Interaction } from '../login/login-completion.ts';
import type { UpstreamHandoff } from '../login/upstream-handoff.ts';
import type { IdentityMeans } from '../means/identity-means.ts';
import type { BrokerMetrics } from '../metrics/broker-metrics.ts';
import { isErrorCode, MESSAGES, type ErrorCode } from '../pages/i18n.ts';
import { localeOf, renderPage } from '../pages/render.ts';
import type { Sep } from '../sep/sep.ts';
import type { SepStore } from '../sep/sep-store.ts';
import type { IdentityMeansRegistry } from '../upstream/identity-means-registry.ts';
import { logger } from '../log/logger.ts';
import { respondServiceUnavailable } from '../pages/service-unavailable.ts';
import { isDatabaseUnavailable } from '../store/database-unavailable.ts';
import { isClientError, showCitizenError } from '../pages/citizen-errors.ts';
import { requiredLoa } from '../domain/required-loa.ts';

export interface InteractionDependencies {
  provider: Provider;
  seps: SepStore;
  registry: IdentityMeansRegistry;
  consents: ConsentStore;
  handoff: UpstreamHandoff;
  completion: LoginCompletion;
  /** Refuses a re-sent answer no interaction of this browser takes. */
  acceptance: AnswerAcceptance;
  publicUrl: URL;
  formKey: Buffer;
  metrics: BrokerMetrics;
}

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

  async function startUpstream(req: Request, res: Response, login: LoginContext, meansId: string): Promise<void> {
    const means = login.candidates.find((candidate) => candidate.id === meansId);
    if (!means) {
      showCitizenError(req, res, 'means_unavailable', { uid: login.interaction.uid, alternatives: login.available });
      return;
    }
    const { interaction, sep } = login;
    const reasons = interaction.prompt.reasons ?? [];
    const outcome = await deps.handoff.start({
      interactionUid: interaction.uid,
      sepId: sep.clientId,
      sepRequestId: login.sepRequestId,
      spType: sep.spType,
      minimumLoa: login.minimum,
      forceAuthn: reasons.includes('login_prompt') || reasons.includes('max_age') || interaction.params.max_age !== undefined,
      means,
    });
    if (outcome.kind === 'unavailable') {
      // Stopped (its metadata expired or cannot be loaded): say so and offer the others.
      showCitizenError(req, res, 'means_unavailable', { uid: interaction.uid, alternatives: login.available.filter((other) => other.id !== means.id), afterCode: 'means_unavailable' });
      return;
    }
    const { handoff } = outcome;
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
   * that qualify but are stopped. idp_hint, or a single qualifying means, goes straight there, unless
   * the citizen came back to choose (`list`: after cancelling at the means idp_hint sent them to).
   */
  async function showSelection(req: Request, res: Response, login: LoginContext, list: boolean): Promise<void> {
    const idpHint = login.interaction.params.idp_hint;
    if (!list && typeof idpHint === 'string' && login.candidates.some((means) => means.id === idpHint)) {
      await startUpstream(req, res, login, idpHint);
      return;
    }
    if (!list && login.candidates.length === 1) {
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
    const result = await deps.completion.grant(deps.provider, interaction, sep, accountId, kind, permanent);
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
        await showSelection(req, res, await loginContext(interaction), req.query.choose !== undefined);
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
      const result = await deps.completion.afterAnswer(interaction, String(req.params.requestId));
      if (!result) throw new InteractionGone();
      await deps.provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
    },
  );

  /**
   * Where the ACS sends a browser that re-sent the answer already accepted for a login still waiting
   * for it (`check`: the ACS did see that). The browser that began the login — it holds the signed
   * cookie of this interaction, which still waits for its means — goes on exactly as after its first
   * post: the login result, then oidc-provider's resume. Nothing is logged for that: the answer, the
   * person and their records are those of the first post, and nothing new happened to them. Any
   * other browser (without the cookie: whoever captured the answer), or a login that went on or
   * ended meanwhile, gets the refusal the replay is, with its log record (replayed_response).
   */
  router.get(
    '/:uid/resent/:requestId',
    async (req: Request, res: Response) => {
      const uid = String(req.params.uid);
      const requestId = String(req.params.requestId);
      if (!isResentCheck(deps.formKey, uid, requestId, req.query.check)) throw new InteractionGone();
      let result: Awaited<ReturnType<LoginCompletion['afterAnswer']>>;
      try {
        result = await deps.completion.afterAnswer(await details(req, res), requestId);
      } catch (err) {
        if (!(err instanceof InteractionGone)) throw err;
      }
      if (!result) {
        const refused = await deps.acceptance.refuseResent(requestId);
        showCitizenError(req, res, refused.kind === 'refused' ? refused.outward : 'answer_already_used', refused.kind === 'refused' && refused.reference ? { reference: refused.reference } : {});
        return;
      }
      logger.info('re-sent answer taken up by the browser that began its login');
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
      const failed = login.candidates.find((means) => means.id === req.query.means);
      const reference = helpDeskReferenceOf(req.query.ref);
      showCitizenError(req, res, code, {
        uid: interaction.uid,
        // Only means that qualify for this login: after loa_too_low, the ones that reach the level.
        alternatives: login.available.filter((means) => means !== failed),
        ...(failed ? { failed } : {}),
        ...(failed && login.available.includes(failed) && code !== 'loa_too_low' ? { retry: failed } : {}),
        minimumLoa: login.minimum,
        afterCode: code,
        ...(reference ? { reference } : {}),
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
      const result = await deps.completion.abandon(interaction, isErrorCode(after) ? after : null);
      await deps.provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
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
      const result = await deps.completion.refuseConsent(interaction, sep, accountId);
      await deps.provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
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
