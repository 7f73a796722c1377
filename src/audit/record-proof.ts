import type * as jose from 'jose';
import type { Queryable } from '../store/database.ts';
import { storedRecordOf, type AssertionLogRow, type StoredAuditRecord } from './assertion-log.ts';
import { chainHash, contentDigest, contentOf } from './chain.ts';
import type { RecordSeal } from './seal.ts';
import { storedEntries, verifyChain, type ChainEntry, type VerificationReport } from './verification.ts';

/** A signed checkpoint as a proof names it. */
export interface CheckpointMark {
  seq: number;
  at: number;
  kid: string;
}

/**
 * One record and the evidence for it: its own hash and seal, its links to the records either
 * side, and the verification of the stretch of the chain it lies in — from the signed checkpoint
 * before it (or the start) to the nearest signed checkpoint at or after it (or the newest record,
 * which only the seals protect until the next checkpoint).
 */
export interface RecordProof {
  record: StoredAuditRecord;
  /** The record's content hashes, with the hash before it, to the hash it carries. */
  hashMatches: boolean;
  /** The record carries Brána's seal. */
  sealed: boolean;
  previous: { seq: number; hash: string; linked: boolean } | null;
  next: { seq: number; prevHash: string; linked: boolean } | null;
  anchor: CheckpointMark | null;
  closing: CheckpointMark | null;
  /** The verification of the stretch from `anchor` to `closing`. */
  stretch: VerificationReport;
}

interface CheckpointRow {
  seq: number;
  at: number;
  kid: string;
  jws: string;
}

const markOf = (row: CheckpointRow | undefined): CheckpointMark | null => (row ? { seq: Number(row.seq), at: Number(row.at), kid: row.kid } : null);

export async function proveRecord(db: Queryable, seq: number, publicJwks: { keys: jose.JWK[] }, seal: RecordSeal): Promise<RecordProof | undefined> {
  const row = (await db('assertion_log').where({ seq }).first()) as AssertionLogRow | undefined;
  if (!row) return undefined;
  const [before, after] = (await Promise.all([
    db('assertion_log').where({ seq: seq - 1 }).first('seq', 'hash'),
    db('assertion_log').where({ seq: seq + 1 }).first('seq', 'prev_hash'),
  ])) as [{ seq: number; hash: string } | undefined, { seq: number; prev_hash: string } | undefined];
  const { anchor, closing, report: stretch } = await verifyStretch(db, seq, seq, publicJwks, seal);
  const content = contentOf(row);
  return {
    record: storedRecordOf(row),
    hashMatches: chainHash(row.prev_hash, contentDigest(content)) === row.hash,
    sealed: seal.matches(Number(row.seq), row.hash, row.seal),
    previous: before ? { seq: Number(before.seq), hash: before.hash, linked: before.hash === row.prev_hash } : null,
    next: after ? { seq: Number(after.seq), prevHash: after.prev_hash, linked: after.prev_hash === row.hash } : null,
    anchor,
    closing,
    stretch,
  };
}

/** The verification of a stretch of the chain, and the signed checkpoints it runs between. */
export interface StretchProof {
  anchor: CheckpointMark | null;
  closing: CheckpointMark | null;
  report: VerificationReport;
}

/** How often a long verification says how far it got (records). */
const PROGRESS_EVERY = 1000;

/**
 * Verifies the stretch of the chain that holds the records `low` to `high`: from the signed
 * checkpoint before `low` (or the start of what is kept) to the nearest signed checkpoint at or
 * after `high` (or the newest record), every link, hash and seal, and every checkpoint in it.
 * `progress` is told, every thousand records and at the end of a long one, how many of how many are done.
 */
export async function verifyStretch(
  db: Queryable,
  low: number,
  high: number,
  publicJwks: { keys: jose.JWK[] },
  seal: RecordSeal,
  progress?: (done: number, total: number) => Promise<void> | void,
): Promise<StretchProof> {
  const anchor = (await db('audit_checkpoint').where('seq', '<', low).orderBy('seq', 'desc').first('seq', 'at', 'kid', 'jws')) as CheckpointRow | undefined;
  const closing = (await db('audit_checkpoint').where('seq', '>=', high).orderBy('seq', 'asc').first('seq', 'at', 'kid', 'jws')) as CheckpointRow | undefined;
  const last = (await db('assertion_log').max({ seq: 'seq' }).first()) as { seq: number | null };
  const purge = (await db('audit_purge').max({ through: 'through_seq' }).first()) as { through: number | null } | undefined;
  const from = anchor ? Number(anchor.seq) : 0;
  const to = closing ? Number(closing.seq) : Number(last.seq ?? high);
  const checkpoints = ((await db('audit_checkpoint').where('seq', '>=', from).andWhere('seq', '<=', to).orderBy('seq', 'asc').select('jws')) as Array<{ jws: string }>).map((row) => row.jws);
  async function* counted(): AsyncGenerator<ChainEntry> {
    let done = 0;
    for await (const entry of storedEntries(db, from, to)) {
      yield entry;
      done += 1;
      if (progress && done % PROGRESS_EVERY === 0) await progress(done, to - from);
    }
    if (progress && done >= PROGRESS_EVERY) await progress(done, to - from);
  }
  const report = await verifyChain({
    entries: counted(),
    checkpoints,
    publicJwks,
    seal,
    // From the start of what is kept: a purge must be Brána's own.
    ...(anchor ? {} : { purgedThrough: Number(purge?.through ?? 0) }),
  });
  return { anchor: markOf(anchor), closing: markOf(closing), report };
}
