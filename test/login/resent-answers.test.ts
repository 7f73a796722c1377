import assert from 'node:assert/strict';
import supertest from 'supertest';
import { codesIssuedTo, recordsOfLogin } from '../support/audit.ts';
import {
  authnRequestIdOf,
  authorizationResponse,
  chooseMeans,
  Citizen,
  completeLogin,
  decideConsent,
  loginAtIdp,
  postToAcs,
  redeemCode,
  startLogin,
  type AuthorizationOptions,
  type IdpAnswer,
  type Sep,
  type StartedLogin,
} from '../support/login-driver.ts';
import { forgedResponse } from '../support/saml-forge.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

/**
 * Issue 18: a browser that got no answer (a 502: the node died after its commit, or the load
 * balancer gave up on it) sends the same request again. The very answer already accepted, re-sent
 * by the browser that began the login while the login still waits for it, continues the login as
 * the first post would have; from any other browser, or once the login went on or ended, it is the
 * replay it always was. A repeated resume (GET /auth/<uid>) gets the answer the lost one had.
 */
describe('answers a browser sends again after a 502', () => {
  let brana: TestBroker;
  before(async () => {
    brana = await startTestBroker();
  });
  after(async () => brana.close());

  /** A login up to eObčanka's answer: the ACS form the browser carries back. */
  async function atIdp(sep: Sep, options: AuthorizationOptions = {}): Promise<{ started: StartedLogin; idp: IdpAnswer }> {
    const started = await startLogin(brana.url.origin, sep, { scope: 'openid profile', ...options });
    const idp = await loginAtIdp(started.citizen, await chooseMeans(started.citizen, started.response, 'eobcanka'), '100000001');
    return { started, idp };
  }
  const eventsOf = async (started: StartedLogin) => (await recordsOfLogin(brana.broker, started.codeVerifier)).map((record) => record.event);
  const refusalsOf = async (started: StartedLogin) =>
    (await recordsOfLogin(brana.broker, started.codeVerifier)).filter((record) => record.event === 'error').map((record) => record.reason);
  const count = (events: string[], event: string) => events.filter((e) => e === event).length;
  /** The interaction an accepted answer's redirect names: the ACS sends the browser straight to its resume, /auth/<uid>. */
  const uidOf = (accepted: { headers: Record<string, unknown> }) => /\/auth\/([^/?]+)$/.exec(new URL(String(accepted.headers.location)).pathname)![1]!;
  const ALREADY_USED = /Tuto odpověď od poskytovatele identity jsme už jednou přijali/;
  const START_AGAIN = /Vraťte se do služby, ze které jste přišli, a začněte přihlášení znovu/;

  it('continues the login when the browser re-sends the answer accepted just before its 502: the consent page, one answer in the log', async () => {
    const sep = await brana.registerSep();
    const { started, idp } = await atIdp(sep);
    const lost = await started.citizen.post(idp.acs, idp.fields);
    assert.equal(lost.status, 303, 'accepted and committed; the browser never saw this redirect');

    const again = await postToAcs(started.citizen, idp.acs, idp.fields);
    assert.equal(again.status, 200, again.text.slice(0, 300));
    assert.match(again.text, /name="decision"/, 'where the first post would have gone: the consent page');
    const params = authorizationResponse(await decideConsent(started.citizen, again, 'agree'), sep);
    assert.equal(params.get('state'), started.state);
    assert.equal((await redeemCode(brana.url.origin, sep, params.get('code')!, started.codeVerifier)).status, 200);
    assert.deepEqual(await eventsOf(started), ['request_received', 'request_sent_upstream', 'response_received', 'identity_resolved', 'consent_given', 'token_issued']);
    assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 1);
  });

  it('continues it too when the login result was stored but the browser never reached the resume', async () => {
    const sep = await brana.registerSep();
    const { started, idp } = await atIdp(sep);
    const accepted = await started.citizen.post(idp.acs, idp.fields);
    // The ACS stored the login result on the interaction; its redirect to /auth/<uid> is lost.
    const row = await brana.broker.db('oidc_model').where({ model: 'Interaction', id: uidOf(accepted) }).first('payload');
    const stored = JSON.parse((row as { payload: string }).payload) as { result?: { login?: { accountId?: string; amr?: string[] } } };
    assert.ok(stored.result?.login?.accountId, 'the interaction holds the login result');
    assert.deepEqual(stored.result.login.amr, ['eobcanka']);

    const again = await postToAcs(started.citizen, idp.acs, idp.fields);
    assert.match(again.text, /name="decision"/);
    assert.ok(authorizationResponse(await decideConsent(started.citizen, again, 'agree'), sep).get('code'));
    const events = await eventsOf(started);
    assert.equal(count(events, 'response_received'), 1);
    assert.equal(count(events, 'identity_resolved'), 1);
    assert.equal(count(events, 'error'), 0);
  });

  it('sends the browser from the ACS straight to the resumed authorization, which only the browser that began the login takes up: no code for another', async () => {
    const sep = await brana.registerSep();
    // Nothing to consent to: the resume itself issues the code.
    const { started, idp } = await atIdp(sep, { scope: 'openid' });
    const accepted = await started.citizen.post(idp.acs, idp.fields);
    assert.equal(accepted.status, 303);
    const resume = new URL(String(accepted.headers.location));
    assert.match(resume.pathname, /^\/auth\/[^/]+$/, 'one request fewer: no stop at the interaction');
    // Whoever else follows the same redirect — a browser without cookies, or one with a session and
    // a login of its own at the same service — gets no code and nothing of this login.
    const bare = await new Citizen(brana.url.origin).get(resume.href);
    const thief = (await atIdp(sep)).started.citizen;
    const stolen = await thief.get(resume.href);
    for (const page of [bare, stolen]) {
      assert.equal(page.status, 400);
      assert.match(page.text, START_AGAIN);
      assert.doesNotMatch(String(page.headers.location ?? ''), /code=/);
    }
    assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 0, 'no code for another browser');
    const params = authorizationResponse(await started.citizen.get(resume.href), sep);
    assert.ok(params.get('code'), 'the browser that began the login gets its code');
    assert.equal(params.get('state'), started.state);
    assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 1);
    assert.equal((await redeemCode(brana.url.origin, sep, params.get('code')!, started.codeVerifier)).status, 200);
  });

  it('refuses the same answer from another browser (whoever captured it): a replay, logged, nothing issued; the login stays its browser’s', async () => {
    const sep = await brana.registerSep();
    const { started, idp } = await atIdp(sep);
    const accepted = await started.citizen.post(idp.acs, idp.fields);
    // The thief has a session and an interaction of their own at the same service: neither is this login's.
    const thief = (await atIdp(sep)).started.citizen;
    const page = await postToAcs(thief, idp.acs, idp.fields);
    assert.equal(page.status, 400);
    assert.match(page.text, ALREADY_USED);
    assert.match(page.text, START_AGAIN);
    assert.doesNotMatch(page.text, /\/interaction\/[^"/]+\/(abort|means)/, 'nothing of the victim’s login is offered');
    assert.match(page.text, /<strong class="reference">/);
    assert.deepEqual(await refusalsOf(started), ['replayed_response']);
    const bare = await postToAcs(new Citizen(brana.url.origin), idp.acs, idp.fields);
    assert.equal(bare.status, 400, 'a browser without any cookie');
    assert.deepEqual(await refusalsOf(started), ['replayed_response', 'replayed_response']);
    assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 0, 'no code for the replays');

    const consent = await started.citizen.follow(accepted);
    assert.match(consent.text, /name="decision"/, 'the browser that began the login goes on');
    assert.ok(authorizationResponse(await decideConsent(started.citizen, consent, 'agree'), sep).get('code'));
    assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 1);
    const events = await eventsOf(started);
    assert.equal(count(events, 'response_received'), 1);
    assert.equal(count(events, 'identity_resolved'), 1);
  });

  it('refuses a re-send once the login went on (at the consent page) or ended (the code issued), saying what happened', async () => {
    const sep = await brana.registerSep();
    const { started, idp } = await atIdp(sep);
    const consent = await postToAcs(started.citizen, idp.acs, idp.fields);
    assert.match(consent.text, /name="decision"/);

    const atConsent = await postToAcs(started.citizen, idp.acs, idp.fields);
    assert.equal(atConsent.status, 400);
    assert.match(atConsent.text, /Přihlášení se nezdařilo/);
    assert.match(atConsent.text, ALREADY_USED, 'not "could not be verified": it was accepted');
    assert.deepEqual(await refusalsOf(started), ['replayed_response']);
    assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 0);

    const params = authorizationResponse(await decideConsent(started.citizen, consent, 'agree'), sep);
    assert.ok(params.get('code'), 'the consent page still works');
    const afterEnd = await postToAcs(started.citizen, idp.acs, idp.fields);
    assert.equal(afterEnd.status, 400);
    assert.match(afterEnd.text, ALREADY_USED);
    assert.deepEqual(await refusalsOf(started), ['replayed_response', 'replayed_response']);
    assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 1, 'no second code');
    assert.equal(count(await eventsOf(started), 'identity_resolved'), 1);
  });

  it('refuses another answer to the answered request, even from the browser that began the login', async () => {
    const sep = await brana.registerSep();
    const { started, idp } = await atIdp(sep);
    const accepted = await started.citizen.post(idp.acs, idp.fields);
    // Signed by the means' real key, answering the same request: but not the answer that was accepted.
    const other = await forgedResponse(brana, 'eobcanka', authnRequestIdOf(idp.sealedRequest));
    const page = await postToAcs(started.citizen, idp.acs, { SAMLResponse: other });
    assert.equal(page.status, 400);
    assert.match(page.text, /se nepodařilo ověřit/);
    assert.deepEqual(await refusalsOf(started), ['replayed_response']);
    assert.match((await started.citizen.follow(accepted)).text, /name="decision"/, 'the accepted answer still continues the login');
  });

  it('takes up a re-send only when the ACS sent the browser there: a typed or forged URL is just a gone login, and logs nothing', async () => {
    const sep = await brana.registerSep();
    const { started, idp } = await atIdp(sep);
    const accepted = await started.citizen.post(idp.acs, idp.fields);
    const uid = uidOf(accepted);
    const requestId = encodeURIComponent(authnRequestIdOf(idp.sealedRequest));
    for (const url of [`/interaction/${uid}/resent/${requestId}`, `/interaction/${uid}/resent/${requestId}?check=${'A'.repeat(43)}`]) {
      const page = await started.citizen.get(url);
      assert.equal(page.status, 400, url);
      assert.match(page.text, /Přihlášení trvalo příliš dlouho/);
    }
    assert.deepEqual(await refusalsOf(started), []);
  });

  it('tells a browser whose login expired meanwhile to start again at the service, in Czech or English', async () => {
    const sep = await brana.registerSep();
    const { started, idp } = await atIdp(sep);
    const accepted = await started.citizen.post(idp.acs, idp.fields);
    const uid = uidOf(accepted);
    await brana.broker.db('oidc_model').where({ model: 'Interaction', id: uid }).update({ expires_at: Date.now() - 1 });

    const page = await postToAcs(started.citizen, idp.acs, idp.fields);
    assert.equal(page.status, 400);
    assert.match(page.text, ALREADY_USED);
    assert.match(page.text, START_AGAIN);
    assert.match(page.text, /class="language-switch" href="\/language\?to=en/);
    await started.citizen.get('/language?to=en&back=/');
    const english = await postToAcs(started.citizen, idp.acs, idp.fields);
    assert.match(english.text, /We had already accepted this answer from the identity provider once/);
    assert.match(english.text, /Return to the service you came from and start the login again/);
    assert.deepEqual(await refusalsOf(started), ['replayed_response', 'replayed_response']);
    assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 0);
  });

  it('gives a repeated resume (GET /auth/:uid) the answer the lost one had: the same code, nothing made twice', async () => {
    const sep = await brana.registerSep();
    // Nothing to consent to: the resume itself issues the code.
    const { started, idp } = await atIdp(sep, { scope: 'openid' });
    const accepted = await started.citizen.post(idp.acs, idp.fields);
    const resumeUrl = String(accepted.headers.location);
    const lost = authorizationResponse(await started.citizen.getLost(resumeUrl), sep);

    // The resume cookie alone is not the request that was answered: with another browser's session, no answer is given again.
    const other = (await completeLogin(brana.url.origin, await brana.registerSep(), { means: 'mojeid', login: 'jnovak' })).citizen;
    const resumeCookies = started.citizen.cookiesFor(resumeUrl).split('; ').filter((cookie) => /resume/.test(cookie));
    const sessionCookies = other.cookiesFor('/').split('; ').filter((cookie) => /session/.test(cookie));
    assert.equal(resumeCookies.length, 2, 'the resume cookie and its signature');
    assert.equal(sessionCookies.length, 2, 'a session cookie and its signature');
    const mixed = await supertest(brana.url.origin).get(new URL(resumeUrl).pathname).set('Cookie', [...resumeCookies, ...sessionCookies].join('; ')).redirects(0);
    assert.equal(mixed.status, 400);
    assert.match(mixed.text, START_AGAIN);

    const params = authorizationResponse(await started.citizen.get(resumeUrl), sep);
    assert.equal(params.get('code'), lost.get('code'), 'the same code again, not a second one');
    assert.equal(params.get('state'), started.state);
    assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 1);
    assert.equal((await redeemCode(brana.url.origin, sep, params.get('code')!, started.codeVerifier)).status, 200);

    // That answer cleared the browser's resume cookie: a third time, and any other browser, get the honest page.
    for (const browser of [started.citizen, new Citizen(brana.url.origin)]) {
      const page = await browser.get(resumeUrl);
      assert.equal(page.status, 400);
      assert.match(page.text, /Přihlášení trvalo příliš dlouho nebo bylo otevřeno v jiném prohlížeči/);
      assert.match(page.text, START_AGAIN);
    }
    assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 1);
    const events = await eventsOf(started);
    for (const event of ['request_received', 'response_received', 'identity_resolved', 'token_issued']) assert.equal(count(events, event), 1, event);
  });

  it('continues the login when the browser reloads the callback of an OIDC means after its 502', async () => {
    const sep = await brana.registerSep();
    const started = await startLogin(brana.url.origin, sep, { scope: 'openid profile' });
    const idp = await loginAtIdp(started.citizen, await chooseMeans(started.citizen, started.response, 'bankid'), 'jan.novak');
    assert.equal(idp.method, 'get');
    assert.equal((await started.citizen.get(idp.acs)).status, 303, 'accepted; the redirect is lost');
    const again = await started.citizen.follow(await started.citizen.get(idp.acs));
    assert.match(again.text, /name="decision"/);
    assert.ok(authorizationResponse(await decideConsent(started.citizen, again, 'agree'), sep).get('code'));
    assert.equal(count(await eventsOf(started), 'response_received'), 1);
  });
});
