import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import supertest from 'supertest';
import { requestIdOf } from '../../src/audit/request-id.ts';
import { databaseCheck } from '../../src/operations/database-probe.ts';
import { UNAVAILABLE_PART_WAY_BODY, unavailableBody } from '../../src/pages/service-unavailable.ts';
import { DatabaseNotTriedAgain, openDatabase, type Database } from '../../src/store/database.ts';
import { currentRequestWrites, RequestWrites, withRequestWrites } from '../../src/store/request-writes.ts';
import { settleLog } from '../support/audit-trail.ts';
import { startBrokerProcess, type BrokerProcess } from '../support/broker-process.ts';
import { brana as runBrana } from '../support/cli.ts';
import { eventually } from '../support/eventually.ts';
import { hiddenFields, formAction } from '../support/html.ts';
import { authorizationResponse, chooseMeans, Citizen, decideConsent, loginAtIdp, postToAcs, startLogin, type Sep } from '../support/login-driver.ts';
import { createPostgresDatabase, POSTGRES_ADMIN_URL, type PostgresDatabase } from '../support/postgres.ts';
import { startRoutingProxy, type RoutingProxy } from '../support/routing-proxy.ts';
import { startStallProxy, type StallProxy } from '../support/tcp-stall-proxy.ts';
import { sepDocument } from '../support/test-broker.ts';

/** The database timeout of node S, which reaches the database through the relay that can stall. */
const STALLING_TIMEOUT_MS = 1000;

/**
 * The database goes away under a running node (a real PostgreSQL database: its connections are
 * terminated and new ones refused, or the network to it stalls). Requests must fail with a clear
 * 503 — at once, or after the configured timeout (once) when the database hangs — the process must
 * stay up and recover by itself, nothing may be half-written, /readyz must say that the node cannot
 * write, and the log must say each kind of failure once, not once per request.
 */
describe('when the database fails', function () {
  this.timeout(60_000);
  let database: PostgresDatabase;
  let db: Database;
  let proxy: RoutingProxy;
  let stall: StallProxy;
  let dir: string;
  let node: BrokerProcess;
  let stalling: BrokerProcess;
  let sep: Sep;

  const browser = () => {
    const citizen = new Citizen(proxy.origin);
    citizen.agent.ca(proxy.ca);
    return citizen;
  };
  const request = () => supertest(proxy.origin);
  const redeem = (code: string, verifier: string) =>
    request().post('/token').ca(proxy.ca).auth(sep.clientId, sep.clientSecret).type('form').send({ grant_type: 'authorization_code', code, redirect_uri: sep.redirectUri, code_verifier: verifier });
  const requestIdOfLogin = (verifier: string) => requestIdOf(createHash('sha256').update(verifier).digest('base64url'))!;
  const on = (target: BrokerProcess) => proxy.routeTo({ name: target.name, port: target.port });
  const codesOfLogin = async (verifier: string) => {
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const rows = (await db('oidc_model').where({ model: 'AuthorizationCode' }).select('payload')) as Array<{ payload: string }>;
    return rows.filter((row) => (JSON.parse(row.payload) as { codeChallenge?: string }).codeChallenge === challenge).length;
  };
  const count = async (table: string, where: Record<string, unknown>) => {
    if (table === 'assertion_log') await settleLog(db, path.join(dir, 'keys'));
    return Number((await db(table).where(where).count({ n: '*' }))[0]!.n);
  };

  /** Every record follows the one before it: nothing was left out or half-written in between. */
  async function chainIsIntact(): Promise<void> {
    await settleLog(db, path.join(dir, 'keys'));
    const rows = (await db('assertion_log').orderBy('seq', 'asc')) as Array<{ seq: number; prev_hash: string; hash: string }>;
    for (const [i, row] of rows.entries()) if (i > 0) assert.equal(row.prev_hash, rows[i - 1]!.hash, `record ${row.seq} does not follow the one before it`);
  }

  before(async () => {
    database = await createPostgresDatabase('dbfail');
    proxy = await startRoutingProxy();
    const admin = new URL(POSTGRES_ADMIN_URL);
    stall = await startStallProxy({ host: admin.hostname, port: Number(admin.port || 5432) });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-dbfail-'));
    const env = {
      BRANA_MODE: 'development',
      BRANA_PUBLIC_URL: proxy.origin,
      BRANA_TRUST_PROXY: 'true',
      DATABASE_URL: database.url,
      BRANA_KEYS_DIR: path.join(dir, 'keys'),
      BRANA_DATA_DIR: path.join(dir, 'data'),
      BRANA_DB_TIMEOUT_MS: '30000',
    };
    node = await startBrokerProcess('N', env);
    // A second node reaches the same database through a relay that can stall; it gives up sooner.
    const viaStall = new URL(database.url);
    viaStall.host = `127.0.0.1:${stall.port}`;
    stalling = await startBrokerProcess('S', { ...env, DATABASE_URL: viaStall.toString(), BRANA_DB_TIMEOUT_MS: String(STALLING_TIMEOUT_MS) });
    db = openDatabase(database.url);
    const file = path.join(dir, 'sep.json');
    const document = sepDocument();
    fs.writeFileSync(file, JSON.stringify(document));
    const registered = await runBrana(['sep', 'register', '--file', file], { DATABASE_URL: database.url, BRANA_MODE: 'development' });
    assert.equal(registered.code, 0, registered.stderr);
    const { clientId, clientSecret } = JSON.parse(registered.stdout) as { clientId: string; clientSecret: string };
    sep = { clientId, clientSecret, redirectUri: (document.redirectUris as string[])[0]! };
  });

  afterEach(async function () {
    await database.restore();
    stall.resume();
    if (this.currentTest?.state === 'failed') process.stderr.write(`\n--- node N ---\n${node.output().slice(-4000)}\n--- node S ---\n${stalling.output().slice(-4000)}\n`);
  });

  after(async () => {
    await Promise.all([node?.kill(), stalling?.kill()]);
    await proxy?.close();
    await stall?.close();
    await db?.destroy();
    await database?.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('logs an outage as a few lines, one per kind of failure, not one (or a stack trace) per request', async () => {
    // First in this file: the node says each kind once per 10 s, so a test just before it would have said it already.
    on(node);
    await database.cutOff();
    const mark = node.output().length;
    const failing = 40;
    const answers = await Promise.all(
      Array.from({ length: failing }, (_, i) => (i % 2 ? startLogin(proxy.origin, sep, {}, browser()).then((login) => login.response) : redeem('some-code', 'x'.repeat(43)))),
    );
    for (let i = 0; i < 5; i += 1) await request().get('/readyz').ca(proxy.ca);
    assert.deepEqual(new Set(answers.map((answer) => answer.status)), new Set([503]));
    const lines = node.output().slice(mark).split('\n').filter((line) => line.trim());
    assert.ok(lines.length <= 10, `${failing} failed requests and 5 readiness checks wrote ${lines.length} lines:\n${lines.join('\n')}`);
    assert.ok(!lines.some((line) => /\\n\s+at |^\s+at /.test(line)), 'no stack trace for an outage');
    const requestLines = lines.filter((line) => line.includes('"request failed: database unavailable"'));
    assert.equal(requestLines.length, 1, 'one line for every request that failed the same way');
    assert.match(requestLines[0]!, /"kind":"database_unreachable"/);
    assert.match(requestLines[0]!, /"databaseCode":"55000"/);
  });

  it('answers 503 at once — a Czech or English page for a citizen, JSON for a SeP — stays up, and recovers by itself', async () => {
    on(node);
    const midway = await startLogin(proxy.origin, sep, {}, browser());
    assert.equal(midway.response.status, 200);

    await database.cutOff();

    const fresh = await startLogin(proxy.origin, sep, {}, browser());
    assert.equal(fresh.response.status, 503);
    assert.match(fresh.response.text, /Brána je teď dočasně nedostupná/);
    assert.equal(fresh.response.headers['retry-after'], '5');
    const english = browser();
    await english.get('/language?to=en&back=/');
    const inEnglish = await startLogin(proxy.origin, sep, {}, english);
    assert.equal(inEnglish.response.status, 503);
    assert.match(inEnglish.response.text, /Brána is temporarily unavailable/);

    const continued = await chooseMeans(midway.citizen, midway.response, 'eobcanka');
    assert.equal(continued.status, 503, 'the citizen in the middle of a login gets the page too');
    assert.match(continued.text, /dočasně nedostupná/);

    const token = await redeem('some-code', 'x'.repeat(43));
    assert.equal(token.status, 503);
    assert.deepEqual(token.body, { error: 'temporarily_unavailable', error_description: "Brána cannot reach its database; nothing was changed. Retry later." });
    // A SeP's HTTP client that prefers HTML still gets the OAuth error, not the citizen's page.
    const tokenPreferringHtml = await redeem('some-code', 'x'.repeat(43)).set('Accept', 'text/html,application/xhtml+xml,*/*;q=0.8');
    assert.equal(tokenPreferringHtml.status, 503);
    assert.match(String(tokenPreferringHtml.headers['content-type']), /^application\/json/);
    assert.equal(tokenPreferringHtml.body.error, 'temporarily_unavailable');
    const group = await request().get('/sep-groups/hradec-kralove').ca(proxy.ca).set('Accept', 'application/json');
    assert.equal(group.status, 503);
    assert.equal(group.body.error, 'temporarily_unavailable');

    const ready = await request().get('/readyz').ca(proxy.ca);
    assert.equal(ready.status, 503);
    assert.equal(ready.body.checks.database.ok, false);
    assert.equal(ready.body.checks.database.detail.reason, 'database_unreachable');
    assert.equal(ready.body.checks.keys.ok, true);
    assert.equal((await request().get('/healthz').ca(proxy.ca)).status, 200, 'the process is up');
    assert.equal((await request().get('/jwks').ca(proxy.ca)).status, 200, 'what needs no database still works');
    assert.ok(node.alive());
    assert.doesNotMatch(node.output(), /UnhandledPromiseRejection|uncaughtException/);
    assert.doesNotMatch(node.output(), /insert into|select .* from|update "/i, 'no SQL (and its values) in the log');

    await database.restore();
    await eventually(async () => (await request().get('/readyz').ca(proxy.ca)).status === 200, 'the node ready again');
    // The citizen presses the button again: the login goes on where it stopped.
    const idp = await loginAtIdp(midway.citizen, await chooseMeans(midway.citizen, midway.response, 'eobcanka'), '100000001');
    const params = authorizationResponse(await decideConsent(midway.citizen, await postToAcs(midway.citizen, idp.acs, idp.fields), 'agree'), sep);
    assert.equal((await redeem(params.get('code')!, midway.codeVerifier)).status, 200);
  });

  it('leaves no half-written consent or log record when the database goes in the middle of writing them', async () => {
    on(node);
    const login = await startLogin(proxy.origin, sep, { scope: 'openid profile' }, browser());
    const idp = await loginAtIdp(login.citizen, await chooseMeans(login.citizen, login.response, 'eobcanka'), '100000005');
    const consentPage = await postToAcs(login.citizen, idp.acs, idp.fields);
    assert.equal(consentPage.status, 200);
    const personId = ((await db('upstream_request').where({ sep_id: sep.clientId }).whereNotNull('person_id').orderBy('created_at', 'desc').first('person_id')) as { person_id: string }).person_id;

    // The node writes the permanent consent, then waits for the log table; then the database goes.
    const lock = await database.lockTable('assertion_log_staged');
    const form = { csrf: hiddenFields(consentPage.text).csrf!, decision: 'agree', permanent: 'yes' };
    const answer = login.citizen.post(formAction(consentPage.text), form);
    await eventually(async () => (await lock.waiters()) >= 1, 'the consent transaction waiting for the log table');
    await database.cutOff();
    await lock.release();
    const failed = await answer;
    assert.equal(failed.status, 503);
    assert.match(failed.text, /dočasně nedostupná/);

    await database.restore();
    await eventually(async () => (await request().get('/readyz').ca(proxy.ca)).status === 200, 'the node ready again');
    assert.equal(await count('consent', { person_id: personId }), 0, 'no consent without its log record');
    const requestId = requestIdOfLogin(login.codeVerifier);
    assert.equal(await count('assertion_log', { request_id: requestId, event: 'consent_given' }), 0);
    assert.equal(await codesOfLogin(login.codeVerifier), 0, 'no code was issued');
    await chainIsIntact();

    // The citizen sends the consent again: now it is written once, with its record, and the login completes.
    const params = authorizationResponse(await login.citizen.follow(await login.citizen.post(formAction(consentPage.text), form)), sep);
    assert.equal((await redeem(params.get('code')!, login.codeVerifier)).status, 200);
    assert.equal(await count('consent', { person_id: personId }), 1);
    assert.equal(await count('assertion_log', { request_id: requestId, event: 'consent_given' }), 1);
    await chainIsIntact();
  });

  it('leaves no half-written SeP registration when the database goes in the middle of it', async () => {
    const file = path.join(dir, 'cut.json');
    const document = sepDocument();
    fs.writeFileSync(file, JSON.stringify(document));
    const lock = await database.lockTable('assertion_log_staged');
    const registering = runBrana(['sep', 'register', '--file', file], { DATABASE_URL: database.url, BRANA_MODE: 'development', BRANA_DB_TIMEOUT_MS: '30000' });
    await eventually(async () => (await lock.waiters()) >= 1, 'the registration waiting for the log table');
    await database.cutOff();
    await lock.release();
    const result = await registering;
    assert.equal(result.code, 1);
    assert.match(result.stderr, /the database cannot be reached .*nothing was changed, try again/);
    assert.equal(result.stdout, '', 'no client secret was handed out');
    assert.doesNotMatch(result.stderr, /insert into|client_secret/i, 'neither the SQL nor its values are shown');

    await database.restore();
    await eventually(async () => Boolean(await db.raw('SELECT 1')), 'the database back');
    assert.equal(await count('sep', { client_id: document.clientId }), 0);
    assert.equal(await count('assertion_log', { sep_id: document.clientId }), 0);
    await chainIsIntact();
    const again = await runBrana(['sep', 'register', '--file', file], { DATABASE_URL: database.url, BRANA_MODE: 'development' });
    assert.equal(again.code, 0, again.stderr);
  });

  it('/readyz is ready only if the node can write, and says why not within its bound: a lock it cannot get, a full pool', async () => {
    on(node);
    const readiness = async () => {
      const started = Date.now();
      const answer = await request().get('/readyz').ca(proxy.ca);
      return { status: answer.status, database: answer.body.checks.database as { ok: boolean; detail: { reason?: string; code?: string } }, ms: Date.now() - started };
    };
    /** Asks until the database check fails for `reason` (a probe's answer stands for 1 s); returns that answer. */
    const notReadyFor = async (reason: string) => {
      let answer: Awaited<ReturnType<typeof readiness>> | undefined;
      await eventually(async () => {
        answer = await readiness();
        return answer.database.detail.reason === reason;
      }, `/readyz failing for ${reason}`);
      return answer!;
    };
    await eventually(async () => (await readiness()).status === 200, 'the node ready');

    // Another session holds a lock on the table the probe writes: the node cannot write there.
    const heartbeatLock = await database.lockTable('node_heartbeat');
    const locked = await notReadyFor('database_unwritable').finally(() => heartbeatLock.release());
    assert.equal(locked.status, 503);
    assert.deepEqual(locked.database, { ok: false, detail: { reason: 'database_unwritable', code: '55P03' } });
    assert.ok(locked.ms < 3000, `/readyz answered after ${locked.ms} ms`);
    await eventually(async () => (await readiness()).status === 200, 'ready again once the lock is gone');

    // Every connection of the node's pool (10) is held by a request waiting for a lock.
    const stagingLock = await database.lockTable('assertion_log_staged');
    const waiting = Array.from({ length: 12 }, () => startLogin(proxy.origin, sep, {}, browser()));
    try {
      const exhausted = await notReadyFor('pool_exhausted');
      assert.equal(exhausted.status, 503);
      assert.ok(exhausted.ms < 3000, `/readyz answered after ${exhausted.ms} ms`);
    } finally {
      await stagingLock.release();
    }
    for (const login of await Promise.all(waiting)) assert.equal(login.response.status, 200, 'the waiting logins go on once the lock is gone');
    await eventually(async () => (await readiness()).status === 200, 'ready again once the pool is free');
  });

  it('waits for a hung database once per request, and a 503 after a write that may have landed does not say nothing was changed', async () => {
    const viaStall = new URL(database.url);
    viaStall.host = `127.0.0.1:${stall.port}`;
    const stalled = openDatabase(viaStall.toString(), { timeoutMs: STALLING_TIMEOUT_MS });
    const row = (node: string) => ({ node, at: Date.now() });
    try {
      // A write committed, then the database hangs: the first call waits for the timeout, the next fails at once.
      const partly = await withRequestWrites(new RequestWrites(), async () => {
        await stalled('node_heartbeat').insert(row('committed'));
        stall.stall();
        const started = Date.now();
        const failure = await stalled('node_heartbeat').select().catch((err: unknown) => err);
        const firstMs = Date.now() - started;
        const again = Date.now();
        const second = await stalled('node_heartbeat').select().catch((err: unknown) => err);
        return { writes: currentRequestWrites()!, body: unavailableBody(), failure, firstMs, second, secondMs: Date.now() - again };
      });
      assert.match((partly.failure as Error).message, /Query read timeout/);
      assert.ok(partly.firstMs < 2 * STALLING_TIMEOUT_MS, `the hung database answered after ${partly.firstMs} ms`);
      assert.ok(partly.second instanceof DatabaseNotTriedAgain, 'the request does not wait for the database twice');
      assert.ok(partly.secondMs < STALLING_TIMEOUT_MS / 2, `the second call failed after ${partly.secondMs} ms`);
      assert.deepEqual(partly.body, UNAVAILABLE_PART_WAY_BODY);
      stall.resume();
      assert.equal((await stalled('node_heartbeat').where({ node: 'committed' })).length, 1, 'another request is not refused: the hung connection is not used again');

      // A COMMIT whose answer never came may have committed…
      const unanswered = await withRequestWrites(new RequestWrites(), async () => {
        const failure = await stalled
          .transaction(async (trx) => {
            await trx('node_heartbeat').insert(row('unanswered'));
            stall.stall();
          })
          .catch((err: unknown) => err);
        return { writes: currentRequestWrites()!, failure };
      });
      assert.match((unanswered.failure as Error).message, /Query read timeout/);
      assert.equal(unanswered.writes.mayHaveChanged, true);
      stall.resume();
      // …and here it did, once the held COMMIT reached the server.
      await eventually(async () => (await db('node_heartbeat').where({ node: 'unanswered' })).length === 1, 'the late COMMIT');
    } finally {
      stall.resume();
      await stalled.destroy();
    }
  });

  it('probes one write at a time while the database hangs: /readyz answers within its bound and gathers no connections', async () => {
    const viaStall = new URL(database.url);
    viaStall.host = `127.0.0.1:${stall.port}`;
    const stalled = openDatabase(viaStall.toString(), { timeoutMs: 5000 });
    const pool = (stalled.client as { pool: { numUsed(): number; numPendingAcquires(): number; numPendingCreates(): number } }).pool;
    const check = databaseCheck(stalled, { timeoutMs: 5000, boundMs: 500, cacheMs: 100 });
    try {
      assert.equal((await check()).ok, true);
      stall.stall();
      await new Promise((resolve) => setTimeout(resolve, 150)); // past the answer cached before
      const started = Date.now();
      const answers = [];
      while (Date.now() - started < 2500) {
        answers.push(...(await Promise.all(Array.from({ length: 5 }, () => Promise.resolve(check())))));
        assert.ok(pool.numUsed() + pool.numPendingAcquires() <= 1, 'one probe at a time');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.ok(Date.now() - started < 4000, 'each /readyz answered within the bound');
      assert.ok(answers.every((answer) => !answer.ok));
      assert.deepEqual(new Set(answers.map((answer) => (answer.detail as { reason: string }).reason)), new Set(['database_timeout']));
    } finally {
      stall.resume();
      await stalled.destroy();
    }
  });

  it('does not hang when the network to the database stalls: 503 within its timeouts, then recovery', async () => {
    on(stalling);
    const midway = await startLogin(proxy.origin, sep, {}, browser());
    assert.equal(midway.response.status, 200);
    stall.stall();

    // A request meets the timeout once (1 s on this node), not once per database call it makes.
    // Not a timing test: the bound is twice the timeout, and the figures are for the report.
    const elapsed = async <T>(work: () => Promise<T>): Promise<[T, number]> => {
      const started = Date.now();
      const result = await work();
      return [result, Date.now() - started];
    };
    const [fresh, loginMs] = await elapsed(() => startLogin(proxy.origin, sep, {}, browser()));
    assert.equal(fresh.response.status, 503);
    assert.ok(loginMs < 2 * STALLING_TIMEOUT_MS, `a login start failed after ${loginMs} ms`);
    const [token, tokenMs] = await elapsed(() => redeem('some-code', 'x'.repeat(43)));
    assert.equal(token.status, 503);
    assert.equal(token.body.error, 'temporarily_unavailable');
    assert.ok(tokenMs < 2 * STALLING_TIMEOUT_MS, `a token request failed after ${tokenMs} ms`);
    const [ready, readyMs] = await elapsed(async () => request().get('/readyz').ca(proxy.ca));
    assert.equal(ready.status, 503);
    assert.equal(ready.body.checks.database.detail.reason, 'database_timeout');
    assert.ok(readyMs < 2 * STALLING_TIMEOUT_MS, `/readyz answered after ${readyMs} ms`);
    assert.ok(stalling.alive());

    stall.resume();
    await eventually(async () => (await request().get('/readyz').ca(proxy.ca)).status === 200, 'the node ready again');
    const idp = await loginAtIdp(midway.citizen, await chooseMeans(midway.citizen, midway.response, 'eobcanka'), '100000001');
    const params = authorizationResponse(await decideConsent(midway.citizen, await postToAcs(midway.citizen, idp.acs, idp.fields), 'agree'), sep);
    assert.equal((await redeem(params.get('code')!, midway.codeVerifier)).status, 200);
    assert.equal(
      await count('assertion_log', { request_id: requestIdOfLogin(midway.codeVerifier), event: 'token_issued' }),
      1,
      'the token and its record were committed, not left in a stalled transaction',
    );
  });
});
