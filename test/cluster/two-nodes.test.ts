import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as jose from 'jose';
import supertest from 'supertest';
import { openDatabase, type Database } from '../../src/store/database.ts';
import { requestIdOf } from '../../src/audit/request-id.ts';
import { settleLog } from '../support/audit-trail.ts';
import { startBrokerProcess, type BrokerProcess } from '../support/broker-process.ts';
import { brana as runBrana } from '../support/cli.ts';
import { eventually } from '../support/eventually.ts';
import { authorizationResponse, chooseMeans, Citizen, decideConsent, loginAtIdp, postToAcs, startLogin, type Sep, type StartedLogin } from '../support/login-driver.ts';
import { createPostgresDatabase, type PostgresDatabase } from '../support/postgres.ts';
import { startRoutingProxy, type RoutingProxy } from '../support/routing-proxy.ts';
import { sepDocument } from '../support/test-broker.ts';
import { formAction, hiddenFields } from '../support/html.ts';

/**
 * Two real broker processes on one PostgreSQL database and one keys folder, behind a TLS-terminating
 * proxy that sends each request to the node the test names. Nothing of a login may live in one
 * node's memory: every step can land on either node, and a node can die at any moment.
 */
describe('a cluster: two nodes, one login (PostgreSQL, shared keys, TLS-terminating proxy)', function () {
  this.timeout(60_000);
  let database: PostgresDatabase;
  let db: Database;
  let proxy: RoutingProxy;
  let dir: string;
  let env: Record<string, string>;
  let a: BrokerProcess;
  let b: BrokerProcess;
  let sep: Sep;

  const citizen = () => {
    const browser = new Citizen(proxy.origin);
    browser.agent.ca(proxy.ca);
    return browser;
  };
  const redeem = (code: string, verifier: string) =>
    supertest(proxy.origin)
      .post('/token')
      .ca(proxy.ca)
      .auth(sep.clientId, sep.clientSecret)
      .type('form')
      .send({ grant_type: 'authorization_code', code, redirect_uri: sep.redirectUri, code_verifier: verifier });
  const userinfo = (accessToken: string) => supertest(proxy.origin).get('/me').ca(proxy.ca).set('Authorization', `Bearer ${accessToken}`);
  const jwks = async () => jose.createLocalJWKSet((await supertest(proxy.origin).get('/jwks').ca(proxy.ca).expect(200)).body as jose.JSONWebKeySet);
  const on = (node: BrokerProcess) => proxy.routeTo({ name: node.name, port: node.port });
  /** The assertion log records of one login (read straight from the table, as an auditor's query would). */
  const logOfLogin = async (codeVerifier: string) =>
    (await settleLog(db, path.join(dir, 'keys')), await db('assertion_log').where({ request_id: requestIdOf(createHash('sha256').update(codeVerifier).digest('base64url'))! }).orderBy('seq', 'asc')) as Array<{ event: string; reason: string | null }>;
  const eventsOfLogin = async (codeVerifier: string) =>
    (await logOfLogin(codeVerifier)).map((record) => record.event);

  /** Up to the identity means: the authorization request and the choice of means, on `node`. */
  async function startAt(node: BrokerProcess): Promise<{ started: StartedLogin; toIdp: supertest.Response }> {
    on(node);
    const started = await startLogin(proxy.origin, sep, { scope: 'openid profile' }, citizen());
    assert.equal(started.response.status, 200, started.response.text);
    return { started, toIdp: await chooseMeans(started.citizen, started.response, 'eobcanka') };
  }

  before(async () => {
    database = await createPostgresDatabase('cluster');
    db = openDatabase(database.url);
    proxy = await startRoutingProxy();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-cluster-'));
    env = {
      BRANA_MODE: 'development',
      BRANA_PUBLIC_URL: proxy.origin,
      BRANA_TRUST_PROXY: 'true',
      DATABASE_URL: database.url,
      // An empty folder: both nodes generate keys at the same moment and must agree.
      BRANA_KEYS_DIR: path.join(dir, 'keys'),
      BRANA_DATA_DIR: path.join(dir, 'data'),
      BRANA_KEYS_RELOAD_SECONDS: '3600',
      // Tests hold a node inside a transaction on purpose; the statement timeout must not end it first.
      BRANA_DB_TIMEOUT_MS: '30000',
      LOG_LEVEL: 'info',
    };
    // Both start at once on an empty database: they migrate it one after the other.
    [a, b] = await Promise.all([startBrokerProcess('A', env), startBrokerProcess('B', env)]);
    const file = path.join(dir, 'sep.json');
    const document = sepDocument();
    fs.writeFileSync(file, JSON.stringify(document));
    const registered = await runBrana(['sep', 'register', '--file', file], { DATABASE_URL: database.url, BRANA_MODE: 'development' });
    assert.equal(registered.code, 0, registered.stderr);
    const { clientId, clientSecret } = JSON.parse(registered.stdout) as { clientId: string; clientSecret: string };
    sep = { clientId, clientSecret, redirectUri: (document.redirectUris as string[])[0]! };
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') process.stderr.write(`\n--- node A ---\n${a?.output().slice(-4000)}\n--- node B ---\n${b?.output().slice(-4000)}\n`);
  });

  after(async () => {
    await Promise.all([a?.kill(), b?.kill()]);
    await proxy?.close();
    await db?.destroy();
    await database?.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('completes a login whose authorization request went to A, SAML response to B and token request to A', async () => {
    const { started, toIdp } = await startAt(a);
    on(b);
    const idp = await loginAtIdp(started.citizen, toIdp, '100000001');
    const consent = await postToAcs(started.citizen, idp.acs, idp.fields);
    assert.equal(consent.status, 200, consent.text);
    const params = authorizationResponse(await decideConsent(started.citizen, consent, 'agree'), sep);
    on(a);
    const token = await redeem(params.get('code')!, started.codeVerifier);
    assert.equal(token.status, 200, token.text);
    const info = await userinfo(token.body.access_token as string);
    assert.equal(info.status, 200);
    assert.equal(info.body.family_name, 'Novák');

    const { payload } = await jose.jwtVerify(token.body.id_token as string, await jwks(), { issuer: proxy.origin, audience: sep.clientId });
    assert.equal(payload.acr, 'http://eidas.europa.eu/LoA/high');
    const steps = proxy.log.filter((entry) => /^\/(auth|interaction|saml|token|dev-idp)/.test(entry.path));
    assert.equal(steps.find((entry) => entry.path.startsWith('/auth'))!.backend, 'A');
    assert.equal(steps.find((entry) => entry.path === '/saml/eobcanka/acs')!.backend, 'B');
    assert.equal(steps.filter((entry) => entry.path === '/token').at(-1)!.backend, 'A');

    assert.deepEqual(await eventsOfLogin(started.codeVerifier), ['request_received', 'request_sent_upstream', 'response_received', 'identity_resolved', 'consent_given', 'token_issued']);
  });

  it('refuses a replay on the other node: the SAML response B accepted, the code A redeemed', async () => {
    const { started, toIdp } = await startAt(a);
    on(b);
    const idp = await loginAtIdp(started.citizen, toIdp, '100000002');
    const params = authorizationResponse(await decideConsent(started.citizen, await postToAcs(started.citizen, idp.acs, idp.fields), 'agree'), sep);
    const codesBefore = await db('oidc_model').where({ model: 'AuthorizationCode' }).count({ n: '*' });

    on(a);
    const replayed = await postToAcs(started.citizen, idp.acs, idp.fields);
    assert.equal(replayed.status, 400);
    const refusals = (await logOfLogin(started.codeVerifier)).filter((r) => r.event === 'error');
    assert.deepEqual(refusals.map((r) => r.reason), ['replayed_response']);
    assert.deepEqual(await db('oidc_model').where({ model: 'AuthorizationCode' }).count({ n: '*' }), codesBefore, 'the replay made no code');

    const first = await redeem(params.get('code')!, started.codeVerifier);
    assert.equal(first.status, 200);
    on(b);
    const again = await redeem(params.get('code')!, started.codeVerifier);
    assert.equal(again.status, 400);
    assert.equal(again.body.error, 'invalid_grant');
    assert.equal(again.body.access_token, undefined);
    on(a);
    assert.equal((await userinfo(first.body.access_token as string)).status, 401, 'reuse of the code revoked the tokens on every node');
  });

  it('loses nothing B needs when A is killed (SIGKILL) after sending the citizen to the identity means', async () => {
    const { started, toIdp } = await startAt(a);
    await a.kill();
    on(b);
    const idp = await loginAtIdp(started.citizen, toIdp, '100000001');
    const params = authorizationResponse(await decideConsent(started.citizen, await postToAcs(started.citizen, idp.acs, idp.fields), 'agree'), sep);
    const token = await redeem(params.get('code')!, started.codeVerifier);
    assert.equal(token.status, 200, token.text);
    a = await startBrokerProcess('A', env);
  });

  it('loses nothing when A is killed in the middle of taking the SAML response: B takes the same response', async () => {
    const { started, toIdp } = await startAt(b);
    const idp = await loginAtIdp(started.citizen, toIdp, '100000003');
    // Hold A inside its transaction: request consumed, assertion id remembered, log record waiting.
    const lock = await database.lockTable('assertion_log_staged');
    let inFlight: Promise<unknown>;
    try {
      on(a);
      inFlight = started.citizen.post(idp.acs, idp.fields).catch((err: unknown) => err);
      await eventually(async () => (await lock.waiters()) >= 1, 'node A waiting inside its transaction');
      await a.kill();
    } finally {
      await lock.release();
    }
    const lost = (await inFlight) as { status?: number };
    assert.equal(lost.status, 502, 'the citizen saw the proxy error of the dead node');

    on(b);
    const consent = await postToAcs(started.citizen, idp.acs, idp.fields);
    assert.equal(consent.status, 200, `B must take the response A never committed: ${consent.text.slice(0, 300)}`);
    const params = authorizationResponse(await decideConsent(started.citizen, consent, 'agree'), sep);
    assert.equal((await redeem(params.get('code')!, started.codeVerifier)).status, 200);
    const events = await eventsOfLogin(started.codeVerifier);
    assert.equal(events.filter((event) => event === 'response_received').length, 1, 'nothing of A’s attempt stayed in the log');
    a = await startBrokerProcess('A', env);
  });

  it('continues the login on B when the citizen re-sends the SAML response A accepted but never answered; another browser’s copy is refused', async () => {
    const { started, toIdp } = await startAt(a);
    const idp = await loginAtIdp(started.citizen, toIdp, '100000002');
    proxy.loseNextResponse('POST', new URL(idp.acs).pathname);
    assert.equal((await started.citizen.post(idp.acs, idp.fields)).status, 502, 'A committed the answer; the citizen saw a 502');

    on(b);
    const stolen = await postToAcs(citizen(), idp.acs, idp.fields);
    assert.equal(stolen.status, 400, 'whoever captured the answer, without the citizen’s cookies');
    const consent = await postToAcs(started.citizen, idp.acs, idp.fields);
    assert.equal(consent.status, 200, `the citizen’s own re-send goes on: ${consent.text.slice(0, 300)}`);
    assert.match(consent.text, /name="decision"/);
    const params = authorizationResponse(await decideConsent(started.citizen, consent, 'agree'), sep);
    assert.equal((await redeem(params.get('code')!, started.codeVerifier)).status, 200);
    const log = await logOfLogin(started.codeVerifier);
    assert.deepEqual(log.filter((r) => r.event === 'error').map((r) => r.reason), ['replayed_response']);
    const events = log.map((r) => r.event);
    for (const event of ['response_received', 'identity_resolved', 'consent_given', 'token_issued']) assert.equal(events.filter((e) => e === event).length, 1, event);
  });

  /** Up to the resume: the answer accepted on `node`, and the URL of oidc-provider's resume (`/auth/<uid>`) the browser is sent to. */
  async function acceptedAt(node: BrokerProcess, login: string): Promise<{ started: StartedLogin; resumeUrl: string }> {
    const { started, toIdp } = await startAt(node);
    const idp = await loginAtIdp(started.citizen, toIdp, login);
    const accepted = await started.citizen.post(idp.acs, idp.fields);
    assert.equal(accepted.status, 303, accepted.text);
    // The ACS finishes the login stage and sends the browser straight to the resume.
    const resumeUrl = String(accepted.headers.location);
    assert.match(new URL(resumeUrl).pathname, /^\/auth\/[^/]+$/);
    return { started, resumeUrl };
  }

  it('resumes the authorization on B when A is killed in the middle of resuming it (the same GET /auth/:uid)', async () => {
    const { started, resumeUrl } = await acceptedAt(b, '100000002');
    // A takes the interaction up, then waits to read whether a permanent consent covers the request, and dies there.
    const lock = await database.lockTable('consent', 'ACCESS EXCLUSIVE');
    let inFlight: Promise<unknown>;
    try {
      on(a);
      inFlight = started.citizen.get(resumeUrl).catch((err: unknown) => err);
      await eventually(async () => (await lock.waiters()) >= 1, 'node A resuming, waiting for the consent table');
      await a.kill();
    } finally {
      await lock.release();
    }
    assert.equal(((await inFlight) as { status?: number }).status, 502, 'the citizen saw the proxy error of the dead node');

    on(b);
    const consent = await started.citizen.follow(await started.citizen.get(resumeUrl));
    assert.equal(consent.status, 200, `B must resume what A left: ${consent.text.slice(0, 300)}`);
    assert.match(consent.text, /name="decision"/);
    const params = authorizationResponse(await decideConsent(started.citizen, consent, 'agree'), sep);
    assert.equal((await redeem(params.get('code')!, started.codeVerifier)).status, 200);
    const events = await eventsOfLogin(started.codeVerifier);
    for (const event of ['response_received', 'identity_resolved', 'consent_given', 'token_issued']) assert.equal(events.filter((e) => e === event).length, 1, event);
    a = await startBrokerProcess('A', env);
  });

  it('answers a repeated resume on B as A answered it when A’s response was lost: the same consent page, then the same code', async () => {
    const { started, resumeUrl } = await acceptedAt(a, '100000003');
    const codesBefore = Number(((await db('oidc_model').where({ model: 'AuthorizationCode' }).count({ n: '*' })) as Array<{ n: string | number }>)[0]!.n);
    on(a);
    proxy.loseNextResponse('GET', new URL(resumeUrl).pathname);
    assert.equal((await started.citizen.get(resumeUrl)).status, 502, 'A resumed the login; the citizen never saw its answer');
    on(b);
    const consent = await started.citizen.follow(await started.citizen.get(resumeUrl));
    assert.equal(consent.status, 200, consent.text.slice(0, 300));
    assert.match(consent.text, /name="decision"/);
    const challenge = createHash('sha256').update(started.codeVerifier).digest('base64url');
    const interactions = (await db('oidc_model').where({ model: 'Interaction' }).whereLike('payload', `%${challenge}%`)) as unknown[];
    assert.equal(interactions.length, 2, 'the login and the consent A made: B gave A’s answer again rather than making another');

    // The consent is resumed (the code issued, the session renewed) on A, and that answer is lost too.
    const { csrf } = hiddenFields(consent.text);
    const agreed = await started.citizen.post(formAction(consent.text), { csrf: csrf!, decision: 'agree' });
    assert.equal(agreed.status, 303);
    const consentResume = String(agreed.headers.location);
    proxy.loseNextResponse('GET', new URL(consentResume).pathname);
    assert.equal((await started.citizen.get(consentResume)).status, 502);
    on(b);
    const params = authorizationResponse(await started.citizen.follow(await started.citizen.get(consentResume)), sep);
    assert.equal(params.get('state'), started.state);
    const codesAfter = Number(((await db('oidc_model').where({ model: 'AuthorizationCode' }).count({ n: '*' })) as Array<{ n: string | number }>)[0]!.n);
    assert.equal(codesAfter - codesBefore, 1, 'one code for the SeP: the lost answer is given again, not made anew');
    const token = await redeem(params.get('code')!, started.codeVerifier);
    assert.equal(token.status, 200, token.text);
    const events = await eventsOfLogin(started.codeVerifier);
    for (const event of ['response_received', 'identity_resolved', 'consent_given', 'token_issued']) assert.equal(events.filter((e) => e === event).length, 1, event);
  });

  it('rotates the signing key on every node: published first, then used, old tokens still verify', async () => {
    const loginOn = async (node: BrokerProcess) => {
      const { started, toIdp } = await startAt(node);
      const idp = await loginAtIdp(started.citizen, toIdp, '100000001');
      const params = authorizationResponse(await decideConsent(started.citizen, await postToAcs(started.citizen, idp.acs, idp.fields), 'agree'), sep);
      const token = await redeem(params.get('code')!, started.codeVerifier);
      assert.equal(token.status, 200, token.text);
      return token.body.id_token as string;
    };
    const kidOf = (jwt: string) => jose.decodeProtectedHeader(jwt).kid;
    const publishedBy = async (node: BrokerProcess) => {
      on(node);
      return ((await supertest(proxy.origin).get('/jwks').ca(proxy.ca)).body as jose.JSONWebKeySet).keys.map((key) => key.kid);
    };
    const keysEnv = { DATABASE_URL: database.url, BRANA_KEYS_DIR: env.BRANA_KEYS_DIR!, BRANA_MODE: 'development', BRANA_KEYS_RELOAD_SECONDS: '3600' };
    const before = await loginOn(a);

    const staged = await runBrana(['keys', 'rotate'], keysEnv);
    assert.equal(staged.code, 0, staged.stderr);
    const stagedRs = (JSON.parse(staged.stdout) as { added: Array<{ kid: string; alg: string }> }).added.find((key) => key.alg === 'RS256')!.kid;
    a.signal('SIGHUP');
    b.signal('SIGHUP');
    for (const node of [a, b]) await eventually(async () => (await publishedBy(node)).includes(stagedRs), `node ${node.name} publishing the new key`);
    assert.equal(kidOf(await loginOn(b)), kidOf(before), 'published is not yet signing');

    const now = await runBrana(['keys', 'rotate', '--activate-in', '0'], keysEnv);
    assert.equal(now.code, 0, now.stderr);
    const newRs = (JSON.parse(now.stdout) as { added: Array<{ kid: string; alg: string }> }).added.find((key) => key.alg === 'RS256')!.kid;
    a.signal('SIGHUP');
    b.signal('SIGHUP');
    for (const node of [a, b]) await eventually(async () => (await publishedBy(node)).includes(newRs), `node ${node.name} publishing the second key`);
    const after = await loginOn(b);
    assert.equal(kidOf(after), newRs);

    for (const node of [a, b]) {
      on(node);
      const keys = await jwks();
      for (const token of [before, after]) await jose.jwtVerify(token, keys, { issuer: proxy.origin, audience: sep.clientId });
    }
    await settleLog(db, path.join(dir, 'keys'));
    const rotations = (await db('assertion_log').where({ event: 'keys_rotated' })) as Array<{ detail: string }>;
    assert.equal(rotations.filter((row) => (JSON.parse(row.detail) as { purpose?: string }).purpose === 'oidc-signing').length, 2);
  });

  it('keeps issuer, endpoints and cookies https behind the TLS-terminating proxy', async () => {
    on(a);
    const discovery = await supertest(proxy.origin).get('/.well-known/openid-configuration').ca(proxy.ca).expect(200);
    assert.equal(discovery.body.issuer, proxy.origin);
    for (const endpoint of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri', 'end_session_endpoint']) {
      assert.ok(String(discovery.body[endpoint]).startsWith(`${proxy.origin}/`), `${endpoint}: ${discovery.body[endpoint]}`);
    }
    const { started } = await startAt(b);
    assert.equal(started.response.status, 200);
    const cookies = await supertest(proxy.origin)
      .get(`/auth?${new URLSearchParams({ client_id: sep.clientId, redirect_uri: sep.redirectUri, response_type: 'code', scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' })}`)
      .ca(proxy.ca)
      .redirects(0);
    const setCookie = ([] as string[]).concat(cookies.headers['set-cookie'] ?? []);
    assert.ok(setCookie.length >= 2, `interaction cookies: ${setCookie.join(' | ')}`);
    for (const cookie of setCookie) assert.match(cookie, /;\s*secure/i, cookie);
    for (const cookie of setCookie) assert.match(cookie, /^__(Host|Secure)-/, `a sibling sub-domain cannot plant it: ${cookie}`);
    const language = await supertest(proxy.origin).get('/language?to=en&back=/').ca(proxy.ca).redirects(0);
    assert.match(String(language.headers['set-cookie']), /brana_lang=en;.*Secure/);
    assert.match(String(language.headers['strict-transport-security']), /max-age=/);
  });

  it('stops B gracefully on SIGTERM: it refuses new connections but finishes the SAML response it is processing', async () => {
    const { started, toIdp } = await startAt(a);
    const idp = await loginAtIdp(started.citizen, toIdp, '100000001');
    const body = new URLSearchParams(idp.fields).toString();
    const refused = () =>
      new Promise<boolean>((resolve) => {
        const socket = net.connect(b.port, '127.0.0.1');
        socket.once('connect', () => {
          socket.destroy();
          resolve(false);
        });
        socket.once('error', () => resolve(true));
      });
    // B is provably in the middle of the request: inside its transaction, waiting for the log table.
    const lock = await database.lockTable('assertion_log_staged');
    let answer: Promise<http.IncomingMessage>;
    try {
      answer = new Promise<http.IncomingMessage>((resolve, reject) => {
        const headers = { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body), 'x-forwarded-proto': 'https' };
        http.request({ host: '127.0.0.1', port: b.port, method: 'POST', path: new URL(idp.acs).pathname, agent: false, headers }, resolve).on('error', reject).end(body);
      });
      await eventually(async () => (await lock.waiters()) >= 1, 'node B waiting inside its transaction');
      b.signal('SIGTERM');
      await eventually(refused, 'node B refusing new connections');
      assert.ok(b.alive(), 'B is still finishing the request in flight');
    } finally {
      await lock.release();
    }
    const response = await answer;
    assert.equal(response.statusCode, 303);
    assert.match(new URL(String(response.headers.location), 'https://brana.invalid').pathname, /^\/auth\/[^/]+$/, 'on to the resumed authorization');
    assert.deepEqual(await b.exited, { code: 0, signal: null });
    assert.match(b.output(), /"outcome":"clean"/);

    on(a);
    const consent = await started.citizen.follow(await started.citizen.get(String(response.headers.location)));
    const params = authorizationResponse(await decideConsent(started.citizen, consent, 'agree'), sep);
    assert.equal((await redeem(params.get('code')!, started.codeVerifier)).status, 200);
  });
});
