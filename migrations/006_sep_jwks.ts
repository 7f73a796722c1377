import type { Knex } from 'knex';

/**
 * A SeP's public keys (a JWK Set as JSON), for SePs that authenticate at the token endpoint with
 * private_key_jwt instead of a shared secret. Null for secret-based SePs.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('sep', (t) => {
    t.text('jwks').nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('sep', (t) => {
    t.dropColumn('jwks');
  });
}
