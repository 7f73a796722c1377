import type { AuditSettings } from '../config/environment.ts';
import { loadAuditKeys, type AuditKeys } from '../keys/key-store.ts';
import type { Database } from '../store/database.ts';
import { AssertionLog } from './assertion-log.ts';
import { auditKeysGenerated } from './audit-events.ts';
import { AuditCheckpoints } from './checkpoints.ts';
import { RecordSeal } from './seal.ts';

/** The assertion log with its keys and checkpoints, as every process that writes to it needs them. */
export interface AuditTrail {
  keys: AuditKeys;
  seal: RecordSeal;
  log: AssertionLog;
  checkpoints: AuditCheckpoints;
  /** Background work: chaining staged records, checkpoints on a timer. */
  start(): void;
  /** Chains what this process staged and waits for checkpoints under way (before the database closes). */
  stop(): Promise<void>;
}

export async function openAuditTrail(db: Database, keysDir: string, settings: AuditSettings, clock: () => number = Date.now): Promise<AuditTrail> {
  const keys = await loadAuditKeys(keysDir);
  const seal = new RecordSeal(keys.sealKey);
  const log = new AssertionLog(db, { seal, clock });
  // A checkpoint covers every record committed before it: staged ones are chained first.
  const checkpoints = new AuditCheckpoints(db, keys, seal, { everyRecords: settings.checkpointEveryRecords, everyMs: settings.checkpointEverySeconds * 1000 }, clock, () => log.settled());
  log.onChained((seq) => checkpoints.noteAppended(seq));
  if (keys.generated) {
    await log.append(auditKeysGenerated({ kid: keys.kid }));
  }
  return {
    keys,
    seal,
    log,
    checkpoints,
    start() {
      log.start();
      checkpoints.start();
    },
    async stop() {
      await log.stop();
      await checkpoints.stop();
    },
  };
}
