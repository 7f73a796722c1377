import { createHmac, timingSafeEqual } from 'node:crypto';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { parse as parseCookies, serialize as serializeCookie } from 'cookie';
import type Provider from 'oidc-provider';
import type { AssertionLog } from '../audit/assertion-log.ts';
import { accountLogin, consentRevoked } from '../audit/audit-events.ts';
import { requestIdOf } from '../audit/request-id.ts';
import type { ConsentStore } from '../consent/consent-store.ts';
import { attribute, inReadingOrder } from '../domain/attributes.ts';
import { showCitizenError } from '../pages/citizen-errors.ts';
import { logger } from '../log/logger.ts';
import { respondServiceUnavailable } from '../pages/service-unavailable.ts';
import { isDatabaseUnavailable } from '../store/database-unavailable.ts';
import { MESSAGES, type Locale } from '../pages/i18n.ts';
import { localeOf, renderPage } from '../pages/render.ts';
import type { Pseudonyms } from '../pseudonym/pseudonym.ts';
import type { SepStore } from '../sep/sep-store.ts';
import type { Database } from '../store/database.ts';
import type { IdentityMeansRegistry } from '../upstream/identity-means-registry.ts';
import { ownAuthorizationUrl, signedInOrAnswered } from './own-sign-in.ts';
import { ACCOUNT_CLIENT_ID, ACCOUNT_GROUP, accountCallbackUrl } from './account-sep.ts';
import { ACCOUNT_SESSION_TTL_MS, type AccountSession, type AccountSessions } from './account-sessions.ts';
import type { LoginHistory } from './login-history.ts';

export interface AccountDependencies {
  provider: Provider;
  accountSessions: AccountSessions;
  history: LoginHistory;
  consents: ConsentStore;
  seps: SepStore;
  registry: IdentityMeansRegistry;
  log: AssertionLog;
  pseudonyms: Pseudonyms;
  db: Database;
  publicUrl: URL;
  formKey: Buffer;
}

/** On https `__Host-` (Secure, Path=/, no Domain): a sibling sub-domain cannot plant it. */
const cookieName = (secure: boolean) => (secure ? '__Host-brana_account' : 'brana_account');

function formatDate(at: number, locale: Locale): string {
  return new Intl.DateTimeFormat(locale === 'cs' ? 'cs-CZ' : 'en-GB', { dateStyle: 'long', timeStyle: 'short', timeZone: 'Europe/Prague' }).format(new Date(at));
}

/**
 * "My account": the citizen's login history and permanent consents. Opening it is a code flow of
 * Brána's own SeP (`brana-account`) through the same selection, identity means and resolution as
 * any login; the code comes back here and is redeemed in-process through oidc-provider's own
 * AuthorizationCode model (single use, PKCE S256, bound to this client and return URL), so no
 * request to Brána's public URL is needed from inside Brána.
 */
export function accountRoutes(deps: AccountDependencies): Router {
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '2kb', parameterLimit: 5 });
  const secure = deps.publicUrl.protocol === 'https:';
  const callback = accountCallbackUrl(deps.publicUrl);

  const COOKIE = cookieName(secure);
  const cookieOf = (req: Request) => parseCookies(req.headers.cookie ?? '')[COOKIE] ?? '';
  // Path=/ on https, as `__Host-` requires; on http (development) only My account's own paths.
  const setCookie = (res: Response, value: string, maxAgeMs: number) =>
    res.append('Set-Cookie', serializeCookie(COOKIE, value, { path: secure ? '/' : '/account', httpOnly: true, sameSite: 'lax', secure, maxAge: Math.floor(maxAgeMs / 1000) }));
  const formToken = (sessionId: string) => createHmac('sha256', deps.formKey).update(`account:${sessionId}`).digest('base64url');

  async function showAccount(req: Request, res: Response, sessionId: string, session: AccountSession): Promise<void> {
    const locale = localeOf(req);
    const t = MESSAGES[locale];
    const [history, consents] = await Promise.all([deps.history.of(session.personId), deps.consents.listActive(session.personId)]);
    const meansName = (id: string | null) => (id ? (deps.registry.get(id)?.means.name[locale] ?? id) : '');
    const sepNames = new Map<string, { name: string; organisation: string }>();
    for (const consent of consents) {
      const sep = await deps.seps.find(consent.sepId);
      sepNames.set(consent.sepId, { name: sep?.name[locale] ?? t.account.unknownSep, organisation: sep?.organisation.name ?? '' });
    }
    const revoked = typeof req.query.revoked === 'string' && /^\d{1,3}$/.test(req.query.revoked) ? Number(req.query.revoked) : null;
    renderPage(req, res, 'account', {
      title: t.account.title,
      means: meansName(session.means),
      loa: session.loa,
      csrf: formToken(sessionId),
      notice: revoked === null ? null : t.account.revoked(revoked),
      history: history.map((entry) => ({
        when: formatDate(entry.at, locale),
        iso: new Date(entry.at).toISOString(),
        sep: entry.kind === 'account' ? t.account.accountLogin : (entry.sepName?.[locale] ?? t.account.unknownSep),
        means: meansName(entry.means),
        loa: entry.loa,
        attributes: entry.attributes.map((id) => attribute(id).label[locale]),
      })),
      consents: consents.map((consent) => ({
        id: consent.id,
        sep: sepNames.get(consent.sepId)!.name,
        organisation: sepNames.get(consent.sepId)!.organisation,
        given: formatDate(consent.createdAt, locale),
        attributes: inReadingOrder(consent.attributes).map((id) => attribute(id).label[locale]),
      })),
    });
  }

  /** The open account of this browser, or undefined. */
  async function openSession(req: Request): Promise<{ id: string; session: AccountSession } | undefined> {
    const id = cookieOf(req);
    const session = id ? await deps.accountSessions.find(id) : undefined;
    return session ? { id, session } : undefined;
  }

  router.get(
    '/',
    async (req: Request, res: Response) => {
      const open = await openSession(req);
      if (open) {
        await showAccount(req, res, open.id, open.session);
        return;
      }
      const t = MESSAGES[localeOf(req)];
      renderPage(req, res, 'account-login', { title: t.account.title, cancelled: req.query.cancelled === '1' });
    },
  );

  router.get(
    '/login',
    async (req: Request, res: Response) => {
      const { id, login } = await deps.accountSessions.startLogin();
      setCookie(res, id, 30 * 60 * 1000);
      // The history is personal data: always ask who is there, even inside a Brána session.
      res.redirect(303, ownAuthorizationUrl({ clientId: ACCOUNT_CLIENT_ID, redirectUri: callback, state: login.state, codeVerifier: login.codeVerifier, locale: localeOf(req) }));
    },
  );

  router.get(
    '/callback',
    async (req: Request, res: Response) => {
      const signIn = await signedInOrAnswered(req, res, cookieOf(req), deps.accountSessions, deps.provider, { clientId: ACCOUNT_CLIENT_ID, redirectUri: callback, cancelledPath: '/account?cancelled=1' });
      if (!signIn) return;
      const { login } = signIn;
      const id = await deps.accountSessions.open(signIn.loginId, { personId: login.personId, means: login.means, loa: login.loa });
      await deps.log.append(
        accountLogin({
          sepId: ACCOUNT_CLIENT_ID,
          requestId: requestIdOf(login.codeChallenge),
          means: login.means,
          loa: login.loa,
          pseudonym: deps.pseudonyms.forGroup(login.personId, ACCOUNT_GROUP),
          attributes: ['PersonIdentifier'],
        }),
      );
      setCookie(res, id, ACCOUNT_SESSION_TTL_MS);
      res.redirect(303, '/account');
    },
  );

  /** Account forms must come from Brána's own account page of this very session. */
  async function authorisedForm(req: Request, res: Response): Promise<{ id: string; session: AccountSession } | undefined> {
    const origin = req.headers.origin;
    const open = await openSession(req);
    const given = Buffer.from(typeof (req.body as Record<string, unknown>)?.csrf === 'string' ? String((req.body as Record<string, unknown>).csrf) : '');
    const expected = open ? Buffer.from(formToken(open.id)) : Buffer.alloc(0);
    if ((origin !== undefined && origin !== deps.publicUrl.origin) || !open || given.length !== expected.length || !timingSafeEqual(given, expected)) {
      showCitizenError(req, res, open ? 'bad_request' : 'session_expired');
      return undefined;
    }
    return open;
  }

  async function revoke(personId: string, consentId: number | undefined): Promise<number> {
    return deps.db.transaction(async (trx) => {
      const active = (await deps.consents.listActive(personId, trx)).filter((consent) => consentId === undefined || consent.id === consentId);
      let count = 0;
      for (const consent of active) {
        if (!(await deps.consents.revoke(personId, consent.id, trx))) continue;
        count += 1;
        const sep = await deps.seps.find(consent.sepId, trx);
        const pseudonym = sep ? deps.pseudonyms.forGroup(personId, sep.group) : null;
        await deps.log.append(consentRevoked({ actor: 'citizen', sepId: consent.sepId, pseudonym, consentId: consent.id, attributes: consent.attributes }), trx);
      }
      return count;
    });
  }

  router.post(
    '/consents/:id/revoke',
    form,
    async (req: Request, res: Response) => {
      const open = await authorisedForm(req, res);
      if (!open) return;
      const id = /^\d{1,12}$/.test(String(req.params.id)) ? Number(req.params.id) : NaN;
      const count = Number.isNaN(id) ? 0 : await revoke(open.session.personId, id);
      res.redirect(303, `/account?revoked=${count}`);
    },
  );

  router.post(
    '/consents/revoke-all',
    form,
    async (req: Request, res: Response) => {
      const open = await authorisedForm(req, res);
      if (!open) return;
      res.redirect(303, `/account?revoked=${await revoke(open.session.personId, undefined)}`);
    },
  );

  router.post(
    '/logout',
    form,
    async (req: Request, res: Response) => {
      const open = await authorisedForm(req, res);
      if (!open) return;
      await deps.accountSessions.close(open.id);
      setCookie(res, '', 0);
      // Brána's logout page ends the Brána session too, with the citizen's confirmation.
      res.redirect(303, `/session/end?client_id=${ACCOUNT_CLIENT_ID}`);
    },
  );

  router.use((err: Error, req: Request, res: Response, _next: NextFunction) => {
    if (isDatabaseUnavailable(err)) {
      respondServiceUnavailable(req, res, err);
      return;
    }
    logger.error('account request failed', { error: err.message });
    showCitizenError(req, res, 'server_error');
  });
  return router;
}
