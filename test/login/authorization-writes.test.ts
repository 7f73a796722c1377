import assert from 'node:assert/strict';
import type { Database } from '../../src/store/database.ts';
import { recordsOfLogin } from '../support/audit.ts';
import { BACKENDS, createTestDatabase, type TestDatabase } from '../support/databases.ts';
import { startLogin, type Sep, type StartedLogin } from '../support/login-driver.ts';
import { refuseModel } from '../support/refuse-writes.ts';
import { inTransaction, requestStatements } from '../support/request-statements.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

/**
 * The authorization request holds what oidc-provider writes (the interaction) to its end (issue 14):
 * a login handed off to its means at once stores its interaction in the hand-off's transaction,
 * with the upstream request and the records (one commit, not two); any other stores it with the
 * request's records, in one transaction, before the answer leaves. Either way a failed write answers an error, never a redirect to an
 * interaction that does not exist. On a real SQLite file and a real PostgreSQL database.
 */
for (const backend of BACKENDS) {
  describe(`the authorization request stores its interaction before it answers (${backend === 'sqlite' ? 'SQLite' : 'PostgreSQL'})`, function () {
    this.timeout(60_000);
    let store: TestDatabase;
    let brana: TestBroker;
    let db: Database;
    let sep: Sep;

    let authStatements: { last(): string[] };

    before(async () => {
      store = await createTestDatabase(backend);
      brana = await startTestBroker({ databaseUrl: store.url });
      db = store.db;
      sep = await brana.registerSep();
      authStatements = requestStatements(brana, '/auth?');
    });
    after(async () => {
      await brana?.close();
      await store?.drop();
    });

    /** A login's authorization request (and the page it leads to), and the statements the authorization request sent. */
    async function authorize(idpHint?: string): Promise<{ started: StartedLogin; statements: string[] }> {
      const started = await startLogin(brana.url.origin, sep, idpHint ? { idpHint } : {});
      return { started, statements: authStatements.last() };
    }
    const interactionsOf = async () => Number(((await db('oidc_model').where({ model: 'Interaction' }).count({ n: '*' })) as Array<{ n: number | string }>)[0]!.n);
    const writesOf = (statements: string[]) => statements.map((sql, at) => ({ sql, at })).filter(({ sql }) => /^(insert|update|delete)\b/i.test(sql));
    const eventsOf = async (started: StartedLogin) => (await recordsOfLogin(brana.broker, started.codeVerifier)).map((record) => record.event);

    it('hands a login off with its interaction in one transaction: one commit', async () => {
      const { started, statements } = await authorize('eobcanka');
      assert.match(String(started.authorization.headers.location), /\/dev-idp\/eobcanka\/sso\?SAMLRequest=/);
      assert.equal(statements.filter((sql) => /^COMMIT/i.test(sql)).length, 1, statements.join('\n'));
      const writes = writesOf(statements);
      assert.ok(writes.every(({ at }) => inTransaction(statements, at)), `no write outside the transaction:\n${statements.join('\n')}`);
      assert.match(writes[0]!.sql, /^insert into ["`]oidc_model["`]/i, 'the interaction first');
      assert.ok(writes.some(({ sql }) => /^insert into ["`]upstream_request["`]/i.test(sql)));
      assert.deepEqual(await eventsOf(started), ['request_received', 'request_sent_upstream']);
    });

    it('stores the interaction with the request\'s record, before the answer, when the login is not handed off: one commit, and the selection page works', async () => {
      const { started, statements } = await authorize();
      const to = new URL(String(started.authorization.headers.location), brana.url.origin).pathname;
      assert.match(to, /^\/interaction\/[^/]+$/);
      const uid = /^\/interaction\/([^/]+)$/.exec(to)![1]!;
      assert.ok(await db('oidc_model').where({ model: 'Interaction', id: uid }).first('id'), 'stored');
      assert.equal(started.response.status, 200);
      assert.match(started.response.text, /name="means"/);
      assert.deepEqual(await eventsOf(started), ['request_received']);
      const writes = writesOf(statements);
      assert.equal(writes.filter(({ sql }) => /^insert into ["`]oidc_model["`]/i.test(sql)).length, 1, statements.join('\n'));
      assert.equal(statements.filter((sql) => /^COMMIT/i.test(sql)).length, 1, statements.join('\n'));
      assert.ok(writes.every(({ at }) => inTransaction(statements, at)), `the interaction and the record in one transaction:\n${statements.join('\n')}`);
    });

    for (const idpHint of [undefined, 'eobcanka']) {
      it(`answers an error, not a redirect, when the interaction cannot be stored (${idpHint ? 'handed off' : 'not handed off'}): nothing of it written`, async () => {
        const interactions = await interactionsOf();
        const requests = (await db('upstream_request').select('request_id')).length;
        const restore = await refuseModel(db, 'Interaction');
        let started;
        try {
          started = (await authorize(idpHint)).started;
        } finally {
          await restore();
        }
        const failed = started.authorization;
        assert.equal(failed.status, 500, failed.text.slice(0, 300));
        assert.equal(failed.headers.location, undefined, 'no redirect to an interaction, nor to a means');
        assert.equal(failed.headers['set-cookie'], undefined, 'no cookie of an interaction that does not exist');
        assert.match(failed.text, /<html/i);
        assert.equal(await interactionsOf(), interactions);
        assert.equal((await db('upstream_request').select('request_id')).length, requests, 'no hand-off stored');
        assert.ok(!(await eventsOf(started)).includes('request_sent_upstream'));
      });
    }
  });
}
