import type { Knex } from 'knex';

/**
 * One row per running node, written by its readiness probe (issue 18): /readyz is ready only if the
 * node can write to its database within a bound, and this is what it writes. `at` is the probe's last
 * write (epoch ms); rows of nodes gone for a day are swept with the expired rows.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('node_heartbeat', (t) => {
    t.string('node', 200).primary();
    t.bigInteger('at').notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('node_heartbeat');
}
