import { createHash } from 'node:crypto';

/**
 * The arithmetic of the assertion log's hash chain, shared by the writer, the verifier and the
 * export. A record's `digest` is SHA-256 over the canonical JSON of its content; its `hash` chains
 * that digest to the record before it. Chaining digests (not whole records) lets an export prove
 * that the records it carries sit in the signed chain while showing only the digests of the others.
 */
export const GENESIS = '0'.repeat(64);

/**
 * JSON with object keys sorted and undefined members left out: one text for one value. Every log
 * record is hashed through it several times, so it appends to one string rather than building an
 * array of entries, a filtered copy and a mapped copy per object.
 */
export function canonicalJson(value: unknown): string {
  return appendCanonical('', value);
}

function appendCanonical(out: string, value: unknown): string {
  if (value === null || typeof value !== 'object') return out + (JSON.stringify(value) ?? 'null');
  // As JSON.stringify does: a Date (or anything with toJSON) stands for what toJSON returns.
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return appendCanonical(out, (value as { toJSON(): unknown }).toJSON());
  if (Array.isArray(value)) {
    out += '[';
    for (let i = 0; i < value.length; i += 1) {
      if (i) out += ',';
      // A hole stays empty, as it did when the elements were mapped and joined.
      if (i in value) out = appendCanonical(out, value[i]);
    }
    return `${out}]`;
  }
  const object = value as Record<string, unknown>;
  // Sorted by UTF-16 code units, as a comparison of the strings themselves orders them.
  const keys = Object.keys(object).sort();
  out += '{';
  let first = true;
  for (const key of keys) {
    const item = object[key];
    if (item === undefined) continue;
    out = appendCanonical(`${out}${first ? '' : ','}${JSON.stringify(key)}:`, item);
    first = false;
  }
  return `${out}}`;
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
