import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import type Provider from 'oidc-provider';
import type { SepEnvironment } from '../domain/sep-environment.ts';
import type { RateLimitSettings } from '../config/environment.ts';
import { isLocale } from '../pages/i18n.ts';
import { languageCookie } from '../pages/render.ts';
import { isClientError, showCitizenError } from '../pages/citizen-errors.ts';
import { interactionRoutes, type InteractionDependencies } from '../interaction/routes.ts';
import { upstreamReturnRoutes, type UpstreamReturnDependencies } from '../interaction/upstream-return.ts';
import { OPERATOR_ROLES, type OperatorCredentials } from '../access/operator-credentials.ts';
import { requireOperator } from '../access/require-operator.ts';
import { accountRoutes } from '../account/account-routes.ts';
import type { AccountSessions } from '../account/account-sessions.ts';
import type { LoginHistory } from '../account/login-history.ts';
import { adminRoutes } from '../admin/admin-routes.ts';
import type { ConsoleSessions } from '../access/console-sessions.ts';
import type { StaffRoles } from '../access/staff-roles.ts';
import { consoleRoutes } from '../console/console-routes.ts';
import type { PersonStore } from '../identity/person-store.ts';
import type { SepRegistration } from '../sep/sep-registration.ts';
import { sepSelfServiceRoutes } from '../sep/sep-self-service-routes.ts';
import { registrationFormRoutes, type RegistrationFormDependencies } from '../oidc/registration-form-routes.ts';
import { InitialAccessTokenUses } from '../oidc/initial-access-token-uses.ts';
import type { TileRequests } from '../tiles/tile-requests.ts';
import type { TileStore } from '../tiles/tile-store.ts';
import { sepTileRoutes, tileCatalogueRoutes } from '../tiles/tile-routes.ts';
import { auditorApi } from '../audit/auditor-api.ts';
import type { AuditTrail } from '../audit/audit-trail.ts';
import type { SepStore } from '../sep/sep-store.ts';
import type { IdentityMeansRegistry } from '../upstream/identity-means-registry.ts';
import type { MountedRoutes } from '../upstream/upstream-protocol.ts';
import { logger } from '../log/logger.ts';
import { rateLimiters } from './rate-limits.ts';
import type { BrokerMetrics } from '../metrics/broker-metrics.ts';
import { metricsRoute } from '../metrics/metrics-route.ts';
import { statisticsRoutes } from '../stats/routes.ts';
import { healthRoutes } from '../operations/health-routes.ts';
import type { Readiness } from '../operations/readiness.ts';
import { isDatabaseUnavailable } from '../store/database-unavailable.ts';
import type { Database } from '../store/database.ts';
import type { AssertionLog } from '../audit/assertion-log.ts';
import type { Pseudonyms } from '../pseudonym/pseudonym.ts';
import { respondServiceUnavailable } from '../pages/service-unavailable.ts';
import { RequestWrites, withRequestWrites } from '../store/request-writes.ts';

const STATIC_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '../pages/static');

export interface AppDependencies extends InteractionDependencies, UpstreamReturnDependencies {
  provider: Provider;
  db: Database;
  log: AssertionLog;
  pseudonyms: Pseudonyms;
  readiness: Readiness;
  seps: SepStore;
  registry: IdentityMeansRegistry;
  publicUrl: URL;
  trustProxy: boolean;
  development: boolean;
  /** Routes mounted on the site as they are (the development providers' pages). */
  extraRoutes: readonly MountedRoutes[];
  /** The `/register` form's reader of a SAML SeP's SP metadata (saml-idp/), and Brána's IdP metadata URL. */
  readSpMetadata?: RegistrationFormDependencies['readSpMetadata'];
  idpMetadataUrl?: string;
  rateLimits: RateLimitSettings;
  /** Credentials of administrators and auditors, for the operator APIs. */
  operators: OperatorCredentials;
  /** "My account": the citizens' open account pages and their login history. */
  accountSessions: AccountSessions;
  history: LoginHistory;
  /** The staff consoles: sign-ins, roles, and what they read (persons by register id, the signing keys file). */
  consoleSessions: ConsoleSessions;
  staffRoles: StaffRoles;
  persons: PersonStore;
  signingKeysFile: string;
  formKey: Buffer;
  /** SeP registrations and their changes (self-service, administrators). */
  registration: SepRegistration;
  sepEnvironment: SepEnvironment;
  /** Citizen-Portal tiles: requests, decisions and the published catalogue. */
  tiles: TileStore;
  tileRequests: TileRequests;
  /** The assertion log's keys and checkpoints, for the auditors' API. */
  audit: AuditTrail;
  metrics: BrokerMetrics;
  /** Brána as a SAML IdP for SePs: its metadata, SSO and SLO endpoints (saml-idp/routes.ts), mounted at /saml-idp. */
  samlIdp: express.Router;
}

/** Only a path on this site may be the target of a redirect back (no open redirect). */
function localPath(value: unknown): string {
  return typeof value === 'string' && /^\/(?![/\\])[^\s]*$/.test(value) ? value : '/';
}

/** oidc-provider's default paths for the authorization endpoint (and `/auth/<uid>` resumption), token, userinfo and JWKS. */
const PROVIDER_LOGIN_PATHS = /^\/(?:auth(?:\/[^/]+)?|token|me|jwks)$/;

export function createApp(deps: AppDependencies): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use((_req, _res, next) => {
    deps.metrics.countRequest();
    next();
  });
  // Behind a proxy, trust exactly one hop: the client address is the one the proxy appended.
  // (`true` would trust the whole X-Forwarded-For a client sends, and rate limits with it.)
  app.set('trust proxy', deps.trustProxy ? 1 : false);
  const https = deps.publicUrl.protocol === 'https:';

  // Each request's writes are counted, so that a 503 says "nothing was changed" only when true.
  app.use((_req, _res, next) => withRequestWrites(new RequestWrites(), next));
  app.use(
    helmet({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'self'"],
          scriptSrc: ["'self'"],
          styleSrc: ["'self'"],
          imgSrc: ["'self'", 'data:'],
          fontSrc: ["'self'"],
          objectSrc: ["'none'"],
          baseUri: ["'none'"],
          frameAncestors: ["'none'"],
          // No form-action: the login forms post on to identity means and SePs, and browsers apply
          // form-action to the redirects that follow a form submission.
          ...(https ? { upgradeInsecureRequests: [] } : {}),
        },
      },
      frameguard: { action: 'deny' },
      // same-origin, not no-referrer: with no-referrer browsers send "Origin: null" on our own form
      // posts, and the interaction routes check Origin. Other sites still learn nothing.
      referrerPolicy: { policy: 'same-origin' },
      strictTransportSecurity: https ? { maxAge: 31_536_000, includeSubDomains: true } : false,
    }),
  );

  const limits = rateLimiters(deps.rateLimits);
  // Opening My account starts a login (and stores its state), so it counts as one.
  app.use(['/auth', '/interaction', '/account/login', '/console/login', '/saml-idp/sso', '/saml-idp/slo'], limits.login);
  app.post('/saml/:means/acs', limits.acs);
  app.get('/oidc/:means/callback', limits.acs);
  app.use('/token', limits.token);
  app.use(['/reg', '/register'], limits.registration);

  // The provider is replaced when the signing keys change: take the current one per request.
  const callbacks = new WeakMap<Provider, ReturnType<Provider['callback']>>();
  const toProvider = (req: Request, res: Response) => {
    const provider = deps.provider;
    let callback = callbacks.get(provider);
    if (!callback) {
      callback = provider.callback();
      callbacks.set(provider, callback);
    }
    callback(req, res);
  };
  // oidc-provider's own routes of every login (authorization and its resumption, token, userinfo,
  // keys) go to it straight after the security headers and rate limits: none of the Express
  // routers below serves these paths, and walking them cost every such request.
  app.use((req, res, next) => {
    if (PROVIDER_LOGIN_PATHS.test(req.path)) toProvider(req, res);
    else next();
  });

  app.use('/static', express.static(STATIC_DIR, { fallthrough: false, index: false, maxAge: '1h' }));

  app.get('/language', (req, res) => {
    const to = req.query.to;
    if (isLocale(to)) res.setHeader('Set-Cookie', languageCookie(to, https));
    res.redirect(303, localPath(req.query.back));
  });

  app.get('/means/:id/logo.svg', (req, res) => {
    const file = deps.registry.logoFile(String(req.params.id));
    if (!file || !fs.existsSync(file)) {
      res.status(404).end();
      return;
    }
    res.type('image/svg+xml').set('Cache-Control', 'public, max-age=86400').send(fs.readFileSync(file));
  });

  app.get('/saml/:means/metadata', (req, res) => {
    const entry = deps.registry.saml(String(req.params.means));
    if (!entry) {
      res.status(404).type('text').send('no such identity means');
      return;
    }
    res.type('application/samlmetadata+xml').send(entry.adapter.serviceProviderMetadata());
  });
  app.use(upstreamReturnRoutes(deps));
  app.use('/saml-idp', deps.samlIdp);
  app.use('/interaction', interactionRoutes(deps));
  app.use('/account', accountRoutes(deps));
  app.use('/admin', adminRoutes(deps));
  app.use('/console', consoleRoutes(deps));
  // Beside oidc-provider's own /reg (RFC 7591/7592): what else a SeP does with its registration token.
  app.use('/reg', sepSelfServiceRoutes(deps, sepTileRoutes(deps)));
  app.use(tileCatalogueRoutes(deps));
  app.use('/register', registrationFormRoutes({ ...deps, tokenUses: new InitialAccessTokenUses(deps.db) }));
  // Routes the composition root adds (the embedded development providers, in development mode only).
  for (const { path: mount, router } of deps.extraRoutes) app.use(mount, router);

  // The state of every means' metadata (fresh, stale, expired, failing), for operators: it names
  // metadata sources (files, internal URLs) and raw errors, so it takes an operator credential.
  app.get('/health/metadata', requireOperator(deps.operators, OPERATOR_ROLES), (_req, res) => {
    const means = deps.registry.metadataStatus();
    const degraded = means.some((status) => status.state === 'expired' || status.state === 'failing');
    res.set('Cache-Control', 'no-store').json({ status: degraded ? 'degraded' : 'ok', means });
  });

  // The sector identifier document of a SeP group (OIDC Core 8.1): the return URLs of its SePs.
  app.get('/sep-groups/:group', async (req, res, next) => {
    try {
      const members = await deps.seps.listGroup(String(req.params.group));
      res.json(members.filter((sep) => sep.status === 'active').flatMap((sep) => sep.redirectUris));
    } catch (err) {
      next(err);
    }
  });

  app.use('/audit', auditorApi({ db: deps.db, audit: deps.audit, operators: deps.operators }));
  app.use(statisticsRoutes({ db: deps.db, seps: deps.seps, registry: deps.registry, operators: deps.operators, log: deps.audit.log }));
  app.use(metricsRoute(deps.metrics, deps.operators));

  app.use(healthRoutes(deps.readiness));

  app.use(toProvider);

  app.use((err: Error, req: Request, res: Response, _next: NextFunction) => {
    // A request the HTTP layer refused (too large, malformed) is the client's error, not a 5xx.
    if (isClientError(err)) {
      if (!res.headersSent) showCitizenError(req, res, 'bad_request');
      return;
    }
    if (isDatabaseUnavailable(err)) {
      respondServiceUnavailable(req, res, err);
      return;
    }
    // A bug: its stack, which names no values (database errors carry the SQL without them).
    logger.error('request failed', { error: err.message, method: req.method, stack: err.stack });
    if (res.headersSent) return;
    showCitizenError(req, res, 'server_error');
  });
  return app;
}
