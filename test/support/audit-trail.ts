import { AssertionLog } from '../../src/audit/assertion-log.ts';
import { openAuditTrail, type AuditTrail } from '../../src/audit/audit-trail.ts';
import { RecordSeal } from '../../src/audit/seal.ts';
import type { AuditSettings } from '../../src/config/environment.ts';
import { loadAuditKeys } from '../../src/keys/key-store.ts';
import type { Database } from '../../src/store/database.ts';
import { SHARED_KEYS } from './test-broker.ts';

let ready: Promise<unknown> | undefined;

/** The test run's audit keys, generated once before any log is opened on them. */
export async function auditKeysDir(): Promise<string> {
  ready ??= loadAuditKeys(SHARED_KEYS);
  await ready;
  return SHARED_KEYS;
}

/** An assertion log on `db` with the test run's keys; checkpoints only when a test asks for them. */
export async function openTestTrail(db: Database, settings: Partial<AuditSettings> = {}, clock?: () => number): Promise<AuditTrail> {
  return openAuditTrail(db, await auditKeysDir(), { checkpointEveryRecords: 1_000_000, checkpointEverySeconds: 0, retentionDays: null, ...settings }, clock);
}

/**
 * Chains what waits in the staging table (PostgreSQL), as a node's sequencer does a moment after a
 * step commits: for tests that read `assertion_log` straight from the table. It waits longer than a
 * read in Brána would for another node's sequencing run to end (a loaded CI machine). `keysDir`: the
 * keys of the broker processes that wrote the records (the test run's own by default).
 */
export async function settleLog(db: Database, keysDir?: string): Promise<void> {
  const keys = await loadAuditKeys(keysDir ?? (await auditKeysDir()));
  await new AssertionLog(db, { seal: new RecordSeal(keys.sealKey), sequencer: { sweepMs: 0 } }).settledWithin(15_000);
}
