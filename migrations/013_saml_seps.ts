import type { Knex } from 'knex';

/**
 * SAML 2.0 for SePs (issue 16). A SeP speaks OIDC or SAML (`sep.protocol`); a SAML SeP is the same
 * registration (group, attributes, minimum LoA, environment) with its SP metadata beside it
 * (`sep_saml`: entity id, ACS endpoints, certificates, the document as registered). A SAML login in
 * progress is a `saml_journey` row: the AuthnRequest it answers (its id is unique per SeP, so a
 * replayed request is refused), the ACS the Response goes to (from the metadata only), what was asked,
 * and — once the identity means answered — the person, LoA and means.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('sep', (t) => {
    t.string('protocol', 8).notNullable().defaultTo('oidc');
  });
  await knex.schema.createTable('sep_saml', (t) => {
    t.string('client_id', 64).primary().references('client_id').inTable('sep');
    t.string('entity_id', 1024).notNullable().unique();
    /** The parsed metadata (ACS endpoints, certificates, SLO), as JSON. */
    t.text('service_provider').notNullable();
    t.text('metadata_xml').notNullable();
    t.string('metadata_source', 2000).notNullable();
    t.bigInteger('updated_at').notNullable();
  });
  await knex.schema.createTable('saml_journey', (t) => {
    t.string('uid', 64).primary();
    t.string('sep_id', 64).notNullable();
    t.string('authn_request_id', 256).notNullable();
    t.string('sep_request_id', 40).notNullable();
    t.string('acs_url', 2000).notNullable();
    t.string('relay_state', 1000).nullable();
    t.text('requested_attributes').notNullable();
    t.string('min_loa', 16).nullable();
    t.boolean('force_authn').notNullable();
    t.string('name_id_format', 16).notNullable();
    t.string('stage', 16).notNullable();
    t.string('person_id', 36).nullable();
    t.string('acr', 16).nullable();
    t.string('means', 40).nullable();
    t.bigInteger('authn_instant').nullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('expires_at').notNullable();
    t.unique(['sep_id', 'authn_request_id']);
    t.index(['expires_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('saml_journey');
  await knex.schema.dropTableIfExists('sep_saml');
  await knex.schema.alterTable('sep', (t) => {
    t.dropColumn('protocol');
  });
}
