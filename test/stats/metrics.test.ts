import assert from 'node:assert/strict';
import supertest from 'supertest';
import { chooseMeans, completeLogin, decideConsent, loginAtIdp, postToAcs, startLogin } from '../support/login-driver.ts';
import { sample } from '../support/prometheus.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

describe('/metrics in Prometheus format: logins, failures by reason, latency per step and means', () => {
  let brana: TestBroker;
  let http: ReturnType<typeof supertest>;
  let monitor: string;
  const scrape = async () => {
    const response = await http.get('/metrics').set('Authorization', `Bearer ${monitor}`);
    assert.equal(response.status, 200);
    assert.match(String(response.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    return response.text;
  };

  before(async () => {
    brana = await startTestBroker();
    http = supertest(brana.url.origin);
    monitor = (await brana.broker.operators.issue('monitor', 'prometheus')).token;
  });
  after(async () => brana.close());

  it('counts a login by its means and times every step it went through', async () => {
    const sep = await brana.registerSep();
    await completeLogin(brana.url.origin, sep, { means: 'eobcanka', login: '100000001', scope: 'openid profile' });
    const text = await scrape();
    assert.equal(sample(text, 'brana_logins_total', { means: 'eobcanka' }), 1);
    assert.equal(sample(text, 'brana_first_time_resolutions_total', { means: 'eobcanka' }), 1);
    for (const step of ['upstream_request', 'identity_means', 'upstream_response', 'token']) {
      assert.equal(sample(text, 'brana_step_duration_seconds_count', { step, means: 'eobcanka' }), 1, step);
    }
    for (const step of ['authorization', 'consent', 'userinfo']) {
      assert.ok((sample(text, 'brana_step_duration_seconds_count', { step }) ?? 0) >= 1, step);
    }
    assert.ok((sample(text, 'brana_step_duration_seconds_sum', { step: 'token', means: 'eobcanka' }) ?? -1) > 0);
    assert.ok((sample(text, 'brana_process_resident_memory_bytes') ?? 0) > 0, 'the process metrics are there too');
  });

  it('counts failures by reason', async () => {
    const sep = await brana.registerSep();
    const started = await startLogin(brana.url.origin, sep, { scope: 'openid profile' });
    const idp = await loginAtIdp(started.citizen, await chooseMeans(started.citizen, started.response, 'mojeid'), 'jnovak');
    await decideConsent(started.citizen, await postToAcs(started.citizen, idp.acs, idp.fields), 'refuse');
    const text = await scrape();
    assert.equal(sample(text, 'brana_login_failures_total', { reason: 'refused_by_citizen' }), 1);
    assert.equal(sample(text, 'brana_logins_total', { means: 'mojeid' }), undefined);
  });

  it('answers operators only', async () => {
    const anonymous = await http.get('/metrics');
    assert.equal(anonymous.status, 401);
    assert.doesNotMatch(anonymous.text, /brana_logins_total/);
    const auditor = (await brana.broker.operators.issue('auditor', 'auditor')).token;
    assert.equal((await http.get('/metrics').set('Authorization', `Bearer ${auditor}`)).status, 200);
  });
});
