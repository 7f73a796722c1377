import type * as jose from 'jose';
import type { Queryable } from '../store/database.ts';
import type { AssertionLogRow } from './assertion-log.ts';
import { chainHash, contentDigest, contentOf, GENESIS, type RecordContent } from './chain.ts';
import { CheckpointInvalid, claimedSeq, readCheckpoint, type Checkpoint } from './checkpoints.ts';
import type { StagedRow } from './log-sequencer.ts';
import type { RecordSeal } from './seal.ts';

/**
 * One position of the chain as a verifier sees it: a whole record, or (in a filtered export) only
 * the digest of a record the export does not show.
 */
export type ChainEntry =
  | { kind: 'record'; seq: number; prevHash: string; hash: string; content: RecordContent; seal?: string | null }
  | { kind: 'stub'; seq: number; digest: string };

export type ProblemKind =
  | 'missing'
  | 'altered'
  | 'out_of_order'
  | 'forged'
  | 'truncated'
  | 'checkpoint_forged'
  | 'checkpoint_mismatch'
  | 'purge_unrecorded'
  /** A row in the staging table that the sequencer would not chain, or that does not carry Brána's staged seal. */
  | 'staged_refused';

export interface Problem {
  seq: number;
  kind: ProblemKind;
  message: string;
}

export interface VerificationReport {
  intact: boolean;
  /** The first bad record (the lowest position with a problem). */
  firstBad: Problem | null;
  problems: Problem[];
  records: number;
  /** Positions an export proves only by digest. */
  digestsOnly: number;
  firstSeq: number | null;
  lastSeq: number | null;
  checkpoints: { valid: number; forged: number };
  /** The last position a valid checkpoint vouches for. */
  coveredThrough: number;
  /** Records after the last valid checkpoint: protected by their seals (if checked), not by a signature. */
  uncovered: number;
  sealsChecked: boolean;
  /**
   * The staging table (PostgreSQL: records committed by their steps and not yet in the chain). Only
   * for a verification of the database; an export carries chained records only.
   */
  staged?: { waiting: number; refused: number };
}

export interface VerificationInput {
  entries: AsyncIterable<ChainEntry> | Iterable<ChainEntry>;
  /** Compact JWS checkpoints (from the database or from an export). */
  checkpoints: readonly string[];
  publicJwks: { keys: jose.JWK[] };
  /** Given where the verifier holds Brána's seal key: then every record must carry Brána's seal. */
  seal?: RecordSeal;
  /**
   * The database's purge boundary: the log may start after it, and then a sealed `audit_purged`
   * record must say so. Exports start at their anchor checkpoint and leave this out.
   */
  purgedThrough?: number;
}

const MAX_PROBLEMS = 1000;
const PAGE = 1000;

/**
 * Walks a chain once and names what is wrong with it, each problem at the position where it shows:
 * a deleted record where the numbering jumps, an altered one where its content no longer matches
 * its hash, a reordered or inserted one where the link to the record before breaks, a forged one
 * where the seal is not Brána's, a truncated tail where a checkpoint vouches for records that are
 * gone, and a forged checkpoint where its signature fails.
 */
export async function verifyChain(input: VerificationInput): Promise<VerificationReport> {
  const problems: Problem[] = [];
  const report = (seq: number, kind: ProblemKind, message: string) => {
    if (problems.length < MAX_PROBLEMS) problems.push({ seq, kind, message });
  };

  const valid = new Map<number, Checkpoint>();
  let forgedCheckpoints = 0;
  for (const jws of input.checkpoints) {
    try {
      const checkpoint = await readCheckpoint(jws, input.publicJwks);
      const other = valid.get(checkpoint.seq);
      if (other && other.hash !== checkpoint.hash) report(checkpoint.seq, 'checkpoint_mismatch', `two validly signed checkpoints disagree about record ${checkpoint.seq}`);
      valid.set(checkpoint.seq, checkpoint);
    } catch (err) {
      if (!(err instanceof CheckpointInvalid)) throw err;
      forgedCheckpoints += 1;
      const seq = claimedSeq(jws) ?? 0;
      report(seq, 'checkpoint_forged', `the checkpoint claiming record ${seq} is not signed with the audit key: ${err.message}`);
    }
  }
  const coveredThrough = Math.max(0, ...valid.keys());

  let expected: number | null = null;
  let running: string | null = null;
  let firstSeq: number | null = null;
  let lastSeq: number | null = null;
  let records = 0;
  let digestsOnly = 0;
  let uncovered = 0;
  const purgeRecords = new Set<number>();

  for await (const entry of input.entries) {
    const seq = entry.seq;
    if (expected === null) {
      firstSeq = seq;
      if (seq === 1) {
        running = GENESIS;
      } else {
        const anchor = valid.get(seq - 1);
        if (anchor) {
          running = anchor.hash;
        } else {
          const below = Math.max(0, ...[...valid.keys()].filter((s) => s < seq));
          report(below + 1, 'missing', `records ${below + 1} to ${seq - 1} are missing (deleted): no checkpoint anchors record ${seq}`);
          running = entry.kind === 'record' ? entry.prevHash : null;
        }
      }
    } else if (seq > expected) {
      report(expected, 'missing', seq - 1 === expected ? `record ${expected} is missing (deleted)` : `records ${expected} to ${seq - 1} are missing (deleted)`);
      running = entry.kind === 'record' ? entry.prevHash : null;
    } else if (seq < expected) {
      report(seq, 'out_of_order', `record ${seq} appears again after record ${expected - 1}`);
      continue;
    }

    if (entry.kind === 'record') {
      records += 1;
      if (chainHash(entry.prevHash, contentDigest(entry.content)) !== entry.hash) {
        report(seq, 'altered', `the content of record ${seq} does not match its hash (altered)`);
      }
      if (running !== null && entry.prevHash !== running) {
        report(seq, 'out_of_order', `record ${seq} does not follow the record before it (a record was inserted, removed or reordered here)`);
      }
      if (input.seal) {
        const sealed = input.seal.matches(seq, entry.hash, entry.seal);
        // An unsealed record can only be one written before sealing existed, vouched for by a checkpoint.
        if (!sealed && !(entry.seal == null && seq <= coveredThrough)) {
          report(seq, 'forged', `record ${seq} does not carry Brána's seal (written without the audit key)`);
        }
      }
      if (entry.content.event === 'audit_purged') {
        try {
          const through = (JSON.parse(entry.content.detail) as { throughSeq?: unknown }).throughSeq;
          if (Number.isSafeInteger(through)) purgeRecords.add(through as number);
        } catch {
          // an unreadable detail is reported as altered above if it was changed
        }
      }
      running = entry.hash;
    } else {
      digestsOnly += 1;
      running = running === null ? null : chainHash(running, entry.digest);
    }

    const checkpoint = valid.get(seq);
    if (checkpoint) {
      if (running !== null && checkpoint.hash !== running) {
        report(seq, 'checkpoint_mismatch', `the chain up to record ${seq} is not the one the checkpoint at ${seq} signed (a record up to here was changed)`);
      }
      if (checkpoint.count !== seq) report(seq, 'checkpoint_mismatch', `the checkpoint at ${seq} counts ${checkpoint.count} records`);
    }
    if (seq > coveredThrough) uncovered += 1;
    lastSeq = seq;
    expected = seq + 1;
  }

  const purgedThrough = input.purgedThrough ?? 0;
  if (lastSeq === null) {
    if (coveredThrough > purgedThrough) report(purgedThrough + 1, 'truncated', `the log is empty but a checkpoint vouches for records up to ${coveredThrough} (truncated)`);
  } else if (coveredThrough > lastSeq) {
    report(lastSeq + 1, 'truncated', `records ${lastSeq + 1} to ${coveredThrough} are missing: the log was truncated after record ${lastSeq}`);
  }
  if (input.purgedThrough !== undefined && firstSeq !== null && firstSeq > 1) {
    if (!purgeRecords.has(firstSeq - 1) || purgedThrough !== firstSeq - 1) {
      report(firstSeq - 1, 'purge_unrecorded', `records up to ${firstSeq - 1} were removed without Brána's record of a purge`);
    }
  }

  problems.sort((a, b) => a.seq - b.seq);
  return {
    intact: problems.length === 0,
    firstBad: problems[0] ?? null,
    problems,
    records,
    digestsOnly,
    firstSeq,
    lastSeq,
    checkpoints: { valid: valid.size, forged: forgedCheckpoints },
    coveredThrough,
    uncovered,
    sealsChecked: Boolean(input.seal),
  };
}

/** The stored log, page by page, as chain entries. */
export async function* storedEntries(db: Queryable, fromSeq = 0, toSeq = Number.MAX_SAFE_INTEGER): AsyncGenerator<ChainEntry & { kind: 'record' }> {
  let after = fromSeq;
  for (;;) {
    const rows = (await db('assertion_log').where('seq', '>', after).andWhere('seq', '<=', toSeq).orderBy('seq', 'asc').limit(PAGE)) as AssertionLogRow[];
    for (const row of rows) {
      yield { kind: 'record', seq: Number(row.seq), prevHash: row.prev_hash, hash: row.hash, content: contentOf(row), seal: row.seal };
    }
    if (rows.length < PAGE) return;
    after = Number(rows[rows.length - 1]!.seq);
  }
}

/**
 * `brana audit verify` on the database: chain, checkpoints, purges, and seals where the key is at
 * hand; then the staging table: records still waiting for the sequencer (normal for a moment; with
 * the key, each must carry Brána's staged seal) and records the sequencer refused (always a problem:
 * a row written there without the key, a replay, or one left waiting for a day).
 */
export async function verifyStoredLog(db: Queryable, publicJwks: { keys: jose.JWK[] }, seal?: RecordSeal): Promise<VerificationReport> {
  const checkpoints = ((await db('audit_checkpoint').orderBy('seq', 'asc').select('jws')) as Array<{ jws: string }>).map((row) => row.jws);
  const purge = (await db('audit_purge').max({ through: 'through_seq' }).first()) as { through: number | null } | undefined;
  const report = await verifyChain({
    entries: storedEntries(db),
    checkpoints,
    publicJwks,
    ...(seal ? { seal } : {}),
    purgedThrough: Number(purge?.through ?? 0),
  });
  const staged = (await db('assertion_log_staged').orderBy('at', 'asc').limit(MAX_PROBLEMS)) as StagedRow[];
  const extra: Problem[] = [];
  let waiting = 0;
  let refused = 0;
  for (const row of staged) {
    if (row.refused !== null) {
      refused += 1;
      extra.push({ seq: 0, kind: 'staged_refused', message: `staged record ${row.rid} was not chained: ${row.refused}` });
    } else {
      waiting += 1;
      if (seal && !seal.matchesStaged(row.rid, contentDigest(contentOf(row)), row.seal)) {
        extra.push({ seq: 0, kind: 'staged_refused', message: `staged record ${row.rid} does not carry Brána's staged seal (written without the audit key, or altered)` });
      }
    }
  }
  const problems = [...extra, ...report.problems].slice(0, MAX_PROBLEMS);
  return { ...report, intact: problems.length === 0, firstBad: problems[0] ?? null, problems, staged: { waiting, refused } };
}
