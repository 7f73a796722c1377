import type { AssertionLog } from '../../audit/assertion-log.ts';
import { ConfigurationError } from '../../config/configuration-error.ts';
import type { OidcMeans } from '../../means/identity-means.ts';
import { firstLoad } from '../metadata/first-load.ts';
import type { MetadataCache } from '../metadata/metadata-cache.ts';
import { MetadataSource } from '../metadata/metadata-source.ts';
import type { UpstreamProtocol } from '../upstream-protocol.ts';
import { discoveryUrl, parseDiscovery, type OpenIdProviderMetadata } from './discovery.ts';
import { OidcAdapter } from './oidc-adapter.ts';

/** Where an OIDC means' discovery document comes from. */
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

