import { hkdfSync } from 'node:crypto';
import path from 'node:path';
import type { AssertionLog } from '../audit/assertion-log.ts';
import { ConfigurationError } from '../config/configuration-error.ts';
import type { Environment } from '../config/environment.ts';
import { DevelopmentIdentityProvider } from '../devidp/development-identity-provider.ts';
import { DevelopmentOidcProvider } from '../devidp/development-oidc-provider.ts';
import { readForeignTestCitizens, readTestCitizens } from '../devidp/test-citizens.ts';
import { readOrCreateCertifiedKey, type BrokerKeys } from '../keys/key-store.ts';
import { logger } from '../log/logger.ts';
import { readIdentityMeansFolder, type OidcMeans, type SamlMeans } from '../means/identity-means.ts';
import type { Database } from '../store/database.ts';
import { IdentityMeansRegistry, requireRealMetadata, type RegisteredMeans } from './identity-means-registry.ts';
import { MetadataCache } from './metadata/metadata-cache.ts';
import { MetadataSource } from './metadata/metadata-source.ts';
import { discoveryUrl, parseDiscovery, type OpenIdProviderMetadata } from './oidc/discovery.ts';
import { OidcAdapter } from './oidc/oidc-adapter.ts';
import type { IdpMetadata } from './saml/idp-metadata.ts';
import { SamlAdapter } from './saml/saml-adapter.ts';
import { parseSamlMetadata } from './saml/signed-metadata.ts';
import type { UpstreamRequestStore } from './upstream-request-store.ts';

export interface MeansSetup {
  env: Environment;
  keys: BrokerKeys;
  requests: UpstreamRequestStore;
  db: Database;
  log: AssertionLog;
}

/** Where a means' metadata comes from, as operators and the CLI name it. */
export function samlMetadataSource(means: SamlMeans, options: { refreshIntervalMs: number; cache?: MetadataCache; log?: AssertionLog }): MetadataSource<IdpMetadata> {
  const location = means.saml.metadata!;
  return new MetadataSource<IdpMetadata>({
    means: means.id,
    location,
    load: location.startsWith('https://') ? MetadataSource.url(location) : MetadataSource.file(location),
    parse: (text) => parseSamlMetadata(text, { source: location, ...(means.saml.entityId ? { entityId: means.saml.entityId } : {}), trustAnchors: means.saml.metadataTrustAnchors }),
    refreshIntervalMs: options.refreshIntervalMs,
    ...(options.cache ? { cache: options.cache } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
}

export function oidcDiscoverySource(means: OidcMeans, options: { refreshIntervalMs: number; cache?: MetadataCache; log?: AssertionLog }): MetadataSource<OpenIdProviderMetadata> {
  const issuer = means.oidc.issuer!;
  const location = discoveryUrl(issuer);
  return new MetadataSource<OpenIdProviderMetadata>({
    means: means.id,
    location,
    load: MetadataSource.url(location, means.oidc.timeoutSeconds * 1000, 'application/json'),
    parse: (text) => parseDiscovery(text, { source: location, issuer }),
    refreshIntervalMs: options.refreshIntervalMs,
    ...(options.cache ? { cache: options.cache } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
}

/**
 * The first load of a real means' metadata: from its source, else from the last good copy in the
 * database. A file that cannot be read or parsed at start is the operator's mistake and stops the
 * start; a URL that is down only leaves the means unavailable (failing) until it answers.
 */
async function firstLoad(source: MetadataSource<unknown>, means: { id: string; source: string }, kind: 'file' | 'url'): Promise<void> {
  try {
    await source.refresh('start');
  } catch (err) {
    if (await source.fallBackToCache()) {
      logger.warn('identity means started on its last good metadata from the database', { means: means.id, error: (err as Error).message });
      return;
    }
    if (kind === 'file') throw err instanceof ConfigurationError ? err : new ConfigurationError(source.location, '(document)', (err as Error).message);
    logger.error('identity means is unavailable: its metadata cannot be loaded', { means: means.id, location: source.location, error: (err as Error).message });
  }
}

/** Every means of the providers folder with its adapter: SAML or OIDC by its data. */
export async function buildIdentityMeansRegistry(setup: MeansSetup): Promise<IdentityMeansRegistry> {
  const { env, keys, requests } = setup;
  const development = env.mode === 'development';
  const citizens = development ? readTestCitizens() : [];
  const foreignCitizens = development ? readForeignTestCitizens() : [];
  const cache = new MetadataCache(setup.db);
  const shared = { refreshIntervalMs: env.metadataRefreshIntervalMs, cache, log: setup.log };
  // The PKCE verifier and nonce of an upstream OIDC login are derived from its state under this key.
  const stateKey = Buffer.from(hkdfSync('sha256', keys.pseudonymSecret, Buffer.alloc(0), 'brana upstream oidc state', 32));
  const entries: RegisteredMeans[] = [];

  for (const means of readIdentityMeansFolder(env.providersDir)) {
    if (means.protocol === 'saml') {
      if (means.saml.metadata) {
        const metadata = samlMetadataSource(means, shared);
        await firstLoad(metadata, means, means.saml.metadata.startsWith('https://') ? 'url' : 'file');
        entries.push({ means, adapter: new SamlAdapter({ means, metadata, keys, requests, publicUrl: env.publicUrl }), metadata, development: null });
        continue;
      }
      if (!development) requireRealMetadata(means);
      const idpKeys = await readOrCreateCertifiedKey(path.join(env.keysDir, 'dev-idp'), means.id, `Brána development IdP ${means.id}`);
      let adapter: SamlAdapter | undefined;
      const idp = new DevelopmentIdentityProvider({ means, publicUrl: env.publicUrl, keys: idpKeys, citizens, foreignCitizens, serviceProviderMetadata: () => adapter!.serviceProviderMetadata() });
      const metadata = new MetadataSource<IdpMetadata>({
        means: means.id,
        location: `${idp.entityId} (embedded development IdP)`,
        load: async () => idp.metadataXml(),
        parse: (text) => parseSamlMetadata(text, { source: idp.entityId, trustAnchors: [] }),
        refreshIntervalMs: env.metadataRefreshIntervalMs,
      });
      await metadata.refresh('start');
      adapter = new SamlAdapter({ means, metadata, keys, requests, publicUrl: env.publicUrl });
      entries.push({ means, adapter, metadata, development: idp });
      continue;
    }

    const redirectUri = new URL(`/oidc/${means.id}/callback`, env.publicUrl).href;
    if (means.oidc.issuer) {
      if (!development && new URL(means.oidc.issuer).protocol !== 'https:') throw new ConfigurationError(means.source, 'oidc.issuer', 'must use https in production mode');
      const clientSecret = process.env[means.oidc.clientSecretEnv!];
      if (!clientSecret) throw new ConfigurationError(means.source, 'oidc.clientSecretEnv', `the environment variable ${means.oidc.clientSecretEnv} is not set`);
      const metadata = oidcDiscoverySource(means, shared);
      await firstLoad(metadata, means, 'url');
      const adapter = new OidcAdapter({ means, issuer: means.oidc.issuer, clientId: means.oidc.clientId!, clientSecret, discovery: metadata, requests, publicUrl: env.publicUrl, stateKey, allowLoopbackHttp: development });
      entries.push({ means, adapter, metadata, development: null });
      continue;
    }
    if (!development) requireRealMetadata(means);
    const opKeys = await readOrCreateCertifiedKey(path.join(env.keysDir, 'dev-idp'), means.id, `Brána development OP ${means.id}`);
    const op = await DevelopmentOidcProvider.create({ means, publicUrl: env.publicUrl, keys: opKeys, citizens, foreignCitizens, redirectUri, db: setup.db, trustProxy: env.trustProxy });
    const metadata = new MetadataSource<OpenIdProviderMetadata>({
      means: means.id,
      location: `${op.issuer} (embedded development OpenID Provider)`,
      load: async () => op.discoveryDocument(),
      parse: (text) => parseDiscovery(text, { source: op.issuer, issuer: op.issuer }),
      refreshIntervalMs: env.metadataRefreshIntervalMs,
    });
    await metadata.refresh('start');
    const adapter = new OidcAdapter({ means, issuer: op.issuer, clientId: op.clientId, clientSecret: op.clientSecret, discovery: metadata, requests, publicUrl: env.publicUrl, stateKey, allowLoopbackHttp: true });
    entries.push({ means, adapter, metadata, development: op });
  }
  return new IdentityMeansRegistry(entries);
}
