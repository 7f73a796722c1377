import { randomBytes } from 'node:crypto';
import Provider, { errors, interactionPolicy, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { parse as parseCookies } from 'cookie';
import type { JWK } from 'jose';
import type { AssertionLog, AuditRecord } from '../audit/assertion-log.ts';
import type { BrokerMetrics } from '../metrics/broker-metrics.ts';
import { installStepTiming } from '../metrics/oidc-step-timing.ts';
import { releaseDecision } from '../consent/release-policy.ts';
import type { ConsentStore } from '../consent/consent-store.ts';
import { allClaimNames, scopeClaims } from '../domain/attributes.ts';
import { ALL_LOA_URIS, loaAtLeast, loaFromUri } from '../domain/loa.ts';
import type { SepEnvironment } from '../domain/sep-environment.ts';
import type { ForeignPersonStore } from '../identity/foreign-person-store.ts';
import type { PersonStore } from '../identity/person-store.ts';
import type { PopulationRegister } from '../identity/population-register.ts';
import { requiredLoa } from '../domain/required-loa.ts';
import type { BrokerKeys } from '../keys/key-store.ts';
import { MESSAGES, isLocale, type Locale } from '../pages/i18n.ts';
import { LANGUAGE_COOKIE, renderTemplate } from '../pages/render.ts';
import { errorPage } from '../pages/citizen-errors.ts';
import type { Pseudonyms } from '../pseudonym/pseudonym.ts';
import type { SepRegistration } from '../sep/sep-registration.ts';
import type { SepStore } from '../sep/sep-store.ts';
import { ID_TOKEN_ENCRYPTION_ALGS, ID_TOKEN_ENCRYPTION_ENCS } from '../sep/sep.ts';
import type { Database, Transaction } from '../store/database.ts';
import { KnexModelAdapter } from '../store/oidc-model-store.ts';
import { logger } from '../log/logger.ts';
import { accountFinder } from './account.ts';
import { installAuditMiddleware, tokenIssuedHook } from './audit-hooks.ts';
import { EXTRA_CLIENT_METADATA, groupOfClient, sepPolicyOf } from './client-metadata.ts';
import { LOA_SCOPES, buildGrant } from './grants.ts';
import { SepClientAdapter } from './sep-client-adapter.ts';
import { InitialAccessTokenUses } from './initial-access-token-uses.ts';
import { SEP_REGISTRATION_POLICY, registrationPolicy } from './sep-registration-policy.ts';
import { installServiceUnavailable } from './service-unavailable.ts';
import { installTokenTransaction } from './token-transaction.ts';
import { installResumableResume, ResumableInteractionAdapter, ResumableInteractions } from './resumable-interactions.ts';
import { isDatabaseUnavailable } from '../store/database-unavailable.ts';

export interface ProviderDependencies {
  publicUrl: URL;
  keys: BrokerKeys;
  /** The signing keys in use now (signing-keys.ts); a new provider is made when they change. */
  jwks: { keys: JWK[] };
  db: Database;
  seps: SepStore;
  persons: PersonStore;
  register: PopulationRegister;
  pseudonyms: Pseudonyms;
  consents: ConsentStore;
  log: AssertionLog;
  metrics: BrokerMetrics;
  trustProxy: boolean;
  /** Foreign persons' asserted attributes (eIDAS). */
  foreignPersons?: ForeignPersonStore;
  /** The means that bring foreign persons: an SSO session made with one serves only eIDAS-enabled SePs. */
  crossBorderMeans?: ReadonlySet<string>;
  /** Writes SeP registrations (the registration API's store) with their audit records. */
  registration: SepRegistration;
  /** The SeP environment this instance serves: the other environment's SePs are not clients. */
  sepEnvironment: SepEnvironment;
  /** Development mode: a SeP's jwks_uri may be on this machine (loopback). */
  development?: boolean;
  /**
   * Where a login that has just begun goes instead of its interaction page, when it goes straight
   * to a means (login/direct-departure.ts): the means' URL, or undefined for the interaction page.
   * `along`: the authorization request's own records, and `writesAlong` its own writes (the
   * interaction), written in the hand-off's transaction if it hands off.
   */
  departure?: Departure;
}

/** A login handed straight to a means at its authorization request (see ProviderDependencies.departure). */
export type Departure = (interaction: Interaction, along: AuditRecord[], writesAlong?: (trx: Transaction) => Promise<void>) => Promise<string | undefined>;

/** An interaction as oidc-provider hands it to Brána. */
export type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * How oidc-provider fetches a SeP's jwks_uri. It guards every fetch against special-use addresses
 * (loopback, private networks: SSRF); in development mode only, a loopback jwks_uri — a SeP on this
 * machine, as Brána's registration rules allow there — is fetched without that guard.
 */
export function sepKeyFetch(development: boolean): NonNullable<Configuration['fetch']> {
  return (url, options) => {
    if (development && LOOPBACK_HOSTS.has(new URL(url instanceof Request ? url.url : url).hostname)) {
      const { dispatcher: _guard, ...unguarded } = options as RequestInit & { dispatcher?: unknown };
      return globalThis.fetch(url, unguarded);
    }
    return globalThis.fetch(url, options);
  };
}

/** How long an ID token lives; a retired signing key stays published at least this long. */
export const ID_TOKEN_LIFETIME_SECONDS = 600;
/** How long the citizen's Brána session lives (oidc-provider's Session; SAML SePs join it too). */
export const SESSION_TTL_SECONDS = 8 * 3600;
/** The session cookie's options (oidc-provider's `cookies.long`): SAML's side sets the same cookie. */
export function sessionCookieOptions(secure: boolean) {
  return { httpOnly: true, sameSite: 'lax', secure, signed: true } as const;
}

/** The clock skew oidc-provider tolerates. */
export const CLOCK_TOLERANCE_SECONDS = 5;

export function localeOfContext(ctx: KoaContextWithOIDC): Locale {
  const chosen = parseCookies(ctx.get('cookie') ?? '')[LANGUAGE_COOKIE];
  return isLocale(chosen) ? chosen : 'cs';
}

/**
 * The login policy, with oidc-provider's exact-match `acr` checks replaced by Brána's minimum
 * semantics: a session below the LoA this request needs, or made with a means this SeP may not use,
 * logs in again (step-up); with prompt=none that is login_required.
 */
function loginPolicy(crossBorderMeans: ReadonlySet<string>) {
  const { base, Check } = interactionPolicy;
  const policy = base();
  const login = policy.get('login')!;
  login.checks.remove('essential_acr');
  login.checks.remove('essential_acrs');
  login.checks.add(
    // With prompt=none a step-up cannot happen: the SeP gets login_required.
    new Check('loa_insufficient', 'the session does not reach the required level of assurance', 'login_required', (ctx) => {
      const { oidc } = ctx;
      if (!oidc.session?.accountId || !oidc.client) return Check.NO_NEED_TO_PROMPT;
      const sep = sepPolicyOf(oidc.client);
      const acr = loaFromUri(oidc.acr);
      if (!acr || !loaAtLeast(acr, requiredLoa(sep.minimumLoa, oidc.params ?? {}))) return Check.REQUEST_PROMPT;
      const means = Array.isArray(oidc.amr) ? oidc.amr[0] : undefined;
      if (sep.allowedMeans && (!means || !sep.allowedMeans.includes(means))) return Check.REQUEST_PROMPT;
      if (means && crossBorderMeans.has(means) && !sep.eidasEnabled) return Check.REQUEST_PROMPT;
      return Check.NO_NEED_TO_PROMPT;
    }),
  );
  return policy;
}

export function createProvider(deps: ProviderDependencies): Provider {
  const secure = deps.publicUrl.protocol === 'https:';
  const claimsConfig: Record<string, string[] | null> = { ...scopeClaims(), sid: null };
  for (const scope of LOA_SCOPES) claimsConfig[scope] = [];
  // Claims no scope stands for (age, isAgeOver, idtype, idnumber) are asked for only by name in the
  // claims parameter; oidc-provider drops any claim it is not told about.
  const inScopes = new Set(Object.values(claimsConfig).flatMap((claims) => claims ?? []));
  for (const claim of allClaimNames()) if (!inScopes.has(claim)) claimsConfig[claim] = null;

  const configuration: Configuration = {
    adapter: (name: string) => {
      if (name === 'Client') return new SepClientAdapter({ seps: deps.seps, registration: deps.registration, publicUrl: deps.publicUrl, environment: deps.sepEnvironment });
      // A resumed interaction is kept, marked, so that its resume can be repeated (resumable-interactions.ts).
      if (name === 'Interaction') return new ResumableInteractionAdapter(deps.db);
      return new KnexModelAdapter(deps.db, name, name === 'AccessToken' ? tokenIssuedHook(deps) : undefined);
    },
    findAccount: accountFinder(deps.persons, deps.register, deps.pseudonyms, deps.foreignPersons),
    jwks: deps.jwks as Configuration['jwks'],
    cookies: {
      keys: deps.keys.cookieKeys,
      // On https a sibling sub-domain must not be able to plant or overwrite Brána's cookies:
      // `__Host-` (Secure, Path=/, no Domain) for the SSO session, which oidc-provider sets on `/`.
      // The interaction and resume cookies are set on `/interaction/<uid>` and `/auth/<uid>`, where
      // `__Host-` is impossible; `__Secure-` at least keeps them from plain http. Plain-http
      // development keeps the default names (browsers refuse prefixed cookies without Secure).
      names: secure ? { session: '__Host-brana_session', interaction: '__Secure-brana_interaction', resume: '__Secure-brana_resume' } : { session: '_session', interaction: '_interaction', resume: '_interaction_resume' },
      long: sessionCookieOptions(secure),
      short: { httpOnly: true, sameSite: 'lax', secure, signed: true },
    },
    claims: claimsConfig,
    scopes: Object.keys(claimsConfig).filter((key) => Array.isArray(claimsConfig[key])),
    acrValues: ALL_LOA_URIS,
    subjectTypes: ['pairwise'],
    pairwiseIdentifier: async (_ctx, accountId, client) => deps.pseudonyms.forGroup(accountId, groupOfClient(client)),
    // Brána is the registry of SeP groups: the sector identifier URI is its own, never fetched.
    sectorIdentifierUriValidate: () => false,
    extraClientMetadata: { properties: [...EXTRA_CLIENT_METADATA] },
    extraParams: ['idp_hint'],
    pkce: { required: () => true },
    responseTypes: ['code'],
    clientDefaults: {
      grant_types: ['authorization_code'],
      response_types: ['code'],
      id_token_signed_response_alg: 'RS256',
      token_endpoint_auth_method: 'client_secret_basic',
    },
    allowOmittingSingleRegisteredRedirectUri: false,
    clockTolerance: CLOCK_TOLERANCE_SECONDS,
    conformIdTokenClaims: true,
    features: {
      devInteractions: { enabled: false },
      claimsParameter: { enabled: true },
      userinfo: { enabled: true },
      revocation: {
        enabled: true,
        // A SeP revokes only what was issued to it: another SeP's token stays valid, and the caller
        // is told it may not (RFC 7009 §2.1). Set here rather than left to the library's default.
        allowedPolicy: (_ctx, client, token) => {
          if (token.clientId !== client.clientId) throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
          return true;
        },
      },
      // Self-service registration (RFC 7591) with an initial access token from an administrator,
      // and its management (RFC 7592). The registration policy applies Brána's rules; a new SeP is
      // pending until an administrator approves it.
      registration: {
        enabled: true,
        initialAccessToken: true,
        policies: { [SEP_REGISTRATION_POLICY]: registrationPolicy({ registration: deps.registration, seps: deps.seps, publicUrl: deps.publicUrl, tokenUses: new InitialAccessTokenUses(deps.db) }) },
        idFactory: () => `sep-${randomBytes(12).toString('base64url')}`,
        secretFactory: () => randomBytes(32).toString('base64url'),
        issueRegistrationAccessToken: true,
      },
      registrationManagement: { enabled: true, rotateRegistrationAccessToken: true },
      // Encrypted ID tokens, as NIA sends them, to the SeP's key from its jwks_uri.
      encryption: { enabled: true },
      resourceIndicators: { enabled: false },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          const locale = localeOfContext(ctx);
          ctx.body = renderTemplate('logout', locale, { title: MESSAGES[locale].logout.title, form });
        },
        postLogoutSuccessSource: async (ctx) => {
          const locale = localeOfContext(ctx);
          ctx.body = renderTemplate('logout-done', locale, { title: MESSAGES[locale].logout.title });
        },
      },
    },
    interactions: {
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
      policy: loginPolicy(deps.crossBorderMeans ?? new Set()),
    },
    /**
     * A grant is never carried over from an earlier login: one-time consent means asking again. A
     * fresh grant is made here only when nothing needs consent or a permanent consent covers exactly
     * what is asked; otherwise the consent prompt runs.
     */
    loadExistingGrant: async (ctx) => {
      const fromThisFlow = ctx.oidc.result?.consent?.grantId;
      if (fromThisFlow) return ctx.oidc.provider.Grant.find(fromThisFlow);
      const accountId = ctx.oidc.session?.accountId;
      const client = ctx.oidc.client;
      const params = ctx.oidc.params ?? {};
      if (!accountId || !client) return undefined;
      const decision = releaseDecision(params, sepPolicyOf(client).allowedAttributes);
      if (decision.consentable.length && !(await deps.consents.findPermanent(accountId, client.clientId, decision.consentable))) return undefined;
      const grant = buildGrant(ctx.oidc.provider, accountId, client.clientId, decision, params.scope);
      await grant.save();
      return grant;
    },
    ttl: {
      AccessToken: 600,
      AuthorizationCode: 60,
      IdToken: ID_TOKEN_LIFETIME_SECONDS,
      Interaction: 1800,
      Session: SESSION_TTL_SECONDS,
      Grant: 8 * 3600,
    },
    renderError: async (ctx, out, error) => {
      // A database outage is answered (503) and logged by installServiceUnavailable.
      if (!isDatabaseUnavailable(error)) logger.warn('authorization request refused', { error: out.error, description: out.error_description, detail: (error as { error_detail?: string }).error_detail });
      const locale = localeOfContext(ctx);
      ctx.type = 'html';
      // The login this browser was in cannot go on (its interaction expired, was finished, or is another
      // browser's): say so and send the citizen back to the service, not "the request was not valid".
      const code =
        error instanceof errors.SessionNotFound
          ? 'session_expired'
          : out.error === 'unauthorized_client'
            ? 'sep_not_approved'
            : out.error === 'invalid_request' || out.error === 'invalid_client' || out.error === 'invalid_redirect_uri'
              ? 'bad_request'
              : 'session_expired';
      ctx.body = renderTemplate('error', locale, errorPage(code, locale));
    },
    enabledJWA: {
      idTokenSigningAlgValues: ['RS256', 'ES256'],
      userinfoSigningAlgValues: ['RS256', 'ES256'],
      clientAuthSigningAlgValues: ['RS256', 'PS256', 'ES256'],
      idTokenEncryptionAlgValues: [...ID_TOKEN_ENCRYPTION_ALGS],
      idTokenEncryptionEncValues: [...ID_TOKEN_ENCRYPTION_ENCS],
      userinfoEncryptionAlgValues: [...ID_TOKEN_ENCRYPTION_ALGS],
      userinfoEncryptionEncValues: [...ID_TOKEN_ENCRYPTION_ENCS],
    },
    discovery: { claims_locales_supported: ['cs', 'en'], ui_locales_supported: ['cs', 'en'] },
    fetch: sepKeyFetch(deps.development ?? false),
  };

  const provider = new Provider(deps.publicUrl.origin, configuration);
  provider.proxy = deps.trustProxy;
  installServiceUnavailable(provider);
  installStepTiming(provider, deps.metrics);
  // The audit middleware hands a login off at its authorization request: the request's own records and the hand-off's in one transaction.
  installAuditMiddleware(provider, deps.log, deps.seps, deps.pseudonyms, deps.departure);
  // The resume of an authorization can be repeated: the audit middleware sees a repeated answer as nothing new.
  installResumableResume(provider, new ResumableInteractions(deps.db));
  // Innermost: the audit middleware and the 503 answer see how its commit ended.
  installTokenTransaction(provider);
  return provider;
}
