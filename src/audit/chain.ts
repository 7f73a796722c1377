import { createHash } from 'node:crypto';

/**
 * The arithmetic of the assertion log's hash chain, shared by the writer, the verifier and the
 * export. A record's `digest` is SHA-256 over the canonical JSON of its content; its `hash` chains
 * that digest to the record before it. Chaining digests (not whole records) lets an export prove
 * that the records it carries sit in the signed chain while showing only the digests of the others.
 */
export const GENESIS = '0'.repeat(64);

/** JSON with object keys sorted and undefined members left out: one text for one value. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  // As JSON.stringify does: a Date (or anything with toJSON) stands for what toJSON returns.
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return canonicalJson((value as { toJSON(): unknown }).toJSON());
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, item]) => item !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
}

/** What a record's hash covers: everything but its position, its hashes and its seal. */
export interface RecordContent {
  at: number;
  event: string;
  sep_id: string | null;
  request_id: string | null;
  means: string | null;
  pseudonym: string | null;
  loa: string | null;
  outcome: string;
  reason: string | null;
  /** The canonical JSON text of the detail, exactly as stored. */
  detail: string;
  /**
   * The record's name from the moment it was staged (PostgreSQL: src/audit/log-sequencer.ts), so
   * that it is chained once only. Records written straight into the chain have none, and their
   * content — and so their hash — is exactly what it was before staging existed.
   */
  rid?: string | null;
}

export function contentOf(row: RecordContent): RecordContent {
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
    // Left out, not null, when absent: canonicalJson skips undefined members.
    rid: row.rid ?? undefined,
  };
}

export function contentDigest(content: RecordContent): string {
  return createHash('sha256').update(canonicalJson(contentOf(content))).digest('hex');
}

export function chainHash(prevHash: string, digest: string): string {
  return createHash('sha256').update(prevHash).update('\n').update(digest).digest('hex');
}
