import assert from 'node:assert/strict';
import type { Database } from '../../src/store/database.ts';
import { KnexModelAdapter } from '../../src/store/oidc-model-store.ts';
import { HeldWrites, RequestWrites, withRequestWrites } from '../../src/store/request-writes.ts';
import { BACKENDS, createTestDatabase, type TestDatabase } from '../support/databases.ts';

/**
 * Writes of oidc-provider's models held for the length of a request (the resume of an authorization):
 * the request reads what it holds, and the commit writes adjacent upserts in one statement. On a
 * real SQLite file and PostgreSQL.
 */
for (const backend of BACKENDS) {
  describe(`held model writes (${backend === 'sqlite' ? 'SQLite' : 'PostgreSQL'})`, () => {
    let store: TestDatabase;
    let db: Database;
    let statements: string[] = [];

    before(async () => {
      store = await createTestDatabase(backend);
      db = store.db;
      db.on('query', (query: { sql: string }) => statements.push(query.sql));
    });
    after(async () => store?.drop());

    /** Runs `work` as a request that holds every write, then commits them. */
    async function holding(work: () => Promise<void>): Promise<void> {
      const writes = new RequestWrites();
      writes.held = HeldWrites.everyWrite();
      await withRequestWrites(writes, work);
      const held = writes.held;
      writes.held = undefined;
      await withRequestWrites(writes, () => held.commit());
    }
    const stored = async (model: string, id: string) => ((await db('oidc_model').where({ model, id }).first('payload')) as { payload: string } | undefined)?.payload;

    it('reads what it holds (by id and by uid), writes nothing before the commit, then one statement', async () => {
      const sessions = new KnexModelAdapter(db, 'Session');
      const grants = new KnexModelAdapter(db, 'Grant');
      statements = [];
      await holding(async () => {
        await sessions.upsert('s1', { uid: 'u1', accountId: 'a' }, 600);
        await grants.upsert('g1', { accountId: 'a' }, 600);
        await sessions.upsert('s1', { uid: 'u1', accountId: 'b' }, 600);
        assert.equal((await sessions.find('s1'))?.accountId, 'b', 'the latest held version');
        assert.equal((await sessions.findByUid('u1'))?.accountId, 'b');
        assert.equal((await grants.find('g1'))?.accountId, 'a');
        assert.deepEqual(statements, [], 'nothing sent before the commit');
      });
      assert.equal(statements.length, 1, statements.join('\n'));
      assert.equal(JSON.parse((await stored('Session', 's1'))!).accountId, 'b');
      assert.ok(await stored('Grant', 'g1'));
    });

    it('reads a held delete as gone, and commits deletes and upserts in the order they were made', async () => {
      const sessions = new KnexModelAdapter(db, 'Session');
      const codes = new KnexModelAdapter(db, 'AuthorizationCode');
      await sessions.upsert('old', { uid: 'u-old' }, 600);
      statements = [];
      await holding(async () => {
        await sessions.destroy('old');
        await sessions.upsert('new', { uid: 'u-new' }, 600);
        await codes.upsert('c1', { grantId: 'g2' }, 60);
        await codes.upsert('c2', { grantId: 'g3' }, 60);
        await codes.revokeByGrantId('g2');
        assert.equal(await sessions.find('old'), undefined, 'destroyed in this request');
        assert.ok(await sessions.find('new'));
        assert.equal(await codes.find('c1'), undefined, 'its grant revoked in this request');
        assert.ok(await codes.find('c2'));
      });
      assert.ok(statements.some((sql) => /^BEGIN/i.test(sql)), 'several statements: one transaction');
      assert.equal(await stored('Session', 'old'), undefined);
      assert.ok(await stored('Session', 'new'));
      assert.equal(await stored('AuthorizationCode', 'c1'), undefined);
      assert.ok(await stored('AuthorizationCode', 'c2'));
    });

    it('writes nothing of a commit that fails', async () => {
      const sessions = new KnexModelAdapter(db, 'Session');
      const other = new KnexModelAdapter(db, 'Session', async () => {
        throw new Error('simulated failure of what is written along');
      });
      await assert.rejects(
        holding(async () => {
          await sessions.upsert('s-fail', { uid: 'u-fail' }, 600);
          await other.upsert('s-fail-2', { uid: 'u-fail-2' }, 600);
        }),
        /simulated failure/,
      );
      assert.equal(await stored('Session', 's-fail'), undefined);
      assert.equal(await stored('Session', 's-fail-2'), undefined);
    });
  });
}
