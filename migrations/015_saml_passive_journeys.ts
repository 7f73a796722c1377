import type { Knex } from 'knex';

/**
 * SAML SePs in the citizen's Brána session (issue 16). A journey remembers whether its AuthnRequest
 * was `IsPassive`: such a journey is answered from the session alone (the browser's session cookie
 * reaches Brána only on the redirect after the SSO endpoint, so the answer waits until then), and
 * never shows the citizen a page.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('saml_journey', (t) => {
    t.boolean('is_passive').notNullable().defaultTo(false);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('saml_journey', (t) => {
    t.dropColumn('is_passive');
  });
}
