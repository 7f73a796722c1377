import { createHash } from 'node:crypto';
import { logger } from '../log/logger.ts';
import type { SepRegistration } from '../sep/sep-registration.ts';
import { SamlSepStore, type SamlServiceProvider } from '../sep/saml-service-provider.ts';
import type { SepStore } from '../sep/sep-store.ts';
import type { Database } from '../store/database.ts';
import { MetadataSource, type MetadataStatus, type ParsedMetadata } from '../upstream/metadata/metadata-source.ts';
import { verifyMetadataSignature } from '../upstream/saml/signed-metadata.ts';
import { fetchSpMetadata, type SpMetadataFetchOptions } from './sp-metadata-source.ts';
import { parseServiceProviderMetadata } from './sp-metadata.ts';

export interface SpMetadataRefreshDependencies {
  db: Database;
  seps: SepStore;
  registration: SepRegistration;
  /** The operator's interval (BRANA_METADATA_REFRESH_SECONDS), shortened by the metadata's cacheDuration and validUntil. */
  refreshIntervalMs: number;
  fetch: SpMetadataFetchOptions;
  /** When set, only metadata signed by one of these certificates is taken, and only what the signature covers. */
  trustAnchors: readonly string[];
  clock?: () => number;
}

/** The actor of the `sep_changed` record a refresh writes. */
export const REFRESH_ACTOR = 'metadata refresh';

/** `cacheDuration` (xs:duration, days to seconds) of the metadata's root, in milliseconds. */
function durationMs(value: string | null): number | undefined {
  const match = value ? /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(value) : null;
  if (!match) return undefined;
  const [, days = '0', hours = '0', minutes = '0', seconds = '0'] = match;
  return ((Number(days) * 24 + Number(hours)) * 60 + Number(minutes)) * 60_000 + Number(seconds) * 1000;
}

/**
 * SP metadata of SAML SePs registered from an https URL, kept current like a means' metadata: each
 * is a `MetadataSource` (its schedule from cacheDuration, validUntil and the operator's interval; a
 * failed refresh keeps the metadata in force and its error; an expired document is not taken), read
 * under the trust anchor when one is configured. A document that differs from the one in force —
 * the same entity ID only — is put in force as `brana sep saml-metadata` does it, with its
 * `sep_changed` record. The metadata in force stays in the database, so a node that cannot reach
 * the SeP goes on with the last good one.
 */
export class SpMetadataRefresher {
  private readonly deps: SpMetadataRefreshDependencies;
  private readonly samlSeps: SamlSepStore;
  private readonly sources = new Map<string, SourceEntry>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;

  constructor(deps: SpMetadataRefreshDependencies) {
    this.deps = deps;
    this.samlSeps = new SamlSepStore(deps.db);
  }

  private parser(url: string, entityId: string): (text: string) => ParsedMetadata<SamlServiceProvider> {
    return (text) => {
      const readable = this.deps.trustAnchors.length ? verifyMetadataSignature(text, url, this.deps.trustAnchors) : text;
      const value = parseServiceProviderMetadata(readable, url, { allowLoopbackHttp: this.deps.fetch.allowLoopback });
      if (value.entityId !== entityId) throw new Error(`${url}: entityID: is ${value.entityId}, the SeP is registered as ${entityId}`);
      const root = /<(?:\w+:)?EntityDescriptor\b[^>]*>/.exec(readable)?.[0] ?? '';
      const validUntil = /\svalidUntil="([^"]+)"/.exec(root)?.[1];
      const cacheDurationMs = durationMs(/\scacheDuration="([^"]+)"/.exec(root)?.[1] ?? null);
      return {
        value,
        ...(validUntil && !Number.isNaN(Date.parse(validUntil)) ? { validUntil: new Date(validUntil) } : {}),
        ...(cacheDurationMs !== undefined ? { cacheDurationMs } : {}),
        summary: { entityId: value.entityId },
      };
    };
  }

  /** The SePs to keep current: SAML, not disabled, registered from an https URL. */
  private async sync(): Promise<void> {
    const seps = (await this.deps.seps.list()).filter((sep) => sep.protocol === 'saml' && sep.status !== 'disabled');
    const wanted = new Set<string>();
    for (const sep of seps) {
      const record = await this.samlSeps.find(sep.clientId);
      if (!record || !record.metadataSource.startsWith('https://')) continue;
      wanted.add(sep.clientId);
      const known = this.sources.get(sep.clientId);
      if (known && known.url === record.metadataSource) continue;
      const url = record.metadataSource;
      const entityId = record.serviceProvider.entityId;
      const entry: SourceEntry = { url, entityId, lastLoaded: undefined, source: undefined as unknown as MetadataSource<SamlServiceProvider> };
      // The source keeps what it parsed; the text it took (refreshes never overlap) is kept here.
      const load = async () => {
        const text = await fetchSpMetadata(url, this.deps.fetch);
        entry.lastLoaded = text;
        return text;
      };
      entry.source = new MetadataSource({ means: `sep:${sep.clientId}`, subject: 'SAML SeP metadata', location: url, load, parse: this.parser(url, entityId), refreshIntervalMs: this.deps.refreshIntervalMs, ...(this.deps.clock ? { clock: this.deps.clock } : {}) });
      this.sources.set(sep.clientId, entry);
    }
    for (const clientId of [...this.sources.keys()]) if (!wanted.has(clientId)) this.sources.delete(clientId);
  }

  /**
   * Refreshes one SeP's metadata now (the operator, or its turn on the schedule); puts a changed
   * document in force. Its status either way; a failure keeps the metadata in force.
   */
  async refresh(clientId: string, trigger: 'schedule' | 'operator' = 'operator'): Promise<MetadataStatus | undefined> {
    if (!this.sources.has(clientId)) await this.sync();
    const entry = this.sources.get(clientId);
    if (!entry) return undefined;
    try {
      await entry.source.refresh(trigger);
    } catch {
      // Kept in the source's status (last error, next attempt); the metadata in force stays.
      return entry.source.status();
    }
    await this.putInForce(clientId, entry);
    return entry.source.status();
  }

  /** A document that differs from the one in force is put in force (an expired one the source did not take). */
  private async putInForce(clientId: string, entry: SourceEntry): Promise<void> {
    const text = entry.lastLoaded;
    if (text === undefined || !entry.source.usable()) return;
    const record = await this.samlSeps.find(clientId);
    if (!record || sha256(record.metadataXml) === sha256(text)) return;
    const changed = await this.deps.registration.replaceSamlMetadata(clientId, { serviceProvider: entry.source.current(), metadata: { xml: text, source: entry.url } }, REFRESH_ACTOR);
    logger.info('SAML SeP metadata refreshed', { sep: clientId, source: entry.url, changed });
  }

  /** Each SeP's refresh state (as `/health/metadata` reports a means'), for operators. */
  status(clientId: string): MetadataStatus | undefined {
    return this.sources.get(clientId)?.source.status();
  }

  /** Looks, every minute at most, which SePs are due and refreshes them. */
  start(tickMs = Math.min(60_000, this.deps.refreshIntervalMs)): void {
    this.stopped = false;
    const tick = async () => {
      try {
        await this.sync();
        const now = (this.deps.clock ?? Date.now)();
        for (const [clientId, { source }] of this.sources) {
          if (this.stopped) break;
          const next = source.status().nextRefreshAt;
          if (next === null || Date.parse(next) <= now) await this.refresh(clientId, 'schedule');
        }
      } catch (err) {
        logger.error('SAML SeP metadata refresh failed', { error: (err as Error).message });
      }
      // A tick still running when the node stopped schedules nothing more.
      if (this.stopped) return;
      this.timer = setTimeout(() => void tick(), tickMs);
      this.timer.unref();
    };
    this.timer = setTimeout(() => void tick(), 0);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

interface SourceEntry {
  source: MetadataSource<SamlServiceProvider>;
  url: string;
  entityId: string;
  lastLoaded: string | undefined;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
