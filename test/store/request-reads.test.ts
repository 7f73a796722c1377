import assert from 'node:assert/strict';
import type { Database } from '../../src/store/database.ts';
import { RequestWrites, rememberedOr, rememberedRead, rememberedReadWithRelated, withRequestWrites, writtenTable } from '../../src/store/request-writes.ts';
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

    describe('a row read with the rows it refers to', () => {
      before(async () => {
        await db('test_thing').insert([{ id: 2, status: 'grant of 1' }, { id: 3, status: 'session of 1' }]);
      });
      /** Thing 1 with things 2 and 3, in one statement. */
      const withRelated = () =>
        rememberedReadWithRelated('test_thing', '1', async () => {
          const rows = (await db('test_thing').whereIn('id', [1, 2, 3]).orderBy('id').select('id', 'status')) as Array<{ id: number; status: string }>;
          const status = (id: number) => ({ status: rows.find((row) => row.id === id)!.status });
          return { value: status(1), related: [['test_thing', '2', status(2)], ['test_thing', '3', status(3)], ['test_thing', '4', undefined]] as const };
        });
      const thing = (id: number) => rememberedRead('test_thing', String(id), () => db('test_thing').where({ id }).first('status'));

      it('remembers the related rows, a missing one as missing: their reads ask the database no more', async () => {
        await request(async () => {
          selects = 0;
          assert.deepEqual(await withRelated(), { status: 'active' });
          assert.deepEqual(await thing(2), { status: 'grant of 1' });
          assert.deepEqual(await thing(3), { status: 'session of 1' });
          assert.equal(await thing(4), undefined);
          assert.deepEqual(await status(), { status: 'active' });
          assert.equal(selects, 1);
        });
        selects = 0;
        await request(async () => thing(2));
        assert.equal(selects, 1, 'the next request reads again');
      });

      it('keeps the first answer of a row the request had read already', async () => {
        await request(async () => {
          assert.deepEqual(await thing(2), { status: 'grant of 1' });
          await outsideWrite(() => db('test_thing').where({ id: 2 }).update({ status: 'changed by another' }));
          await withRelated();
          assert.deepEqual(await thing(2), { status: 'grant of 1' }, 'the first answer stands');
        });
        await db('test_thing').where({ id: 2 }).update({ status: 'grant of 1' });
      });

      it('remembers no related row when the request sent a write while the statement ran', async () => {
        await request(async () => {
          selects = 0;
          await rememberedReadWithRelated('test_thing', '1', async () => {
            await db('test_other').insert({ id: 8 });
            return { value: { status: 'active' }, related: [['test_thing', '2', { status: 'stale' }]] as const };
          });
          assert.deepEqual(await thing(2), { status: 'grant of 1' });
          assert.equal(selects, 1, 'the related row was read from the database');
        });
      });

      it('outside a request, reads every time and remembers nothing', async () => {
        selects = 0;
        assert.deepEqual(await withRelated(), { status: 'active' });
        await thing(2);
        assert.equal(selects, 2);
      });
    });
  });
}

/** A write made by someone else (not counted in the current request). */
function outsideWrite<T>(write: () => PromiseLike<T>): Promise<T> {
  // A knex query runs when awaited: awaited inside that request, not after it.
  return withRequestWrites(new RequestWrites(), async () => await write());
}
