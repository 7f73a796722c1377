import assert from 'node:assert/strict';
import knexFactory, { type Knex } from 'knex';
import supertest from 'supertest';
import { UNAVAILABLE_BODY, UNAVAILABLE_PART_WAY_BODY } from '../../src/pages/service-unavailable.ts';
import { isPostgres, openDatabase, type Database } from '../../src/store/database.ts';
import { recordsOfLogin } from '../support/audit.ts';
import { BACKENDS, createTestDatabase, type TestDatabase } from '../support/databases.ts';
import { eventually } from '../support/eventually.ts';
import { refuseLogRecords } from '../support/log-failures.ts';
import { redeemCode, userinfo, type Sep } from '../support/login-driver.ts';
import { codeFor, type Code } from '../support/oidc-attacker.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

/**
 * A code is consumed in the same transaction that stores its access token and the `token_issued`
 * record (issue 18): a /token request that fails before that commit leaves the code unused, so the
 * SeP's retry succeeds; of two requests racing with one code exactly one gets tokens, and the other
 * gets invalid_grant with the grant revoked. On a real SQLite file and a real PostgreSQL database.
 */

/** How long the broker's statements may wait for a lock (BRANA_DB_TIMEOUT_MS): short, so a busy log fails fast. */
const TIMEOUT_MS = 1500;


/**
 * Another connection holds what the broker's token transaction needs, in a transaction of its own:
 * on PostgreSQL the log's staging table (the broker's log insert waits), on SQLite the database's
 * write lock (the broker's first write waits). Past TIMEOUT_MS the broker gives up: the log is busy.
 */
async function holdTheLog(store: TestDatabase): Promise<{ waiters(): Promise<number>; release(): Promise<void> }> {
  const holder = store.backend === 'postgres' ? knexFactory({ client: 'pg', connection: store.url, pool: { min: 0, max: 1 } }) : openDatabase(store.url);
  const trx: Knex.Transaction = await holder.transaction();
  if (store.backend === 'postgres') await trx.raw('LOCK TABLE assertion_log_staged IN EXCLUSIVE MODE');
  // SQLite takes its write lock with the first write of a transaction.
  else await trx('oidc_model').insert({ model: 'TestLock', id: 'held', payload: '{}' });
  const database = store.backend === 'postgres' ? new URL(store.url).pathname.slice(1) : undefined;
  let released: Promise<void> | undefined;
  return {
    async waiters() {
      if (!database) return 0;
      const result = (await store.db.raw('SELECT count(*) AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE a.datname = ? AND NOT l.granted', [database])) as { rows: Array<{ n: string }> };
      return Number(result.rows[0]?.n ?? 0);
    },
    release() {
      released ??= (async () => {
        await trx.rollback().catch(() => undefined);
        await holder.destroy();
      })();
      return released;
    },
  };
}

for (const backend of BACKENDS) {
  describe(`redeeming a code is one transaction (${backend === 'sqlite' ? 'SQLite' : 'PostgreSQL'})`, function () {
    this.timeout(60_000);
    let store: TestDatabase;
    let brana: TestBroker;
    let origin: string;
    let db: Database;
    let sep: Sep;

    before(async () => {
      store = await createTestDatabase(backend);
      brana = await startTestBroker({ databaseUrl: store.url, env: { BRANA_DB_TIMEOUT_MS: String(TIMEOUT_MS) } });
      origin = brana.url.origin;
      db = store.db;
      sep = await brana.registerSep();
    });
    after(async () => {
      await brana?.close();
      await store?.drop();
    });

    const redeem = (code: Code) => redeemCode(origin, sep, code.code, code.codeVerifier);
    const tokensIssued = async (code: Code) => (await recordsOfLogin(brana.broker, code.codeVerifier)).filter((r) => r.event === 'token_issued').length;
    const consumedAt = async (code: Code) => ((await db('oidc_model').where({ model: 'AuthorizationCode', id: code.code }).first('consumed_at')) as { consumed_at: number | null } | undefined)?.consumed_at;
    const accessTokensOf = async (clientId: string) =>
      ((await db('oidc_model').where({ model: 'AccessToken' }).select('payload')) as Array<{ payload: string }>).filter((row) => (JSON.parse(row.payload) as { clientId?: string }).clientId === clientId).length;
    const assertTokens = async (answer: supertest.Response) => {
      assert.equal(answer.status, 200, answer.text);
      assert.equal(typeof answer.body.access_token, 'string');
      assert.equal(typeof answer.body.id_token, 'string');
      assert.equal((await userinfo(origin, String(answer.body.access_token))).status, 200);
    };

    it('leaves the code unused when the log refuses the token_issued record (500); the retry gets the tokens, recorded once', async () => {
      const code = await codeFor(origin, sep);
      const restore = await refuseLogRecords(db, 'token_issued');
      let failed: supertest.Response;
      try {
        failed = await redeem(code);
      } finally {
        await restore();
      }
      assert.equal(failed.status, 500, failed.text);
      assert.equal(failed.body.error, 'server_error');
      assert.equal(failed.body.access_token, undefined);
      assert.equal(await consumedAt(code), null, 'the code is not consumed');
      assert.equal(await tokensIssued(code), 0);

      await assertTokens(await redeem(code));
      assert.equal(typeof (await consumedAt(code)), 'number');
      assert.equal(await tokensIssued(code), 1, 'exactly one token_issued record');
    });

    it('answers 503 "nothing was changed" when the log is busy, and means it: the retry gets the tokens, recorded once', async () => {
      const code = await codeFor(origin, sep);
      const tokensBefore = await accessTokensOf(sep.clientId);
      const held = await holdTheLog(store);
      let busy: supertest.Response;
      try {
        busy = await redeem(code);
      } finally {
        await held.release();
      }
      assert.equal(busy.status, 503, busy.text);
      assert.deepEqual(busy.body, UNAVAILABLE_BODY);
      assert.equal(busy.headers['retry-after'], '5');
      assert.equal(await consumedAt(code), null, 'the code is not consumed');
      assert.equal(await accessTokensOf(sep.clientId), tokensBefore, 'no access token was stored');
      assert.equal(await tokensIssued(code), 0);

      await assertTokens(await redeem(code));
      assert.equal(await tokensIssued(code), 1, 'exactly one token_issued record');
    });

    it('lets exactly one of two requests racing with one code through; the other gets invalid_grant, the grant is revoked, no second record', async () => {
      // Two nodes on the same database, so that the two requests truly run side by side; they wait
      // for the log longer than the race takes to set up.
      const env = { BRANA_DB_TIMEOUT_MS: String(TIMEOUT_MS * 4) };
      const one = await startTestBroker({ databaseUrl: store.url, env });
      const other = await startTestBroker({ databaseUrl: store.url, env }).catch(async (err: unknown) => {
        await one.close();
        throw err;
      });
      try {
        const code = await codeFor(origin, sep);
        // Both requests find the code unused and build their answers, then wait at the commit.
        const held = await holdTheLog(store);
        let answers: supertest.Response[];
        try {
          const racing = [redeemCode(one.url.origin, sep, code.code, code.codeVerifier), redeemCode(other.url.origin, sep, code.code, code.codeVerifier)];
          if (backend === 'postgres') await eventually(async () => (await held.waiters()) >= 2, 'both token transactions waiting', TIMEOUT_MS);
          else await new Promise((resolve) => setTimeout(resolve, TIMEOUT_MS / 3));
          await held.release();
          answers = await Promise.all(racing);
        } finally {
          await held.release();
        }
        const winners = answers.filter((answer) => answer.status === 200);
        const losers = answers.filter((answer) => answer.status !== 200);
        assert.equal(winners.length, 1, answers.map((answer) => `${answer.status} ${answer.text}`).join('\n'));
        assert.equal(losers.length, 1);
        assert.equal(losers[0]!.status, 400);
        assert.equal(losers[0]!.body.error, 'invalid_grant');
        assert.equal(losers[0]!.body.access_token, undefined);
        assert.equal(await tokensIssued(code), 1, 'no second token_issued record');
        // A code used twice is a stolen code: the grant goes, and the winner's tokens with it.
        assert.equal((await userinfo(origin, String(winners[0]!.body.access_token))).status, 401);
        const revocations = (await brana.broker.log.query({ sepId: sep.clientId, event: 'grant_revoked' })).filter((r) => r.detail.route === 'token');
        assert.ok(revocations.length >= 1, 'the revocation is recorded');
      } finally {
        await Promise.all([one.close(), other.close()]);
      }
    });

    it('refuses a code reused after its success with invalid_grant and revokes what it gave', async () => {
      const code = await codeFor(origin, sep);
      const first = await redeem(code);
      await assertTokens(first);
      const again = await redeem(code);
      assert.equal(again.status, 400);
      assert.equal(again.body.error, 'invalid_grant');
      assert.equal(again.body.access_token, undefined);
      assert.equal((await userinfo(origin, String(first.body.access_token))).status, 401);
      assert.equal(await tokensIssued(code), 1);
    });

    if (backend === 'postgres') {
      it('says a request may have been done in part when the database goes after a write of it was committed (a revocation)', async () => {
        const code = await codeFor(origin, sep);
        const tokens = await redeem(code);
        await assertTokens(tokens);
        // The token is deleted in a statement of its own; its token_revoked record then waits for the log.
        const held = await holdTheLog(store);
        let answer: supertest.Response;
        try {
          answer = await supertest(origin).post('/token/revocation').auth(sep.clientId, sep.clientSecret).type('form').send({ token: tokens.body.access_token });
        } finally {
          await held.release();
        }
        assert.equal(answer.status, 503, answer.text);
        assert.deepEqual(answer.body, UNAVAILABLE_PART_WAY_BODY);
        assert.equal((await userinfo(origin, String(tokens.body.access_token))).status, 401, 'the token is revoked indeed');
      });
    }
  });
}
