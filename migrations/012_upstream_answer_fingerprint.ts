import type { Knex } from 'knex';

/**
 * The fingerprint of the answer an upstream request accepted (issue 18): the SHA-256 of the form or
 * query the browser carried. The same browser re-sending the very same answer (a reload or back
 * after a 502) is then recognised without checking it anew, and any other answer to the request is
 * still a replay. A request answered before this migration has none: a re-send of it is refused.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('upstream_request', (t) => {
    t.string('answer_sha256', 64).nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('upstream_request', (t) => {
    t.dropColumn('answer_sha256');
  });
}
