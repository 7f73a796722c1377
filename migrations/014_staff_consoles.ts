import type { Knex } from 'knex';

/**
 * The consoles for staff (issue 17). `staff_role`: which person (by the population register's id)
 * holds which role — auditor, administrator, operator — granted and revoked only through the CLI,
 * each change in the assertion log; `name` is how the log names them as the actor of a console
 * action. `console_session`: a console sign-in, in the shape of `account_session` (the same store,
 * `access/sign-in-sessions.ts`): only the hash of the random id in the browser's cookie, first the
 * login in progress (state and PKCE verifier), then the person it opened for.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('staff_role', (t) => {
    t.string('register_id', 100).notNullable();
    t.string('role', 16).notNullable();
    t.string('name', 200).notNullable();
    t.bigInteger('granted_at').notNullable();
    t.string('granted_by', 200).notNullable();
    t.primary(['register_id', 'role']);
  });

  await knex.schema.createTable('console_session', (t) => {
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
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('console_session');
  await knex.schema.dropTableIfExists('staff_role');
}
