import * as jose from 'jose';
import type { AuditKeys } from '../keys/key-store.ts';
import { logger } from '../log/logger.ts';
import type { Database, Queryable } from '../store/database.ts';
import type { AssertionLogRow } from './assertion-log.ts';
import { chainHash, contentDigest, GENESIS } from './chain.ts';
import type { RecordSeal } from './seal.ts';

/**
 * A checkpoint: Brána's signed statement that the log's chain, from its first record to record
 * `seq`, ends in `hash` and holds `count` records. A compact JWS (ES256) under the dedicated audit
 * key, so anyone with the public key can check it; the database columns beside it only index it.
 */
export interface CheckpointClaims {
  v: 1;
  seq: number;
  hash: string;
  count: number;
  at: number;
}

export interface Checkpoint extends CheckpointClaims {
  kid: string;
  jws: string;
}

export const CHECKPOINT_TYPE = 'brana-audit-checkpoint+jws';

export class CheckpointInvalid extends Error {}

export async function signCheckpoint(claims: CheckpointClaims, keys: Pick<AuditKeys, 'signingKey' | 'kid'>): Promise<string> {
  return new jose.CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
    .setProtectedHeader({ alg: 'ES256', kid: keys.kid, typ: CHECKPOINT_TYPE })
    .sign(keys.signingKey);
}

/** Checks a checkpoint's signature against the audit public keys; returns what it states. */
export async function readCheckpoint(jws: string, publicJwks: { keys: jose.JWK[] }): Promise<Checkpoint> {
  let verified: jose.CompactVerifyResult;
  try {
    verified = await jose.compactVerify(jws, jose.createLocalJWKSet(publicJwks as jose.JSONWebKeySet), { algorithms: ['ES256'] });
  } catch (err) {
    throw new CheckpointInvalid(`signature does not verify with the audit public key (${(err as Error).message})`);
  }
  if (verified.protectedHeader.typ !== CHECKPOINT_TYPE) throw new CheckpointInvalid(`is not a checkpoint (typ ${String(verified.protectedHeader.typ)})`);
  let claims: CheckpointClaims;
  try {
    claims = JSON.parse(new TextDecoder().decode(verified.payload)) as CheckpointClaims;
  } catch {
    throw new CheckpointInvalid('payload is not JSON');
  }
  if (claims.v !== 1 || !Number.isSafeInteger(claims.seq) || claims.seq < 1 || !/^[0-9a-f]{64}$/.test(String(claims.hash)) || !Number.isSafeInteger(claims.count) || !Number.isSafeInteger(claims.at)) {
    throw new CheckpointInvalid('payload is not a version 1 checkpoint');
  }
  return { v: 1, seq: claims.seq, hash: claims.hash, count: claims.count, at: claims.at, kid: String(verified.protectedHeader.kid ?? ''), jws };
}

/** The sequence number a checkpoint claims, read without checking it (to name a forged one). */
export function claimedSeq(jws: string): number | undefined {
  try {
    const claims = JSON.parse(Buffer.from(jws.split('.')[1] ?? '', 'base64url').toString('utf8')) as { seq?: unknown };
    return Number.isSafeInteger(claims.seq) ? (claims.seq as number) : undefined;
  } catch {
    return undefined;
  }
}

/** Brána will not sign a chain it cannot vouch for. */
export class ChainNotVouchable extends Error {
  readonly seq: number;

  constructor(seq: number, problem: string) {
    super(`record ${seq}: ${problem}`);
    this.seq = seq;
  }
}

interface CheckpointRow {
  seq: number;
  hash: string;
  count: number;
  at: number;
  kid: string;
  jws: string;
}

const PAGE = 1000;

export interface CheckpointPolicy {
  /** A checkpoint after this many new records… */
  everyRecords: number;
  /** …and, when there are new records, at least this often (milliseconds; 0 = never by time). */
  everyMs: number;
}

/**
 * Makes and reads checkpoints. Checkpoints are made off the login path, after the records are
 * committed: every `everyRecords` records, on a timer, before an export, and on demand. Before it
 * signs, Brána walks the chain from its last valid checkpoint and checks every link, hash and seal,
 * so a checkpoint never launders a record that Brána did not write.
 */
export class AuditCheckpoints {
  private readonly db: Database;
  private readonly keys: AuditKeys;
  private readonly seal: RecordSeal;
  private readonly policy: CheckpointPolicy;
  private readonly clock: () => number;
  private lastSeq = 0;
  private running: Promise<Checkpoint | undefined> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly verified = new Set<string>();
  private readonly settle: () => Promise<void>;

  constructor(db: Database, keys: AuditKeys, seal: RecordSeal, policy: CheckpointPolicy, clock: () => number = Date.now, settle: () => Promise<void> = async () => undefined) {
    this.db = db;
    this.settle = settle;
    this.keys = keys;
    this.seal = seal;
    this.policy = policy;
    this.clock = clock;
  }

  async list(trx: Queryable = this.db): Promise<Checkpoint[]> {
    const rows = (await trx('audit_checkpoint').orderBy('seq', 'asc')) as CheckpointRow[];
    return rows.map((row) => ({ v: 1, seq: Number(row.seq), hash: row.hash, count: Number(row.count), at: Number(row.at), kid: row.kid, jws: row.jws }));
  }

  /** Whether a stored checkpoint is one Brána signed for the position it is stored at. */
  async isValid(checkpoint: Checkpoint): Promise<boolean> {
    if (this.verified.has(checkpoint.jws)) return true;
    try {
      const read = await readCheckpoint(checkpoint.jws, this.keys.publicJwks);
      if (read.seq !== checkpoint.seq || read.hash !== checkpoint.hash) return false;
    } catch {
      return false;
    }
    this.verified.add(checkpoint.jws);
    return true;
  }

  /** The newest checkpoint whose signature verifies, with every newer (forged) one named. */
  private async latestValid(): Promise<{ valid: Checkpoint | undefined; forged: number[] }> {
    const rows = (await this.db('audit_checkpoint').orderBy('seq', 'desc').limit(20)) as CheckpointRow[];
    const forged: number[] = [];
    for (const row of rows) {
      try {
        const checkpoint = await readCheckpoint(row.jws, this.keys.publicJwks);
        if (checkpoint.seq === Number(row.seq)) return { valid: checkpoint, forged };
      } catch {
        // falls through: a checkpoint Brána did not sign
      }
      forged.push(Number(row.seq));
    }
    return { valid: undefined, forged };
  }

  /**
   * A checkpoint over the newest record, unless the newest one already has one. Throws
   * ChainNotVouchable when a record since the last checkpoint is not as Brána wrote it.
   */
  async make(): Promise<Checkpoint | undefined> {
    await this.settle();
    const head = (await this.db('assertion_log').orderBy('seq', 'desc').first('seq', 'hash')) as { seq: number; hash: string } | undefined;
    if (!head) return undefined;
    const { valid: latest, forged } = await this.latestValid();
    if (forged.length) throw new ChainNotVouchable(forged[forged.length - 1]!, 'a checkpoint in the database was not signed with the audit key');
    if (latest && latest.seq > Number(head.seq)) throw new ChainNotVouchable(Number(head.seq) + 1, `is missing: the log ends before the checkpoint at ${latest.seq} (truncated)`);
    if (latest && latest.seq === Number(head.seq)) {
      this.lastSeq = latest.seq;
      return latest;
    }
    await this.vouchFor(latest, Number(head.seq));
    const claims: CheckpointClaims = { v: 1, seq: Number(head.seq), hash: head.hash, count: Number(head.seq), at: this.clock() };
    const jws = await signCheckpoint(claims, this.keys);
    await this.db('audit_checkpoint').insert({ seq: claims.seq, hash: claims.hash, count: claims.count, at: claims.at, kid: this.keys.kid, jws }).onConflict('seq').ignore();
    this.lastSeq = claims.seq;
    // The operator log keeps a copy outside the database: an anchor that a database edit cannot reach.
    logger.info('assertion log checkpoint', { seq: claims.seq, hash: claims.hash, checkpoint: jws });
    return { ...claims, kid: this.keys.kid, jws };
  }

  /** Walks the chain from the checkpoint (or the start) to `headSeq`, checking links, hashes and seals. */
  private async vouchFor(from: Checkpoint | undefined, headSeq: number): Promise<void> {
    let expected: number;
    let running: string;
    if (from) {
      expected = from.seq + 1;
      running = from.hash;
      const at = (await this.db('assertion_log').where({ seq: from.seq }).first('hash')) as { hash: string } | undefined;
      if (at && at.hash !== from.hash) throw new ChainNotVouchable(from.seq, 'does not match the checkpoint signed over it');
    } else {
      const first = (await this.db('assertion_log').orderBy('seq', 'asc').first('seq')) as { seq: number } | undefined;
      if (first && Number(first.seq) !== 1) throw new ChainNotVouchable(1, 'the log does not start at its first record and no checkpoint anchors it');
      expected = 1;
      running = GENESIS;
    }
    // Records written before sealing existed (a database migrated to 005) may be vouched for once,
    // by the very first checkpoint, and only as a prefix of the log.
    let legacyPrefix = !from;
    while (expected <= headSeq) {
      const rows = (await this.db('assertion_log').where('seq', '>=', expected).andWhere('seq', '<=', headSeq).orderBy('seq', 'asc').limit(PAGE)) as AssertionLogRow[];
      if (!rows.length) throw new ChainNotVouchable(expected, 'is missing');
      for (const row of rows) {
        const seq = Number(row.seq);
        if (seq !== expected) throw new ChainNotVouchable(expected, 'is missing');
        if (row.prev_hash !== running) throw new ChainNotVouchable(seq, 'does not follow the record before it');
        if (chainHash(row.prev_hash, contentDigest(row)) !== row.hash) throw new ChainNotVouchable(seq, 'its content does not match its hash');
        if (row.seal === null && legacyPrefix) {
          logger.warn('vouching for an unsealed record written before sealing existed', { seq });
        } else {
          legacyPrefix = false;
          if (!this.seal.matches(seq, row.hash, row.seal)) throw new ChainNotVouchable(seq, 'its seal is not Brána\'s (written without the audit key)');
        }
        running = row.hash;
        expected = seq + 1;
      }
    }
  }

  /** Notes a committed record; makes a checkpoint in the background every `everyRecords` records. */
  noteAppended(seq: number): void {
    if (this.policy.everyRecords > 0 && seq - this.lastSeq >= this.policy.everyRecords) this.soon();
  }

  /** A checkpoint in the background; failures go to the operator log, never to a login. */
  soon(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.make()
      .catch((err: unknown) => {
        logger.error('assertion log checkpoint refused: run `brana audit verify`', { error: (err as Error).message });
        return undefined;
      })
      .finally(() => {
        this.running = null;
        if (this.again) {
          this.again = false;
          this.soon();
        }
      });
  }

  start(): void {
    if (this.policy.everyMs > 0 && !this.timer) {
      this.timer = setInterval(() => this.soon(), this.policy.everyMs);
      this.timer.unref();
    }
  }

  /** Stops the timer and waits for the checkpoints under way (before the database closes). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    while (this.running) await this.running;
  }
}
