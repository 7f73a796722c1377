import assert from 'node:assert/strict';
import supertest from 'supertest';
import { LANGUAGE_COOKIE } from '../../src/pages/render.ts';
import { codesIssuedTo, recordsOfLogin } from '../support/audit.ts';
import { chooseMeans, completeLogin, loginAtIdp, startLogin, userinfo } from '../support/login-driver.ts';
import { RegisterService } from '../support/register-service.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

describe('a login resolved against a population register service over HTTP', () => {
  let service: RegisterService;
  let brana: TestBroker;
  before(async () => {
    service = await RegisterService.start();
    brana = await startTestBroker({
      env: { BRANA_POPULATION_REGISTER_URL: service.url.href, BRANA_POPULATION_REGISTER_TOKEN_ENV: 'TEST_ROB_TOKEN', TEST_ROB_TOKEN: 'rob-token', BRANA_POPULATION_REGISTER_TIMEOUT_MS: '500' },
    });
  });
  beforeEach(() => service.reset());
  after(async () => {
    await brana.close();
    await service.close();
  });

  it('resolves the citizen in the register and releases the register record, same person through two means', async () => {
    const sep = await brana.registerSep({ allowedAttributes: ['CurrentGivenName', 'CurrentFamilyName', 'DateOfBirth', 'PlaceOfBirth'] });
    const viaCard = await completeLogin(brana.url.origin, sep, { means: 'eobcanka', login: '100000001', scope: 'openid profile' });
    const viaMojeId = await completeLogin(brana.url.origin, sep, { means: 'mojeid', login: 'jnovak', scope: 'openid profile' });
    assert.equal(viaCard.idToken.sub, viaMojeId.idToken.sub);
    assert.equal(viaCard.userinfo.family_name, 'Novák');
    assert.equal(viaCard.userinfo.PlaceOfBirth, 'Praha');
    const paths = service.requests.map((r) => `${r.method} ${r.path}`);
    assert.ok(paths.includes('POST /rob/v1/match'), paths.join(', '));
    assert.ok(paths.includes('GET /rob/v1/persons/AIFO-0001-JN'), 'the claims come from the register record');
    assert.ok(service.requests.every((r) => r.authorization === 'Bearer rob-token'));
    const ready = await supertest(brana.url.origin).get('/readyz').expect(200);
    assert.deepEqual(ready.body.checks.register, { ok: true, detail: 'reachable' });
  });

  it('shows the citizen "try again in a few minutes" (503) when the register is down, and issues no code', async () => {
    const sep = await brana.registerSep();
    service.always = { status: 503 };
    const started = await startLogin(brana.url.origin, sep, { scope: 'openid' });
    const idp = await loginAtIdp(started.citizen, await chooseMeans(started.citizen, started.response, 'eobcanka'), '100000002');
    // eObčanka answers with a SAML form post; Brána sends the browser to the login's error page.
    const toPage = await started.citizen.post(idp.acs, idp.fields);
    assert.equal(toPage.status, 303);
    const page = await started.citizen.get(String(toPage.headers.location));
    assert.equal(page.status, 503);
    assert.match(page.text, /Vaši totožnost teď nemůžeme ověřit v registru obyvatel/);
    assert.match(page.text, /Zkusit znovu: /, 'the citizen can try the same means again');
    started.citizen.agent.jar.setCookie(`${LANGUAGE_COOKIE}=en; Path=/`, brana.url.hostname, '/');
    const english = await started.citizen.get(String(toPage.headers.location));
    assert.equal(english.status, 503);
    assert.match(english.text, /We cannot verify your identity right now: the population register is temporarily unavailable\. Please try again in a few minutes\./);
    assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 0);
    const records = await recordsOfLogin(brana.broker, started.codeVerifier);
    assert.deepEqual(
      records.map((r) => r.event),
      ['request_received', 'request_sent_upstream', 'error'],
    );
    assert.equal(records.at(-1)!.reason, 'register_unavailable');
    assert.equal(service.requests.filter((r) => r.path === '/rob/v1/match').length, 3, 'one look-up and two retries');
  });

  it('answers userinfo with 503 temporarily_unavailable (not a server error) while the register is down, and again once it is back', async () => {
    const sep = await brana.registerSep({ allowedAttributes: ['CurrentGivenName', 'CurrentFamilyName'] });
    const done = await completeLogin(brana.url.origin, sep, { means: 'eobcanka', login: '100000001', scope: 'openid profile' });
    service.always = { status: 503 };
    const down = await userinfo(brana.url.origin, done.tokens.access_token);
    assert.equal(down.status, 503);
    assert.equal(down.body.error, 'temporarily_unavailable');
    assert.match(down.body.error_description, /population register/);
    service.reset();
    const back = await userinfo(brana.url.origin, done.tokens.access_token);
    assert.equal(back.status, 200);
    assert.equal(back.body.family_name, 'Novák');
  });
});
