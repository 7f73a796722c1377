import { hkdfSync } from 'node:crypto';
import type { AssertionLog } from '../audit/assertion-log.ts';
import { ConfigurationError } from '../config/configuration-error.ts';
import type { Environment } from '../config/environment.ts';
import type { BrokerKeys } from '../keys/key-store.ts';
import { logger } from '../log/logger.ts';
import { readIdentityMeansFolder, type OidcMeans, type SamlMeans } from '../means/identity-means.ts';
import type { Database } from '../store/database.ts';
import { IdentityMeansRegistry, requireRealMetadata } from './identity-means-registry.ts';
import { MetadataCache } from './metadata/metadata-cache.ts';
import { MetadataSource } from './metadata/metadata-source.ts';
import { discoveryUrl, parseDiscovery, type OpenIdProviderMetadata } from './oidc/discovery.ts';
import { OidcAdapter } from './oidc/oidc-adapter.ts';
import type { IdpMetadata } from './saml/idp-metadata.ts';
import { SamlAdapter } from './saml/saml-adapter.ts';
import { parseSamlMetadata } from './saml/signed-metadata.ts';
import { protocolOf, type MeansContext, type RegisteredMeans, type UpstreamProtocol, type UpstreamProtocols } from './upstream-protocol.ts';

export interface MeansSetup {
  env: Environment;
  keys: BrokerKeys;
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
export async function firstLoad(source: MetadataSource<unknown>, means: { id: string; source: string }, kind: 'file' | 'url'): Promise<void> {
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

/** A SAML means with real metadata (a file or an https URL). */
export const samlProtocol: UpstreamProtocol = async (means, context) => {
  if (means.protocol !== 'saml' || !means.saml.metadata) throw new Error(`${means.id} is not a SAML means with metadata`);
  const metadata = samlMetadataSource(means, { refreshIntervalMs: context.refreshIntervalMs, cache: context.metadataCache, log: context.log });
  await firstLoad(metadata, means, means.saml.metadata.startsWith('https://') ? 'url' : 'file');
  return { means, adapter: new SamlAdapter({ means, metadata, keys: context.keys, publicUrl: context.publicUrl }), metadata, development: null };
};

/** An OIDC means at a real issuer, with its client secret from the environment. */
export const oidcProtocol: UpstreamProtocol = async (means, context) => {
  if (means.protocol !== 'oidc' || !means.oidc.issuer) throw new Error(`${means.id} is not an OIDC means with an issuer`);
  if (!context.development && new URL(means.oidc.issuer).protocol !== 'https:') throw new ConfigurationError(means.source, 'oidc.issuer', 'must use https in production mode');
  const clientSecret = process.env[means.oidc.clientSecretEnv!];
  if (!clientSecret) throw new ConfigurationError(means.source, 'oidc.clientSecretEnv', `the environment variable ${means.oidc.clientSecretEnv} is not set`);
  const metadata = oidcDiscoverySource(means, { refreshIntervalMs: context.refreshIntervalMs, cache: context.metadataCache, log: context.log });
  await firstLoad(metadata, means, 'url');
  const adapter = new OidcAdapter({
    means,
    issuer: means.oidc.issuer,
    clientId: means.oidc.clientId!,
    clientSecret,
    discovery: metadata,
    publicUrl: context.publicUrl,
    stateKey: context.oidcStateKey,
    allowLoopbackHttp: context.development,
  });
  return { means, adapter, metadata, development: null };
};

/** The protocols every broker speaks; the composition root may add `development`. */
export function standardProtocols(): Map<string, UpstreamProtocol> {
  return new Map([
    ['saml', samlProtocol],
    ['oidc', oidcProtocol],
  ]);
}

/** The context every protocol builds its means in. */
export function meansContext(setup: MeansSetup): MeansContext {
  return {
    publicUrl: setup.env.publicUrl,
    keys: setup.keys,
    keysDir: setup.env.keysDir,
    db: setup.db,
    log: setup.log,
    metadataCache: new MetadataCache(setup.db),
    refreshIntervalMs: setup.env.metadataRefreshIntervalMs,
    // The PKCE verifier and nonce of an upstream OIDC login are derived from its state under this key.
    oidcStateKey: Buffer.from(hkdfSync('sha256', setup.keys.pseudonymSecret, Buffer.alloc(0), 'brana upstream oidc state', 32)),
    development: setup.env.mode === 'development',
  };
}

/**
 * Every means of the providers folder with its adapter, built by the protocol its data names. A
 * means that names no real provider needs the `development` protocol: without it (production) the
 * start is refused, naming the file and field.
 */
export async function buildIdentityMeansRegistry(setup: MeansSetup, protocols: UpstreamProtocols, context = meansContext(setup)): Promise<IdentityMeansRegistry> {
  const entries: RegisteredMeans[] = [];
  for (const means of readIdentityMeansFolder(setup.env.providersDir)) {
    const protocol = protocols.get(protocolOf(means));
    if (!protocol) requireRealMetadata(means);
    entries.push(await protocol(means, context));
  }
  return new IdentityMeansRegistry(entries);
}
