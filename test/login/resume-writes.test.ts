import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Database } from '../../src/store/database.ts';
import { codesIssuedTo } from '../support/audit.ts';
import { BACKENDS, createTestDatabase, type TestDatabase } from '../support/databases.ts';
import { authorizationResponse, chooseMeans, loginAtIdp, redeemCode, startLogin, type Sep, type StartedLogin } from '../support/login-driver.ts';
import { refuseModel } from '../support/refuse-writes.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

/**
 * The resume of an authorization (`GET /auth/<uid>`) writes what it made — the grant, the code, the
 * session, the interaction's mark — in one statement once its answer is built, and before that
 * answer leaves (issue 14: one statement instead of four). The answer never carries a code that was
 * not stored: a failed write answers an error, writes nothing, and the same browser can resume again.
 * On a real SQLite file and a real PostgreSQL database.
 */

for (const backend of BACKENDS) {
  describe(`the resume of an authorization writes once (${backend === 'sqlite' ? 'SQLite' : 'PostgreSQL'})`, function () {
    this.timeout(60_000);
    let store: TestDatabase;
    let brana: TestBroker;
    let db: Database;
    let sep: Sep;
    /** The statements of the HTTP request being counted (not the log sequencer's, nor another request's). */
    const counted = new AsyncLocalStorage<string[]>();
    let resumeStatements: string[] = [];

    before(async () => {
      store = await createTestDatabase(backend);
      brana = await startTestBroker({ databaseUrl: store.url });
      db = store.db;
      sep = await brana.registerSep();
      brana.broker.db.on('query', (query: { sql: string }) => counted.getStore()?.push(query.sql));
      // Each request runs in its own async context (as in bench/sql-trace.ts).
      const listeners = brana.server.listeners('request') as Array<(...args: unknown[]) => void>;
      brana.server.removeAllListeners('request');
      brana.server.on('request', (req: { url?: string }, ...rest: unknown[]) => {
        const statements: string[] = [];
        if (req.url?.startsWith('/auth/')) resumeStatements = statements;
        counted.run(statements, () => listeners.forEach((listener) => listener(req, ...rest)));
      });
    });
    after(async () => {
      await brana?.close();
      await store?.drop();
    });

    /** A login whose answer was accepted: the resume URL the ACS sends the browser to. Nothing to consent to: the resume issues the code. */
    async function accepted(): Promise<{ started: StartedLogin; resume: string }> {
      const started = await startLogin(brana.url.origin, sep, { scope: 'openid' });
      const idp = await loginAtIdp(started.citizen, await chooseMeans(started.citizen, started.response, 'eobcanka'), '100000001');
      const answer = await started.citizen.post(idp.acs, idp.fields);
      assert.equal(answer.status, 303, answer.text.slice(0, 300));
      return { started, resume: String(answer.headers.location) };
    }
    const rowsOf = async (model: string) => Number(((await db('oidc_model').where({ model }).count({ n: '*' })) as Array<{ n: number | string }>)[0]!.n);
    const interactionOf = async (resume: string) => {
      const uid = /\/auth\/([^/?]+)$/.exec(new URL(resume).pathname)![1]!;
      const row = (await db('oidc_model').where({ model: 'Interaction', id: uid }).first('payload')) as { payload: string } | undefined;
      return row ? (JSON.parse(row.payload) as Record<string, unknown>) : undefined;
    };

    it('sends one write statement, no transaction, and its code works', async () => {
      const { started, resume } = await accepted();
      const answer = await started.citizen.get(resume);
      const statements = resumeStatements;
      const writes = statements.filter((sql) => /^\s*(insert|update|delete)\b/i.test(sql));
      assert.equal(writes.length, 1, writes.join('\n'));
      assert.match(writes[0]!, /^insert into ["`]oidc_model["`]/);
      assert.equal(statements.filter((sql) => /^BEGIN\b/i.test(sql)).length, 0, 'no transaction around one statement');
      const params = authorizationResponse(answer, sep);
      assert.equal(params.get('state'), started.state);
      assert.equal((await redeemCode(brana.url.origin, sep, params.get('code')!, started.codeVerifier)).status, 200);
    });

    it('answers an error without a code when its write fails, writes nothing, and the same browser then resumes', async () => {
      const { started, resume } = await accepted();
      const before = { codes: await codesIssuedTo(brana.broker, sep.clientId), grants: await rowsOf('Grant'), sessions: await rowsOf('Session') };
      const restore = await refuseModel(db, 'AuthorizationCode');
      let failed;
      try {
        failed = await started.citizen.get(resume);
      } finally {
        await restore();
      }
      assert.equal(failed.status, 500, failed.text.slice(0, 300));
      assert.equal(failed.headers.location, undefined, 'no redirect, and so no code, to the SeP');
      assert.equal(failed.headers['set-cookie'], undefined, 'the browser keeps its cookies: the resume cookie, no session cookie for a session not stored');
      assert.match(failed.text, /<html/i);
      assert.equal(await codesIssuedTo(brana.broker, sep.clientId), before.codes, 'no code stored');
      assert.equal(await rowsOf('Grant'), before.grants, 'no grant stored');
      assert.equal(await rowsOf('Session'), before.sessions, 'no session stored');
      const interaction = await interactionOf(resume);
      assert.ok(interaction, 'the interaction waits');
      assert.equal(interaction['brana:resumed'], undefined, 'not marked resumed');

      const params = authorizationResponse(await started.citizen.get(resume), sep);
      assert.equal(params.get('state'), started.state);
      assert.equal(await codesIssuedTo(brana.broker, sep.clientId), before.codes + 1);
      assert.equal((await redeemCode(brana.url.origin, sep, params.get('code')!, started.codeVerifier)).status, 200);
    });
  });
}
