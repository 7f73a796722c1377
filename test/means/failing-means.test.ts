import assert from 'node:assert/strict';
import { codesIssuedTo, recordsOfLogin } from '../support/audit.ts';
import { formAction } from '../support/html.ts';
import { authnRequestIdOf, authorizationResponse, loginAtIdp, postToAcs, returnToBrana, startLogin, type Sep } from '../support/login-driver.ts';
import { forgedResponse, JAN_NOVAK } from '../support/saml-forge.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

const STATUS = 'urn:oasis:names:tc:SAML:2.0:status:';

describe('when a SAML identity means fails', () => {
  let brana: TestBroker;
  before(async () => {
    brana = await startTestBroker();
  });
  after(async () => brana.close());

  /** A login at mojeID that the identity provider answers as the case says; the page Brána shows. */
  async function failAt(sep: Sep, answer: 'cancel' | 'fail' | { status: string; second?: string } | 'authn-failed-inside', english = false) {
    const citizen = (await startLogin(brana.url.origin, sep, { scope: 'openid', idpHint: 'mojeid' })).citizen;
    if (english) await citizen.get('/language?to=en&back=/');
    const started = await startLogin(brana.url.origin, sep, { scope: 'openid', idpHint: 'mojeid' }, citizen);
    const idp = await loginAtIdp(started.citizen, started.response, typeof answer === 'string' && answer !== 'authn-failed-inside' ? answer : 'jnovak');
    let fields = idp.fields;
    if (typeof answer === 'object') {
      fields = { SAMLResponse: await forgedResponse(brana, 'mojeid', authnRequestIdOf(idp.sealedRequest), { status: { code: answer.status, ...(answer.second ? { second: answer.second } : {}) } }) };
    } else if (answer === 'authn-failed-inside') {
      const attributes = [...JAN_NOVAK, { name: 'urn:oasis:names:tc:SAML:2.0:protocol/statuscode', values: [`${STATUS}AuthnFailed`] }];
      fields = { SAMLResponse: await forgedResponse(brana, 'mojeid', authnRequestIdOf(idp.sealedRequest), { attributes, loa: 'substantial' }) };
    }
    const page = await postToAcs(started.citizen, idp.acs, fields);
    const records = await recordsOfLogin(brana.broker, started.codeVerifier);
    return { ...started, page, reason: records.find((record) => record.event === 'error')?.reason };
  }

  const cases: Array<[string, Parameters<typeof failAt>[1], RegExp, string, number]> = [
    ['the citizen cancels at the identity provider', 'cancel', /Přihlášení prostředkem mojeID jste zrušili/, 'status_RequestDenied', 200],
    ['the identity provider answers AuthnFailed', 'fail', /Poskytovatel identity vás nepřihlásil/, 'status_AuthnFailed', 400],
    ['the identity provider answers an error status', { status: `${STATUS}Responder` }, /Poskytovatel identity vás nepřihlásil/, 'status_Responder', 400],
    ['a top-level Success hides AuthnFailed in an attribute', 'authn-failed-inside', /Poskytovatel identity vás nepřihlásil/, 'authn_failed_in_attribute', 400],
  ];
  for (const [what, answer, message, reason, status] of cases) {
    it(`${what}: a page in Czech with the other means and a retry, the reason in the log, no code`, async () => {
      const sep = await brana.registerSep();
      const failed = await failAt(sep, answer);
      assert.equal(failed.page.status, status);
      assert.match(failed.page.text, message);
      assert.match(failed.page.text, /Zkusit znovu: mojeID/);
      for (const other of ['eobcanka', 'nia-id', 'bankid', 'moneta']) assert.match(failed.page.text, new RegExp(`name="means" value="${other}"`));
      assert.doesNotMatch(failed.page.text, /class="means-button"[^>]*>\s*<span class="means-name">mojeID/, 'the failed means is not among the others');
      assert.equal(failed.reason, reason);
      assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 0);
    });
  }

  it('shows the page in English when the citizen chose English', async () => {
    const sep = await brana.registerSep();
    const failed = await failAt(sep, 'cancel', true);
    assert.match(failed.page.text, /You cancelled the login with mojeID/);
    assert.match(failed.page.text, /Try again: mojeID/);
    assert.match(failed.page.text, /Log in with another means/);
  });

  it('lets the citizen try again, or choose another means, and still finish the login', async () => {
    const sep = await brana.registerSep();
    const failed = await failAt(sep, 'cancel');
    const retry = await failed.citizen.post(formAction(failed.page.text), { means: 'mojeid' });
    const idp = await loginAtIdp(failed.citizen, retry, 'jnovak');
    assert.ok(authorizationResponse(await returnToBrana(failed.citizen, idp), sep).get('code'));

    const again = await failAt(sep, 'fail');
    const other = await again.citizen.post(formAction(again.page.text), { means: 'bankid' });
    const bank = await loginAtIdp(again.citizen, other, 'jan.novak');
    const params = authorizationResponse(await returnToBrana(again.citizen, bank), sep);
    assert.equal(params.get('state'), again.state);
    assert.ok(params.get('code'));
  });

  it('sends the SeP access_denied with a description when the citizen gives up, and logs why', async () => {
    const sep = await brana.registerSep();
    const failed = await failAt(sep, 'fail');
    const uid = /action="\/interaction\/([^/]+)\/abort"/.exec(failed.page.text)![1]!;
    const after = /name="after" value="([^"]+)"/.exec(failed.page.text)![1]!;
    assert.equal(after, 'authn_failed');
    const params = authorizationResponse(await failed.citizen.follow(await failed.citizen.post(`/interaction/${uid}/abort`, { after })), sep);
    assert.equal(params.get('error'), 'access_denied');
    assert.equal(params.get('error_description'), 'The citizen gave up the login after the identity means failed (authn_failed)');
    assert.equal(params.get('state'), failed.state);
    const reasons = (await recordsOfLogin(brana.broker, failed.codeVerifier)).filter((record) => record.event === 'error').map((record) => record.reason);
    assert.deepEqual(reasons, ['status_AuthnFailed', 'cancelled_by_citizen', 'access_denied']);
    assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 0);
  });

  it('does not let a made-up failure code through to the SeP', async () => {
    const sep = await brana.registerSep();
    const failed = await failAt(sep, 'cancel');
    const uid = /action="\/interaction\/([^/]+)\/abort"/.exec(failed.page.text)![1]!;
    const params = authorizationResponse(await failed.citizen.follow(await failed.citizen.post(`/interaction/${uid}/abort`, { after: '<script>alert(1)</script>' })), sep);
    assert.equal(params.get('error_description'), 'The citizen cancelled the login');
  });
});
