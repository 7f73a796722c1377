import type { Knex } from 'knex';

/** A SeP chooses how its ID tokens are signed: RS256 (the default, as before) or ES256. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('sep', (t) => {
    t.string('id_token_signed_response_alg', 8).notNullable().defaultTo('RS256');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('sep', (t) => {
    t.dropColumn('id_token_signed_response_alg');
  });
}
