import assert from 'node:assert/strict';
import type { Database } from '../../src/store/database.ts';
import { codesIssuedTo, recordsOfLogin } from '../support/audit.ts';
import { BACKENDS, createTestDatabase, type TestDatabase } from '../support/databases.ts';
import { authorizationResponse, chooseMeans, loginAtIdp, redeemCode, startLogin, type IdpAnswer, type Sep, type StartedLogin } from '../support/login-driver.ts';
import { refuseModel } from '../support/refuse-writes.ts';
import { inTransaction, requestStatements } from '../support/request-statements.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

/**
 * The ACS consumes the answered request, records the answer and stores the login result on the
 * login's interaction in one transaction (issue 14: one commit per answer, not two). A node that
 * failed between two commits left the answer consumed and the login unable to resume; now a failed
 * write of the interaction leaves nothing: the request unanswered, no record, and the same answer
 * is then accepted as the first post would have been. On a real SQLite file and a real PostgreSQL database.
 */
for (const backend of BACKENDS) {
  describe(`the ACS writes an accepted answer once (${backend === 'sqlite' ? 'SQLite' : 'PostgreSQL'})`, function () {
    this.timeout(60_000);
    let store: TestDatabase;
    let brana: TestBroker;
    let db: Database;
    let sep: Sep;
    let acsStatements: { last(): string[] };

    before(async () => {
      store = await createTestDatabase(backend);
      brana = await startTestBroker({ databaseUrl: store.url });
      db = store.db;
      sep = await brana.registerSep();
      acsStatements = requestStatements(brana, '/saml/');
    });
    after(async () => {
      await brana?.close();
      await store?.drop();
    });

    /** A login up to eObčanka's answer. Nothing to consent to: the resume issues the code. */
    async function atIdp(): Promise<{ started: StartedLogin; idp: IdpAnswer }> {
      const started = await startLogin(brana.url.origin, sep, { scope: 'openid' });
      const idp = await loginAtIdp(started.citizen, await chooseMeans(started.citizen, started.response, 'eobcanka'), '100000001');
      return { started, idp };
    }
    const uidOf = (started: StartedLogin) => /^\/interaction\/([^/]+)/.exec(new URL(String(started.authorization.headers.location), brana.url.origin).pathname)![1]!;
    const interactionOf = async (uid: string) => {
      const row = (await db('oidc_model').where({ model: 'Interaction', id: uid }).first('payload')) as { payload: string } | undefined;
      return row ? (JSON.parse(row.payload) as { result?: { login?: { accountId?: string } } }) : undefined;
    };
    const assertions = async () => Number(((await db('upstream_assertion').count({ n: '*' })) as Array<{ n: number | string }>)[0]!.n);
    const eventsOf = async (started: StartedLogin) => (await recordsOfLogin(brana.broker, started.codeVerifier)).map((record) => record.event);

    it('commits once: the consumption, the records and the interaction\'s login result in one transaction', async () => {
      const { started, idp } = await atIdp();
      const accepted = await started.citizen.post(idp.acs, idp.fields);
      const statements = acsStatements.last();
      assert.equal(accepted.status, 303, accepted.text.slice(0, 300));
      assert.equal(new URL(String(accepted.headers.location), brana.url.origin).pathname, `/auth/${uidOf(started)}`);
      assert.equal(statements.filter((sql) => /^COMMIT/i.test(sql)).length, 1, statements.join('\n'));
      const writes = statements.map((sql, at) => ({ sql, at })).filter(({ sql }) => /^(insert|update|delete)\b/i.test(sql));
      assert.ok(writes.every(({ at }) => inTransaction(statements, at)), `every write in the transaction:\n${statements.join('\n')}`);
      assert.ok(writes.some(({ sql }) => /^insert into ["`]oidc_model["`]/i.test(sql)), 'the interaction among them');
      assert.ok((await interactionOf(uidOf(started)))?.result?.login?.accountId, 'the interaction holds the login result');
    });

    it('leaves the answer unconsumed and unrecorded when the interaction cannot be written: an error page, and the same answer then goes through', async () => {
      const { started, idp } = await atIdp();
      const uid = uidOf(started);
      const codes = await codesIssuedTo(brana.broker, sep.clientId);
      const assertionsBefore = await assertions();
      const restore = await refuseModel(db, 'Interaction');
      let failed;
      try {
        failed = await started.citizen.post(idp.acs, idp.fields);
      } finally {
        await restore();
      }
      assert.equal(failed.status, 500, failed.text.slice(0, 300));
      assert.equal(failed.headers.location, undefined, 'no redirect to a login that cannot resume');
      assert.match(failed.text, /<html/i);
      const request = (await db('upstream_request').where({ interaction_uid: uid }).first('consumed_at', 'outcome')) as { consumed_at: unknown; outcome: unknown };
      assert.equal(request.consumed_at, null, 'the request still waits for its answer');
      assert.equal(request.outcome, null);
      assert.equal(await assertions(), assertionsBefore, 'the assertion not remembered as used');
      assert.deepEqual(await eventsOf(started), ['request_received', 'request_sent_upstream'], 'nothing of the answer recorded');
      assert.equal((await interactionOf(uid))?.result, undefined, 'the interaction still waits for a login');

      // The browser posts the same answer again (a reload): it is accepted as the first post would have been.
      const accepted = await started.citizen.post(idp.acs, idp.fields);
      assert.equal(accepted.status, 303, accepted.text.slice(0, 300));
      const params = authorizationResponse(await started.citizen.follow(accepted), sep);
      assert.equal(params.get('state'), started.state);
      assert.equal((await redeemCode(brana.url.origin, sep, params.get('code')!, started.codeVerifier)).status, 200);
      assert.equal(await codesIssuedTo(brana.broker, sep.clientId), codes + 1);
      assert.deepEqual(await eventsOf(started), ['request_received', 'request_sent_upstream', 'response_received', 'identity_resolved', 'token_issued']);
    });
  });
}
