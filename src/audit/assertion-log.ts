import { createHash } from 'node:crypto';
import { logger } from '../log/logger.ts';
import { isPostgres, type Database, type Queryable, type Transaction } from '../store/database.ts';
import { applyAuditFilter, type AuditFilter } from './audit-filter.ts';
import { canonicalJson, chainHash, contentDigest, GENESIS, type RecordContent } from './chain.ts';
import type { RecordSeal } from './seal.ts';

/** The fixed list of things that happen to a login or a registration, after Sweden Connect's audit design. */
export const AUDIT_EVENTS = [
  'request_received',
  'request_sent_upstream',
  'response_received',
  'identity_resolved',
  'consent_given',
  'consent_refused',
  'consent_revoked',
  'token_issued',
  'token_revoked',
  'grant_revoked',
  'logout',
  'error',
  'sep_registered',
  'sep_status_changed',
  'sep_changed',
  'metadata_refreshed',
  'metadata_refresh_failed',
  'keys_rotated',
  'operator_added',
  'operator_revoked',
  'audit_queried',
  'audit_exported',
  'audit_purged',
  // SeP onboarding: every change to a registration or a tile is an administrative event.
  'sep_updated',
  'sep_approved',
  'sep_rejected',
  'sep_secret_rotated',
  'sep_initial_token_issued',
  'tile_requested',
  'tile_approved',
  'tile_rejected',
  // The citizen opening My account (Brána's own SeP).
  'account_login',
] as const;
export type AuditEvent = (typeof AUDIT_EVENTS)[number];

export function isAuditEvent(value: unknown): value is AuditEvent {
  return typeof value === 'string' && (AUDIT_EVENTS as readonly string[]).includes(value);
}

export interface AuditRecord {
  event: AuditEvent;
  outcome: 'success' | 'failure';
  sepId?: string | null;
  requestId?: string | null;
  means?: string | null;
  /** The per-SeP pseudonym, never Brána's internal person id. */
  pseudonym?: string | null;
  loa?: string | null;
  reason?: string | null;
  /** Names, hashes and ids; attribute values only where the operator turned value logging on for the SeP. */
  detail?: Record<string, unknown>;
}

export interface StoredAuditRecord extends Required<Omit<AuditRecord, 'detail'>> {
  seq: number;
  at: number;
  detail: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

/** A row of `assertion_log` as the database holds it. */
export interface AssertionLogRow extends RecordContent {
  seq: number;
  prev_hash: string;
  hash: string;
  seal: string | null;
}

// Any constant: serialises appenders across PostgreSQL connections so the chain stays linear.
const CHAIN_LOCK_KEY = 4_242_001;

/** The widths of the keyed columns (migration 001). */
const COLUMN_WIDTHS = { sep_id: 64, request_id: 200, means: 40, pseudonym: 100, loa: 16, reason: 80 } as const;
type KeyedColumn = keyof typeof COLUMN_WIDTHS;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

/**
 * Bounds on what one record may hold, so that one request cannot write more than a few kB to the
 * tamper-evident log (which is kept for years and cannot be pruned of one record): a string longer
 * than `AUDIT_STRING_MAX` keeps its beginning, a marker and the SHA-256 of the whole value (enough to
 * recognise it later, not to flood with it); a detail still longer than `DETAIL_MAX` as JSON is
 * replaced by its beginning and digest.
 */
export const AUDIT_STRING_MAX = 512;
/** Bytes of the detail as stored (UTF-8 JSON), whatever the characters. */
const DETAIL_MAX = 4096;
const ARRAY_MAX = 100;
const KEY_MAX = 200;

function bounded(value: string, max = AUDIT_STRING_MAX): string {
  if (value.length <= max) return value;
  let head = value.slice(0, max);
  if (/[\uD800-\uDBFF]$/.test(head)) head = head.slice(0, -1);
  return `${head}…[truncated: ${value.length} characters, sha256 ${createHash('sha256').update(value).digest('hex')}]`;
}

function boundedDetail(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return bounded(value);
  if (Array.isArray(value)) {
    const kept = value.slice(0, ARRAY_MAX).map((item) => boundedDetail(item, depth + 1));
    return value.length > ARRAY_MAX ? [...kept, `…[truncated: ${value.length} items]`] : kept;
  }
  if (value && typeof value === 'object') {
    if (depth > 8) return '…[truncated: nested too deep]';
    const entries = Object.entries(value as Record<string, unknown>);
    // fromEntries defines own properties, so a key named __proto__ stays a key.
    return Object.fromEntries(entries.slice(0, ARRAY_MAX).map(([key, item]) => [bounded(key, KEY_MAX), boundedDetail(item, depth + 1)]));
  }
  return value;
}

function boundDetail(detail: Record<string, unknown>): Record<string, unknown> {
  const fitted = boundedDetail(detail) as Record<string, unknown>;
  const json = canonicalJson(fitted);
  if (Buffer.byteLength(json) <= DETAIL_MAX) return fitted;
  return { truncated: { characters: json.length, sha256: createHash('sha256').update(json).digest('hex'), head: bounded(json, 512) } };
}

/**
 * A keyed column holds what fits: a value too long for its column, or one PostgreSQL cannot store
 * as text (NUL, a lone surrogate), is kept in `detail.intact` — whole up to `AUDIT_STRING_MAX`
 * characters, bounded beyond — and only a marked, safe prefix goes into the column. The record is
 * written either way: a hostile value must not cost a record.
 */
function fitColumns(record: AuditRecord): { columns: Record<KeyedColumn, string | null>; intact: Record<string, string> } {
  const given: Record<KeyedColumn, string | null> = {
    sep_id: record.sepId ?? null,
    request_id: record.requestId ?? null,
    means: record.means ?? null,
    pseudonym: record.pseudonym ?? null,
    loa: record.loa ?? null,
    reason: record.reason ?? null,
  };
  const intact: Record<string, string> = {};
  for (const column of Object.keys(COLUMN_WIDTHS) as KeyedColumn[]) {
    const value = given[column];
    if (value === null) continue;
    const width = COLUMN_WIDTHS[column];
    if (value.length <= width && !LONE_SURROGATE.test(value) && !value.includes('\0')) continue;
    intact[column] = bounded(value);
    const safe = value.replace(LONE_SURROGATES, '\uFFFD').replaceAll('\0', '\uFFFD');
    let cut = safe.slice(0, width - 1);
    if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
    given[column] = safe.length <= width ? safe : `${cut}…`;
  }
  return { columns: given, intact };
}

export function storedRecordOf(row: AssertionLogRow): StoredAuditRecord {
  return {
    seq: Number(row.seq),
    at: Number(row.at),
    event: row.event as AuditEvent,
    sepId: row.sep_id,
    requestId: row.request_id,
    means: row.means,
    pseudonym: row.pseudonym,
    loa: row.loa,
    outcome: row.outcome as 'success' | 'failure',
    reason: row.reason,
    detail: JSON.parse(row.detail) as Record<string, unknown>,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

/**
 * A record could not be written (the step it belongs to fails with it). The message leaves out the
 * SQL and its values, which the database driver puts into its own: they may hold attribute values.
 */
export class AssertionLogWriteFailed extends Error {
  constructor(event: string, cause: unknown) {
    const native = String((cause as Error)?.message ?? cause);
    super(`the assertion log refused a record (${event}): ${native.slice(native.lastIndexOf(' - ') + 1).replace(/^- /, '').trim()}`);
    this.name = 'AssertionLogWriteFailed';
  }
}

export interface AssertionLogOptions {
  /** Seals every record; records without a valid seal are forgeries to the verifier. */
  seal: RecordSeal;
  /** The clock records are stamped with (tests seed weeks of history through it). */
  clock?: () => number;
}

export interface QueryOptions {
  /** Only records after this sequence number (paging). */
  afterSeq?: number;
  limit?: number;
  order?: 'asc' | 'desc';
}

type CommittedListener = (record: StoredAuditRecord) => void;

/**
 * The assertion log: an append-only, hash-chained, sealed table. Appends take part in the caller's
 * transaction, so a step and its record are written together or not at all. Records are numbered
 * 1, 2, 3… without gaps (a gap is a deleted record).
 */
export class AssertionLog {
  private readonly db: Database;
  private readonly seal: RecordSeal;
  private readonly clock: () => number;
  private readonly listeners: CommittedListener[] = [];
  /** The head of the chain as seen inside each open transaction, so a second append there needs no query. */
  private readonly heads = new WeakMap<Transaction, { seq: number; prevHash: string }>();

  constructor(db: Database, options: AssertionLogOptions) {
    this.db = db;
    this.seal = options.seal;
    this.clock = options.clock ?? Date.now;
  }

  /** Called with each record once its transaction has committed (metrics, checkpoints). */
  onCommitted(listener: CommittedListener): void {
    this.listeners.push(listener);
  }

  async append(record: AuditRecord, trx?: Transaction): Promise<StoredAuditRecord> {
    if (!trx) return this.db.transaction((own) => this.append(record, own));
    if (!(AUDIT_EVENTS as readonly string[]).includes(record.event)) throw new Error(`unknown audit event ${String(record.event)}`);
    let head = this.heads.get(trx);
    if (!head) {
      // The lock is held to the end of the transaction, so the head read under it stays the head.
      if (isPostgres(trx)) await trx.raw('SELECT pg_advisory_xact_lock(?)', [CHAIN_LOCK_KEY]);
      head = await this.head(trx);
    }
    const { seq, prevHash } = head;
    const { columns, intact } = fitColumns(record);
    const detail = boundDetail(Object.keys(intact).length ? { ...(record.detail ?? {}), intact } : (record.detail ?? {}));
    const content: RecordContent = { at: this.clock(), event: record.event, ...columns, outcome: record.outcome, detail: canonicalJson(detail) };
    const hash = chainHash(prevHash, contentDigest(content));
    const row: AssertionLogRow = { seq, ...content, prev_hash: prevHash, hash, seal: this.seal.of(seq, hash) };
    try {
      await trx('assertion_log').insert(row);
    } catch (err) {
      this.heads.delete(trx);
      throw new AssertionLogWriteFailed(record.event, err);
    }
    this.heads.set(trx, { seq: seq + 1, prevHash: hash });
    const stored = storedRecordOf(row);
    if (this.listeners.length) {
      trx.executionPromise.then(
        () => {
          for (const listener of this.listeners) {
            try {
              listener(stored);
            } catch (err) {
              logger.error('assertion log listener failed', { error: (err as Error).message });
            }
          }
        },
        () => undefined,
      );
    }
    return stored;
  }

  async appendMany(records: AuditRecord[], trx: Transaction): Promise<void> {
    for (const record of records) await this.append(record, trx);
  }

  /** Where the next record goes: after the last one, or after the checkpoint the log was purged up to. */
  private async head(trx: Transaction): Promise<{ seq: number; prevHash: string }> {
    const last = (await trx('assertion_log').orderBy('seq', 'desc').first('seq', 'hash')) as { seq: number; hash: string } | undefined;
    if (last) return { seq: Number(last.seq) + 1, prevHash: last.hash };
    const purged = (await trx('audit_purge').orderBy('through_seq', 'desc').first('through_seq')) as { through_seq: number } | undefined;
    if (!purged) return { seq: 1, prevHash: GENESIS };
    const checkpoint = (await trx('audit_checkpoint').where({ seq: purged.through_seq }).first('hash')) as { hash: string };
    return { seq: Number(purged.through_seq) + 1, prevHash: checkpoint.hash };
  }

  async query(filter: AuditFilter = {}, options: QueryOptions = {}, trx: Queryable = this.db): Promise<StoredAuditRecord[]> {
    const query = applyAuditFilter(trx('assertion_log'), filter);
    if (options.afterSeq !== undefined) query.where('seq', options.order === 'desc' ? '<' : '>', options.afterSeq);
    query.orderBy('seq', options.order ?? 'asc');
    if (options.limit !== undefined) query.limit(options.limit);
    return ((await query) as AssertionLogRow[]).map(storedRecordOf);
  }

  /**
   * The newest records of these events among a citizen's pseudonyms (My account). Found through the
   * pseudonym index alone — the numbers and kinds first, then the few rows — so that no query plan
   * can turn it into a backward walk over the whole log in `seq` order (what an ORDER BY … LIMIT
   * over the pseudonym and event indexes becomes on PostgreSQL as the log grows).
   */
  async latestOf(pseudonyms: readonly string[], events: readonly AuditEvent[], limit: number, trx: Queryable = this.db): Promise<StoredAuditRecord[]> {
    if (!pseudonyms.length || !events.length) return [];
    const hits = (await trx('assertion_log').whereIn('pseudonym', [...pseudonyms]).select('seq', 'event')) as Array<{ seq: number | string; event: string }>;
    const wanted = new Set<string>(events);
    const seqs = hits
      .filter((hit) => wanted.has(hit.event))
      .map((hit) => Number(hit.seq))
      .sort((a, b) => b - a)
      .slice(0, limit);
    if (!seqs.length) return [];
    return ((await trx('assertion_log').whereIn('seq', seqs).orderBy('seq', 'desc')) as AssertionLogRow[]).map(storedRecordOf);
  }

  /** How many records match (e.g. a SeP's completed logins: `token_issued`, for its tile). */
  async count(filter: AuditFilter, trx: Queryable = this.db): Promise<number> {
    const [row] = (await applyAuditFilter(trx('assertion_log'), filter).count({ n: '*' })) as Array<{ n: number | string }>;
    return Number(row?.n ?? 0);
  }
}
