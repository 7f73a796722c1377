import { isPostgres, type Database } from '../../src/store/database.ts';

/**
 * Makes the database refuse one kind of log record, as a full disk or a broken trigger would refuse
 * the write: on the table a step writes its record to (PostgreSQL stages it, SQLite chains it at
 * once). Returns how to stop refusing.
 */
export async function refuseLogRecords(db: Database, event: string): Promise<() => Promise<void>> {
  if (isPostgres(db)) {
    await db.raw(`CREATE OR REPLACE FUNCTION test_refuse_${event}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.event = '${event}' THEN RAISE EXCEPTION 'simulated log failure'; END IF; RETURN NEW; END $$`);
    await db.raw(`CREATE TRIGGER test_refuse_${event} BEFORE INSERT ON assertion_log_staged FOR EACH ROW EXECUTE FUNCTION test_refuse_${event}()`);
    return async () => void (await db.raw(`DROP TRIGGER test_refuse_${event} ON assertion_log_staged`));
  }
  await db.raw(`CREATE TRIGGER test_refuse_${event} BEFORE INSERT ON assertion_log WHEN NEW.event = '${event}' BEGIN SELECT RAISE(ABORT, 'simulated log failure'); END`);
  return async () => void (await db.raw(`DROP TRIGGER test_refuse_${event}`));
}
