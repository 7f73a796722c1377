import { createHash } from 'node:crypto';
import { isPostgres, type Database, type Queryable, type Transaction } from '../store/database.ts';

/** The fixed list of things that happen to a login or a registration, after Sweden Connect's audit design. */
export const AUDIT_EVENTS = [
  'request_received',
  'request_sent_upstream',
  'response_received',
  'identity_resolved',
  'consent_given',
  'consent_refused',
  'token_issued',
  'logout',
  'error',
  'sep_registered',
  'sep_status_changed',
  'metadata_refreshed',
  'metadata_refresh_failed',
  'operator_added',
  'operator_revoked',
] as const;
export type AuditEvent = (typeof AUDIT_EVENTS)[number];

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
  /** Names, hashes and ids; never attribute values, tokens or message bodies. */
  detail?: Record<string, unknown>;
}

export interface StoredAuditRecord extends Required<Omit<AuditRecord, 'detail'>> {
  seq: number;
  at: number;
  detail: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

const GENESIS = '0'.repeat(64);
// Any constant: serialises appenders across PostgreSQL connections so the chain stays linear.
const CHAIN_LOCK_KEY = 4_242_001;

function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, item]) => item !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
}

export function recordHash(prevHash: string, row: Record<string, unknown>): string {
  return createHash('sha256').update(prevHash).update('\n').update(canonicalJson(row)).digest('hex');
}

interface Row {
  seq: number;
  at: number;
  event: string;
  sep_id: string | null;
  request_id: string | null;
  means: string | null;
  pseudonym: string | null;
  loa: string | null;
  outcome: string;
  reason: string | null;
  detail: string;
  prev_hash: string;
  hash: string;
}

/** The content of a row that its hash covers: everything but its position and the hashes. */
export function hashedContent(row: Omit<Row, 'seq' | 'prev_hash' | 'hash'>): Record<string, unknown> {
  return {
    at: Number(row.at),
    event: row.event,
    sep_id: row.sep_id,
    request_id: row.request_id,
    means: row.means,
    pseudonym: row.pseudonym,
    loa: row.loa,
    outcome: row.outcome,
    reason: row.reason,
    detail: row.detail,
  };
}

/**
 * The assertion log: an append-only, hash-chained table. Appends take part in the caller's
 * transaction, so a step and its record are written together or not at all.
 */
export class AssertionLog {
  private readonly db: Database;

  constructor(db: Database) {
    this.db = db;
  }

  async append(record: AuditRecord, trx?: Transaction): Promise<void> {
    if (!trx) {
      await this.db.transaction((own) => this.append(record, own));
      return;
    }
    if (isPostgres(trx)) await trx.raw('SELECT pg_advisory_xact_lock(?)', [CHAIN_LOCK_KEY]);
    const last = (await trx('assertion_log').orderBy('seq', 'desc').first('hash')) as { hash: string } | undefined;
    const prevHash = last?.hash ?? GENESIS;
    const content = {
      at: Date.now(),
      event: record.event,
      sep_id: record.sepId ?? null,
      request_id: record.requestId ?? null,
      means: record.means ?? null,
      pseudonym: record.pseudonym ?? null,
      loa: record.loa ?? null,
      outcome: record.outcome,
      reason: record.reason ?? null,
      detail: canonicalJson(record.detail ?? {}),
    };
    await trx('assertion_log').insert({ ...content, prev_hash: prevHash, hash: recordHash(prevHash, content) });
  }

  async appendMany(records: AuditRecord[], trx: Transaction): Promise<void> {
    for (const record of records) await this.append(record, trx);
  }

  async query(filter: { sepId?: string; requestId?: string; event?: AuditEvent; pseudonym?: string } = {}, trx: Queryable = this.db): Promise<StoredAuditRecord[]> {
    const where: Record<string, string> = {};
    if (filter.sepId) where.sep_id = filter.sepId;
    if (filter.requestId) where.request_id = filter.requestId;
    if (filter.event) where.event = filter.event;
    if (filter.pseudonym) where.pseudonym = filter.pseudonym;
    const rows = (await trx('assertion_log').where(where).orderBy('seq', 'asc')) as Row[];
    return rows.map((row) => ({
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
    }));
  }
}
