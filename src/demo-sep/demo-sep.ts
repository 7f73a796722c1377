import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';
import express, { type Request, type Response } from 'express';
import helmet from 'helmet';
import { parse as parseCookies, serialize as serializeCookie } from 'cookie';
import * as oidc from 'openid-client';
import type { SAML } from '@node-saml/node-saml';
import { logger } from '../log/logger.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const eta = new Eta({ views: path.join(HERE, 'templates'), cache: true, autoEscape: true });

/** What the demo SeP is registered as in Brána. */
export const DEMO_SEP_CLIENT_ID = 'demo-portal-obcana';

export function demoSepRegistration(origin: string) {
  return {
    clientId: DEMO_SEP_CLIENT_ID,
    environment: 'test' as const,
    name: { cs: 'Portál občana (ukázka)', en: 'Citizen Portal (demo)' },
    organisation: { id: '00007064', name: 'Ministerstvo vnitra (ukázková registrace)' },
    description: 'Ukázková služba, která se přihlašuje přes Bránu.',
    infoUrl: 'https://example.org/portal-obcana',
    group: 'portal-obcana',
    spType: 'public' as const,
    legalBasis: null,
    minimumLoa: 'substantial' as const,
    allowedAttributes: ['CurrentGivenName', 'CurrentFamilyName', 'DateOfBirth', 'CurrentAddress', 'eMail'] as const,
    allowedMeans: null,
    eidasEnabled: true,
    redirectUris: [`${origin}/callback`],
    postLogoutRedirectUris: [`${origin}/`],
    tokenEndpointAuthMethod: 'client_secret_basic' as const,
  };
}

interface PendingLogin {
  state: string;
  nonce: string;
  codeVerifier: string;
}

interface LoggedIn {
  /** How the portal logged the citizen in: OpenID Connect or SAML 2.0. */
  protocol: 'OpenID Connect' | 'SAML 2.0';
  sub: string;
  personIdentifier: string;
  acr: string;
  amr: string;
  claims: Record<string, string>;
  idToken: string;
}

interface DemoSession {
  pending?: PendingLogin;
  user?: LoggedIn;
}

function display(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/**
 * A small "Portál občana"-like SeP on the openid-client package: logs in through Brána with the code
 * flow and PKCE, shows what it received, logs out. Sessions live in memory; it is a demonstration.
 */
export function createDemoSep(options: { origin: string; issuer: URL; clientSecret: string; scope?: string; saml?: { sp: SAML; metadataXml: string } }): express.Express {
  const sessions = new Map<string, DemoSession>();
  let configuration: Promise<oidc.Configuration> | undefined;
  const config = () => {
    configuration ??= oidc
      .discovery(options.issuer, DEMO_SEP_CLIENT_ID, options.clientSecret, undefined, options.issuer.protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : {})
      .catch((err: unknown) => {
        configuration = undefined;
        throw err;
      });
    return configuration;
  };

  const app = express();
  app.disable('x-powered-by');
  app.use(helmet({ contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'self'"], frameAncestors: ["'none'"] } }, strictTransportSecurity: false }));
  app.use('/static', express.static(path.join(HERE, 'static')));

  const session = (req: Request, res: Response): DemoSession => {
    let id = parseCookies(req.headers.cookie ?? '').demo_sid;
    if (!id || !sessions.has(id)) {
      id = randomBytes(16).toString('base64url');
      sessions.set(id, {});
      res.setHeader('Set-Cookie', serializeCookie('demo_sid', id, { httpOnly: true, sameSite: 'lax', path: '/' }));
    }
    return sessions.get(id)!;
  };

  const page = (res: Response, data: { user?: LoggedIn; error?: string; errorDescription?: string }) => {
    res.type('html').set('Cache-Control', 'no-store').send(eta.render('portal', { user: data.user ?? null, error: data.error ?? null, errorDescription: data.errorDescription ?? null, accountUrl: new URL('/account', options.issuer).href, saml: options.saml !== undefined }));
  };

  app.get('/', (req, res) => page(res, { user: session(req, res).user }));

  app.get('/login', async (req, res, next) => {
    try {
      const s = session(req, res);
      const pending: PendingLogin = { state: oidc.randomState(), nonce: oidc.randomNonce(), codeVerifier: oidc.randomPKCECodeVerifier() };
      s.pending = pending;
      const url = oidc.buildAuthorizationUrl(await config(), {
        redirect_uri: `${options.origin}/callback`,
        scope: options.scope ?? 'openid profile email address',
        code_challenge: await oidc.calculatePKCECodeChallenge(pending.codeVerifier),
        code_challenge_method: 'S256',
        state: pending.state,
        nonce: pending.nonce,
        ...(typeof req.query.idp_hint === 'string' ? { idp_hint: req.query.idp_hint } : {}),
      });
      res.redirect(303, url.href);
    } catch (err) {
      next(err);
    }
  });

  app.get('/callback', async (req, res) => {
    const s = session(req, res);
    const pending = s.pending;
    delete s.pending;
    if (typeof req.query.error === 'string') {
      page(res, { error: req.query.error, errorDescription: typeof req.query.error_description === 'string' ? req.query.error_description : '' });
      return;
    }
    if (!pending) {
      page(res, { error: 'no_pending_login' });
      return;
    }
    try {
      const cfg = await config();
      const tokens = await oidc.authorizationCodeGrant(cfg, new URL(req.originalUrl, options.origin), {
        pkceCodeVerifier: pending.codeVerifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
      const idClaims = tokens.claims()!;
      const userinfo = await oidc.fetchUserInfo(cfg, tokens.access_token, idClaims.sub);
      const claims: Record<string, string> = {};
      for (const [name, value] of Object.entries(userinfo)) if (name !== 'sub') claims[name] = display(value);
      s.user = {
        protocol: 'OpenID Connect',
        sub: idClaims.sub,
        personIdentifier: display(idClaims.PersonIdentifier ?? userinfo.PersonIdentifier ?? ''),
        acr: display(idClaims.acr ?? ''),
        amr: display(idClaims.amr ?? ''),
        claims,
        idToken: tokens.id_token!,
      };
      res.redirect(303, '/');
    } catch (err) {
      logger.warn('demo SeP login failed', { error: (err as Error).message });
      page(res, { error: 'token_exchange_failed' });
    }
  });

  const saml = options.saml?.sp;
  const samlMetadata = options.saml?.metadataXml;
  if (saml && samlMetadata) {
    // The portal's second door: the same login through Brána's SAML IdP (node-saml as the SeP).
    app.get('/saml/login', async (req, res, next) => {
      try {
        session(req, res);
        res.redirect(303, await saml.getAuthorizeUrlAsync('/', undefined, {}));
      } catch (err) {
        next(err);
      }
    });
    app.post('/saml/acs', express.urlencoded({ extended: false, limit: '300kb', parameterLimit: 5 }), async (req, res) => {
      const s = session(req, res);
      try {
        const { profile } = await saml.validatePostResponseAsync(req.body as Record<string, string>);
        if (!profile) throw new Error('no profile');
        const claims: Record<string, string> = {};
        for (const [name, value] of Object.entries(profile.attributes ?? {})) if (!name.endsWith('/PersonIdentifier')) claims[name.replace(/^.*\//, '')] = display(value);
        const assertion = profile.getAssertionXml?.() ?? '';
        s.user = {
          protocol: 'SAML 2.0',
          sub: profile.nameID,
          personIdentifier: display((profile.attributes as Record<string, unknown> | undefined)?.['http://eidas.europa.eu/attributes/naturalperson/PersonIdentifier'] ?? ''),
          acr: /<saml:AuthnContextClassRef>([^<]+)</.exec(assertion)?.[1] ?? '',
          amr: '',
          claims,
          idToken: '',
        };
        res.redirect(303, '/');
      } catch (err) {
        // The SeP's own library names the failure (a status Brána sent, or a check that failed).
        logger.warn('demo SAML SeP login failed', { error: (err as Error).message });
        page(res, { error: 'saml_response_refused', errorDescription: (err as Error).message.slice(0, 200) });
      }
    });
    app.get('/saml/metadata', (_req, res) => {
      res.type('application/samlmetadata+xml').send(samlMetadata);
    });
  }

  app.post('/logout', async (req, res, next) => {
    try {
      const s = session(req, res);
      const idToken = s.user?.idToken;
      delete s.user;
      if (!idToken) {
        res.redirect(303, '/');
        return;
      }
      res.redirect(303, oidc.buildEndSessionUrl(await config(), { id_token_hint: idToken, post_logout_redirect_uri: `${options.origin}/` }).href);
    } catch (err) {
      next(err);
    }
  });

  return app;
}
