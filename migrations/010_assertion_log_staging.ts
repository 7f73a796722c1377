import type { Knex } from 'knex';

/**
 * The assertion log stops serialising the cluster (issue 18). On PostgreSQL a step no longer takes
 * one cluster-wide lock to append to the chain inside its own transaction; it writes its record to
 * `assertion_log_staged` — sealed, in the step's transaction, with no lock — and a short sequencing
 * transaction that does no I/O but its own SQL moves staged records into the chain, in batches
 * (src/audit/log-sequencer.ts; docs/AUDIT-LOG.md).
 *
 * `rid` names a record from the moment it is staged: it is part of what the record's hash covers
 * (absent, and so hashed exactly as before, for records written inline), and unique in the chain,
 * so a staged record can be chained once and only once.
 *
 * As migration 005 says, alter the log only by adding columns (SQLite would drop its triggers).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('assertion_log_staged', (t) => {
    t.string('rid', 36).primary();
    t.bigInteger('at').notNullable();
    t.string('event', 40).notNullable();
    t.string('sep_id', 64).nullable();
    t.string('request_id', 200).nullable();
    t.string('means', 40).nullable();
    t.string('pseudonym', 100).nullable();
    t.string('loa', 16).nullable();
    t.string('outcome', 16).notNullable();
    t.string('reason', 80).nullable();
    t.text('detail').notNullable();
    /** HMAC of the rid and the content digest under the audit seal key. */
    t.string('seal', 64).notNullable();
    /** Why the sequencer would not chain this record (a forgery, a replay, too old); null while it waits. */
    t.string('refused', 200).nullable();
    t.index(['at']);
  });
  await knex.schema.alterTable('assertion_log', (t) => {
    t.string('rid', 36).nullable();
  });
  await knex.schema.alterTable('assertion_log', (t) => {
    t.unique(['rid'], { indexName: 'assertion_log_rid_unique' });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('assertion_log_staged');
  await knex.schema.alterTable('assertion_log', (t) => {
    t.dropUnique(['rid'], 'assertion_log_rid_unique');
  });
}
