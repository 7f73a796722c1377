import type { Knex } from 'knex';

/** Credentials of the people who operate Brána: administrators and auditors, each role separate. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('operator_credential', (t) => {
    t.increments('id').primary();
    t.string('role', 16).notNullable();
    t.string('name', 100).notNullable();
    t.string('token_hash', 64).notNullable().unique();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('revoked_at').nullable();
    t.index(['name']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('operator_credential');
}
