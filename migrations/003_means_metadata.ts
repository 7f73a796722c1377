import type { Knex } from 'knex';

/**
 * Identity means (issue 3): the last good metadata of each means and how its refreshes went, shared
 * by every node and by `brana metadata`; and the few attributes of a foreign person (eIDAS) that a
 * login needs, kept only as long as their session can use them.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('means_metadata', (t) => {
    t.string('means', 40).primary();
    t.string('source', 2000).notNullable();
    t.text('document').nullable();
    t.string('sha256', 64).nullable();
    t.bigInteger('fetched_at').nullable();
    t.bigInteger('valid_until').nullable();
    t.bigInteger('cache_duration_ms').nullable();
    t.bigInteger('last_attempt_at').nullable();
    t.string('last_error', 500).nullable();
    t.bigInteger('next_refresh_at').nullable();
    t.bigInteger('updated_at').notNullable();
  });

  await knex.schema.createTable('foreign_person', (t) => {
    t.string('person_id', 36).primary().references('id').inTable('person');
    t.text('attributes').notNullable();
    t.bigInteger('expires_at').notNullable();
    t.index(['expires_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('foreign_person');
  await knex.schema.dropTableIfExists('means_metadata');
}
