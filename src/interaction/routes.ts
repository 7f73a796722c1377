import { createHmac, timingSafeEqual } from 'node:crypto';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { helpDeskReferenceOf } from '../audit/help-desk-reference.ts';
import type { ConsentStore } from '../consent/consent-store.ts';
import { attribute, inReadingOrder } from '../domain/attributes.ts';
import type { Loa } from '../domain/loa.ts';
import { isResentCheck, type AnswerAcceptance } from '../login/answer-acceptance.ts';
import { JourneyGone, type Journey, type JourneyFrontends, type JourneyResult } from '../login/journey.ts';
import type { LoginCompletion } from '../login/login-completion.ts';
import { straightTo } from '../login/direct-departure.ts';
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

export interface InteractionDependencies {
  /** The protocol side of each journey (OIDC: oidc-provider's interactions; SAML: saml-idp). */
  journeys: JourneyFrontends;
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
  journey: Journey;
  sep: Sep;
  minimum: Loa;
  /** The means that qualify for this login by policy (LoA, the SeP's means, eIDAS). */
  candidates: IdentityMeans[];
  /** Of those, the ones that can be used now (their metadata is current). */
  available: IdentityMeans[];
}

/**
 * The citizen's side of a login, between the SeP's request (oidc-provider's authorization endpoint,
 * saml-idp's SSO endpoint) and the answer to it: choosing an identity means, handing over to it,
 * coming back, and consenting. Whatever the protocol: each step sees a Journey, and its frontend
 * (`deps.journeys`) ends each stage in its protocol's terms.
 */
export function interactionRoutes(deps: InteractionDependencies): Router {
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '10kb', parameterLimit: 10, inflate: false });

  const consentToken = (uid: string) => createHmac('sha256', deps.formKey).update(`consent:${uid}`).digest('base64url');

  /** The journey this browser is in, and that it is the one the URL names. */
  async function details(req: Request, res: Response): Promise<Journey> {
    const uid = String(req.params.uid);
    return deps.journeys.of(uid).details(req, res, uid);
  }

  /** Ends a stage of the journey in its protocol's terms (oidc-provider's resume, a SAML Response…). */
  async function finish(req: Request, res: Response, journey: Journey, result: JourneyResult): Promise<void> {
    await deps.journeys.of(journey.uid).finish(req, res, journey, result);
  }

  async function loginContext(journey: Journey): Promise<LoginContext> {
    const sep = await deps.seps.find(journey.sepId);
    if (!sep || sep.status !== 'active') throw new JourneyGone();
    const minimum = journey.minimumLoa(sep.minimumLoa);
    const candidates = deps.registry.qualifying(minimum, sep);
    const available = candidates.filter((means) => deps.registry.available(means.id));
    return { journey, sep, minimum, candidates, available };
  }

  async function startUpstream(req: Request, res: Response, login: LoginContext, meansId: string): Promise<void> {
    const means = login.candidates.find((candidate) => candidate.id === meansId);
    if (!means) {
      showCitizenError(req, res, 'means_unavailable', { uid: login.journey.uid, alternatives: login.available });
      return;
    }
    const { journey, sep } = login;
    const outcome = await deps.handoff.start({
      interactionUid: journey.uid,
      sepId: sep.clientId,
      sepRequestId: journey.sepRequestId,
      spType: sep.spType,
      minimumLoa: login.minimum,
      forceAuthn: journey.forceAuthn,
      means,
    });
    if (outcome.kind !== 'handoff') {
      // Stopped (its metadata expired or cannot be loaded): say so and offer the others.
      showCitizenError(req, res, 'means_unavailable', { uid: journey.uid, alternatives: login.available.filter((other) => other.id !== means.id), afterCode: 'means_unavailable' });
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
    const straight = list ? undefined : straightTo(login.journey, login.candidates);
    if (straight) {
      await startUpstream(req, res, login, straight.id);
      return;
    }
    const locale = localeOf(req);
    const unavailable = login.candidates.filter((means) => !login.available.includes(means));
    renderPage(req, res, 'selection', {
      title: MESSAGES[locale].selection.title,
      uid: login.journey.uid,
      sepName: login.sep.name[locale],
      minimumLoa: login.minimum,
      means: meansForPage(req, login.available),
      notice: unavailable.length ? MESSAGES[locale].selection.unavailable(unavailable.map((means) => means.name[locale]).join(', ')) : null,
    });
  }

  async function finishWithGrant(req: Request, res: Response, journey: Journey, sep: Sep, kind: 'one-time' | 'permanent' | 'not-required', permanent: boolean): Promise<void> {
    const accountId = journey.accountId;
    if (!accountId) throw new JourneyGone();
    const result = await deps.completion.grant(deps.journeys.of(journey.uid), journey, sep, accountId, kind, permanent);
    await finish(req, res, journey, result);
  }

  async function showConsent(req: Request, res: Response, journey: Journey): Promise<void> {
    const sep = await deps.seps.find(journey.sepId);
    const accountId = journey.accountId;
    if (!sep || sep.status !== 'active' || !accountId) throw new JourneyGone();
    const decision = journey.releaseDecision(sep.allowedAttributes);
    if (!decision.consentable.length) {
      await finishWithGrant(req, res, journey, sep, 'not-required', false);
      return;
    }
    if (await deps.consents.findPermanent(accountId, sep.clientId, decision.consentable)) {
      await finishWithGrant(req, res, journey, sep, 'permanent', false);
      return;
    }
    if (journey.passive) {
      // The citizen would have to consent, and a passive request may show no page.
      await finish(req, res, journey, { kind: 'denied', reason: 'passive_impossible', description: 'consent is needed and the request is passive' });
      return;
    }
    const locale = localeOf(req);
    renderPage(req, res, 'consent', {
      title: MESSAGES[locale].consent.title,
      uid: journey.uid,
      sepName: sep.name[locale],
      organisationName: sep.organisation.name,
      organisationId: sep.organisation.id,
      attributes: inReadingOrder(decision.consentable).map((id) => attribute(id).label[locale]),
      csrf: consentToken(journey.uid),
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
      const journey = await details(req, res);
      if (journey.stage === 'login') {
        const login = await loginContext(journey);
        const frontend = deps.journeys.of(journey.uid);
        const qualifying = login.candidates.map((means) => means.id);
        if (await frontend.continueFromSession?.(req, res, journey, qualifying, login.minimum)) return;
        await showSelection(req, res, login, req.query.choose !== undefined);
      } else if (journey.stage === 'consent') {
        await showConsent(req, res, journey);
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
      const journey = await details(req, res);
      if (journey.stage !== 'login') throw new JourneyGone();
      const login = await loginContext(journey);
      const chosen = (req.body as Record<string, unknown>).means;
      await startUpstream(req, res, login, typeof chosen === 'string' ? chosen : '');
    },
  );

  /** The browser comes back here (a same-site GET, so its cookies come along) after the ACS accepted an answer. */
  router.get(
    '/:uid/upstream/:requestId',
    async (req: Request, res: Response) => {
      const journey = await details(req, res);
      const result = await deps.completion.afterAnswer(journey, String(req.params.requestId));
      if (!result) throw new JourneyGone();
      await finish(req, res, journey, result);
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
      if (!isResentCheck(deps.formKey, uid, requestId, req.query.check)) throw new JourneyGone();
      let journey: Journey | undefined;
      let result: Awaited<ReturnType<LoginCompletion['afterAnswer']>>;
      try {
        journey = await details(req, res);
        result = await deps.completion.afterAnswer(journey, requestId);
      } catch (err) {
        if (!(err instanceof JourneyGone)) throw err;
      }
      if (!result || !journey) {
        const refused = await deps.acceptance.refuseResent(requestId);
        showCitizenError(req, res, refused.kind === 'refused' ? refused.outward : 'answer_already_used', refused.kind === 'refused' && refused.reference ? { reference: refused.reference } : {});
        return;
      }
      logger.info('re-sent answer taken up by the browser that began its login');
      await finish(req, res, journey, result);
    },
  );

  /** After a means failed: what happened, the other means that still qualify, and trying again. */
  router.get(
    '/:uid/failed',
    async (req: Request, res: Response) => {
      const journey = await details(req, res);
      const code: ErrorCode = isErrorCode(req.query.reason) ? req.query.reason : 'authn_failed';
      if (journey.stage !== 'login') throw new JourneyGone();
      const login = await loginContext(journey);
      const failed = login.candidates.find((means) => means.id === req.query.means);
      const reference = helpDeskReferenceOf(req.query.ref);
      showCitizenError(req, res, code, {
        uid: journey.uid,
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
      const journey = await details(req, res);
      // Giving up on an error page: the SeP learns what went wrong before, never more than its code.
      const after = (req.body as Record<string, unknown> | undefined)?.after;
      const result = await deps.completion.abandon(journey, isErrorCode(after) ? after : null);
      await finish(req, res, journey, result);
    },
  );

  router.post(
    '/:uid/consent',
    sameOrigin,
    form,
    async (req: Request, res: Response) => {
      const timed = deps.metrics.time('consent');
      res.once('finish', () => timed());
      const journey = await details(req, res);
      const body = req.body as Record<string, unknown>;
      const expected = Buffer.from(consentToken(journey.uid));
      const given = Buffer.from(typeof body.csrf === 'string' ? body.csrf : '');
      if (journey.stage !== 'consent' || given.length !== expected.length || !timingSafeEqual(given, expected)) {
        showCitizenError(req, res, 'bad_request');
        return;
      }
      const sep = await deps.seps.find(journey.sepId);
      const accountId = journey.accountId;
      if (!sep || sep.status !== 'active' || !accountId) throw new JourneyGone();
      if (body.decision === 'agree') {
        await finishWithGrant(req, res, journey, sep, 'one-time', body.permanent === 'yes');
        return;
      }
      const result = await deps.completion.refuseConsent(journey, sep, accountId);
      await finish(req, res, journey, result);
    },
  );

  router.use((err: Error, req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof JourneyGone) {
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
