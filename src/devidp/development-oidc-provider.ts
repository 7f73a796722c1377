import { createHash, createHmac, createPrivateKey } from 'node:crypto';
import express, { type Response, type Router } from 'express';
import * as jose from 'jose';
import Provider, { errors as oidcErrors, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { ALL_LOA_URIS, loaAtLeast, loaFromUri, loaUri, weakestLoa, type Loa } from '../domain/loa.ts';
import type { KeyPairWithCertificate } from '../keys/certificate.ts';
import { logger } from '../log/logger.ts';
import type { OidcMeans } from '../means/identity-means.ts';
import { localeOf, renderPage, renderTemplate } from '../pages/render.ts';
import { errorPage } from '../pages/citizen-errors.ts';
import type { Database } from '../store/database.ts';
import { KnexModelAdapter } from '../store/oidc-model-store.ts';
import { developmentAccounts, type DevelopmentAccount, type ForeignTestCitizen, type TestCitizen } from './test-citizens.ts';

/** Keys a development OpenID Provider needs: its signing key (reused from keys/dev-idp). */
async function signingJwks(keys: KeyPairWithCertificate): Promise<{ keys: jose.JWK[] }> {
  const jwk = await jose.exportJWK(createPrivateKey(keys.privateKeyPem));
  return { keys: [{ ...jwk, alg: 'RS256', use: 'sig', kid: await jose.calculateJwkThumbprint(jwk) }] };
}

/**
 * An embedded OpenID Provider for development, standing for an OIDC identity means such as Bank iD:
 * a second oidc-provider instance under /dev-oidc/<means>, with its own keys, its own SSO session
 * (so prompt=login and max_age mean something), a login page listing the test citizens who have an
 * account there, and ID tokens carrying the eIDAS LoA as `acr`. Its state lives in the broker's
 * database, namespaced, so that any node can serve it.
 */
export class DevelopmentOidcProvider {
  readonly means: OidcMeans;
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  private readonly provider: Provider;
  private readonly accountList: DevelopmentAccount[];
  private readonly basePath: string;

  static async create(options: {
    means: OidcMeans;
    publicUrl: URL;
    keys: KeyPairWithCertificate;
    citizens: TestCitizen[];
    foreignCitizens: ForeignTestCitizen[];
    redirectUri: string;
    db: Database;
    trustProxy: boolean;
  }): Promise<DevelopmentOidcProvider> {
    return new DevelopmentOidcProvider(options, await signingJwks(options.keys));
  }

  private constructor(
    options: { means: OidcMeans; publicUrl: URL; keys: KeyPairWithCertificate; citizens: TestCitizen[]; foreignCitizens: ForeignTestCitizen[]; redirectUri: string; db: Database; trustProxy: boolean },
    jwks: { keys: jose.JWK[] },
  ) {
    this.means = options.means;
    this.basePath = `/dev-oidc/${options.means.id}`;
    this.issuer = new URL(this.basePath, options.publicUrl).href;
    const secret = createHash('sha256').update('dev-oidc').update(options.keys.privateKeyPem).digest();
    this.clientId = `brana-${options.means.id}`;
    this.clientSecret = createHmac('sha256', secret).update('client-secret').digest('base64url');
    this.accountList = developmentAccounts(options.means, secret, options.citizens, options.foreignCitizens);
    const secure = options.publicUrl.protocol === 'https:';
    const cookiePrefix = `_devoidc_${options.means.id.replace(/[^a-z0-9]/g, '_')}`;
    const claimNames = Object.values(options.means.oidc.claims);
    const namespace = `dev:${options.means.id.slice(0, 12)}`;

    const configuration: Configuration = {
      adapter: (name: string) => new KnexModelAdapter(options.db, name, undefined, namespace),
      clients: [
        {
          client_id: this.clientId,
          client_secret: this.clientSecret,
          redirect_uris: [options.redirectUri],
          response_types: ['code'],
          grant_types: ['authorization_code'],
          token_endpoint_auth_method: 'client_secret_basic',
          id_token_signed_response_alg: 'RS256',
        },
      ],
      jwks: jwks as Configuration['jwks'],
      findAccount: async (_ctx, subject) => {
        const account = this.accountList.find((candidate) => candidate.subject === subject);
        if (!account) return undefined;
        return {
          accountId: subject,
          claims: async () => {
            const claims: Record<string, unknown> = { sub: subject };
            for (const [id, claim] of Object.entries(options.means.oidc.claims)) {
              const value = account.values[id as keyof DevelopmentAccount['values']];
              if (value !== undefined) claims[claim] = value;
            }
            return claims as { sub: string };
          },
        };
      },
      claims: { openid: ['sub', 'acr', 'auth_time'], profile: claimNames },
      scopes: ['openid', 'profile'],
      acrValues: ALL_LOA_URIS,
      cookies: {
        names: { session: `${cookiePrefix}_session`, interaction: `${cookiePrefix}_interaction`, resume: `${cookiePrefix}_resume` },
        keys: [createHmac('sha256', secret).update('cookies').digest('base64url')],
        long: { httpOnly: true, sameSite: 'lax', secure, signed: true },
        short: { httpOnly: true, sameSite: 'lax', secure, signed: true },
      },
      pkce: { required: () => true },
      responseTypes: ['code'],
      features: { devInteractions: { enabled: false }, userinfo: { enabled: true }, rpInitiatedLogout: { enabled: false } },
      interactions: { url: (_ctx, interaction) => `${this.basePath}/interaction/${interaction.uid}` },
      // A bank asks no consent of its own for the broker here: the broker asks the citizen.
      loadExistingGrant: async (ctx: KoaContextWithOIDC) => {
        const accountId = ctx.oidc.session?.accountId;
        if (!accountId || !ctx.oidc.client) return undefined;
        const grant = new ctx.oidc.provider.Grant({ accountId, clientId: ctx.oidc.client.clientId });
        grant.addOIDCScope(String(ctx.oidc.params?.scope ?? 'openid'));
        await grant.save();
        return grant;
      },
      ttl: { AccessToken: 300, AuthorizationCode: 60, IdToken: 300, Interaction: 1800, Session: 8 * 3600, Grant: 8 * 3600 },
      renderError: async (ctx, out) => {
        logger.warn('development OpenID Provider refused a request', { means: options.means.id, error: out.error, description: out.error_description });
        ctx.type = 'html';
        ctx.body = renderTemplate('error', 'cs', errorPage('bad_request', 'cs'));
      },
      clockTolerance: 5,
    };
    this.provider = new Provider(this.issuer, configuration);
    this.provider.proxy = options.trustProxy;
  }

  /** The discovery document, made in-process as the development SAML IdPs make their metadata. */
  discoveryDocument(): string {
    const at = (path: string) => `${this.issuer}${path}`;
    return JSON.stringify({
      issuer: this.issuer,
      authorization_endpoint: at('/auth'),
      token_endpoint: at('/token'),
      jwks_uri: at('/jwks'),
      userinfo_endpoint: at('/me'),
      response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'],
      authorization_response_iss_parameter_supported: true,
      id_token_signing_alg_values_supported: ['RS256'],
      acr_values_supported: ALL_LOA_URIS,
    });
  }

  accounts(): Array<{ login: string; name: string }> {
    return this.accountList.map((account) => ({ login: account.login, name: account.displayName }));
  }

  /** The weakest LoA the broker's `acr_values` accepts (they list acceptable values). */
  private static minimumOf(acrValues: unknown): Loa {
    const levels = (typeof acrValues === 'string' ? acrValues.split(' ') : []).map((value) => loaFromUri(value)).filter((loa): loa is Loa => loa !== undefined);
    return levels.length ? levels.reduce(weakestLoa) : 'low';
  }

  /** The login page, the citizen's decision, then oidc-provider itself (mounted at /dev-oidc/<means>). */
  routes(): Router {
    const router = express.Router();
    const form = express.urlencoded({ extended: false, limit: '10kb', parameterLimit: 10 });

    const gone = (res: Response) => {
      res.status(400).type('text').send('Development OpenID Provider: this login is no longer valid');
    };

    router.get('/interaction/:uid', async (req, res, next) => {
      try {
        const interaction = await this.provider.interactionDetails(req, res);
        if (interaction.uid !== req.params.uid || interaction.prompt.name !== 'login') {
          gone(res);
          return;
        }
        renderPage(req, res, 'dev-idp-login', {
          title: this.means.name.cs,
          meansName: this.means.name[localeOf(req)],
          hint: this.means.development.loginHint?.[localeOf(req)] ?? null,
          logo: this.means.logoFile ? `/means/${this.means.id}/logo.svg` : null,
          minimumLoa: DevelopmentOidcProvider.minimumOf(interaction.params.acr_values),
          accounts: this.accounts(),
          sealed: null,
          action: `${this.basePath}/interaction/${interaction.uid}/login`,
        });
      } catch (err) {
        if (err instanceof oidcErrors.SessionNotFound) gone(res);
        else next(err);
      }
    });

    router.post('/interaction/:uid/login', form, async (req, res, next) => {
      try {
        const interaction = await this.provider.interactionDetails(req, res);
        if (interaction.uid !== req.params.uid || interaction.prompt.name !== 'login') {
          gone(res);
          return;
        }
        const body = req.body as Record<string, unknown>;
        const finish = (result: Parameters<Provider['interactionFinished']>[2]) => this.provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
        if (body.action === 'cancel') return await finish({ error: 'access_denied', error_description: 'The citizen cancelled the login' });
        if (body.action === 'fail') return await finish({ error: 'server_error', error_description: 'Authentication failed' });
        const account = this.accountList.find((candidate) => candidate.login === body.login);
        if (!account) return await finish({ error: 'access_denied', error_description: 'Unknown account' });
        if (!loaAtLeast(account.loa, DevelopmentOidcProvider.minimumOf(interaction.params.acr_values))) {
          return await finish({ error: 'unmet_authentication_requirements', error_description: 'The requested level of assurance cannot be reached' });
        }
        return await finish({ login: { accountId: account.subject, acr: loaUri(account.loa), amr: ['pwd'], remember: true } });
      } catch (err) {
        if (err instanceof oidcErrors.SessionNotFound) gone(res);
        else next(err);
      }
    });

    const callback = this.provider.callback();
    router.use((req, res) => {
      callback(req, res);
    });
    return router;
  }
}
