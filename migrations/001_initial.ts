import type { Knex } from 'knex';

/**
 * The first schema: registered SePs, oidc-provider's state, upstream requests and seen assertions,
 * persons, permanent consents and the assertion log. Times are epoch milliseconds (BIGINT).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('sep', (t) => {
    t.string('client_id', 64).primary();
    t.string('client_secret', 128).nullable();
    t.string('status', 16).notNullable();
    t.string('environment', 16).notNullable();
    t.string('name_cs', 200).notNullable();
    t.string('name_en', 200).notNullable();
    t.string('organisation_id', 8).notNullable();
    t.string('organisation_name', 200).notNullable();
    t.text('description').notNullable();
    t.string('info_url', 2000).notNullable();
    t.string('sep_group', 100).notNullable();
    t.string('sp_type', 8).notNullable();
    t.text('legal_basis').nullable();
    t.string('min_loa', 16).notNullable();
    t.text('allowed_attributes').notNullable();
    t.text('allowed_means').nullable();
    t.boolean('eidas_enabled').notNullable();
    t.text('redirect_uris').notNullable();
    t.text('post_logout_redirect_uris').notNullable();
    t.string('token_endpoint_auth_method', 32).notNullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
    t.index(['sep_group']);
  });

  await knex.schema.createTable('oidc_model', (t) => {
    t.string('model', 40).notNullable();
    t.string('id', 200).notNullable();
    t.text('payload').notNullable();
    t.string('grant_id', 200).nullable();
    t.string('uid', 200).nullable();
    t.string('user_code', 200).nullable();
    t.bigInteger('expires_at').nullable();
    t.bigInteger('consumed_at').nullable();
    t.primary(['model', 'id']);
    t.index(['grant_id']);
    t.index(['model', 'uid']);
    t.index(['expires_at']);
  });

  await knex.schema.createTable('person', (t) => {
    t.string('id', 36).primary();
    t.string('register_id', 100).notNullable().unique();
    t.bigInteger('created_at').notNullable();
  });

  await knex.schema.createTable('upstream_request', (t) => {
    t.string('request_id', 100).primary();
    t.string('means', 40).notNullable();
    t.string('interaction_uid', 100).notNullable();
    t.string('sep_id', 64).notNullable();
    t.string('sep_request_id', 40).nullable();
    t.string('min_loa', 16).notNullable();
    t.boolean('force_authn').notNullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('expires_at').notNullable();
    t.bigInteger('consumed_at').nullable();
    t.string('outcome', 16).nullable();
    t.string('person_id', 36).nullable().references('id').inTable('person');
    t.string('acr', 80).nullable();
    t.bigInteger('authn_instant').nullable();
    t.index(['interaction_uid']);
    t.index(['expires_at']);
  });

  await knex.schema.createTable('upstream_assertion', (t) => {
    t.string('means', 40).notNullable();
    t.string('assertion_id', 200).notNullable();
    t.bigInteger('expires_at').notNullable();
    t.primary(['means', 'assertion_id']);
    t.index(['expires_at']);
  });

  await knex.schema.createTable('consent', (t) => {
    t.increments('id').primary();
    t.string('person_id', 36).notNullable().references('id').inTable('person');
    t.string('sep_id', 64).notNullable();
    t.text('attributes').notNullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('revoked_at').nullable();
    t.index(['person_id', 'sep_id']);
  });

  await knex.schema.createTable('assertion_log', (t) => {
    t.bigIncrements('seq').primary();
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
    t.string('prev_hash', 64).notNullable();
    t.string('hash', 64).notNullable();
    t.index(['sep_id', 'request_id']);
    t.index(['at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['assertion_log', 'consent', 'upstream_assertion', 'upstream_request', 'person', 'oidc_model', 'sep']) {
    await knex.schema.dropTableIfExists(table);
  }
}
