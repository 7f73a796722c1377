import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase, type Database } from '../../src/store/database.ts';
import { STATEMENTS_PER_CONNECTION, preparedStatementCount } from '../../src/store/sqlite-statements.ts';

/**
 * SQLite statements prepared once per connection (issue 14: one trip through the thread pool per
 * query instead of three), on a real SQLite file: the answers are knex's as before, a statement that
 * cannot be prepared fails its query and is not kept, the number kept is bounded, and the connection
 * still closes.
 */
describe('SQLite statements prepared once per connection', () => {
  let dir: string;
  let db: Database;
  let prepared: string[];

  /** The connection (SQLite: the pool's only one), with its `prepare` counted. */
  async function connection(): Promise<unknown> {
    const client = db.client as { acquireConnection(): Promise<unknown>; releaseConnection(c: unknown): Promise<void> };
    const raw = await client.acquireConnection();
    await client.releaseConnection(raw);
    return raw;
  }

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-statements-'));
    db = openDatabase(`sqlite:${path.join(dir, 'brana.sqlite')}`);
    await db.schema.createTable('thing', (table) => {
      table.increments('id');
      table.string('name').notNullable().unique();
    });
    const raw = (await connection()) as { prepare(sql: string, ...rest: unknown[]): unknown };
    prepared = [];
    const prepare = raw.prepare.bind(raw);
    raw.prepare = (sql: string, ...rest: unknown[]) => {
      prepared.push(sql);
      return prepare(sql, ...rest);
    };
  });

  afterEach(async () => {
    await db.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('prepares a query once and answers it as knex does (rows, inserted ids, changed rows)', async () => {
    assert.deepEqual(await db('thing').insert({ name: 'a' }), [1]);
    assert.deepEqual(await db('thing').insert({ name: 'b' }), [2]);
    assert.deepEqual(await db('thing').where({ name: 'b' }).first(), { id: 2, name: 'b' });
    assert.deepEqual(await db('thing').where({ name: 'a' }).first(), { id: 1, name: 'a' });
    assert.equal(await db('thing').update({ name: 'c' }).where({ name: 'b' }), 1);
    assert.equal(await db('thing').update({ name: 'd' }).where({ name: 'nobody' }), 0);
    assert.equal(await db('thing').where({ name: 'a' }).del(), 1);
    assert.deepEqual(await db('thing').insert({ name: 'e' }).returning('id'), [{ id: 3 }]);
    assert.deepEqual(await db('thing').orderBy('id').pluck('name'), ['c', 'e']);
    // Six texts: the two inserts, the two reads by name, the two updates are the same statement each.
    const texts = new Set(prepared);
    assert.equal(texts.size, 6);
    assert.equal(prepared.length, texts.size, 'no statement was prepared twice');
    assert.equal(preparedStatementCount(await connection()), texts.size);
  });

  it('keeps transactions whole: a rolled back transaction leaves nothing, a committed one everything', async () => {
    await assert.rejects(
      db.transaction(async (trx) => {
        await trx('thing').insert({ name: 'kept?' });
        await trx('thing').insert({ name: 'kept?' }); // unique: fails, the transaction rolls back
      }),
      /UNIQUE constraint failed/,
    );
    assert.deepEqual(await db('thing').pluck('name'), []);
    await db.transaction(async (trx) => {
      await trx('thing').insert({ name: 'one' });
      await trx('thing').insert({ name: 'two' });
    });
    assert.deepEqual(await db('thing').orderBy('id').pluck('name'), ['one', 'two']);
    // BEGIN, COMMIT and ROLLBACK were prepared once each, like everything else.
    assert.equal(prepared.length, new Set(prepared).size);
  });

  it('fails a query whose statement cannot be prepared, with SQLite\'s error, and does not keep it', async () => {
    await assert.rejects(db('missing').where({ id: 1 }).first(), /no such table: missing/);
    await assert.rejects(db('missing').where({ id: 1 }).first(), /no such table: missing/);
    assert.equal(prepared.filter((sql) => sql.includes('missing')).length, 2, 'tried afresh each time');
    await db.schema.createTable('missing', (table) => table.integer('id'));
    await db('missing').insert({ id: 1 });
    assert.deepEqual(await db('missing').where({ id: 1 }).first(), { id: 1 });
  });

  it('reports a failed execution and goes on using the statement', async () => {
    await db('thing').insert({ name: 'taken' });
    await assert.rejects(db('thing').insert({ name: 'taken' }), /UNIQUE constraint failed/);
    assert.deepEqual(await db('thing').insert({ name: 'free' }), [2]);
    assert.equal(prepared.filter((sql) => sql.startsWith('insert')).length, 1);
  });

  it('keeps a bounded number of statements, the least recently used dropped first, and still closes', async () => {
    for (let i = 0; i < STATEMENTS_PER_CONNECTION + 20; i += 1) {
      // Each a different text: a column alias makes it so.
      assert.deepEqual(await db('thing').select(db.raw(`? as v${i}`, [i])), []);
    }
    assert.equal(preparedStatementCount(await connection()), STATEMENTS_PER_CONNECTION);
    await db('thing').insert({ name: 'after' });
    assert.deepEqual(await db('thing').pluck('name'), ['after']);
    // afterEach's destroy closes the connection: SQLite refuses while a statement is not finalized.
  });
});
