import assert from 'node:assert/strict';
import type { Database } from '../../src/store/database.ts';
import { RequestWrites, rememberedOr, rememberedRead, withRequestWrites, writtenTable } from '../../src/store/request-writes.ts';
import { BACKENDS, createTestDatabase, type TestDatabase } from '../support/databases.ts';

/**
 * A row read once per request (issue 14: a login's requests read their SeP, interaction or grant
 * more than once): what a request remembers, and when it forgets. On a real SQLite file and PostgreSQL.
 */
describe('the table a write statement writes to', () => {
  it('is named for inserts, updates, deletes in either quoting, and unknown otherwise', () => {
    assert.equal(writtenTable('insert into `oidc_model` (`id`) values (?)'), 'oidc_model');
    assert.equal(writtenTable('insert into "sep" ("client_id") values ($1)'), 'sep');
    assert.equal(writtenTable('update `sep` set `status` = ?'), 'sep');
    assert.equal(writtenTable('UPDATE sep SET status = 1'), 'sep');
    assert.equal(writtenTable('delete from "oidc_model" where "grant_id" = $1'), 'oidc_model');
    assert.equal(writtenTable('insert or replace into consent(id) values (1)'), 'consent');
    assert.equal(writtenTable('with x as (delete from sep returning *) select * from x'), undefined);
  });
});

for (const backend of BACKENDS) {
  describe(`rows read once per request (${backend === 'sqlite' ? 'SQLite' : 'PostgreSQL'})`, () => {
    let store: TestDatabase;
    let db: Database;
    let selects = 0;

    before(async () => {
      store = await createTestDatabase(backend);
      db = store.db;
      await db.schema.createTable('test_thing', (table) => {
        table.integer('id').primary();
        table.string('status');
      });
      await db.schema.createTable('test_other', (table) => table.integer('id'));
      await db('test_thing').insert({ id: 1, status: 'active' });
      db.on('query', (query: { sql: string }) => {
        if (/^select/i.test(query.sql) && query.sql.includes('test_thing')) selects += 1;
      });
    });
    after(async () => store?.drop());

    const status = () => rememberedRead('test_thing', '1', () => db('test_thing').where({ id: 1 }).first('status')) as Promise<{ status: string }>;
    const request = <T>(work: () => Promise<T>) => withRequestWrites(new RequestWrites(), work);

    it('asks the database once per request, and again in the next request', async () => {
      selects = 0;
      const [a, b, c] = await request(async () => [await status(), await status(), await status()]);
      assert.deepEqual([a, b, c], [{ status: 'active' }, { status: 'active' }, { status: 'active' }]);
      assert.equal(selects, 1);
      // Another request (an administrator suspending it) changes it: the next request sees the change.
      await request(() => db('test_thing').where({ id: 1 }).update({ status: 'suspended' }));
      assert.deepEqual(await request(status), { status: 'suspended' });
      assert.equal(selects, 2);
      await db('test_thing').where({ id: 1 }).update({ status: 'active' });
    });

    it('forgets a table when the request writes to it, and only that table', async () => {
      selects = 0;
      await request(async () => {
        await status();
        await db('test_other').insert({ id: 7 });
        await status();
        assert.equal(selects, 1, 'a write to another table keeps what was read');
        await db('test_thing').where({ id: 1 }).update({ status: 'suspended' });
        assert.deepEqual(await status(), { status: 'suspended' });
        assert.equal(selects, 2, 'a write to the table is read again');
        await db.transaction(async (trx) => trx('test_thing').where({ id: 1 }).update({ status: 'active' }));
        assert.deepEqual(await status(), { status: 'active' });
        assert.equal(selects, 3, 'a write in a transaction too');
      });
    });

    it('reads every time outside a request, and does not remember a failed read', async () => {
      selects = 0;
      await status();
      await status();
      assert.equal(selects, 2);
      await request(async () => {
        let calls = 0;
        const failing = () => rememberedRead('test_thing', 'x', async () => {
          calls += 1;
          throw new Error('connection lost');
        });
        await assert.rejects(failing(), /connection lost/);
        await assert.rejects(failing(), /connection lost/);
        assert.equal(calls, 2);
      });
    });

    it('lends what it remembers to a read in a transaction, and does not remember that read', async () => {
      await request(async () => {
        selects = 0;
        await db.transaction(async (trx) => {
          const inside = await rememberedOr('test_thing', '1', () => trx('test_thing').where({ id: 1 }).first('status'));
          assert.deepEqual(inside, { status: 'active' });
        });
        await status();
        assert.equal(selects, 2, 'the read in the transaction was not remembered');
        await db.transaction(async (trx) => {
          const inside = await rememberedOr('test_thing', '1', () => trx('test_thing').where({ id: 1 }).first('status'));
          assert.deepEqual(inside, { status: 'active' });
        });
        assert.equal(selects, 2, 'the remembered row was lent');
      });
    });
  });
}
