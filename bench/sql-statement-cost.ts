/**
 * What one SQL statement costs Brána on SQLite, through knex as Brána configures it: a login's kind
 * of statements (a keyed read, an upsert, a transaction with an update and an insert) in a loop,
 * CPU of the whole process (the thread pool included) per statement.
 *   node bench/sql-statement-cost.ts [iterations] [other checkout to compare with, e.g. /work/main]
 * With a second checkout, its database layer runs in the same process, alternated round by round
 * with this one's, so that the machine's noise falls on both alike.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const iterations = Number(process.argv[2] ?? 1000);
const other = process.argv[3];

interface Layer {
  label: string;
  openDatabase(url: string): import('knex').Knex;
}

async function layerOf(root: string, label: string): Promise<Layer> {
  const module = (await import(path.join(root, 'src/store/database.ts'))) as { openDatabase(url: string): import('knex').Knex };
  return { label, openDatabase: module.openDatabase };
}

const layers = [await layerOf(path.resolve(import.meta.dirname, '..'), 'this checkout')];
if (other) layers.unshift(await layerOf(path.resolve(other), other));

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-sql-cost-'));
const databases = layers.map((layer, i) => {
  const db = layer.openDatabase(`sqlite:${path.join(dir, `db${i}.sqlite`)}`);
  return { layer, db };
});
for (const { db } of databases) {
  await db.schema.createTable('model', (t) => {
    t.string('model').notNullable();
    t.string('id').notNullable();
    t.text('payload').notNullable();
    t.bigInteger('consumed_at');
    t.primary(['model', 'id']);
  });
  await db.schema.createTable('record', (t) => {
    t.increments('seq');
    t.string('event').notNullable();
    t.text('detail').notNullable();
  });
}

const payload = JSON.stringify({ accountId: 'x'.repeat(43), claims: { a: 1 }, scope: 'openid profile', nonce: 'n'.repeat(32) });
const STATEMENTS_PER_ROUND = 6;
async function round(db: import('knex').Knex, i: number): Promise<void> {
  const id = `id-${i}`;
  await db('model').insert({ model: 'Session', id, payload }).onConflict(['model', 'id']).merge();
  await db('model').where({ model: 'Session', id }).first('payload', 'consumed_at');
  await db.transaction(async (trx) => {
    await trx('model').update({ consumed_at: i }).where({ model: 'Session', id }).whereNull('consumed_at');
    await trx('record').insert({ event: 'token_issued', detail: payload });
  });
}

const cpu: number[][] = databases.map(() => []);
for (let r = 0; r < 7; r += 1) {
  for (const [k, { db }] of databases.entries()) {
    const before = process.cpuUsage();
    for (let i = 0; i < iterations; i += 1) await round(db, r * iterations + i);
    const used = process.cpuUsage(before);
    if (r > 0) cpu[k]!.push((used.user + used.system) / 1000 / (iterations * STATEMENTS_PER_ROUND));
  }
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
for (const [k, { layer }] of databases.entries()) {
  process.stdout.write(`${layer.label}: ${median(cpu[k]!).toFixed(4)} CPU-ms per statement (median of ${cpu[k]!.length} rounds: ${cpu[k]!.map((v) => v.toFixed(4)).join(' ')})\n`);
}
for (const { db } of databases) await db.destroy();
fs.rmSync(dir, { recursive: true, force: true });
