import { createHash } from 'node:crypto';
import type { Knex } from 'knex';

/**
 * The assertion log becomes tamper-evident:
 * - records are numbered without gaps and chained by the digest of their content (migration 001's
 *   records are re-chained once here: they carried no signature, so nothing verifiable is lost);
 * - each record carries a seal (an HMAC under a key only Brána holds), written by the application;
 * - signed checkpoints (`audit_checkpoint`) and purges (`audit_purge`) are kept beside the log;
 * - the database refuses UPDATE and DELETE on all three tables. The one exception is the retention
 *   purge, and it is not a way around the rule but part of it: a record may be deleted only if a
 *   row in `audit_purge` (itself undeletable) allows it, that row can only name a checkpoint, and
 *   the purge must remove the whole prefix up to it. Whoever purges leaves a permanent trace, and
 *   what remains still verifies from the checkpoint on.
 * SeP registrations get the operator's switch for logging attribute values.
 *
 * Note for later migrations: on SQLite, knex rebuilds a table for some alterations (dropping or
 * altering a column), which silently drops its triggers. Alter these tables only by adding columns,
 * or recreate the triggers below afterwards.
 */

const GENESIS = '0'.repeat(64);

function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, item]) => item !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Renumbers the records 1, 2, 3… and chains them as `src/audit/chain.ts` does (version 1). */
async function rechainExistingRecords(knex: Knex): Promise<void> {
  const rows = (await knex('assertion_log').orderBy('seq', 'asc')) as Array<Record<string, unknown> & { seq: number }>;
  let prevHash = GENESIS;
  let position = 0;
  for (const row of rows) {
    position += 1;
    const content = {
      at: Number(row.at),
      event: row.event,
      sep_id: row.sep_id,
      request_id: row.request_id,
      means: row.means,
      pseudonym: row.pseudonym,
      loa: row.loa,
      outcome: row.outcome,
      reason: row.reason,
      detail: row.detail,
    };
    const hash = createHash('sha256').update(prevHash).update('\n').update(sha256(canonicalJson(content))).digest('hex');
    await knex('assertion_log').where({ seq: Number(row.seq) }).update({ seq: position, prev_hash: prevHash, hash });
    prevHash = hash;
  }
}

const SQLITE_TRIGGERS = [
  `CREATE TRIGGER assertion_log_no_update BEFORE UPDATE ON assertion_log
   BEGIN SELECT RAISE(ABORT, 'assertion_log is append-only: UPDATE refused'); END`,
  // Only a purge allowed by audit_purge, and only from the oldest record on (no holes).
  `CREATE TRIGGER assertion_log_purge_only BEFORE DELETE ON assertion_log
   WHEN OLD.seq > COALESCE((SELECT MAX(through_seq) FROM audit_purge), 0)
     OR OLD.seq <> (SELECT MIN(seq) FROM assertion_log)
   BEGIN SELECT RAISE(ABORT, 'assertion_log is append-only: DELETE refused (only a purge up to a checkpoint may remove records)'); END`,
  `CREATE TRIGGER audit_checkpoint_no_update BEFORE UPDATE ON audit_checkpoint
   BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is append-only: UPDATE refused'); END`,
  `CREATE TRIGGER audit_checkpoint_no_delete BEFORE DELETE ON audit_checkpoint
   BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is append-only: DELETE refused'); END`,
  `CREATE TRIGGER audit_purge_no_update BEFORE UPDATE ON audit_purge
   BEGIN SELECT RAISE(ABORT, 'audit_purge is append-only: UPDATE refused'); END`,
  `CREATE TRIGGER audit_purge_no_delete BEFORE DELETE ON audit_purge
   BEGIN SELECT RAISE(ABORT, 'audit_purge is append-only: DELETE refused'); END`,
  `CREATE TRIGGER audit_purge_at_checkpoint BEFORE INSERT ON audit_purge
   WHEN NOT EXISTS (SELECT 1 FROM audit_checkpoint WHERE seq = NEW.through_seq)
     OR NEW.through_seq <= COALESCE((SELECT MAX(through_seq) FROM audit_purge), 0)
   BEGIN SELECT RAISE(ABORT, 'a purge must end at a checkpoint after the previous purge'); END`,
];

const POSTGRES_FUNCTIONS = [
  `CREATE OR REPLACE FUNCTION brana_audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
   END $$`,
  `CREATE OR REPLACE FUNCTION brana_audit_purge_only() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     IF OLD.seq > COALESCE((SELECT MAX(through_seq) FROM audit_purge), 0) THEN
       RAISE EXCEPTION 'assertion_log is append-only: DELETE refused (only a purge up to a checkpoint may remove records)' USING ERRCODE = 'insufficient_privilege';
     END IF;
     RETURN OLD;
   END $$`,
  // After the whole statement: nothing may be left below the purge boundary (no partial purge).
  `CREATE OR REPLACE FUNCTION brana_audit_purge_whole() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     IF EXISTS (SELECT 1 FROM assertion_log WHERE seq <= COALESCE((SELECT MAX(through_seq) FROM audit_purge), 0)) THEN
       RAISE EXCEPTION 'a purge must remove every record up to its checkpoint' USING ERRCODE = 'insufficient_privilege';
     END IF;
     RETURN NULL;
   END $$`,
  `CREATE OR REPLACE FUNCTION brana_audit_purge_at_checkpoint() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     IF NOT EXISTS (SELECT 1 FROM audit_checkpoint WHERE seq = NEW.through_seq)
        OR NEW.through_seq <= COALESCE((SELECT MAX(through_seq) FROM audit_purge), 0) THEN
       RAISE EXCEPTION 'a purge must end at a checkpoint after the previous purge' USING ERRCODE = 'insufficient_privilege';
     END IF;
     RETURN NEW;
   END $$`,
];

const POSTGRES_TRIGGERS = [
  'CREATE TRIGGER assertion_log_no_update BEFORE UPDATE ON assertion_log FOR EACH ROW EXECUTE FUNCTION brana_audit_refuse()',
  'CREATE TRIGGER assertion_log_no_truncate BEFORE TRUNCATE ON assertion_log FOR EACH STATEMENT EXECUTE FUNCTION brana_audit_refuse()',
  'CREATE TRIGGER assertion_log_purge_only BEFORE DELETE ON assertion_log FOR EACH ROW EXECUTE FUNCTION brana_audit_purge_only()',
  'CREATE TRIGGER assertion_log_purge_whole AFTER DELETE ON assertion_log FOR EACH STATEMENT EXECUTE FUNCTION brana_audit_purge_whole()',
  'CREATE TRIGGER audit_checkpoint_append_only BEFORE UPDATE OR DELETE ON audit_checkpoint FOR EACH ROW EXECUTE FUNCTION brana_audit_refuse()',
  'CREATE TRIGGER audit_checkpoint_no_truncate BEFORE TRUNCATE ON audit_checkpoint FOR EACH STATEMENT EXECUTE FUNCTION brana_audit_refuse()',
  'CREATE TRIGGER audit_purge_append_only BEFORE UPDATE OR DELETE ON audit_purge FOR EACH ROW EXECUTE FUNCTION brana_audit_refuse()',
  'CREATE TRIGGER audit_purge_no_truncate BEFORE TRUNCATE ON audit_purge FOR EACH STATEMENT EXECUTE FUNCTION brana_audit_refuse()',
  'CREATE TRIGGER audit_purge_at_checkpoint BEFORE INSERT ON audit_purge FOR EACH ROW EXECUTE FUNCTION brana_audit_purge_at_checkpoint()',
];

const TRIGGER_NAMES = {
  assertion_log: ['assertion_log_no_update', 'assertion_log_no_truncate', 'assertion_log_purge_only', 'assertion_log_purge_whole'],
  audit_checkpoint: ['audit_checkpoint_append_only', 'audit_checkpoint_no_truncate', 'audit_checkpoint_no_update', 'audit_checkpoint_no_delete'],
  audit_purge: ['audit_purge_append_only', 'audit_purge_no_truncate', 'audit_purge_no_update', 'audit_purge_no_delete', 'audit_purge_at_checkpoint'],
};

function isPostgres(knex: Knex): boolean {
  return (knex.client as { driverName?: string }).driverName === 'pg';
}

export async function up(knex: Knex): Promise<void> {
  await rechainExistingRecords(knex);

  await knex.schema.alterTable('assertion_log', (t) => {
    t.string('seal', 64).nullable();
    t.index(['event', 'at']);
    t.index(['pseudonym']);
  });

  await knex.schema.alterTable('sep', (t) => {
    t.boolean('log_attribute_values').notNullable().defaultTo(false);
  });

  await knex.schema.createTable('audit_checkpoint', (t) => {
    // The last record the checkpoint covers; the signed JWS is the authority, the columns an index.
    t.bigInteger('seq').primary();
    t.string('hash', 64).notNullable();
    t.bigInteger('count').notNullable();
    t.bigInteger('at').notNullable();
    t.string('kid', 100).notNullable();
    t.text('jws').notNullable();
  });

  await knex.schema.createTable('audit_purge', (t) => {
    t.increments('id').primary();
    t.bigInteger('through_seq').notNullable().unique();
    t.bigInteger('at').notNullable();
    t.bigInteger('records').notNullable();
    t.string('actor', 100).notNullable();
  });

  if (isPostgres(knex)) {
    for (const statement of [...POSTGRES_FUNCTIONS, ...POSTGRES_TRIGGERS]) await knex.raw(statement);
  } else {
    for (const statement of SQLITE_TRIGGERS) await knex.raw(statement);
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const [table, names] of Object.entries(TRIGGER_NAMES)) {
    for (const name of names) await knex.raw(isPostgres(knex) ? `DROP TRIGGER IF EXISTS ${name} ON ${table}` : `DROP TRIGGER IF EXISTS ${name}`);
  }
  if (isPostgres(knex)) {
    for (const fn of ['brana_audit_refuse', 'brana_audit_purge_only', 'brana_audit_purge_whole', 'brana_audit_purge_at_checkpoint']) await knex.raw(`DROP FUNCTION IF EXISTS ${fn}()`);
  }
  await knex.schema.dropTableIfExists('audit_purge');
  await knex.schema.dropTableIfExists('audit_checkpoint');
  await knex.schema.alterTable('sep', (t) => t.dropColumn('log_attribute_values'));
  await knex.schema.alterTable('assertion_log', (t) => {
    t.dropIndex(['event', 'at']);
    t.dropIndex(['pseudonym']);
    t.dropColumn('seal');
  });
}
