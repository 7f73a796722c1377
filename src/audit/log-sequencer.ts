import { logger } from '../log/logger.ts';
import { isPostgres, type Database, type Transaction } from '../store/database.ts';
import { outsideRequests } from '../store/request-writes.ts';
import type { AssertionLogRow } from './assertion-log.ts';
import { chainHash, contentDigest, contentOf, GENESIS, type RecordContent } from './chain.ts';
import type { RecordSeal } from './seal.ts';

/** A record as it waits in `assertion_log_staged` (migration 010). */
export interface StagedRow extends RecordContent {
  rid: string;
  seal: string;
  refused: string | null;
}

export interface SequencerSettings {
  /** Records chained per sequencing transaction. */
  batch: number;
  /**
   * The longest a sequencing transaction may hold the chain (PostgreSQL ends the session of a
   * sequencer that stalls longer: a frozen node, a partition), in milliseconds.
   */
  holdLimitMs: number;
  /** How often a node looks for records no one has chained yet (a node that died after staging, the CLI). */
  sweepMs: number;
}

export const DEFAULT_SEQUENCER_SETTINGS: SequencerSettings = { batch: 200, holdLimitMs: 2000, sweepMs: 1000 };

// Any constant: one sequencer at a time in the cluster, for the span of one short transaction.
const SEQUENCER_LOCK_KEY = 4_242_002;

export interface SequencingRun {
  /** Records moved into the chain. */
  chained: number;
  /** Another node was sequencing: nothing was done. */
  busy: boolean;
  /** The position of the last record chained. */
  lastSeq?: number;
}

/** Where the next record of the chain goes: after the last one, or after the checkpoint the log was purged up to. */
export async function chainHead(trx: Transaction): Promise<{ seq: number; prevHash: string }> {
  const last = (await trx('assertion_log').orderBy('seq', 'desc').first('seq', 'hash')) as { seq: number; hash: string } | undefined;
  if (last) return { seq: Number(last.seq) + 1, prevHash: last.hash };
  const purged = (await trx('audit_purge').orderBy('through_seq', 'desc').first('through_seq')) as { through_seq: number } | undefined;
  if (!purged) return { seq: 1, prevHash: GENESIS };
  const checkpoint = (await trx('audit_checkpoint').where({ seq: purged.through_seq }).first('hash')) as { hash: string };
  return { seq: Number(purged.through_seq) + 1, prevHash: checkpoint.hash };
}

/** When the checkpoint the log was last purged up to was made (records up to it are gone). */
async function purgeBoundaryTime(trx: Transaction): Promise<number | undefined> {
  const purged = (await trx('audit_purge').orderBy('through_seq', 'desc').first('through_seq')) as { through_seq: number } | undefined;
  if (!purged) return undefined;
  const checkpoint = (await trx('audit_checkpoint').where({ seq: purged.through_seq }).first('at')) as { at: number } | undefined;
  return checkpoint ? Number(checkpoint.at) : undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Moves staged records into the hash chain. A step of a login writes its record to the staging
 * table in its own transaction, without any lock, so steps on many nodes commit in parallel; this
 * sequencer then gives the records their positions, in short transactions that read and write only
 * the log's tables — no register, no upstream, no metadata, no waiting on anything but SQL.
 *
 * One sequencer runs at a time in the cluster (a PostgreSQL advisory lock taken with *try*: a node
 * that finds it taken leaves the work to the holder, which takes every record staged so far). A
 * sequencer that stalls while holding it — a frozen node — loses its session after `holdLimitMs`,
 * its transaction rolls back whole, and the next node chains the same records. The staged records
 * never wait for it; only their chaining does.
 *
 * A staged record is chained only if it carries Brána's staged seal over its name and content, is
 * not already in the chain under its name, and is not older than the log's purge boundary (whose
 * records can no longer be checked for its name). Anything else stays in the staging table marked
 * `refused` with the reason, reported by `brana audit verify` — a seal that does not verify only once
 * this process has shown its own key to be Brána's (it verifies the chain's last seal); otherwise the
 * records are left waiting for a node that holds the right key.
 */
export class LogSequencer {
  private readonly db: Database;
  private readonly seal: RecordSeal;
  private readonly settings: SequencerSettings;
  private readonly onChained: (lastSeq: number) => void;
  private tail: Promise<unknown> = Promise.resolve();
  private queuedRun: Promise<void> | null = null;
  private background: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private lastFailure = '';

  constructor(db: Database, seal: RecordSeal, onChained: (lastSeq: number) => void, settings: Partial<SequencerSettings> = {}) {
    this.db = db;
    this.seal = seal;
    this.settings = { ...DEFAULT_SEQUENCER_SETTINGS, ...settings };
    this.onChained = onChained;
  }

  /** One sequencing transaction: up to `batch` staged records into the chain. */
  async runOnce(): Promise<SequencingRun> {
    // Chaining is the log's shared work, not the request that happened to start it: its statements
    // neither count as that request's writes nor stop when that request's database call failed.
    const run = await outsideRequests(() => this.db.transaction(async (trx): Promise<SequencingRun> => {
      if (isPostgres(trx)) {
        const limit = Math.max(100, Math.floor(this.settings.holdLimitMs));
        await trx.raw(`SET LOCAL idle_in_transaction_session_timeout = ${limit}`);
        await trx.raw(`SET LOCAL statement_timeout = ${limit}`);
        const taken = (await trx.raw('SELECT pg_try_advisory_xact_lock(?) AS taken', [SEQUENCER_LOCK_KEY])) as { rows: Array<{ taken: boolean }> };
        if (!taken.rows[0]?.taken) return { chained: 0, busy: true };
      }
      const staged = (await trx('assertion_log_staged').whereNull('refused').orderBy([{ column: 'at' }, { column: 'rid' }]).limit(this.settings.batch)) as StagedRow[];
      if (!staged.length) return { chained: 0, busy: false };
      const known = new Set(((await trx('assertion_log').whereIn('rid', staged.map((row) => row.rid)).select('rid')) as Array<{ rid: string }>).map((row) => row.rid));
      let { seq, prevHash } = await chainHead(trx);
      const purgedAt = await purgeBoundaryTime(trx);
      const rows: AssertionLogRow[] = [];
      const refused: Array<{ rid: string; reason: string }> = [];
      let keyChecked = false;
      for (const row of staged) {
        const content = contentOf(row);
        const digest = contentDigest(content);
        const reason = this.refusalOf(row, digest, known, purgedAt);
        if (reason?.startsWith('forged') && !keyChecked) {
          // A seal that does not verify may mean this process holds the wrong key (a node or a CLI
          // started with another BRANA_KEYS_DIR): then it must not judge anyone's records. The
          // chain's last record tells: its seal verifies with Brána's key.
          keyChecked = true;
          if (!(await this.holdsTheSealKey(trx))) {
            logger.error('assertion log: this process cannot verify the seals of staged records with its audit seal key, nor the seal of the chain\'s last record: check BRANA_KEYS_DIR; records left waiting');
            return { chained: 0, busy: true };
          }
        }
        if (reason) {
          refused.push({ rid: row.rid, reason });
          continue;
        }
        const hash = chainHash(prevHash, digest);
        rows.push({ seq, ...content, rid: row.rid, prev_hash: prevHash, hash, seal: this.seal.of(seq, hash) });
        known.add(row.rid);
        prevHash = hash;
        seq += 1;
      }
      for (let i = 0; i < rows.length; i += 100) await trx('assertion_log').insert(rows.slice(i, i + 100));
      const chainedRids = rows.map((row) => row.rid!);
      for (let i = 0; i < chainedRids.length; i += 500) await trx('assertion_log_staged').whereIn('rid', chainedRids.slice(i, i + 500)).delete();
      for (const { rid, reason } of refused) await trx('assertion_log_staged').where({ rid }).update({ refused: reason });
      if (refused.length) logger.error('assertion log: staged records refused, not chained: run `brana audit verify`', { refused: refused.length, reasons: [...new Set(refused.map((item) => item.reason))] });
      return { chained: rows.length, busy: false, ...(rows.length ? { lastSeq: Number(rows[rows.length - 1]!.seq) } : {}) };
    }));
    if (run.lastSeq !== undefined) this.onChained(run.lastSeq);
    return run;
  }

  /** Whether this process's seal key is the one the chain was sealed with (an empty chain cannot say: no). */
  private async holdsTheSealKey(trx: Transaction): Promise<boolean> {
    const last = (await trx('assertion_log').orderBy('seq', 'desc').first('seq', 'hash', 'seal')) as { seq: number; hash: string; seal: string | null } | undefined;
    return Boolean(last && this.seal.matches(Number(last.seq), last.hash, last.seal));
  }

  private refusalOf(row: StagedRow, digest: string, known: ReadonlySet<string>, purgedAt: number | undefined): string | undefined {
    if (!this.seal.matchesStaged(row.rid, digest, row.seal)) return 'forged: its staged seal is not Brána\'s (written without the audit key, or altered)';
    if (known.has(row.rid)) return 'replayed: a record of this name is already in the chain';
    if (purgedAt !== undefined && Number(row.at) <= purgedAt) return 'stale: older than the records purged from the log, so it cannot be told from a replay';
    return undefined;
  }

  /** Sequencing runs of this process one after the other (other nodes are kept out by the lock). */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.tail.then(work, work);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /**
   * Chains what is staged, unless another node is doing it right now: then it returns at once and
   * leaves the records to that node (or to the next sweep). Never waits for another node.
   */
  chainNow(): Promise<void> {
    // A run queued and not started yet will see every record committed before it starts: join it.
    if (this.queuedRun) return this.queuedRun;
    const run = this.exclusive(async () => {
      this.queuedRun = null;
      for (;;) {
        const result = await this.runOnce();
        if (result.busy || result.chained < this.settings.batch) return;
      }
    });
    this.queuedRun = run;
    return run;
  }

  /** Chains everything staged so far, waiting up to `waitMs` for another node's sequencer to finish (reads). */
  drain(waitMs = this.settings.holdLimitMs + 1000): Promise<void> {
    const until = Date.now() + waitMs;
    return this.exclusive(async () => {
      for (;;) {
        const run = await this.runOnce();
        if (run.busy) {
          if (Date.now() >= until) return;
          await sleep(10);
          continue;
        }
        if (run.chained < this.settings.batch) return;
      }
    });
  }

  /** Chains in the background, soon; failures go to the operator log (the records stay staged). */
  soon(): void {
    const run = this.chainNow()
      .then(() => {
        this.lastFailure = '';
      })
      .catch((err: unknown) => {
        const message = (err as Error).message;
        // One line per kind of failure, not one per login during an outage.
        if (message !== this.lastFailure) logger.warn('assertion log: staged records not chained yet (they wait; the next run takes them)', { error: message });
        this.lastFailure = message;
      });
    this.background = run;
  }

  /** Sweeps for records nobody chained (a node that died after staging, the CLI) every `sweepMs`. */
  start(): void {
    if (this.settings.sweepMs > 0 && !this.timer) {
      this.timer = setInterval(() => this.soon(), this.settings.sweepMs);
      this.timer.unref();
    }
  }

  /** Stops sweeping and chains what this process staged, before the database closes. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.background;
    await this.drain().catch((err: unknown) => logger.warn('assertion log: staged records left for another node to chain', { error: (err as Error).message }));
  }
}
