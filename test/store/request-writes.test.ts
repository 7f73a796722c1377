import assert from 'node:assert/strict';
import { isPostgres, type Database } from '../../src/store/database.ts';
import { RequestWrites, isWriteStatement, withRequestWrites } from '../../src/store/request-writes.ts';
import { BACKENDS, createTestDatabase, type TestDatabase } from '../support/databases.ts';

/**
 * What a request may have left in the database, counted from the statements it sends (issue 18: a
 * 503 says "nothing was changed" only when that is true). On a real SQLite file and PostgreSQL.
 */
describe('which statements write', () => {
  it('tells writes from reads, locks and transaction control', () => {
    for (const sql of ['insert into t values (1)', '  UPDATE t SET a = 1', 'delete from t', 'create table t (a int)', 'with x as (delete from t returning *) select * from x']) assert.ok(isWriteStatement(sql), sql);
    for (const sql of ['select * from t', 'SELECT pg_advisory_xact_lock(1)', 'select * from t for update', 'BEGIN;', 'COMMIT;', 'PRAGMA foreign_keys = ON', 'with x as (select 1) select * from x']) assert.ok(!isWriteStatement(sql), sql);
  });
});

for (const backend of BACKENDS) {
  describe(`what a request may have written (${backend === 'sqlite' ? 'SQLite' : 'PostgreSQL'})`, () => {
    let store: TestDatabase;
    let db: Database;

    before(async () => {
      store = await createTestDatabase(backend);
      db = store.db;
      await db.schema.createTable('test_item', (table) => table.integer('id'));
      if (isPostgres(db)) {
        await db.raw('CREATE TABLE test_deferred (id integer, CONSTRAINT test_deferred_once UNIQUE (id) DEFERRABLE INITIALLY DEFERRED)');
      } else {
        await db.raw('CREATE TABLE test_parent (id INTEGER PRIMARY KEY)');
        await db.raw('CREATE TABLE test_child (parent INTEGER REFERENCES test_parent (id) DEFERRABLE INITIALLY DEFERRED)');
      }
    });
    after(async () => store?.drop());

    /** Runs `work` as one request; whether it may have changed something, and whether it failed. */
    async function request(work: () => Promise<unknown>): Promise<{ mayHaveChanged: boolean; failed: boolean }> {
      const writes = new RequestWrites();
      let failed = false;
      await withRequestWrites(writes, async () => {
        try {
          await work();
        } catch {
          failed = true;
        }
      });
      return { mayHaveChanged: writes.mayHaveChanged, failed };
    }

    it('counts nothing for reads, a read-only transaction, and transactions that rolled back', async () => {
      assert.deepEqual(await request(async () => db('test_item').select()), { mayHaveChanged: false, failed: false });
      assert.deepEqual(await request(() => db.transaction(async (trx) => trx('test_item').select())), { mayHaveChanged: false, failed: false });
      assert.deepEqual(
        await request(() =>
          db.transaction(async (trx) => {
            await trx('test_item').insert({ id: 1 });
            throw new Error('changed my mind');
          }),
        ),
        { mayHaveChanged: false, failed: true },
      );
      assert.deepEqual(
        await request(() =>
          db.transaction(async (trx) => {
            await trx('test_item').insert({ id: 2 });
            await trx.raw('select * from no_such_table');
          }),
        ),
        { mayHaveChanged: false, failed: true },
      );
      assert.equal(Number(((await db('test_item').count({ n: '*' }).first()) as { n: number | string }).n), 0, 'indeed nothing was written');
    });

    it('counts a statement that writes on its own, and a committed transaction that wrote', async () => {
      assert.deepEqual(await request(async () => db('test_item').insert({ id: 3 })), { mayHaveChanged: true, failed: false });
      assert.deepEqual(await request(() => db.transaction(async (trx) => trx('test_item').insert({ id: 4 }))), { mayHaveChanged: true, failed: false });
      // A write, then a failure: the write stays.
      assert.deepEqual(
        await request(async () => {
          await db('test_item').insert({ id: 5 });
          await db.raw('select * from no_such_table');
        }),
        { mayHaveChanged: true, failed: true },
      );
    });

    it('counts a transaction whose COMMIT was sent, even when the COMMIT failed: its outcome is not known for certain', async () => {
      const outcome = await request(() =>
        db.transaction(async (trx) => {
          // Checked only at COMMIT, which fails.
          if (isPostgres(trx)) await trx('test_deferred').insert([{ id: 1 }, { id: 1 }]);
          else await trx('test_child').insert({ parent: 42 });
        }),
      );
      assert.deepEqual(outcome, { mayHaveChanged: true, failed: true });
    });

    it('counts nothing done outside the request', async () => {
      const writes = new RequestWrites();
      await withRequestWrites(writes, async () => db('test_item').select());
      await db('test_item').insert({ id: 6 });
      assert.equal(writes.mayHaveChanged, false);
    });
  });
}
