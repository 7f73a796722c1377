import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import supertest from 'supertest';
import { requestIdOf } from '../../src/audit/request-id.ts';
import { openDatabase, type Database } from '../../src/store/database.ts';
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

/**
 * The database goes away under a running node (a real PostgreSQL database: its connections are
 * terminated and new ones refused, or the network to it stalls). Requests must fail at once with a
 * clear 503, the process must stay up and recover by itself, and nothing may be half-written.
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
    stalling = await startBrokerProcess('S', { ...env, DATABASE_URL: viaStall.toString(), BRANA_DB_TIMEOUT_MS: '1000' });
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

  it('does not hang when the network to the database stalls: 503 within its timeouts, then recovery', async () => {
    on(stalling);
    const midway = await startLogin(proxy.origin, sep, {}, browser());
    assert.equal(midway.response.status, 200);
    stall.stall();

    const fresh = await startLogin(proxy.origin, sep, {}, browser());
    assert.equal(fresh.response.status, 503);
    const token = await redeem('some-code', 'x'.repeat(43));
    assert.equal(token.status, 503);
    assert.equal(token.body.error, 'temporarily_unavailable');
    assert.equal((await request().get('/readyz').ca(proxy.ca)).status, 503);
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
