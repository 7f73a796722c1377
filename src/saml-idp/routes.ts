import express, { type Request, type Response, type Router } from 'express';
import { formOrRefusal } from '../pages/form-body.ts';
import type { KeyPairWithCertificate } from '../keys/certificate.ts';
import type { SepEnvironment } from '../domain/sep-environment.ts';
import { SamlSepStore } from '../sep/saml-service-provider.ts';
import type { SepStore } from '../sep/sep-store.ts';
import type { Database } from '../store/database.ts';
import { AuthnRequestRefused, readAuthnRequest, type AuthnRequestInput } from './authn-request.ts';
import { MAX_SAML_REQUEST_LENGTH, signedRedirectQuery, type SamlMessageInput } from './saml-bindings.ts';
import { LogoutRefused, isLogoutResponse, logoutResponseXml, readLogoutRequest } from './logout.ts';
import type { BranaSessions } from './brana-session.ts';
import { policyWithFrames, type LogoutFrame, type SessionLogout } from './session-logout.ts';
import type { AssertionLog } from '../audit/assertion-log.ts';
import { samlLogout } from '../audit/audit-events.ts';
import { newHelpDeskReference } from '../audit/help-desk-reference.ts';
import { BINDING_REDIRECT } from '../sep/saml-service-provider.ts';
import { localeOf, renderPage } from '../pages/render.ts';
import { MESSAGES } from '../pages/i18n.ts';
import { showCitizenError } from '../pages/citizen-errors.ts';
import { logger } from '../log/logger.ts';
import { idpMetadataXml, type SamlIdpEndpoints } from './idp-metadata.ts';
import type { SamlJourneys } from './saml-journeys.ts';
import { STATUS } from './saml-status.ts';

export interface SamlIdpRouteDependencies {
  db: Database;
  seps: SepStore;
  journeys: SamlJourneys;
  endpoints: SamlIdpEndpoints;
  signing: KeyPairWithCertificate;
  encryption: KeyPairWithCertificate;
  /** The next signing certificate, announced in the metadata during a rollover. */
  announcedSigningCertificates: readonly string[];
  sepEnvironment: SepEnvironment;
  log: AssertionLog;
  /** The citizen's Brána session: a SeP's logout ends it, and its other SePs are told. */
  sessions: BranaSessions;
  sessionLogout: SessionLogout;
}

/** A pseudonym's shape (base64url of a SHA-256 HMAC): only such a NameID is recorded as one. */
const PSEUDONYM = /^[A-Za-z0-9_-]{43}$/;

/**
 * Brána as a SAML IdP for SePs (mounted at /saml-idp): its signed metadata, and the SSO endpoint
 * for the HTTP-Redirect (GET) and HTTP-POST bindings. A request that passes every check begins a
 * journey and the browser goes to the interaction every login shares; any other is answered with a
 * signed error Response at a registered ACS, or a page for the citizen.
 */
export function samlIdpRoutes(deps: SamlIdpRouteDependencies): Router {
  const router = express.Router();
  const samlSeps = new SamlSepStore(deps.db);
  // No inflation: a browser never compresses a form post, and a deflate bomb is then just bytes.
  const form = express.urlencoded({ extended: false, limit: Math.ceil(MAX_SAML_REQUEST_LENGTH * 1.1), parameterLimit: 5, inflate: false });
  const context = {
    ssoUrl: deps.endpoints.ssoUrl,
    environment: deps.sepEnvironment,
    findSep: async (entityId: string) => {
      const serviceProvider = await samlSeps.findByEntityId(entityId);
      const sep = serviceProvider ? await deps.seps.find(serviceProvider.clientId) : undefined;
      return sep && serviceProvider ? { sep, serviceProvider } : undefined;
    },
  };

  let metadata: { xml: string; until: number } | undefined;
  router.get('/metadata', (_req, res) => {
    // Signed once an hour, not per request.
    if (!metadata || metadata.until < Date.now()) metadata = { xml: idpMetadataXml(deps.endpoints, deps.signing, deps.encryption, deps.announcedSigningCertificates), until: Date.now() + 3_600_000 };
    res.type('application/samlmetadata+xml').set('Cache-Control', 'public, max-age=3600').send(metadata.xml);
  });

  async function receive(req: Request, res: Response, input: AuthnRequestInput): Promise<void> {
    let request;
    try {
      request = await readAuthnRequest(input, context);
    } catch (err) {
      if (err instanceof AuthnRequestRefused) {
        await deps.journeys.refuse(req, res, err);
        return;
      }
      throw err;
    }
    const respondTo = { sep: request.sep, serviceProvider: request.serviceProvider, acs: request.acs, requestId: request.id, relayState: request.relayState };
    // Even an IsPassive request begins a journey: the browser's Brána session answers it at
    // /interaction/<uid> (a cross-site POST here carries no session cookie; that redirect does).
    if ((await deps.journeys.begin(req, res, request)) === 'replayed') {
      await deps.journeys.refuse(req, res, { reason: 'request_replayed', status: STATUS.requestDenied, respondTo });
    }
  }

  /**
   * Single logout of a SAML SeP. The citizen's Brána session it names (by SessionIndex, or the
   * browser's, and only one the SeP is part of under that NameID) ends, and the session's other SePs
   * are told (hidden frames, `session-logout.ts`); then the SeP gets its signed LogoutResponse at the
   * SingleLogoutService of its metadata (the only place it goes). Each SeP a `logout` record.
   */
  async function logout(req: Request, res: Response, input: SamlMessageInput): Promise<void> {
    if (isLogoutResponse(input)) {
      // A SeP's answer to Brána's LogoutRequest, in a frame of the logout page: acknowledged only.
      renderPage(req, res, 'logout-done', { title: MESSAGES[localeOf(req)].logout.title });
      return;
    }
    let target: NonNullable<LogoutRefused['respondTo']>;
    let reason: string | null = null;
    let nameId: string | null = null;
    let frames: LogoutFrame[] = [];
    try {
      const request = await readLogoutRequest(input, { findSep: context.findSep, sloUrl: deps.endpoints.sloUrl, environment: deps.sepEnvironment });
      target = { sep: request.sep, serviceProvider: request.serviceProvider, singleLogout: request.singleLogout, requestId: request.id, relayState: request.relayState };
      nameId = request.nameId;
      const session = await deps.sessions.forLogout(req, res, request.sep.clientId, request.nameId, request.sessionIndexes);
      if (session) {
        frames = await deps.sessionLogout.tell(session, request.sep.clientId);
        await deps.sessions.end(req, res, session);
      }
    } catch (err) {
      if (!(err instanceof LogoutRefused)) throw err;
      if (!err.respondTo) {
        const reference = newHelpDeskReference();
        logger.warn('SAML logout refused', { reason: err.reason, reference });
        showCitizenError(req, res, 'sep_request_refused', { reference });
        return;
      }
      target = err.respondTo;
      reason = err.reason;
    }
    const status = reason ? STATUS.requestDenied : STATUS.success;
    await deps.log.append(samlLogout({ sepId: target.sep.clientId, pseudonym: nameId && PSEUDONYM.test(nameId) ? nameId : null, status: status.second ?? status.code, reason }));
    const address = { idpEntityId: deps.endpoints.entityId, destination: target.singleLogout.url, inResponseTo: target.requestId };
    if (target.singleLogout.binding === BINDING_REDIRECT) {
      const query = signedRedirectQuery('SAMLResponse', logoutResponseXml(address, status, null), target.relayState, deps.signing.privateKeyPem);
      const next = `${target.singleLogout.url}${target.singleLogout.url.includes('?') ? '&' : '?'}${query}`;
      if (frames.length) showFrames(req, res, frames, { next });
      else res.redirect(303, next);
      return;
    }
    const name = target.sep.name[localeOf(req)];
    const fields = { SAMLResponse: Buffer.from(logoutResponseXml(address, status, deps.signing), 'utf8').toString('base64'), ...(target.relayState !== null ? { RelayState: target.relayState } : {}) };
    if (frames.length) showFrames(req, res, frames, { form: { action: target.singleLogout.url, fields } });
    else renderPage(req, res, 'autopost', { title: name, heading: name, action: target.singleLogout.url, fields });
  }

  /** The logout page: the other SePs told in hidden frames, then on to the SeP that asked. */
  function showFrames(req: Request, res: Response, frames: LogoutFrame[], then: { next: string } | { form: { action: string; fields: Record<string, string> } }): void {
    res.setHeader('Content-Security-Policy', policyWithFrames(res.getHeader('Content-Security-Policy')?.toString(), frames));
    renderPage(req, res, 'logout-propagation', { title: MESSAGES[localeOf(req)].logout.title, frames, next: 'next' in then ? then.next : null, form: 'form' in then ? then.form : null });
  }

  // A frame of the logout page: posts Brána's signed LogoutRequest to a SeP's HTTP-POST
  // SingleLogoutService. Only what Brána wrote for that SeP (an HMAC), only to its registered endpoint.
  router.get('/slo/tell/:sepId', async (req, res) => {
    const sepId = String(req.params.sepId);
    const message = deps.sessionLogout.postFrame(sepId, req.query as Record<string, unknown>);
    const singleLogout = message ? (await samlSeps.find(sepId))?.serviceProvider.singleLogout : undefined;
    const sep = singleLogout ? await deps.seps.find(sepId) : undefined;
    if (!message || !singleLogout || singleLogout.binding === BINDING_REDIRECT || !sep || sep.status !== 'active') {
      showCitizenError(req, res, 'bad_request');
      return;
    }
    // Framed by Brána's own logout page only.
    res.setHeader('X-Frame-Options', 'SAMEORIGIN');
    res.setHeader('Content-Security-Policy', String(res.getHeader('Content-Security-Policy') ?? '').replace(/frame-ancestors 'none'/, "frame-ancestors 'self'"));
    const name = sep.name[localeOf(req)];
    renderPage(req, res, 'autopost', { title: name, heading: name, action: singleLogout.url, fields: { SAMLRequest: message } });
  });

  router.get('/slo', async (req, res) => {
    const at = req.originalUrl.indexOf('?');
    await logout(req, res, { binding: 'redirect', rawQuery: at < 0 ? '' : req.originalUrl.slice(at + 1) });
  });

  router.post('/slo', form, async (req, res) => {
    await logout(req, res, { binding: 'post', form: (req.body ?? {}) as Record<string, unknown> });
  });

  router.get('/sso', async (req, res) => {
    const at = req.originalUrl.indexOf('?');
    await receive(req, res, { binding: 'redirect', rawQuery: at < 0 ? '' : req.originalUrl.slice(at + 1) });
  });

  router.post(
    '/sso',
    formOrRefusal(form, (req, res, why) => deps.journeys.refuse(req, res, { reason: why === 'too_large' ? 'request_too_large' : 'request_malformed', status: STATUS.requestDenied, respondTo: null })),
    async (req, res) => {
      await receive(req, res, { binding: 'post', form: (req.body ?? {}) as Record<string, unknown> });
    },
  );

  return router;
}
