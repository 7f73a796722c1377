import path from 'node:path';
import { ConfigurationError } from '../config/configuration-error.ts';
import type { Loa } from '../domain/loa.ts';
import type { IdentityMeans } from '../means/identity-means.ts';
import { qualifyingMeans } from '../means/qualifying-means.ts';
import { logger } from '../log/logger.ts';
import type { MetadataStatus } from './metadata/metadata-source.ts';
import { OidcAdapter } from './oidc/oidc-adapter.ts';
import { SamlAdapter } from './saml/saml-adapter.ts';
import type { RegisteredMeans } from './upstream-protocol.ts';

export type { RegisteredMeans } from './upstream-protocol.ts';

/** A SAML means: its ACS and SP metadata are Brána's. */
export interface RegisteredSamlMeans extends RegisteredMeans {
  adapter: SamlAdapter;
}

export interface RegisteredOidcMeans extends RegisteredMeans {
  adapter: OidcAdapter;
}

/** What of a SeP decides which means it may be offered. */
export interface MeansPolicy {
  allowedMeans: readonly string[] | null;
  eidasEnabled: boolean;
}

/** The identity means Brána offers, each with its adapter and the health of its metadata. */
export class IdentityMeansRegistry {
  private readonly entries: Map<string, RegisteredMeans>;
  private poller: NodeJS.Timeout | undefined;

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

  /** A SAML means (for its SP metadata and ACS), undefined for any other. */
  saml(id: string): RegisteredSamlMeans | undefined {
    const entry = this.entries.get(id);
    return entry?.adapter instanceof SamlAdapter ? (entry as RegisteredSamlMeans) : undefined;
  }

  oidc(id: string): RegisteredOidcMeans | undefined {
    const entry = this.entries.get(id);
    return entry?.adapter instanceof OidcAdapter ? (entry as RegisteredOidcMeans) : undefined;
  }

  /**
   * The means that can serve a login by policy: registered for at least the minimum, allowed for the
   * SeP, and cross-border (eIDAS) only for a SeP that enabled foreign eIDs. Whether each is up right
   * now is `available()`.
   */
  qualifying(minimum: Loa, sep: MeansPolicy): IdentityMeans[] {
    return qualifyingMeans(this.list(), minimum, sep.allowedMeans).filter((means) => !means.crossBorder || sep.eidasEnabled);
  }

  /** Whether a means can be used now: its metadata is held and has not expired. */
  available(id: string): boolean {
    return this.entries.get(id)?.metadata.usable() ?? false;
  }

  /** The state of every means' metadata, for `/health/metadata` and readiness. */
  metadataStatus(): MetadataStatus[] {
    return [...this.entries.values()].map((entry) => entry.metadata.status());
  }

  /** Each means' metadata state with what its document says of itself (certificates and their expiry), for the operators' console. */
  metadataDetail(): Array<MetadataStatus & { summary: Record<string, unknown> | null }> {
    return [...this.entries.values()].map((entry) => ({ ...entry.metadata.status(), summary: entry.metadata.summary() }));
  }

  /** Refreshes one means' metadata (or every means') now; failures are reported, not thrown. */
  async refreshMetadata(id?: string): Promise<MetadataStatus[]> {
    const chosen = id ? [this.entries.get(id)].filter((entry): entry is RegisteredMeans => entry !== undefined) : [...this.entries.values()];
    return Promise.all(
      chosen.map(async (entry) => {
        try {
          return await entry.metadata.refresh('operator');
        } catch {
          return entry.metadata.status();
        }
      }),
    );
  }

  logoFile(id: string): string | null {
    return this.entries.get(id)?.means.logoFile ?? null;
  }

  /**
   * Starts each means' refresh schedule, and a poll of the shared copy in the database so that a
   * refresh by the operator (`brana metadata refresh`) or another node reaches this node too.
   */
  start(pollIntervalMs: number): void {
    for (const entry of this.entries.values()) entry.metadata.start();
    this.poller = setInterval(() => void this.adoptSharedCopies(), pollIntervalMs);
    this.poller.unref();
  }

  /** One poll of the shared copies: takes any newer good document into use; returns the means that changed. */
  async adoptSharedCopies(): Promise<string[]> {
    const adopted: string[] = [];
    for (const entry of this.entries.values()) {
      try {
        if (await entry.metadata.adoptFromCache()) adopted.push(entry.means.id);
      } catch (err) {
        logger.error('metadata cache read failed', { means: entry.means.id, error: (err as Error).message });
      }
    }
    return adopted;
  }

  stop(): void {
    clearInterval(this.poller);
    this.poller = undefined;
    for (const entry of this.entries.values()) entry.metadata.stop();
  }
}

/** Refuses a production start with a means that would fall back to a development provider. */
export function requireRealMetadata(means: IdentityMeans): never {
  if (means.protocol === 'oidc') {
    throw new ConfigurationError(means.source, 'oidc.issuer', `is required in production mode (the file ${path.basename(means.source)} names no OpenID Provider)`);
  }
  throw new ConfigurationError(means.source, 'saml.metadata', `is required in production mode (the file ${path.basename(means.source)} names no identity provider metadata)`);
}
