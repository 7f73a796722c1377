import assert from 'node:assert/strict';
import supertest from 'supertest';
import { MANY_REGISTRATIONS, registrationMetadata, selfRegister } from '../support/self-service.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

/**
 * Issue 13, item 5: what public endpoints must not tell (metadata sources, raw errors), and what
 * one anonymous client must not be able to make Brána write or compute without bound.
 */
describe('Security: leaks and amplification', () => {
  let brana: TestBroker;
  const origin = () => brana.url.origin;
  before(async () => {
    brana = await startTestBroker({ env: { ...MANY_REGISTRATIONS, BRANA_RATE_LIMIT_LOGIN: '3', BRANA_TRUST_PROXY: 'true' } });
  });
  after(async () => brana.close());

  it('shows the metadata state (sources, raw errors) to operators only: 401 without a credential, telling nothing', async () => {
    const anonymous = await supertest(origin()).get('/health/metadata');
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.body.means, undefined);
    assert.doesNotMatch(anonymous.text, /providers|\.xml|https?:\/\/|eobcanka/);
    const monitor = (await brana.broker.operators.issue('monitor', `monitor ${process.pid}`)).token;
    const shown = await supertest(origin()).get('/health/metadata').set('Authorization', `Bearer ${monitor}`);
    assert.equal(shown.status, 200);
    assert.ok((shown.body.means as unknown[]).length > 0);
  });

  it('keeps /readyz public without raw errors: a failing check says that it failed, not what a library said', async () => {
    brana.broker.readiness.add('leaky', () => {
      throw new Error('connect ECONNREFUSED 10.20.30.40:5432 reading /etc/brana/secret-path.json');
    });
    const ready = await supertest(origin()).get('/readyz');
    assert.equal(ready.status, 503);
    assert.deepEqual(ready.body.checks.leaky, { ok: false, detail: 'the check failed' });
    assert.doesNotMatch(ready.text, /10\.20\.30\.40|secret-path|ECONNREFUSED/);
    assert.equal(ready.body.checks.keys.detail.lastError, undefined);
    assert.equal((await supertest(origin()).get('/healthz')).status, 200);
  });

  it('limits how often one address can start a My-account login, and writes no row for a refused one', async () => {
    const rows = async () => Number(((await brana.broker.db('account_session').count({ n: '*' })) as Array<{ n: number | string }>)[0]!.n);
    const from = (client: string) => supertest(origin()).get('/account/login').set('X-Forwarded-For', client);
    for (let i = 0; i < 3; i += 1) assert.equal((await from('203.0.113.77')).status, 303);
    const before = await rows();
    const refused = await from('203.0.113.77');
    assert.equal(refused.status, 429);
    assert.equal(refused.headers['set-cookie'], undefined);
    assert.equal(await rows(), before, 'no row written');
    assert.equal((await from('203.0.113.78')).status, 303, 'another address is not affected');
  });

  it('looks for a citizen\'s history only in groups an administrator let in: registrations alone do not grow the query', async () => {
    const before = await brana.broker.seps.listGroups();
    for (let i = 0; i < 5; i += 1) await selfRegister(brana, registrationMetadata({}, { group: `flood-${process.pid}-${i}` }));
    assert.deepEqual(await brana.broker.seps.listGroups(), before);
  });
});
