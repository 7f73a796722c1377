import type { Knex } from 'knex';

/**
 * OpenID Connect Front-Channel Logout 1.0 for OIDC SePs (issue 16): the URL a SeP registers
 * (`frontchannel_logout_uri`) that Brána loads in a hidden frame, with `iss` and `sid`, when the
 * citizen's Brána session ends — by a logout at Brána or a SAML SeP's single logout.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('sep', (t) => {
    t.string('frontchannel_logout_uri', 2000).nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('sep', (t) => {
    t.dropColumn('frontchannel_logout_uri');
  });
}
