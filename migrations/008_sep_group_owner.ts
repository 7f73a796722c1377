import type { Knex } from 'knex';

/**
 * Who owns a SeP group (issue 13). A group is a pseudonym sector: every SeP in it gets the same
 * pseudonyms, so the organisation a group belongs to is what decides who may join it. It is written
 * only by an administrator's act (an approval, an operator's registration), never by what a SeP
 * declares in its form. Groups that already have active SePs are given the organisation of the
 * oldest of them, which an administrator approved (or an operator registered) back then.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('sep_group_owner', (t) => {
    t.string('sep_group', 100).primary();
    t.string('organisation_id', 8).notNullable();
    t.string('organisation_name', 200).notNullable();
    t.string('established_by', 200).notNullable();
    t.bigInteger('established_at').notNullable();
  });

  const active = (await knex('sep').where({ status: 'active' }).orderBy([{ column: 'created_at' }, { column: 'client_id' }]).select('sep_group', 'organisation_id', 'organisation_name')) as Array<{ sep_group: string; organisation_id: string; organisation_name: string }>;
  const owners = new Map<string, { organisation_id: string; organisation_name: string }>();
  for (const row of active) if (!owners.has(row.sep_group)) owners.set(row.sep_group, row);
  const at = Date.now();
  for (const [group, owner] of owners) {
    await knex('sep_group_owner').insert({ sep_group: group, organisation_id: owner.organisation_id, organisation_name: owner.organisation_name, established_by: 'migration 008 (oldest active SeP of the group)', established_at: at });
  }
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('sep_group_owner');
}
