import type { Database } from '../../store/database.ts';

/** What the database holds about one means' metadata: the last good document and the last attempt. */
export interface CachedMetadata {
  means: string;
  source: string;
  document: string | null;
  sha256: string | null;
  fetchedAt: number | null;
  validUntil: number | null;
  cacheDurationMs: number | null;
  lastAttemptAt: number | null;
  lastError: string | null;
  nextRefreshAt: number | null;
}

interface Row {
  means: string;
  source: string;
  document: string | null;
  sha256: string | null;
  fetched_at: number | null;
  valid_until: number | null;
  cache_duration_ms: number | null;
  last_attempt_at: number | null;
  last_error: string | null;
  next_refresh_at: number | null;
}

const number = (value: number | null) => (value === null ? null : Number(value));

function fromRow(row: Row): CachedMetadata {
  return {
    means: row.means,
    source: row.source,
    document: row.document,
    sha256: row.sha256,
    fetchedAt: number(row.fetched_at),
    validUntil: number(row.valid_until),
    cacheDurationMs: number(row.cache_duration_ms),
    lastAttemptAt: number(row.last_attempt_at),
    lastError: row.last_error,
    nextRefreshAt: number(row.next_refresh_at),
  };
}

/**
 * The metadata cache (`means_metadata`): a node that cannot reach a means' metadata at start uses the
 * last good copy, every node adopts a copy refreshed by the operator (`brana metadata refresh`), and
 * the CLI shows what the nodes last saw. The only module that touches the table.
 */
export class MetadataCache {
  private readonly db: Database;

  constructor(db: Database) {
    this.db = db;
  }

  async find(means: string): Promise<CachedMetadata | undefined> {
    const row = (await this.db('means_metadata').where({ means }).first()) as Row | undefined;
    return row ? fromRow(row) : undefined;
  }

  async list(): Promise<CachedMetadata[]> {
    return ((await this.db('means_metadata').orderBy('means')) as Row[]).map(fromRow);
  }

  /** A good document was taken into use: it becomes the copy every node may fall back on. */
  async saveGood(entry: { means: string; source: string; document: string; sha256: string; fetchedAt: number; validUntil?: number; cacheDurationMs?: number; nextRefreshAt: number }): Promise<void> {
    const row = {
      means: entry.means,
      source: entry.source,
      document: entry.document,
      sha256: entry.sha256,
      fetched_at: entry.fetchedAt,
      valid_until: entry.validUntil ?? null,
      cache_duration_ms: entry.cacheDurationMs ?? null,
      last_attempt_at: entry.fetchedAt,
      last_error: null,
      next_refresh_at: entry.nextRefreshAt,
      updated_at: Date.now(),
    };
    await this.db('means_metadata').insert(row).onConflict('means').merge();
  }

  /** A refresh failed: the last good copy stays; the failure is recorded for `brana metadata show`. */
  async recordFailure(entry: { means: string; source: string; attemptAt: number; error: string; nextRefreshAt: number }): Promise<void> {
    const values = { last_attempt_at: entry.attemptAt, last_error: entry.error.slice(0, 500), next_refresh_at: entry.nextRefreshAt, updated_at: Date.now() };
    await this.db('means_metadata')
      .insert({ means: entry.means, source: entry.source, ...values })
      .onConflict('means')
      .merge(['last_attempt_at', 'last_error', 'next_refresh_at', 'updated_at']);
  }
}
