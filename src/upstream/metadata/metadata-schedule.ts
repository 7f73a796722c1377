/**
 * When a means' metadata is refreshed and what state it is in: plain functions of the clock, so the
 * rules are testable without waiting for them.
 */
export type MetadataState = 'fresh' | 'stale' | 'expired' | 'failing';

/** Never refresh more often than this (unless the operator's interval is shorter still). */
export const MIN_REFRESH_DELAY_MS = 30_000;
/** After a failed refresh, try again after at most this long. */
export const MAX_RETRY_DELAY_MS = 5 * 60_000;
/** setTimeout cannot wait longer than 2^31 - 1 ms. */
const MAX_TIMER_MS = 2_147_483_647;

export interface MetadataLifetime {
  /** Epoch ms after which the document must not be used (SAML validUntil). */
  validUntil?: number;
  /** How long the publisher says the document may be cached (SAML cacheDuration). */
  cacheDurationMs?: number;
}

/**
 * The delay until the next refresh after a successful one: the operator's interval, shortened by
 * the document's cacheDuration, and by half the time left before validUntil so that several attempts
 * fit before it expires.
 */
export function nextRefreshDelay(now: number, lifetime: MetadataLifetime, intervalMs: number): number {
  let delay = intervalMs;
  if (lifetime.cacheDurationMs !== undefined) delay = Math.min(delay, lifetime.cacheDurationMs);
  if (lifetime.validUntil !== undefined) delay = Math.min(delay, Math.max(0, (lifetime.validUntil - now) / 2));
  return Math.min(MAX_TIMER_MS, Math.max(Math.min(MIN_REFRESH_DELAY_MS, intervalMs), Math.floor(delay)));
}

/** The delay until another attempt after a failed refresh. */
export function retryDelay(intervalMs: number): number {
  return Math.max(Math.min(MIN_REFRESH_DELAY_MS, intervalMs), Math.min(intervalMs, MAX_RETRY_DELAY_MS));
}

export interface MetadataFacts extends MetadataLifetime {
  /** Whether any metadata is held at all. */
  loaded: boolean;
  lastRefreshAt?: number;
  /** The last attempt failed with this message. */
  lastError?: string;
}

/**
 * expired: the metadata held is past its validUntil: the means is stopped;
 * failing: the last refresh failed; the last good metadata stays in use (if there ever was one);
 * stale: no refresh for longer than the document may be cached;
 * fresh: otherwise.
 */
export function metadataState(now: number, facts: MetadataFacts, intervalMs: number): MetadataState {
  if (!facts.loaded) return 'failing';
  if (facts.validUntil !== undefined && facts.validUntil <= now) return 'expired';
  if (facts.lastError !== undefined) return 'failing';
  const freshFor = Math.min(intervalMs, facts.cacheDurationMs ?? intervalMs);
  const grace = Math.min(MIN_REFRESH_DELAY_MS, intervalMs);
  if (facts.lastRefreshAt !== undefined && facts.lastRefreshAt + freshFor + grace < now) return 'stale';
  return 'fresh';
}

/** Whether a means can be used with what is held: loaded and not past validUntil. */
export function metadataUsable(now: number, facts: MetadataFacts): boolean {
  return facts.loaded && !(facts.validUntil !== undefined && facts.validUntil <= now);
}
