import { createHash, hkdfSync, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import type express from 'express';
import type Provider from 'oidc-provider';
import { OperatorCredentials } from './access/operator-credentials.ts';
import { ensureAccountSep } from './account/account-sep.ts';
import { AccountSessions } from './account/account-sessions.ts';
import { ConsoleSessions } from './access/console-sessions.ts';
import { StaffRoles } from './access/staff-roles.ts';
import { ensureConsoleSep } from './console/console-sep.ts';
import { LoginHistory } from './account/login-history.ts';
import type { AssertionLog } from './audit/assertion-log.ts';
import { openAuditTrail, type AuditTrail } from './audit/audit-trail.ts';
import { ConfigurationError } from './config/configuration-error.ts';
import type { Environment, PopulationRegisterSettings } from './config/environment.ts';
import { holdsTestCitizens, TEST_CITIZENS_FILE } from './devidp/test-citizens.ts';
import { ConsentStore } from './consent/consent-store.ts';
import { createApp } from './http/app.ts';
import { ForeignPersonStore } from './identity/foreign-person-store.ts';
import { PersonStore } from './identity/person-store.ts';
import { openPopulationRegister } from './identity/register-setup.ts';
import { IdentityResolution } from './identity/resolution.ts';
import { loadBrokerKeys, readNextSamlSigningCertificate, type BrokerKeys } from './keys/key-store.ts';
import { BrokerMetrics } from './metrics/broker-metrics.ts';
import { SigningKeyReload } from './keys/signing-key-reload.ts';
import type { SigningKeyView } from './keys/signing-keys.ts';
import { Readiness } from './operations/readiness.ts';
import { databaseCheck } from './operations/database-probe.ts';
import { metadataCheck, registerCheck, signingKeysCheck } from './operations/readiness-checks.ts';
import { createProvider } from './oidc/provider.ts';
import { ResumableInteractions } from './oidc/resumable-interactions.ts';
import { Pseudonyms } from './pseudonym/pseudonym.ts';
import { SepRegistration } from './sep/sep-registration.ts';
import { SepStore } from './sep/sep-store.ts';
import { TileRequests } from './tiles/tile-requests.ts';
import { TileStore } from './tiles/tile-store.ts';
import { migrate, openDatabase, type Database } from './store/database.ts';
import type { IdentityMeansRegistry } from './upstream/identity-means-registry.ts';
import { buildIdentityMeansRegistry, standardProtocols } from './upstream/means-setup.ts';
import { DevelopmentMeans } from './devidp/development-means.ts';
import { AnswerAcceptance } from './login/answer-acceptance.ts';
import { LoginCompletion } from './login/login-completion.ts';
import { JourneyFrontends, SAML_JOURNEY_PREFIX } from './login/journey.ts';
import { OidcJourneys } from './login/oidc-journeys.ts';
import { samlIdpEndpoints } from './saml-idp/idp-metadata.ts';
import { samlIdpRoutes } from './saml-idp/routes.ts';
import { SamlJourneys } from './saml-idp/saml-journeys.ts';
import { BranaSessions } from './saml-idp/brana-session.ts';
import { installSessionLogoutOnEndSession } from './saml-idp/end-session.ts';
import { SessionLogout } from './saml-idp/session-logout.ts';
import { spMetadataReader } from './saml-idp/sp-metadata-source.ts';
import { SpMetadataRefresher } from './saml-idp/sp-metadata-refresh.ts';
import { SamlSepStore } from './sep/saml-service-provider.ts';
import type { SamlJourneyStore } from './saml-idp/journey-store.ts';
import { UpstreamHandoff } from './login/upstream-handoff.ts';
import { DirectDeparture } from './login/direct-departure.ts';
import { UpstreamRequestStore } from './upstream/upstream-request-store.ts';

/** Everything one Brána node is made of, wired together. */
export interface Broker {
  env: Environment;
  app: express.Express;
  db: Database;
  keys: BrokerKeys;
  /** The oidc-provider instance in use now (replaced when the signing keys change). */
  readonly provider: Provider;
  signingKeys: SigningKeyReload;
  readiness: Readiness;
  registry: IdentityMeansRegistry;
  seps: SepStore;
  log: AssertionLog;
  /** The log's keys, seal and checkpoints. */
  audit: AuditTrail;
  consents: ConsentStore;
  persons: PersonStore;
  pseudonyms: Pseudonyms;
  requests: UpstreamRequestStore;
  foreignPersons: ForeignPersonStore;
  operators: OperatorCredentials;
  metrics: BrokerMetrics;
  /** Registers SePs and changes registrations, with their audit records (this instance's rules). */
  registration: SepRegistration;
  /** SAML SePs' logins in progress (saml-idp/). */
  samlJourneys: SamlJourneyStore;
  /** The citizens' open "My account" pages. */
  accountSessions: AccountSessions;
  /** Staff signed in to the consoles, and who holds which role. */
  consoleSessions: ConsoleSessions;
  staffRoles: StaffRoles;
  tiles: TileStore;
  tileRequests: TileRequests;
  close(): Promise<void>;
}

/**
 * The population register a node uses: the one configured; with none, the development test citizens
 * in development mode only. Production never resolves real people against test data: a file holding
 * the test citizens is refused, and no register at all is refused by openPopulationRegister.
 */
function populationRegisterOf(env: Environment): PopulationRegisterSettings | null {
  const configured = env.populationRegister;
  if (env.mode === 'development') return configured ?? { kind: 'embedded', file: TEST_CITIZENS_FILE };
  if (configured?.kind === 'embedded' && holdsTestCitizens(configured.file)) {
    throw new ConfigurationError('environment', 'BRANA_POPULATION_REGISTER', `file ${configured.file} holds the development test citizens: production mode never resolves real people against test data`);
  }
  return configured;
}

/** A PEM certificate file an environment variable names; a clear error naming the variable otherwise. */
function readCertificateFile(file: string, variable: string): string {
  try {
    const pem = fs.readFileSync(file, 'utf8');
    new X509Certificate(pem);
    return pem;
  } catch (err) {
    throw new ConfigurationError(variable, file, `is not a readable PEM certificate (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

export async function createBroker(env: Environment): Promise<Broker> {
  const db = openDatabase(env.databaseUrl, { poolMax: env.databasePoolMax, timeoutMs: env.databaseTimeoutMs });
  let signingKeys: SigningKeyReload | undefined;
  try {
    const { register, probe: probeRegister } = openPopulationRegister(populationRegisterOf(env));
    await migrate(db);
    const keys = await loadBrokerKeys(env.keysDir, env.publicUrl);
    signingKeys = new SigningKeyReload(keys.signingKeysFile, { intervalMs: env.keysReloadSeconds * 1000 });
    const requests = new UpstreamRequestStore(db);
    const audit = await openAuditTrail(db, env.keysDir, env.audit);
    const log = audit.log;
    // The protocols this broker speaks upstream; the embedded development providers only in development mode.
    const protocols = standardProtocols();
    const developmentMeans = env.mode === 'development' ? new DevelopmentMeans({ trustProxy: env.trustProxy }) : null;
    if (developmentMeans) protocols.set('development', developmentMeans.protocol);
    const registry = await buildIdentityMeansRegistry({ env, keys, db, log }, protocols);
    const seps = new SepStore(db);
    const metrics = new BrokerMetrics(registry.ids());
    log.onCommitted((record) => metrics.observeRecord(record));
    db.on('query', () => metrics.countStatement());
    const consents = new ConsentStore(db);
    const persons = new PersonStore(db);
    const pseudonyms = new Pseudonyms(keys.pseudonymSecret);
    const operators = new OperatorCredentials(db);
    const foreignPersons = new ForeignPersonStore(db);
    const crossBorderMeans = new Set(registry.list().filter((means) => means.crossBorder).map((means) => means.id));
    const identifierKey = Buffer.from(hkdfSync('sha256', keys.pseudonymSecret, Buffer.alloc(0), 'brana eidas person identifier', 32));
    const resolution = new IdentityResolution(register, persons, { crossBorderMeans, store: foreignPersons, identifierKey });
    const registration = new SepRegistration(db, seps, log, { allowLoopbackHttp: env.mode === 'development', knownMeans: registry.ids(), environment: env.sepEnvironment });
    await ensureAccountSep(registration, seps, env.publicUrl, env.sepEnvironment);
    await ensureConsoleSep(registration, seps, env.publicUrl, env.sepEnvironment);
    const accountSessions = new AccountSessions(db);
    const consoleSessions = new ConsoleSessions(db);
    const staffRoles = new StaffRoles(db);
    const tiles = new TileStore(db);
    const tileRequests = new TileRequests({ db, tiles, seps, log, allowLoopbackHttp: env.mode === 'development' });
    // Brána as a SAML IdP for SePs: the same journey after the protocol edge (saml-idp/).
    const samlEndpoints = samlIdpEndpoints(env.publicUrl);
    // A logout at Brána tells the SAML SePs of the citizen's session, whichever protocol began it.
    const logoutFrameKey = createHash('sha256').update('brana-logout-frames').update(keys.cookieKeys[0] ?? '').digest();
    const sessionLogout = new SessionLogout({ db, seps, log, pseudonyms, idpEntityId: samlEndpoints.entityId, issuer: env.publicUrl.origin, signing: keys.samlSigning, formKey: logoutFrameKey });
    const makeProvider = (jwks: SigningKeyView['jwks']) =>
      withSessionLogout(createProvider({
        publicUrl: env.publicUrl,
        keys,
        jwks,
        db,
        seps,
        persons,
        register,
        pseudonyms,
        consents,
        log,
        metrics,
        trustProxy: env.trustProxy,
        foreignPersons,
        crossBorderMeans,
        registration,
        sepEnvironment: env.sepEnvironment,
        development: env.mode === 'development',
        // A login that goes straight to a means leaves from the authorization request itself.
        departure: (interaction, along, writesAlong) => departure.redirectFor(oidcJourneys.journeyOf(interaction), along, writesAlong),
      }));
    const handoff = new UpstreamHandoff({ registry, requests, log, db, metrics });
    const departure = new DirectDeparture({ seps, registry, handoff });
    const withSessionLogout = (provider: Provider) => {
      installSessionLogoutOnEndSession(provider, sessionLogout);
      return provider;
    };
    const spMetadataFetch = { allowLoopback: env.mode === 'development', ...(env.samlSepMetadataCa ? { ca: [readCertificateFile(env.samlSepMetadataCa, 'BRANA_SAML_SEP_METADATA_CA')] } : {}) };
    // SP metadata of SAML SePs registered from an https URL, kept current like a means' metadata.
    const spMetadata = new SpMetadataRefresher({
      db,
      seps,
      registration,
      refreshIntervalMs: env.metadataRefreshIntervalMs,
      fetch: spMetadataFetch,
      trustAnchors: env.samlSepMetadataTrustAnchor ? [readCertificateFile(env.samlSepMetadataTrustAnchor, 'BRANA_SAML_SEP_METADATA_TRUST_ANCHOR')] : [],
    });
    const formKey = createHash('sha256').update('brana-forms').update(keys.cookieKeys[0] ?? '').digest();
    const readiness = new Readiness().add('database', databaseCheck(db, { timeoutMs: env.databaseTimeoutMs })).add('keys', signingKeysCheck(signingKeys)).add('metadata', metadataCheck(registry)).add('register', registerCheck(probeRegister));
    const oidcJourneys = new OidcJourneys(() => deps.provider);
    // SAML logins join the citizen's Brána session, oidc-provider's: SSO and logout across protocols.
    const sessions = new BranaSessions(() => deps.provider, env.publicUrl.protocol === 'https:', formKey);
    const samlJourneys = new SamlJourneys({ db, seps, log, pseudonyms, persons, register, foreignPersons, endpoints: samlEndpoints, signing: keys.samlSigning, formKey, secure: env.publicUrl.protocol === 'https:', sessions });
    const resumableInteractions = new ResumableInteractions(db);
    const deps = {
      provider: makeProvider(signingKeys.current().jwks),
      journeys: new JourneyFrontends(oidcJourneys, samlJourneys),
      samlIdp: samlIdpRoutes({ db, seps, journeys: samlJourneys, endpoints: samlEndpoints, signing: keys.samlSigning, encryption: keys.samlEncryption, announcedSigningCertificates: [readNextSamlSigningCertificate(env.keysDir)].filter((pem) => pem !== null), sepEnvironment: env.sepEnvironment, log, sessions, sessionLogout }),
      seps,
      registry,
      consents,
      log,
      pseudonyms,
      db,
      handoff,
      acceptance: new AnswerAcceptance({
        interactions: { isPending: (uid: string) => (uid.startsWith(SAML_JOURNEY_PREFIX) ? samlJourneys.isPending(uid) : resumableInteractions.isPending(uid)) },
        registry, requests, resolution, seps, log, pseudonyms, db, metrics }),
      completion: new LoginCompletion({ requests, consents, log, pseudonyms, db }),
      readiness,
      publicUrl: env.publicUrl,
      formKey,
      trustProxy: env.trustProxy,
      development: env.mode === 'development',
      extraRoutes: developmentMeans?.routes() ?? [],
      // Self-service registration of SAML SePs: SP metadata pasted or fetched (never from a private network outside development).
      spMetadata,
      readSpMetadata: spMetadataReader({ ...spMetadataFetch, samlSeps: new SamlSepStore(db) }),
      idpMetadataUrl: samlEndpoints.metadataUrl,
      rateLimits: env.rateLimits,
      operators,
      audit,
      metrics,
      accountSessions,
      consoleSessions,
      staffRoles,
      persons,
      signingKeysFile: keys.signingKeysFile,
      history: new LoginHistory(seps, log, pseudonyms),
      registration,
      sepEnvironment: env.sepEnvironment,
      tiles,
      tileRequests,
    };
    // oidc-provider reads its JWKS once: when the signing keys change, the node takes a new provider
    // (all its state is in the database, so nothing is lost); routes read deps.provider per request.
    signingKeys.onChange((view) => {
      deps.provider = makeProvider(view.jwks);
    });
    registry.start(Math.min(60_000, env.metadataRefreshIntervalMs));
    spMetadata.start();
    audit.start();
    signingKeys.start();
    const app = createApp(deps);
    const reload = signingKeys;
    return {
      env,
      app,
      db,
      keys,
      get provider() {
        return deps.provider;
      },
      signingKeys: reload,
      readiness,
      registry,
      seps,
      log,
      audit,
      consents,
      persons,
      pseudonyms,
      requests,
      foreignPersons,
      operators,
      metrics,
      registration,
      samlJourneys: samlJourneys.journeyStore,
      accountSessions,
      consoleSessions,
      staffRoles,
      tiles,
      tileRequests,
      async close() {
        registry.stop();
        spMetadata.stop();
        reload.stop();
        await audit.stop();
        await db.destroy();
      },
    };
  } catch (err) {
    signingKeys?.stop();
    await db.destroy();
    throw err;
  }
}
