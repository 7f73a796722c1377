import type { Knex } from 'knex';

/**
 * How many registrations an initial access token may still make (issue 13): a token is handed to
 * one organisation for one registration by default, and each registration consumes one use
 * atomically. Keyed by the SHA-256 of the token's id, as the assertion log names it. A token issued
 * before this migration has no row and registers nothing: issue a new one.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('initial_access_token_use', (t) => {
    t.string('token_sha256', 64).primary();
    t.integer('uses_left').notNullable();
    t.integer('uses').notNullable();
    t.bigInteger('expires_at').notNullable();
    t.index(['expires_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('initial_access_token_use');
}
