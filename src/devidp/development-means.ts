import path from 'node:path';
import { readOrCreateCertifiedKey } from '../keys/key-store.ts';
import type { OidcMeans, SamlMeans } from '../means/identity-means.ts';
import { MetadataSource } from '../upstream/metadata/metadata-source.ts';
import { parseDiscovery, type OpenIdProviderMetadata } from '../upstream/oidc/discovery.ts';
import { OidcAdapter } from '../upstream/oidc/oidc-adapter.ts';
import type { IdpMetadata } from '../upstream/saml/idp-metadata.ts';
import { SamlAdapter } from '../upstream/saml/saml-adapter.ts';
import { parseSamlMetadata } from '../upstream/saml/signed-metadata.ts';
import type { MeansContext, MountedRoutes, RegisteredMeans, UpstreamProtocol } from '../upstream/upstream-protocol.ts';
import { DevelopmentIdentityProvider } from './development-identity-provider.ts';
import { DevelopmentOidcProvider } from './development-oidc-provider.ts';
import { developmentIdentityProviderRoutes } from './routes.ts';
import { readForeignTestCitizens, readTestCitizens } from './test-citizens.ts';

/**
 * The `development` upstream protocol: a means whose file names no real provider is served by an
 * embedded one (a SAML IdP under /dev-idp/<means>, an OpenID Provider under /dev-oidc/<means>)
 * logging in the test citizens. Only the composition root registers it, and only in development
 * mode; production code knows nothing of it.
 */
export class DevelopmentMeans {
  private readonly citizens = readTestCitizens();
  private readonly foreignCitizens = readForeignTestCitizens();
  private readonly samlProviders = new Map<string, DevelopmentIdentityProvider>();
  private readonly oidcProviders = new Map<string, DevelopmentOidcProvider>();
  private readonly trustProxy: boolean;

  constructor(options: { trustProxy: boolean }) {
    this.trustProxy = options.trustProxy;
  }

  readonly protocol: UpstreamProtocol = (means, context) => (means.protocol === 'saml' ? this.saml(means, context) : this.oidc(means, context));

  private async saml(means: SamlMeans, context: MeansContext): Promise<RegisteredMeans> {
    const idpKeys = await readOrCreateCertifiedKey(path.join(context.keysDir, 'dev-idp'), means.id, `Brána development IdP ${means.id}`);
    let adapter: SamlAdapter | undefined;
    const idp = new DevelopmentIdentityProvider({
      means,
      publicUrl: context.publicUrl,
      keys: idpKeys,
      citizens: this.citizens,
      foreignCitizens: this.foreignCitizens,
      serviceProviderMetadata: () => adapter!.serviceProviderMetadata(),
    });
    const metadata = new MetadataSource<IdpMetadata>({
      means: means.id,
      location: `${idp.entityId} (embedded development IdP)`,
      load: async () => idp.metadataXml(),
      parse: (text) => parseSamlMetadata(text, { source: idp.entityId, trustAnchors: [] }),
      refreshIntervalMs: context.refreshIntervalMs,
    });
    await metadata.refresh('start');
    adapter = new SamlAdapter({ means, metadata, keys: context.keys, publicUrl: context.publicUrl });
    this.samlProviders.set(means.id, idp);
    return { means, adapter, metadata, development: idp };
  }

  private async oidc(means: OidcMeans, context: MeansContext): Promise<RegisteredMeans> {
    const opKeys = await readOrCreateCertifiedKey(path.join(context.keysDir, 'dev-idp'), means.id, `Brána development OP ${means.id}`);
    const redirectUri = new URL(`/oidc/${means.id}/callback`, context.publicUrl).href;
    const op = await DevelopmentOidcProvider.create({
      means,
      publicUrl: context.publicUrl,
      keys: opKeys,
      citizens: this.citizens,
      foreignCitizens: this.foreignCitizens,
      redirectUri,
      db: context.db,
      trustProxy: this.trustProxy,
    });
    const metadata = new MetadataSource<OpenIdProviderMetadata>({
      means: means.id,
      location: `${op.issuer} (embedded development OpenID Provider)`,
      load: async () => op.discoveryDocument(),
      parse: (text) => parseDiscovery(text, { source: op.issuer, issuer: op.issuer }),
      refreshIntervalMs: context.refreshIntervalMs,
    });
    await metadata.refresh('start');
    const adapter = new OidcAdapter({
      means,
      issuer: op.issuer,
      clientId: op.clientId,
      clientSecret: op.clientSecret,
      discovery: metadata,
      publicUrl: context.publicUrl,
      stateKey: context.oidcStateKey,
      allowLoopbackHttp: true,
    });
    this.oidcProviders.set(means.id, op);
    return { means, adapter, metadata, development: { entityId: op.issuer } };
  }

  /** The embedded providers' pages, mounted on Brána's site. */
  routes(): MountedRoutes[] {
    const mounted: MountedRoutes[] = [];
    if (this.samlProviders.size) mounted.push({ path: '/dev-idp', router: developmentIdentityProviderRoutes(this.samlProviders) });
    for (const [id, op] of this.oidcProviders) mounted.push({ path: `/dev-oidc/${id}`, router: op.routes() });
    return mounted;
  }
}

