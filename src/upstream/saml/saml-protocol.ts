import type { AssertionLog } from '../../audit/assertion-log.ts';
import type { SamlMeans } from '../../means/identity-means.ts';
import { firstLoad } from '../metadata/first-load.ts';
import type { MetadataCache } from '../metadata/metadata-cache.ts';
import { MetadataSource } from '../metadata/metadata-source.ts';
import type { UpstreamProtocol } from '../upstream-protocol.ts';
import type { IdpMetadata } from './idp-metadata.ts';
import { SamlAdapter } from './saml-adapter.ts';
import { parseSamlMetadata } from './signed-metadata.ts';

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

/** A SAML means with real metadata (a file or an https URL). */
export const samlProtocol: UpstreamProtocol = async (means, context) => {
  if (means.protocol !== 'saml' || !means.saml.metadata) throw new Error(`${means.id} is not a SAML means with metadata`);
  const metadata = samlMetadataSource(means, { refreshIntervalMs: context.refreshIntervalMs, cache: context.metadataCache, log: context.log });
  await firstLoad(metadata, means, means.saml.metadata.startsWith('https://') ? 'url' : 'file');
  return { means, adapter: new SamlAdapter({ means, metadata, keys: context.keys, publicUrl: context.publicUrl }), metadata, development: null };
};

