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
}

export async function openAuditTrail(db: Database, keysDir: string, settings: AuditSettings, clock: () => number = Date.now): Promise<AuditTrail> {
  const keys = await loadAuditKeys(keysDir);
  const seal = new RecordSeal(keys.sealKey);
  const log = new AssertionLog(db, { seal, clock });
  const checkpoints = new AuditCheckpoints(db, keys, seal, { everyRecords: settings.checkpointEveryRecords, everyMs: settings.checkpointEverySeconds * 1000 }, clock);
  log.onCommitted((record) => checkpoints.noteAppended(record.seq));
  if (keys.generated) {
    await log.append(auditKeysGenerated({ kid: keys.kid }));
  }
  return { keys, seal, log, checkpoints };
}
