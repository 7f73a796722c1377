import { createHash } from 'node:crypto';
import path from 'node:path';
import type express from 'express';
import type Provider from 'oidc-provider';
import { AssertionLog } from './audit/assertion-log.ts';
import type { Environment } from './config/environment.ts';
import { ConsentStore } from './consent/consent-store.ts';
import { DevelopmentIdentityProvider } from './devidp/development-identity-provider.ts';
import { readTestCitizens, TEST_CITIZENS_FILE } from './devidp/test-citizens.ts';
import { createApp } from './http/app.ts';
import { EmbeddedRegister } from './identity/embedded-register.ts';
import { PersonStore } from './identity/person-store.ts';
import { IdentityResolution } from './identity/resolution.ts';
import { loadBrokerKeys, readOrCreateCertifiedKey, type BrokerKeys } from './keys/key-store.ts';
import { readIdentityMeansFolder } from './means/identity-means.ts';
import { createProvider } from './oidc/provider.ts';
import { Pseudonyms } from './pseudonym/pseudonym.ts';
import { SepStore } from './sep/sep-store.ts';
import { migrate, openDatabase, type Database } from './store/database.ts';
import { IdentityMeansRegistry, requireRealMetadata, type RegisteredMeans } from './upstream/identity-means-registry.ts';
import { MetadataSource } from './upstream/saml/metadata-source.ts';
import { SamlAdapter } from './upstream/saml/saml-adapter.ts';
import { UpstreamRequestStore } from './upstream/upstream-request-store.ts';

/** Everything one Brána node is made of, wired together. */
export interface Broker {
  env: Environment;
  app: express.Express;
  db: Database;
  keys: BrokerKeys;
  provider: Provider;
  registry: IdentityMeansRegistry;
  seps: SepStore;
  log: AssertionLog;
  consents: ConsentStore;
  persons: PersonStore;
  pseudonyms: Pseudonyms;
  requests: UpstreamRequestStore;
  close(): Promise<void>;
}

async function buildRegistry(env: Environment, keys: BrokerKeys, requests: UpstreamRequestStore): Promise<IdentityMeansRegistry> {
  const citizens = env.mode === 'development' ? readTestCitizens() : [];
  const entries: RegisteredMeans[] = [];
  for (const means of readIdentityMeansFolder(env.providersDir)) {
    let metadata: MetadataSource;
    let development: DevelopmentIdentityProvider | null = null;
    const location = means.saml.metadata;
    if (location) {
      metadata = location.startsWith('https://') ? MetadataSource.fromUrl(location, means.saml.entityId ?? undefined) : MetadataSource.fromFile(location, means.saml.entityId ?? undefined);
    } else if (env.mode === 'development') {
      const idpKeys = await readOrCreateCertifiedKey(path.join(env.keysDir, 'dev-idp'), means.id, `Brána development IdP ${means.id}`);
      let adapter: SamlAdapter | undefined;
      development = new DevelopmentIdentityProvider({ means, publicUrl: env.publicUrl, keys: idpKeys, citizens, serviceProviderMetadata: () => adapter!.serviceProviderMetadata() });
      const idp = development;
      metadata = new MetadataSource(`${idp.entityId} (embedded development IdP)`, async () => idp.metadataXml());
      await metadata.refresh();
      adapter = new SamlAdapter({ means, metadata, keys, requests, publicUrl: env.publicUrl });
      entries.push({ means, adapter, metadata, development });
      continue;
    } else {
      requireRealMetadata(means);
    }
    await metadata.refresh();
    entries.push({ means, adapter: new SamlAdapter({ means, metadata, keys, requests, publicUrl: env.publicUrl }), metadata, development });
  }
  return new IdentityMeansRegistry(entries);
}

export async function createBroker(env: Environment): Promise<Broker> {
  const db = openDatabase(env.databaseUrl);
  try {
    await migrate(db);
    const keys = await loadBrokerKeys(env.keysDir, env.publicUrl);
    const requests = new UpstreamRequestStore(db);
    const registry = await buildRegistry(env, keys, requests);
    const seps = new SepStore(db);
    const log = new AssertionLog(db);
    const consents = new ConsentStore(db);
    const persons = new PersonStore(db);
    const pseudonyms = new Pseudonyms(keys.pseudonymSecret);
    const register = EmbeddedRegister.fromFile(process.env.BRANA_POPULATION_REGISTER ? path.resolve(process.env.BRANA_POPULATION_REGISTER) : TEST_CITIZENS_FILE);
    const resolution = new IdentityResolution(register, persons);
    const provider = createProvider({ publicUrl: env.publicUrl, keys, db, seps, persons, register, pseudonyms, consents, log, trustProxy: env.trustProxy });
    const formKey = createHash('sha256').update('brana-forms').update(keys.cookieKeys[0] ?? '').digest();
    const app = createApp({
      provider,
      seps,
      registry,
      requests,
      consents,
      log,
      pseudonyms,
      db,
      resolution,
      publicUrl: env.publicUrl,
      formKey,
      trustProxy: env.trustProxy,
      development: env.mode === 'development',
      rateLimits: env.rateLimits,
    });
    return { env, app, db, keys, provider, registry, seps, log, consents, persons, pseudonyms, requests, close: () => db.destroy() };
  } catch (err) {
    await db.destroy();
    throw err;
  }
}
