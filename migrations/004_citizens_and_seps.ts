import type { Knex } from 'knex';

/**
 * Citizens and SePs (issue 4): what a SeP may register through the API (its key set and ID token
 * encryption, a change waiting for an administrator), the citizen's "My account" sessions and the
 * Citizen-Portal tiles. (A citizen's history is found by pseudonym through migration 005's index.)
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('sep', (t) => {
    t.string('jwks_uri', 2000).nullable();
    t.string('id_token_encrypted_response_alg', 32).nullable();
    t.string('id_token_encrypted_response_enc', 32).nullable();
    // The registration document a SeP asked for and an administrator has not approved yet (JSON).
    t.text('requested_registration').nullable();
  });

  await knex.schema.createTable('account_session', (t) => {
    t.string('id_hash', 64).primary();
    t.string('person_id', 36).nullable().references('id').inTable('person');
    t.string('state', 64).nullable();
    t.string('code_verifier', 128).nullable();
    t.string('means', 40).nullable();
    t.string('loa', 16).nullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('expires_at').notNullable();
    t.index(['expires_at']);
  });

  await knex.schema.createTable('tile', (t) => {
    t.increments('id').primary();
    t.string('sep_id', 64).notNullable().references('client_id').inTable('sep');
    t.string('status', 16).notNullable();
    t.string('name_cs', 100).notNullable();
    t.string('name_en', 100).notNullable();
    t.string('description_cs', 500).notNullable();
    t.string('description_en', 500).notNullable();
    t.string('link_url', 2000).notNullable();
    t.string('portal_url', 2000).notNullable();
    t.binary('logo').notNullable();
    t.string('logo_type', 32).notNullable();
    t.string('logo_sha256', 64).notNullable();
    t.boolean('private_content').notNullable();
    t.boolean('no_further_registration').notNullable();
    t.integer('completed_logins').notNullable();
    t.bigInteger('requested_at').notNullable();
    t.bigInteger('decided_at').nullable();
    t.string('decided_by', 100).nullable();
    t.text('decision_reason').nullable();
    t.index(['status']);
    t.index(['sep_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('tile');
  await knex.schema.dropTableIfExists('account_session');
  await knex.schema.alterTable('sep', (t) => {
    t.dropColumn('requested_registration');
    t.dropColumn('id_token_encrypted_response_enc');
    t.dropColumn('id_token_encrypted_response_alg');
    t.dropColumn('jwks_uri');
  });
}
