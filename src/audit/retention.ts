import type { Database } from '../store/database.ts';
import { auditPurged } from './audit-events.ts';
import type { AuditTrail } from './audit-trail.ts';
import { storedEntries, verifyChain } from './verification.ts';

export interface PurgeResult {
  /** The checkpoint the log was purged up to (inclusive). */
  throughSeq: number;
  records: number;
}

/** A purge Brána will not make; the message says why. */
export class PurgeRefused extends Error {}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The retention purge: removes every record up to the newest checkpoint signed before the cutoff
 * (so every record it removes is older than the retention period), and never part of a stretch.
 * It checks that stretch against its checkpoints first, because a purge must not destroy the
 * evidence of tampering, and writes the permit, the deletion and its own sealed `audit_purged`
 * record in one transaction. The database's triggers allow the deletion only with that permit.
 */
export async function purgeOlderThan(db: Database, trail: AuditTrail, retentionDays: number, actor: string, now = Date.now()): Promise<PurgeResult | null> {
  const cutoff = now - retentionDays * DAY_MS;
  const previous = Number(((await db('audit_purge').max({ through: 'through_seq' }).first()) as { through: number | null } | undefined)?.through ?? 0);
  const candidates = (await trail.checkpoints.list()).filter((checkpoint) => checkpoint.at < cutoff && checkpoint.seq > previous).reverse();
  let boundary;
  for (const candidate of candidates) {
    if (await trail.checkpoints.isValid(candidate)) {
      boundary = candidate;
      break;
    }
  }
  if (!boundary) return null;

  const checkpoints = (await trail.checkpoints.list()).filter((checkpoint) => checkpoint.seq <= boundary.seq).map((checkpoint) => checkpoint.jws);
  const report = await verifyChain({ entries: storedEntries(db, previous, boundary.seq), checkpoints, publicJwks: trail.keys.publicJwks, seal: trail.seal });
  if (!report.intact || report.lastSeq !== boundary.seq) {
    const first = report.firstBad;
    throw new PurgeRefused(first ? `the records to be purged fail verification at record ${first.seq} (${first.kind}): ${first.message}` : `the records up to ${boundary.seq} are not all present`);
  }

  const result = await db.transaction(async (trx) => {
    const records = Number(((await trx('assertion_log').where('seq', '<=', boundary.seq).count({ n: '*' }).first()) as { n: number | string }).n);
    await trx('audit_purge').insert({ through_seq: boundary.seq, at: now, records, actor });
    await trx('assertion_log').where('seq', '<=', boundary.seq).delete();
    await trail.log.append(
      auditPurged({ actor, throughSeq: boundary.seq, records, checkpointAt: new Date(boundary.at).toISOString(), retentionDays, cutoff: new Date(cutoff).toISOString() }),
      trx,
    );
    return { throughSeq: boundary.seq, records };
  });
  // Until its audit_purged record is in the chain, the log starts after a purge nothing in it
  // explains (a verifier reports purge_unrecorded): chain it before saying the purge is done.
  await trail.log.settled();
  return result;
}
