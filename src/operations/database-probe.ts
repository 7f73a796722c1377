import os from 'node:os';
import { isPostgres, type Database } from '../store/database.ts';
import { databaseFailureKind, describeDatabaseError, isDatabaseUnavailable, type DatabaseFailureKind } from '../store/database-unavailable.ts';
import { outsideRequests } from '../store/request-writes.ts';
import { CHECK_TIMEOUT_MS, type CheckResult, type ReadinessCheck } from './readiness.ts';

/** The longest the probe waits for its write: under the bound of every readiness check, with room to answer. */
export const DATABASE_PROBE_BOUND_MS = CHECK_TIMEOUT_MS - 500;
/** How long one probe's answer stands for the next /readyz (every load balancer asks every node). */
export const DATABASE_PROBE_CACHE_MS = 1000;

/** Why the node cannot write: a kind of outage, or `database_error` for anything else (a bug, a schema not migrated). */
export type DatabaseProbeFailure = DatabaseFailureKind | 'database_error';

export interface DatabaseProbeOptions {
  /** The request timeout (BRANA_DB_TIMEOUT_MS): the probe never waits longer than a request would. */
  timeoutMs: number;
  boundMs?: number;
  cacheMs?: number;
  /** This node's row in node_heartbeat. */
  node?: string;
  now?: () => number;
}

/** The row a node writes: its host and process, which is unique among the nodes that run at one time. */
export function nodeName(): string {
  return `${os.hostname()}/${process.pid}`.slice(0, 200);
}

type Phase = 'acquire' | 'write';

interface PoolState {
  max: number;
  numUsed(): number;
}

/**
 * The database check of /readyz: can this node write to its database now, within a bound? It takes a
 * connection from the node's own pool (a full pool is `pool_exhausted`) and commits one upsert of
 * its heartbeat row, with short lock and statement timeouts of its own: a lock it cannot get in time
 * is `database_unwritable`, as are a read-only server and a full disk; no answer within the bound is
 * `database_timeout`. The commit is real: a database that answers reads but cannot commit (a stalled
 * disk or synchronous standby) is not ready either.
 *
 * One probe at a time: concurrent /readyz share it, its answer stands for `cacheMs`, and while a
 * probe that ran out of its bound still waits for the database, /readyz answers at once from it
 * without starting another, so a hung database never gathers probes (or connections) behind it.
 */
export function databaseCheck(db: Database, options: DatabaseProbeOptions): ReadinessCheck {
  const boundMs = options.boundMs ?? Math.min(DATABASE_PROBE_BOUND_MS, options.timeoutMs);
  const cacheMs = options.cacheMs ?? DATABASE_PROBE_CACHE_MS;
  const node = options.node ?? nodeName();
  const now = options.now ?? Date.now;
  let phase: Phase = 'acquire';
  let waiting: Promise<unknown> | undefined;
  let answering: Promise<CheckResult> | undefined;
  let last: { at: number; result: CheckResult } | undefined;

  const pool = () => (db.client as { pool?: PoolState }).pool;
  const outOfTime = (why: string): CheckResult => {
    const state = pool();
    const reason: DatabaseProbeFailure = phase === 'acquire' && state && state.numUsed() >= state.max ? 'pool_exhausted' : 'database_timeout';
    const doing = phase === 'acquire' ? 'waiting for a connection' : 'writing';
    return { ok: false, detail: { reason }, error: `${why} (${doing}; ${reason})` };
  };

  const probe = async (): Promise<CheckResult> => {
    const started = now();
    phase = 'acquire';
    const work = outsideRequests(() => writeHeartbeat(db, node, boundMs, (next) => (phase = next)));
    waiting = work.catch(() => undefined).finally(() => (waiting = undefined));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<CheckResult>((resolve) => {
      timer = setTimeout(() => resolve(outOfTime(`no write within ${boundMs} ms`)), boundMs);
    });
    const outcome = work.then(
      (): CheckResult => ({ ok: true, detail: { wroteInMs: now() - started } }),
      (err: unknown): CheckResult => {
        const reason: DatabaseProbeFailure = isDatabaseUnavailable(err) ? databaseFailureKind(err) : 'database_error';
        const described = describeDatabaseError(err);
        return { ok: false, detail: { reason, code: described.databaseCode }, error: described.error };
      },
    );
    try {
      return await Promise.race([outcome, deadline]);
    } finally {
      clearTimeout(timer);
    }
  };

  return () => {
    if (last && now() - last.at < cacheMs) return last.result;
    if (answering) return answering;
    if (waiting) {
      last = { at: now(), result: outOfTime('the last probe still waits for the database') };
      return last.result;
    }
    answering = probe()
      .then((result) => {
        last = { at: now(), result };
        return result;
      })
      .finally(() => (answering = undefined));
    return answering;
  };
}

/** Commits one upsert of the node's heartbeat row, on a connection of the node's pool. */
async function writeHeartbeat(db: Database, node: string, boundMs: number, phase: (next: Phase) => void): Promise<void> {
  const client = db.client as { acquireConnection(): Promise<unknown>; releaseConnection(connection: unknown): Promise<void> };
  const connection = await client.acquireConnection();
  phase('write');
  try {
    await db.transaction(
      async (trx) => {
        if (isPostgres(trx)) {
          // The server gives up first, with a reason: a lock not granted, a write that takes too long.
          await trx.raw("SELECT set_config('lock_timeout', ?, true), set_config('statement_timeout', ?, true)", [String(Math.round(boundMs * 0.6)), String(Math.round(boundMs * 0.9))]);
        }
        await trx('node_heartbeat').insert({ node, at: Date.now() }).onConflict('node').merge(['at']);
      },
      { connection },
    );
  } finally {
    await client.releaseConnection(connection);
  }
}
