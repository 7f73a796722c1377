import { isPostgres, type Database } from '../../src/store/database.ts';

/** Makes the database refuse to store one model of oidc-provider's, as a broken disk would. Returns how to stop. */
export async function refuseModel(db: Database, model: string): Promise<() => Promise<void>> {
  if (isPostgres(db)) {
    await db.raw(`CREATE OR REPLACE FUNCTION test_refuse_model() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.model = '${model}' THEN RAISE EXCEPTION 'simulated write failure'; END IF; RETURN NEW; END $$`);
    await db.raw('CREATE TRIGGER test_refuse_model BEFORE INSERT ON oidc_model FOR EACH ROW EXECUTE FUNCTION test_refuse_model()');
    return async () => void (await db.raw('DROP TRIGGER test_refuse_model ON oidc_model'));
  }
  await db.raw(`CREATE TRIGGER test_refuse_model BEFORE INSERT ON oidc_model WHEN NEW.model = '${model}' BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END`);
  return async () => void (await db.raw('DROP TRIGGER test_refuse_model'));
}
