import path from 'node:path';
import { ConfigurationError } from '../config/configuration-error.ts';
import type { DevelopmentIdentityProvider } from '../devidp/development-identity-provider.ts';
import type { Loa } from '../domain/loa.ts';
import type { IdentityMeans } from '../means/identity-means.ts';
import { qualifyingMeans } from '../interaction/login-requirements.ts';
import type { SamlAdapter } from './saml/saml-adapter.ts';
import type { MetadataSource } from './saml/metadata-source.ts';

export interface RegisteredMeans {
  means: IdentityMeans;
  adapter: SamlAdapter;
  metadata: MetadataSource;
  /** Set when the means is served by the embedded development IdP. */
  development: DevelopmentIdentityProvider | null;
}

/** The identity means Brána offers, each with the adapter that speaks to it. */
export class IdentityMeansRegistry {
  private readonly entries: Map<string, RegisteredMeans>;

  constructor(entries: RegisteredMeans[]) {
    this.entries = new Map(entries.map((entry) => [entry.means.id, entry]));
  }

  list(): IdentityMeans[] {
    return [...this.entries.values()].map((entry) => entry.means);
  }

  ids(): string[] {
    return [...this.entries.keys()];
  }

  get(id: string): RegisteredMeans | undefined {
    return this.entries.get(id);
  }

  qualifying(minimum: Loa, allowedMeans: readonly string[] | null): IdentityMeans[] {
    return qualifyingMeans(this.list(), minimum, allowedMeans);
  }

  developmentProviders(): Map<string, DevelopmentIdentityProvider> {
    return new Map([...this.entries.values()].filter((e) => e.development).map((e) => [e.means.id, e.development!]));
  }

  logoFile(id: string): string | null {
    return this.entries.get(id)?.means.logoFile ?? null;
  }
}

/** Refuses a production start with a means that would fall back to the development IdP. */
export function requireRealMetadata(means: IdentityMeans): never {
  throw new ConfigurationError(means.source, 'saml.metadata', `is required in production mode (the file ${path.basename(means.source)} names no identity provider metadata)`);
}
