import assert from 'node:assert/strict';
import type { Database } from '../../src/store/database.ts';
import { recordsOfLogin } from '../support/audit.ts';
import { BACKENDS, createTestDatabase, type TestDatabase } from '../support/databases.ts';
import { SEP_COLUMNS } from '../../src/sep/sep-store.ts';
import { chooseMeans, loginAtIdp, redeemCode, startLogin, userinfo, type Sep } from '../support/login-driver.ts';
import { codeFor, type Code } from '../support/oidc-attacker.ts';
import { requestStatements } from '../support/request-statements.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

/**
 * Rows read along with the row that leads to them, in one statement (issue 14: fewer round trips per
 * login): the token endpoint reads a code with its grant and session; userinfo an access token with
 * its grant, session and SeP; the resumed authorization its interaction with its SeP; the ACS the
 * upstream request with its SeP. The checks those reads serve hold as before: a code or token whose
 * grant was revoked or whose session ended gets nothing, and a SeP suspended meanwhile gets no code
 * and no claims. On a real SQLite file and PostgreSQL.
 */
for (const backend of BACKENDS) {
  describe(`a code or token read with its grant and session (${backend === 'sqlite' ? 'SQLite' : 'PostgreSQL'})`, function () {
    this.timeout(60_000);
    let store: TestDatabase;
    let brana: TestBroker;
    let origin: string;
    let db: Database;
    let sep: Sep;
    let tokenStatements: { last(): string[] };
    let userinfoStatements: { last(): string[] };
    let resumeStatements: { last(): string[] };
    let acsStatements: { last(): string[] };

    before(async () => {
      store = await createTestDatabase(backend);
      brana = await startTestBroker({ databaseUrl: store.url });
      origin = brana.url.origin;
      db = store.db;
      sep = await brana.registerSep();
      tokenStatements = requestStatements(brana, '/token');
      userinfoStatements = requestStatements(brana, '/me');
      resumeStatements = requestStatements(brana, '/auth/');
      acsStatements = requestStatements(brana, '/saml/');
    });
    after(async () => {
      await brana?.close();
      await store?.drop();
    });

    const modelReads = (statements: string[]) => statements.filter((sql) => /^select\b/i.test(sql) && /oidc_model/.test(sql));
    const sepReads = (statements: string[]) => statements.filter((sql) => /^select\b/i.test(sql) && /\bsep\b/.test(sql));
    const setSepStatus = async (status: string) => db('sep').where({ client_id: sep.clientId }).update({ status });
    const payloadOf = async (model: string, id: string) => JSON.parse(((await db('oidc_model').where({ model, id }).first('payload')) as { payload: string }).payload) as Record<string, unknown>;
    const tokensIssued = async (code: Code) => (await recordsOfLogin(brana.broker, code.codeVerifier)).filter((r) => r.event === 'token_issued').length;
    const accessTokenRows = async () => Number(((await db('oidc_model').where({ model: 'AccessToken' }).count({ n: '*' })) as Array<{ n: number | string }>)[0]!.n);

    it('redeems a code with one read of the model table, and answers userinfo with one', async () => {
      const code = await codeFor(origin, sep);
      const redeemed = await redeemCode(origin, sep, code.code, code.codeVerifier);
      assert.equal(redeemed.status, 200, redeemed.text);
      const tokenReads = modelReads(tokenStatements.last());
      assert.equal(tokenReads.length, 1, `one read of oidc_model at /token, got:\n${tokenReads.join('\n')}`);
      assert.match(tokenReads[0]!, /union all/i);

      const claims = await userinfo(origin, (redeemed.body as { access_token: string }).access_token);
      assert.equal(claims.status, 200, claims.text);
      assert.ok((claims.body as { sub?: string }).sub);
      assert.deepEqual(userinfoStatements.last().length, 1, `userinfo is one statement, got:\n${userinfoStatements.last().join('\n')}`);
    });

    it('reads the SeP with the interaction at the resume, and with the upstream request at the ACS', async () => {
      await codeFor(origin, sep);
      const resume = resumeStatements.last();
      assert.equal(sepReads(resume).length, 1, resume.join('\n'));
      assert.match(sepReads(resume)[0]!, /oidc_model/);
      const acs = acsStatements.last();
      assert.equal(sepReads(acs).filter((sql) => /upstream_request/.test(sql)).length, 1, acs.join('\n'));
      assert.equal(sepReads(acs).filter((sql) => !/upstream_request|oidc_model/.test(sql)).length, 0, 'no read of the SeP alone');
    });

    it('gives no code when the SeP is suspended while its citizen is at the identity means', async () => {
      const started = await startLogin(origin, sep, { scope: 'openid profile' });
      const selection = started.response;
      assert.match(selection.text, /name="means"/);
      const idp = await loginAtIdp(started.citizen, await chooseMeans(started.citizen, selection, 'eobcanka'), '100000001');
      const accepted = await started.citizen.post(idp.acs, idp.fields);
      try {
        await setSepStatus('disabled');
        const end = await started.citizen.follow(accepted);
        assert.equal(accepted.status, 303, 'the answer was accepted');
        assert.doesNotMatch(String(end.headers.location ?? ''), /[?&]code=/, 'no code goes to the SeP');
        assert.doesNotMatch(end.text ?? '', /[?&]code=/);
      } finally {
        await setSepStatus('active');
      }
    });

    it('answers no claims to a SeP suspended after it got its token', async () => {
      const code = await codeFor(origin, sep);
      const redeemed = await redeemCode(origin, sep, code.code, code.codeVerifier);
      assert.equal(redeemed.status, 200, redeemed.text);
      try {
        await setSepStatus('disabled');
        const claims = await userinfo(origin, (redeemed.body as { access_token: string }).access_token);
        assert.notEqual(claims.status, 200, claims.text);
        assert.equal((claims.body as { sub?: string }).sub, undefined);
      } finally {
        await setSepStatus('active');
      }
    });

    it('serves a login whose code and token carry a hostile value (NUL, CR/LF, a lone surrogate): its rows are then read one by one', async () => {
      // PostgreSQL cannot read such a string out of JSON: the statement that reads rows along must not fail on it.
      const code = await codeFor(origin, sep, { extra: { nonce: `n\u0000\r\n"\u202e\ud800` } });
      const redeemed = await redeemCode(origin, sep, code.code, code.codeVerifier);
      assert.equal(redeemed.status, 200, redeemed.text);
      const claims = await userinfo(origin, (redeemed.body as { access_token: string }).access_token);
      assert.equal(claims.status, 200, claims.text);
      assert.ok((claims.body as { sub?: string }).sub);
    });

    it('knows every column of the sep table the migrations make (a SeP read along is a whole row)', async () => {
      const columns =
        backend === 'postgres'
          ? ((await db.raw("select column_name as name from information_schema.columns where table_name = 'sep' and table_schema = current_schema()")) as { rows: Array<{ name: string }> }).rows
          : ((await db.raw('pragma table_info(sep)')) as Array<{ name: string }>);
      assert.deepEqual(columns.map((column) => column.name).sort(), [...SEP_COLUMNS].sort());
    });

    it('refuses a code whose grant was revoked: invalid_grant, no token stored, none logged', async () => {
      const code = await codeFor(origin, sep);
      const grantId = (await payloadOf('AuthorizationCode', code.code)).grantId as string;
      await db('oidc_model').where({ model: 'Grant', id: grantId }).delete();
      const before = await accessTokenRows();
      const redeemed = await redeemCode(origin, sep, code.code, code.codeVerifier);
      assert.equal(redeemed.status, 400, redeemed.text);
      assert.equal((redeemed.body as { error?: string }).error, 'invalid_grant');
      assert.equal((redeemed.body as { access_token?: string }).access_token, undefined);
      assert.equal(await accessTokenRows(), before);
      assert.equal(await tokensIssued(code), 0);
    });

    it('refuses a code whose session ended: invalid_grant, no token stored, none logged', async () => {
      const code = await codeFor(origin, sep);
      const sessionUid = (await payloadOf('AuthorizationCode', code.code)).sessionUid as string;
      assert.ok(sessionUid, 'a code of a login carries its session');
      assert.equal(await db('oidc_model').where({ model: 'Session', uid: sessionUid }).delete(), 1);
      const before = await accessTokenRows();
      const redeemed = await redeemCode(origin, sep, code.code, code.codeVerifier);
      assert.equal(redeemed.status, 400, redeemed.text);
      assert.equal((redeemed.body as { error?: string }).error, 'invalid_grant');
      assert.equal(await accessTokenRows(), before);
      assert.equal(await tokensIssued(code), 0);
    });

    for (const [what, end] of [
      ['its grant was revoked', async (token: Record<string, unknown>) => db('oidc_model').where({ model: 'Grant', id: token.grantId as string }).delete()],
      ['its session ended', async (token: Record<string, unknown>) => db('oidc_model').where({ model: 'Session', uid: token.sessionUid as string }).delete()],
    ] as const) {
      it(`refuses userinfo for an access token whose ${what.replace(/^its /, '')}: invalid_token, no claims`, async () => {
        const code = await codeFor(origin, sep);
        const redeemed = await redeemCode(origin, sep, code.code, code.codeVerifier);
        assert.equal(redeemed.status, 200, redeemed.text);
        const accessToken = (redeemed.body as { access_token: string }).access_token;
        assert.equal((await userinfo(origin, accessToken)).status, 200);
        assert.equal(await end(await payloadOf('AccessToken', accessToken)), 1);
        const claims = await userinfo(origin, accessToken);
        assert.equal(claims.status, 401, claims.text);
        assert.match(String(claims.headers['www-authenticate']), /invalid_token/);
        assert.equal((claims.body as { sub?: string }).sub, undefined);
      });
    }
  });
}
