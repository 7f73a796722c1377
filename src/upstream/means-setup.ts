import { hkdfSync } from 'node:crypto';
import type { AssertionLog } from '../audit/assertion-log.ts';
import type { Environment } from '../config/environment.ts';
import type { BrokerKeys } from '../keys/key-store.ts';
import { readIdentityMeansFolder } from '../means/identity-means.ts';
import type { Database } from '../store/database.ts';
import { IdentityMeansRegistry, requireRealMetadata } from './identity-means-registry.ts';
import { MetadataCache } from './metadata/metadata-cache.ts';
import { oidcProtocol } from './oidc/oidc-protocol.ts';
import { samlProtocol } from './saml/saml-protocol.ts';
import { protocolOf, type MeansContext, type RegisteredMeans, type UpstreamProtocol, type UpstreamProtocols } from './upstream-protocol.ts';

export interface MeansSetup {
  env: Environment;
  keys: BrokerKeys;
  db: Database;
  log: AssertionLog;
}

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
