import assert from 'node:assert/strict';
import type { Database } from '../../src/store/database.ts';
import { recordsOfLogin } from '../support/audit.ts';
import { BACKENDS, createTestDatabase, type TestDatabase } from '../support/databases.ts';
import { redeemCode, userinfo, type Sep } from '../support/login-driver.ts';
import { codeFor, type Code } from '../support/oidc-attacker.ts';
import { requestStatements } from '../support/request-statements.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

/**
 * The token endpoint reads a code, and userinfo an access token, in one statement with the grant and
 * the session it belongs to (issue 14: one round trip instead of three). The checks those reads
 * serve hold as before: a code or token whose grant was revoked or whose session ended gets nothing.
 * On a real SQLite file and PostgreSQL.
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

    before(async () => {
      store = await createTestDatabase(backend);
      brana = await startTestBroker({ databaseUrl: store.url });
      origin = brana.url.origin;
      db = store.db;
      sep = await brana.registerSep();
      tokenStatements = requestStatements(brana, '/token');
      userinfoStatements = requestStatements(brana, '/me');
    });
    after(async () => {
      await brana?.close();
      await store?.drop();
    });

    const modelReads = (statements: string[]) => statements.filter((sql) => /^select\b/i.test(sql) && /oidc_model/.test(sql));
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
      assert.equal(modelReads(userinfoStatements.last()).length, 1);
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
