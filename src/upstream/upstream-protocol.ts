import type { Router } from 'express';
import type { AssertionLog } from '../audit/assertion-log.ts';
import type { BrokerKeys } from '../keys/key-store.ts';
import type { IdentityMeans } from '../means/identity-means.ts';
import type { Database } from '../store/database.ts';
import type { UpstreamAdapter } from './contract.ts';
import type { MetadataCache } from './metadata/metadata-cache.ts';
import type { MetadataSource } from './metadata/metadata-source.ts';

/** A means and the adapter that speaks to it, with the health of its metadata. */
export interface RegisteredMeans {
  means: IdentityMeans;
  adapter: UpstreamAdapter;
  /** The IdP's SAML metadata or the OP's discovery document, kept current. */
  metadata: MetadataSource<unknown>;
  /** Set when an embedded development provider serves the means: who it is. */
  development: { entityId: string } | null;
}

/** Routes a protocol serves on Brána's own site (the embedded development providers). */
export interface MountedRoutes {
  path: string;
  router: Router;
}

/** What every protocol may use to build a means' adapter. */
export interface MeansContext {
  publicUrl: URL;
  keys: BrokerKeys;
  keysDir: string;
  db: Database;
  log: AssertionLog;
  metadataCache: MetadataCache;
  refreshIntervalMs: number;
  /** Derives the PKCE verifier and nonce of an upstream OIDC login from its state. */
  oidcStateKey: Buffer;
  /** Development mode: loopback http issuers allowed. */
  development: boolean;
}

/** Builds the adapter (and metadata source) of one means of a protocol. */
export type UpstreamProtocol = (means: IdentityMeans, context: MeansContext) => Promise<RegisteredMeans>;

/**
 * The protocols a broker speaks upstream, by name: `saml` and `oidc` always; `development` (the
 * embedded providers) only where the composition root registers it, in development mode.
 */
export type UpstreamProtocols = ReadonlyMap<string, UpstreamProtocol>;

/** A means names the real provider it reaches; without one it is served by the development protocol. */
export function protocolOf(means: IdentityMeans): string {
  if (means.protocol === 'saml') return means.saml.metadata ? 'saml' : 'development';
  return means.oidc.issuer ? 'oidc' : 'development';
}
