import assert from 'node:assert/strict';
import supertest from 'supertest';
import { isPostgres } from '../../src/store/database.ts';
import { recordsOfLogin, codesIssuedTo } from '../support/audit.ts';
import { brana } from '../support/cli.ts';
import { authorizationResponse, chooseMeans, completeLogin, decideConsent, loginAtIdp, postToAcs, redeemCode, startLogin, userinfo } from '../support/login-driver.ts';
import { BACKENDS, createTestDatabase, type TestDatabase } from '../support/databases.ts';
import { refuseLogRecords } from '../support/log-failures.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

const failLogWrites = (brana_: TestBroker, event: string) => refuseLogRecords(brana_.broker.db, event);

for (const backend of BACKENDS) describe(`the records of a login on ${backend}: values only when switched on, revocations, logout, and nothing without its record`, () => {
  let brana_: TestBroker;
  let store: TestDatabase | undefined;
  before(async () => {
    store = backend === 'postgres' ? await createTestDatabase('postgres') : undefined;
    brana_ = await startTestBroker(store ? { databaseUrl: store.url } : {});
  });
  after(async () => {
    await brana_.close();
    await store?.drop();
  });

  it('logs attribute values for a SeP only after the operator switches value logging on', async () => {
    const sep = await brana_.registerSep();
    const env = { DATABASE_URL: brana_.broker.env.databaseUrl, BRANA_KEYS_DIR: brana_.keysDir, BRANA_MODE: 'development' };
    const switched = await brana(['sep', 'log-values', sep.clientId, 'on'], env);
    assert.equal(switched.code, 0, switched.stderr);
    const change = (await brana_.broker.log.query({ sepId: sep.clientId, event: 'sep_changed' }))[0]!;
    assert.deepEqual(change.detail, { actor: 'cli', field: 'logAttributeValues', from: false, to: true });

    const started = await startLogin(brana_.url.origin, sep, { scope: 'openid profile' });
    const idp = await loginAtIdp(started.citizen, await chooseMeans(started.citizen, started.response, 'eobcanka'), '100000001');
    const consent = await postToAcs(started.citizen, idp.acs, idp.fields);
    const params = authorizationResponse(await decideConsent(started.citizen, consent, 'agree'), sep);
    assert.equal((await redeemCode(brana_.url.origin, sep, params.get('code')!, started.codeVerifier)).status, 200);
    const records = await recordsOfLogin(brana_.broker, started.codeVerifier);
    const resolved = records.find((r) => r.event === 'identity_resolved')!;
    assert.equal(typeof resolved.detail.subject, 'string');
    assert.deepEqual((resolved.detail.attributeValues as Record<string, string[]>).CurrentFamilyName, ['Novák']);
    const issued = records.find((r) => r.event === 'token_issued')!;
    assert.deepEqual(issued.detail.attributeValues, { CurrentFamilyName: 'Novák', CurrentGivenName: 'Jan', DateOfBirth: '1980-04-12', PersonIdentifier: `CZ/CZ/${issued.pseudonym}` });
    assert.equal(issued.means, 'eobcanka');
    assert.equal(issued.loa, 'high');

    assert.equal((await brana(['sep', 'log-values', sep.clientId, 'off'], env)).code, 0);
    const after = await completeLogin(brana_.url.origin, sep, { means: 'eobcanka', login: '100000001' });
    const quiet = await brana_.broker.log.query({ sepId: sep.clientId, pseudonym: String(after.idToken.sub), event: 'token_issued' });
    assert.equal(quiet.at(-1)!.detail.attributeValues, undefined);
    assert.ok(!JSON.stringify(quiet.at(-1)).includes('Novák'));
    const wrong = await brana(['sep', 'log-values', sep.clientId, 'maybe'], env);
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /<switch>: must be on or off/);
  });

  it('records a revoked token and revoked grants with the citizen\'s pseudonym, and a logout', async () => {
    const sep = await brana_.registerSep();
    const login = await completeLogin(brana_.url.origin, sep, { means: 'mojeid', login: 'jnovak' });
    const revoked = await supertest(brana_.url.origin).post('/token/revocation').auth(sep.clientId, sep.clientSecret).type('form').send({ token: login.tokens.access_token });
    assert.equal(revoked.status, 200);
    assert.equal((await userinfo(brana_.url.origin, login.tokens.access_token)).status, 401);
    const tokenRevoked = (await brana_.broker.log.query({ sepId: sep.clientId, event: 'token_revoked' }))[0]!;
    assert.equal(tokenRevoked.pseudonym, login.idToken.sub);

    const end = await login.citizen.get(`/session/end?client_id=${encodeURIComponent(sep.clientId)}`);
    assert.equal(end.status, 200);
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(end.text)![1]!;
    const done = await login.citizen.post('/session/end/confirm', { xsrf, logout: 'yes' });
    assert.equal(done.status, 303);
    const logout = (await brana_.broker.log.query({ sepId: sep.clientId, event: 'logout' }))[0]!;
    assert.equal(logout.pseudonym, login.idToken.sub);
    const grants = await brana_.broker.log.query({ sepId: sep.clientId, event: 'grant_revoked' });
    assert.ok(grants.some((r) => r.pseudonym === login.idToken.sub && /^end_session/.test(String(r.detail.route))), JSON.stringify(grants));
  });

  it('issues no token when its record cannot be written', async () => {
    const sep = await brana_.registerSep();
    const started = await startLogin(brana_.url.origin, sep, { scope: 'openid' });
    const idp = await loginAtIdp(started.citizen, await chooseMeans(started.citizen, started.response, 'eobcanka'), '100000003');
    const params = authorizationResponse(await postToAcs(started.citizen, idp.acs, idp.fields), sep);
    const restore = await failLogWrites(brana_, 'token_issued');
    let token;
    try {
      token = await redeemCode(brana_.url.origin, sep, params.get('code')!, started.codeVerifier);
    } finally {
      await restore();
    }
    assert.equal(token.status, 500);
    assert.equal(token.body.access_token, undefined);
    assert.equal(token.body.id_token, undefined);
    const tokens = (await brana_.broker.db('oidc_model').where({ model: 'AccessToken' }).select('payload')) as Array<{ payload: string }>;
    assert.ok(!tokens.some((row) => (JSON.parse(row.payload) as { clientId: string }).clientId === sep.clientId), 'no access token was stored');
    assert.ok(!(await recordsOfLogin(brana_.broker, started.codeVerifier)).some((r) => r.event === 'token_issued'));
  });

  it('resolves no identity when its record cannot be written: no person, no code', async () => {
    const sep = await brana_.registerSep();
    const persons = async () => Number(((await brana_.broker.db('person').count({ n: '*' }).first()) as { n: number | string }).n);
    const before = await persons();
    const started = await startLogin(brana_.url.origin, sep, { scope: 'openid' });
    const idp = await loginAtIdp(started.citizen, await chooseMeans(started.citizen, started.response, 'eobcanka'), '100000005');
    const restore = await failLogWrites(brana_, 'identity_resolved');
    let page;
    try {
      page = await postToAcs(started.citizen, idp.acs, idp.fields);
    } finally {
      await restore();
    }
    assert.equal(page.status, 500);
    assert.equal(await persons(), before, 'the person resolved in that step was not kept');
    assert.equal(await codesIssuedTo(brana_.broker, sep.clientId), 0);
    const events = (await recordsOfLogin(brana_.broker, started.codeVerifier)).map((r) => r.event);
    assert.ok(!events.includes('response_received') && !events.includes('identity_resolved'), events.join(', '));
  });

  it('finds a citizen\'s logins across SeP groups by their pseudonyms, newest first', async () => {
    const first = await brana_.registerSep({ group: 'group-history-a' });
    const second = await brana_.registerSep({ group: 'group-history-b' });
    const a = await completeLogin(brana_.url.origin, first, { means: 'eobcanka', login: '100000002' });
    const b = await completeLogin(brana_.url.origin, second, { means: 'eobcanka', login: '100000002' });
    assert.notEqual(a.idToken.sub, b.idToken.sub);
    const logins = await brana_.broker.log.query({ pseudonyms: [String(a.idToken.sub), String(b.idToken.sub)], events: ['token_issued'] }, { order: 'desc' });
    assert.deepEqual(logins.map((r) => r.sepId), [second.clientId, first.clientId]);
    assert.ok(logins.every((r) => r.means === 'eobcanka' && r.loa === 'high' && Array.isArray(r.detail.attributes)));
  });
});
