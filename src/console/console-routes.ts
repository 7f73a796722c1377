import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { parse as parseCookies, serialize as serializeCookie } from 'cookie';
import type Provider from 'oidc-provider';
import { CONSOLE_SESSION_TTL_MS, type ConsoleSessions } from '../access/console-sessions.ts';
import type { StaffRoles } from '../access/staff-roles.ts';
import { ownAuthorizationUrl, signedInOrAnswered } from '../account/own-sign-in.ts';
import { loaUri } from '../domain/loa.ts';
import type { AssertionLog } from '../audit/assertion-log.ts';
import { consoleLogin } from '../audit/audit-events.ts';
import { requestIdOf } from '../audit/request-id.ts';
import type { PersonStore } from '../identity/person-store.ts';
import { logger } from '../log/logger.ts';
import { showCitizenError } from '../pages/citizen-errors.ts';
import { localeOf } from '../pages/render.ts';
import { respondServiceUnavailable } from '../pages/service-unavailable.ts';
import type { Pseudonyms } from '../pseudonym/pseudonym.ts';
import { isDatabaseUnavailable } from '../store/database-unavailable.ts';
import { administratorConsole, type AdministratorConsoleDependencies } from './administrator-console.ts';
import { auditorConsole, type AuditorConsoleDependencies } from './auditor-console.ts';
import { consoleMessages, formIsGenuine, renderConsole, requireRole, staffFrom, staffOf } from './console-page.ts';
import { CONSOLE_CLIENT_ID, CONSOLE_GROUP, consoleCallbackUrl } from './console-sep.ts';
import { operatorConsole, type OperatorConsoleDependencies } from './operator-console.ts';

export interface ConsoleDependencies extends AuditorConsoleDependencies, AdministratorConsoleDependencies, OperatorConsoleDependencies {
  provider: Provider;
  consoleSessions: ConsoleSessions;
  staffRoles: StaffRoles;
  persons: PersonStore;
  pseudonyms: Pseudonyms;
  log: AssertionLog;
  publicUrl: URL;
  formKey: Buffer;
}

/**
 * The consoles for staff under `/console`. Signing in is a code flow of Brána's own SeP
 * (`brana-console`, minimum LoA high) through the same selection, identity means and resolution as
 * any login, redeemed in-process as My account does. The person's roles are read from `staff_role`
 * at every request; a person without one gets the 403 page, and the refused sign-in is logged.
 * Every POST carries the session's form token; every action is logged with the staff member's name.
 */
export function consoleRoutes(deps: ConsoleDependencies): Router {
  const router = express.Router();
  const secure = deps.publicUrl.protocol === 'https:';
  const callback = consoleCallbackUrl(deps.publicUrl);
  /** On https `__Host-` (Secure, Path=/, no Domain); on http (development) a plain name, on the console's own paths. */
  const COOKIE = secure ? '__Host-brana_console' : 'brana_console';
  const cookieOf = (req: Request) => parseCookies(req.headers.cookie ?? '')[COOKIE] ?? '';
  // SameSite=Lax: the sign-in comes back from Brána's own login by a top-level redirect.
  const setCookie = (res: Response, value: string, maxAgeMs: number) =>
    res.append('Set-Cookie', serializeCookie(COOKIE, value, { path: secure ? '/' : '/console', httpOnly: true, sameSite: 'lax', secure, maxAge: Math.floor(maxAgeMs / 1000) }));

  router.use(express.urlencoded({ extended: false, limit: '8kb', parameterLimit: 40 }));
  // Nothing of the console may be kept by a browser or a proxy, nor framed.
  router.use((_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });

  router.get('/login', async (req: Request, res: Response) => {
    const { id, login } = await deps.consoleSessions.startLogin();
    setCookie(res, id, 15 * 60 * 1000);
    // Always authenticate anew, at the highest level, even inside a Brána session.
    res.redirect(303, ownAuthorizationUrl({ clientId: CONSOLE_CLIENT_ID, redirectUri: callback, state: login.state, codeVerifier: login.codeVerifier, locale: localeOf(req), acrValues: loaUri('high') }));
  });

  router.get('/callback', async (req: Request, res: Response) => {
    const c = consoleMessages(req);
    const signIn = await signedInOrAnswered(req, res, cookieOf(req), deps.consoleSessions, deps.provider, { clientId: CONSOLE_CLIENT_ID, redirectUri: callback, cancelledPath: '/console?cancelled=1' });
    if (!signIn) return;
    const { login, loginId } = signIn;
    const person = await deps.persons.find(login.personId);
    const grants = person ? await deps.staffRoles.of(person.registerId) : [];
    const record = { sepId: CONSOLE_CLIENT_ID, requestId: requestIdOf(login.codeChallenge), means: login.means, loa: login.loa, pseudonym: deps.pseudonyms.forGroup(login.personId, CONSOLE_GROUP) };
    // The SeP's minimum LoA already asks for high; a lower level never opens the console all the same.
    const refusal = login.loa !== 'high' ? ('loa_too_low' as const) : !grants.length ? ('no_staff_role' as const) : null;
    if (refusal) {
      await deps.consoleSessions.close(loginId);
      await deps.log.append(consoleLogin({ ...record, staff: null, refusal }));
      setCookie(res, '', 0);
      renderConsole(req, res, 'forbidden', { title: c.forbidden.title, message: refusal === 'loa_too_low' ? c.forbidden.loa : c.forbidden.noRole, recorded: true }, 403);
      return;
    }
    const id = await deps.consoleSessions.open(loginId, { personId: login.personId, means: login.means, loa: login.loa });
    await deps.log.append(consoleLogin({ ...record, staff: { name: grants[0]!.name, roles: grants.map((grant) => grant.role) } }));
    setCookie(res, id, CONSOLE_SESSION_TTL_MS);
    res.redirect(303, '/console');
  });

  // From here on: a signed-in staff member with at least one role, and a genuine form on every POST.
  router.use(async (req: Request, res: Response, next: NextFunction) => {
    const c = consoleMessages(req);
    const id = cookieOf(req);
    const session = id ? await deps.consoleSessions.find(id) : undefined;
    if (!session) {
      if (req.method === 'GET' && req.path === '/') renderConsole(req, res, 'sign-in', { cancelled: req.query.cancelled === '1' });
      else renderConsole(req, res, 'sign-in', { expired: true }, 401);
      return;
    }
    const person = await deps.persons.find(session.personId);
    const staff = staffFrom(id, session, person ? await deps.staffRoles.of(person.registerId) : [], deps.formKey);
    if (!staff) {
      renderConsole(req, res, 'forbidden', { title: c.forbidden.title, message: c.forbidden.noRole, recorded: false }, 403);
      return;
    }
    res.locals.staff = staff;
    if (req.method === 'POST' && !formIsGenuine(req, staff, deps.publicUrl.origin)) {
      renderConsole(req, res, 'sign-in', { expired: true }, 403);
      return;
    }
    next();
  });

  router.get('/', (req: Request, res: Response) => {
    renderConsole(req, res, 'home', { closesAt: staffOf(res).session.expiresAt });
  });

  router.post('/logout', async (_req: Request, res: Response) => {
    await deps.consoleSessions.close(staffOf(res).sessionId);
    setCookie(res, '', 0);
    res.redirect(303, `/session/end?client_id=${CONSOLE_CLIENT_ID}`);
  });

  router.use('/audit', requireRole('auditor'), auditorConsole(deps));
  router.use('/admin', requireRole('administrator'), administratorConsole(deps));
  router.use('/operations', requireRole('operator'), operatorConsole(deps));

  router.use((req: Request, res: Response) => {
    renderConsole(req, res, 'not-found', { title: consoleMessages(req).notFound }, 404);
  });

  router.use((err: Error, req: Request, res: Response, _next: NextFunction) => {
    if (isDatabaseUnavailable(err)) {
      respondServiceUnavailable(req, res, err);
      return;
    }
    logger.error('console request failed', { error: err.message });
    if (!res.headersSent) showCitizenError(req, res, 'server_error');
    else res.destroy();
  });
  return router;
}
