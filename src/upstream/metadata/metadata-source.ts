import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import type { AssertionLog } from '../../audit/assertion-log.ts';
import { metadataRefreshed, metadataRefreshFailed } from '../../audit/audit-events.ts';
import { logger } from '../../log/logger.ts';
import type { MetadataCache } from './metadata-cache.ts';
import { metadataState, metadataUsable, nextRefreshDelay, retryDelay, type MetadataState } from './metadata-schedule.ts';

/** A document as the means' adapter understands it, and how long it may be used. */
export interface ParsedMetadata<T> {
  value: T;
  validUntil?: Date;
  cacheDurationMs?: number;
  /** Non-secret facts for operators (entity id, certificate fingerprints…). */
  summary: Record<string, unknown>;
}

/** The state of one means' metadata, as `/health/metadata` and `brana metadata show` report it. */
export interface MetadataStatus {
  means: string;
  source: string;
  state: MetadataState;
  /** Whether the means can be used now (metadata held and not expired). */
  available: boolean;
  lastRefreshAt: string | null;
  lastAttemptAt: string | null;
  nextRefreshAt: string | null;
  validUntil: string | null;
  error?: string;
}

export type RefreshTrigger = 'start' | 'schedule' | 'operator' | 'cache';

/** The means cannot be used: no metadata, or its metadata has expired. */
export class MetadataUnavailable extends Error {
  readonly means: string;

  constructor(means: string, message: string) {
    super(message);
    this.name = 'MetadataUnavailable';
    this.means = means;
  }
}

export interface MetadataSourceOptions<T> {
  means: string;
  /** Where the document comes from, for operators: a file, a URL, or the embedded development IdP. */
  location: string;
  load: () => Promise<string>;
  parse: (text: string) => ParsedMetadata<T>;
  refreshIntervalMs: number;
  /** The shared copy; none for the embedded development IdPs, whose metadata is made in-process. */
  cache?: MetadataCache;
  /** Where administrative events go (refreshed, refresh failed). */
  log?: AssertionLog;
  clock?: () => number;
  /** What the operator log calls the document (default: identity means metadata; a SAML SeP's SP metadata uses this too). */
  subject?: string;
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

/**
 * One means' metadata (SAML metadata or an OpenID Provider's discovery document), kept current: it
 * is refreshed on its own schedule (cacheDuration, validUntil, the operator's interval), a failed
 * refresh keeps the last good document, and an expired document stops the means. `current()` never
 * waits for the network.
 */
export class MetadataSource<T> {
  readonly means: string;
  readonly location: string;
  private readonly options: MetadataSourceOptions<T>;
  private readonly clock: () => number;
  private held: { parsed: ParsedMetadata<T>; sha256: string } | undefined;
  private version = 0;
  private lastRefreshAt: number | undefined;
  private lastAttemptAt: number | undefined;
  private lastError: string | undefined;
  private nextRefreshAt: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<MetadataStatus> | undefined;
  private stopped = true;
  private readonly subject: string;

  constructor(options: MetadataSourceOptions<T>) {
    this.options = options;
    this.means = options.means;
    this.location = options.location;
    this.clock = options.clock ?? Date.now;
    this.subject = options.subject ?? 'identity means metadata';
  }

  static file(path: string): () => Promise<string> {
    return () => fs.readFile(path, 'utf8');
  }

  /** An https document; redirects are refused (the operator names the exact location). */
  static url(url: string, timeoutMs = 10_000, accept = 'application/samlmetadata+xml, application/xml, text/xml'): () => Promise<string> {
    return async () => {
      const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error', headers: { accept } });
      if (!response.ok) throw new Error(`HTTP ${response.status} from ${url}`);
      const text = await response.text();
      if (text.length > 5 * 1024 * 1024) throw new Error(`the document at ${url} is larger than 5 MB`);
      return text;
    };
  }

  /**
   * Loads the document now. On success it is taken into use (unless it has already expired while a
   * valid one is held); on failure the last good one stays, the failure is recorded, and the error
   * is thrown to the caller.
   */
  refresh(trigger: RefreshTrigger): Promise<MetadataStatus> {
    // One refresh at a time: a timer and an operator asking at once share the attempt.
    this.running ??= this.attempt(trigger).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async attempt(trigger: RefreshTrigger): Promise<MetadataStatus> {
    const now = this.clock();
    this.lastAttemptAt = now;
    let text: string;
    let parsed: ParsedMetadata<T>;
    try {
      text = await this.options.load();
      parsed = this.options.parse(text);
      const validUntil = parsed.validUntil?.getTime();
      if (validUntil !== undefined && validUntil <= now && this.usable()) {
        throw new Error(`the document expired at ${new Date(validUntil).toISOString()} (validUntil); the last good metadata stays in use`);
      }
    } catch (err) {
      await this.recordFailure(trigger, now, (err as Error).message);
      throw err;
    }
    const sha256 = createHash('sha256').update(text).digest('hex');
    const changed = this.held?.sha256 !== sha256;
    this.take(parsed, sha256, now);
    const validUntil = parsed.validUntil?.getTime();
    if (validUntil !== undefined && validUntil <= now) {
      // Nothing better is held: keep it, so that its state (expired) and dates can be reported.
      this.lastError = `the metadata expired at ${new Date(validUntil).toISOString()} (validUntil)`;
      if (changed) logger.error(`${this.subject} has expired: the means is stopped`, { means: this.means, location: this.location, validUntil: iso(validUntil) });
    }
    this.schedule(this.nextRefreshAt! - now);
    logger.info(`${this.subject} loaded`, { means: this.means, location: this.location, trigger, changed, ...parsed.summary });
    if (this.options.cache) {
      await this.options.cache
        .saveGood({ means: this.means, source: this.location, document: text, sha256, fetchedAt: now, ...this.lifetime(), nextRefreshAt: this.nextRefreshAt! })
        .catch((err: unknown) => logger.error('metadata cache write failed', { means: this.means, error: (err as Error).message }));
    }
    if (this.options.log && (trigger === 'operator' || (changed && trigger !== 'start'))) {
      await this.options.log.append(
        metadataRefreshed({ means: this.means, source: this.location, trigger, changed, sha256, validUntil: iso(validUntil), summary: parsed.summary }),
      );
    }
    return this.status();
  }

  private take(parsed: ParsedMetadata<T>, sha256: string, now: number): void {
    if (this.held?.sha256 !== sha256) this.version += 1;
    this.held = { parsed, sha256 };
    this.lastRefreshAt = now;
    this.lastError = undefined;
    this.nextRefreshAt = now + nextRefreshDelay(now, this.lifetime(), this.options.refreshIntervalMs);
  }

  private lifetime(): { validUntil?: number; cacheDurationMs?: number } {
    const parsed = this.held?.parsed;
    return {
      ...(parsed?.validUntil ? { validUntil: parsed.validUntil.getTime() } : {}),
      ...(parsed?.cacheDurationMs !== undefined ? { cacheDurationMs: parsed.cacheDurationMs } : {}),
    };
  }

  private async recordFailure(trigger: RefreshTrigger, now: number, message: string): Promise<void> {
    this.lastError = message;
    this.nextRefreshAt = now + retryDelay(this.options.refreshIntervalMs);
    this.schedule(this.nextRefreshAt - now);
    // With a good document still held the means works on: a warning; with none it is down: an error.
    const keptLastGood = this.usable();
    logger.log(keptLastGood ? 'warn' : 'error', `${this.subject} refresh failed`, { means: this.means, location: this.location, trigger, error: message, keptLastGood });
    await this.options.cache
      ?.recordFailure({ means: this.means, source: this.location, attemptAt: now, error: message, nextRefreshAt: this.nextRefreshAt })
      .catch((err: unknown) => logger.error('metadata cache write failed', { means: this.means, error: (err as Error).message }));
    await this.options.log
      ?.append(metadataRefreshFailed({ means: this.means, source: this.location, trigger, error: message, keptLastGood }))
      .catch((err: unknown) => logger.error('assertion log write failed', { means: this.means, error: (err as Error).message }));
  }

  /**
   * At start, when the source cannot be read: the last good copy from the database, checked again
   * exactly as a fresh document would be. True if one was taken.
   */
  async fallBackToCache(): Promise<boolean> {
    const cached = await this.options.cache?.find(this.means);
    if (!cached?.document || cached.fetchedAt === null) return false;
    return this.adopt(cached.document, cached.fetchedAt, true);
  }

  /** Takes a document another node or the operator refreshed into the shared copy, if it is newer. */
  async adoptFromCache(): Promise<boolean> {
    const cached = await this.options.cache?.find(this.means);
    if (!cached?.document || cached.fetchedAt === null || cached.sha256 === this.held?.sha256) return false;
    if (this.lastRefreshAt !== undefined && cached.fetchedAt <= this.lastRefreshAt) return false;
    return this.adopt(cached.document, cached.fetchedAt, false);
  }

  /**
   * Takes a copy read from the cache. `sourceStillFailing`: this node could not read the source
   * itself, so the state stays failing and the source is tried again soon.
   */
  private adopt(document: string, fetchedAt: number, sourceStillFailing: boolean): boolean {
    const lastError = this.lastError;
    let parsed: ParsedMetadata<T>;
    try {
      parsed = this.options.parse(document);
    } catch (err) {
      logger.warn(`the shared copy of ${this.subject} is not usable`, { means: this.means, error: (err as Error).message });
      return false;
    }
    const validUntil = parsed.validUntil?.getTime();
    if (validUntil !== undefined && validUntil <= this.clock() && this.usable()) return false;
    this.take(parsed, createHash('sha256').update(document).digest('hex'), fetchedAt);
    const now = this.clock();
    this.nextRefreshAt = now + nextRefreshDelay(now, this.lifetime(), this.options.refreshIntervalMs);
    if (sourceStillFailing && lastError !== undefined) {
      this.lastError = lastError;
      this.nextRefreshAt = now + retryDelay(this.options.refreshIntervalMs);
    }
    this.schedule(this.nextRefreshAt - now);
    logger.info(`${this.subject} taken from the shared copy`, { means: this.means, fetchedAt: iso(fetchedAt), ...parsed.summary });
    return true;
  }

  /** Reads and checks a document as a refresh would, without taking it into use. */
  check(text: string): ParsedMetadata<T> {
    return this.options.parse(text);
  }

  /** The metadata in use; throws MetadataUnavailable if there is none or it has expired. */
  current(): T {
    if (!this.held) throw new MetadataUnavailable(this.means, `no metadata for ${this.means} could be loaded from ${this.location}`);
    if (!this.usable()) throw new MetadataUnavailable(this.means, `the metadata of ${this.means} expired at ${this.held.parsed.validUntil!.toISOString()}`);
    return this.held.parsed.value;
  }

  usable(): boolean {
    // Asked on every use of the means (current()): the facts without lifetime()'s spread copies.
    return metadataUsable(this.clock(), { loaded: this.held !== undefined, validUntil: this.held?.parsed.validUntil?.getTime() });
  }

  /** Changes whenever a new document is taken into use, so that derived objects can be rebuilt. */
  currentVersion(): number {
    return this.version;
  }

  /** What the document in use says of itself for operators (entity id, certificates and their expiry), if one is held. */
  summary(): Record<string, unknown> | null {
    return this.held?.parsed.summary ?? null;
  }

  status(): MetadataStatus {
    const now = this.clock();
    const lifetime = this.lifetime();
    const facts = {
      loaded: this.held !== undefined,
      ...lifetime,
      ...(this.lastRefreshAt !== undefined ? { lastRefreshAt: this.lastRefreshAt } : {}),
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
    };
    return {
      means: this.means,
      source: this.location,
      state: metadataState(now, facts, this.options.refreshIntervalMs),
      available: metadataUsable(now, facts),
      lastRefreshAt: iso(this.lastRefreshAt),
      lastAttemptAt: iso(this.lastAttemptAt),
      nextRefreshAt: iso(this.nextRefreshAt),
      validUntil: iso(lifetime.validUntil),
      ...(this.lastError !== undefined ? { error: this.lastError } : {}),
    };
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.refresh('schedule').catch(() => {
        // recorded and logged by the attempt; the next one is already scheduled
      });
    }, Math.max(0, delayMs));
    this.timer.unref();
  }

  /** Starts refreshing on schedule (after the first load). */
  start(): void {
    this.stopped = false;
    if (this.nextRefreshAt !== undefined) this.schedule(this.nextRefreshAt - this.clock());
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
