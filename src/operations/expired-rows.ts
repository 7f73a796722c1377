import type { ConsoleSessions } from '../access/console-sessions.ts';
import type { AccountSessions } from '../account/account-sessions.ts';
import type { ForeignPersonStore } from '../identity/foreign-person-store.ts';
import { isPostgres, type Database, type Queryable } from '../store/database.ts';
import { removeExpiredModels } from '../store/oidc-model-store.ts';
import type { UpstreamRequestStore } from '../upstream/upstream-request-store.ts';

/** Any constant: one node of a cluster sweeps at a time, the others skip that round. */
const SWEEP_LOCK_KEY = 4_242_008;
const BATCH = 5000;
/** A node whose readiness probe has not written for this long is gone: its heartbeat row goes. */
const HEARTBEAT_KEPT_MS = 24 * 3600 * 1000;

/** The stores whose rows expire (besides oidc-provider's models). */
export interface ExpiringStores {
  requests: UpstreamRequestStore;
  foreignPersons: ForeignPersonStore;
  accountSessions: AccountSessions;
  consoleSessions: ConsoleSessions;
  /** SAML SePs' logins past their time (their request ids are then too old to be replayed anyway). */
  samlJourneys?: { removeExpired(trx: Queryable, now: number, limit: number): Promise<number> };
}

/**
 * Removes the rows nobody can use any more: expired oidc-provider models, assertion ids past their
 * validity, old upstream requests, foreign persons' attributes past their time, closed My account and console sessions, SAML journeys past their time, heartbeats of nodes gone for a day. Works in batches, each in its own short transaction, so that a
 * large backlog (after a busy day, or a node that was down) never meets the statement timeout or
 * holds locks for long. Returns the number of rows removed, or null if another node is sweeping.
 */
export async function sweepExpiredRows(db: Database, stores: ExpiringStores, now = Date.now()): Promise<number | null> {
  let total = 0;
  for (;;) {
    const removed = await db.transaction(async (trx) => {
      if (isPostgres(trx)) {
        const { rows } = (await trx.raw('SELECT pg_try_advisory_xact_lock(?) AS locked', [SWEEP_LOCK_KEY])) as { rows: Array<{ locked: boolean }> };
        if (!rows[0]?.locked) return null;
      }
      const heartbeats = Number(await trx('node_heartbeat').where('at', '<', now - HEARTBEAT_KEPT_MS).delete());
      return (await removeExpiredModels(trx, now, BATCH)) + (await stores.requests.removeExpired(trx, now, BATCH)) + (await stores.foreignPersons.removeExpired(now, trx, BATCH)) + (await stores.accountSessions.removeExpired(now, trx, BATCH)) + (await stores.consoleSessions.removeExpired(now, trx, BATCH)) + ((await stores.samlJourneys?.removeExpired(trx, now, BATCH)) ?? 0) + heartbeats;
    });
    if (removed === null) return total ? total : null;
    total += removed;
    if (removed < BATCH) return total;
  }
}
