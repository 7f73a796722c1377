import assert from 'node:assert/strict';
import type { ResponseSpec } from '../../src/devidp/saml-response-builder.ts';
import { codesIssuedTo, recordsOfLogin } from '../support/audit.ts';
import { authnRequestOf } from '../support/external-idp.ts';
import {
  authnRequestIdOf,
  authorizationResponse,
  chooseMeans,
  completeLogin,
  decodeJwt,
  loginAtIdp,
  postToAcs,
  redeemCode,
  returnToBrana,
  startLogin,
  type Citizen,
  type Sep,
} from '../support/login-driver.ts';
import { forgedResponse, JAN_NOVAK } from '../support/saml-forge.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

const HIGH = 'http://eidas.europa.eu/LoA/high';
const SUBSTANTIAL = 'http://eidas.europa.eu/LoA/substantial';
const LOW = 'http://eidas.europa.eu/LoA/low';

function offered(html: string): string[] {
  return [...html.matchAll(/name="means" value="([^"]+)"/g)].map((match) => match[1]!);
}

describe('levels of assurance', () => {
  let brana: TestBroker;
  before(async () => {
    brana = await startTestBroker();
  });
  after(async () => brana.close());

  /** Starts a login at one means and returns the id of the AuthnRequest the development IdP answers. */
  async function atIdp(sep: Sep, means: string, login: string, options: Parameters<typeof startLogin>[2] = {}, citizen?: Citizen) {
    const started = await startLogin(brana.url.origin, sep, { scope: 'openid', idpHint: means, ...options }, citizen);
    const idp = await loginAtIdp(started.citizen, started.response, login);
    return { ...started, idp, requestId: authnRequestIdOf(idp.sealedRequest) };
  }

  async function forged(sep: Sep, means: string, login: string, change: Partial<ResponseSpec>) {
    const reached = await atIdp(sep, means, login);
    const page = await postToAcs(reached.citizen, reached.idp.acs, { SAMLResponse: await forgedResponse(brana, means, reached.requestId, change) });
    const records = await recordsOfLogin(brana.broker, reached.codeVerifier);
    return { ...reached, page, reason: records.find((record) => record.event === 'error')?.reason, records };
  }

  describe('which means are offered', () => {
    it('lists only the means that reach the SeP\'s minimum, strictest of registration, acr_values, NIA scopes and an essential acr', async () => {
      const high = await brana.registerSep({ minimumLoa: 'high' });
      assert.deepEqual(offered((await startLogin(brana.url.origin, high)).response.text), ['eobcanka', 'mojeid', 'ica-starcos']);
      const substantial = await brana.registerSep({ minimumLoa: 'substantial' });
      assert.deepEqual(offered((await startLogin(brana.url.origin, substantial)).response.text), [
        'eobcanka', 'nia-id', 'mobilni-klic', 'mojeid', 'ica-starcos', 'bankid', 'csob', 'ceska-sporitelna', 'komercni-banka', 'moneta',
      ]);
      const low = await brana.registerSep({ minimumLoa: 'low' });
      assert.ok(offered((await startLogin(brana.url.origin, low)).response.text).includes('isds'));
      for (const options of [{ acrValues: HIGH }, { scope: 'openid loahigh' }, { claims: { id_token: { acr: { essential: true, value: HIGH } } } }]) {
        assert.deepEqual(offered((await startLogin(brana.url.origin, low, options)).response.text), ['eobcanka', 'mojeid', 'ica-starcos'], JSON.stringify(options));
      }
      assert.ok(!offered((await startLogin(brana.url.origin, substantial, { acrValues: LOW })).response.text).includes('isds'), 'a SeP cannot ask for less than it registered');
    });

    it('goes straight to the only means that qualifies, by LoA or by the SeP\'s registered means', async () => {
      const card = await brana.registerSep({ allowedMeans: ['ica-starcos'] });
      assert.match(String((await startLogin(brana.url.origin, card)).response.headers.location), /\/dev-idp\/ica-starcos\/sso\?SAMLRequest=/);
      const highFew = await brana.registerSep({ minimumLoa: 'high', allowedMeans: ['eobcanka', 'nia-id', 'bankid'] });
      assert.match(String((await startLogin(brana.url.origin, highFew)).response.headers.location), /\/dev-idp\/eobcanka\/sso\?/);
      const bank = await brana.registerSep({ allowedMeans: ['bankid'] });
      const toBank = new URL(String((await startLogin(brana.url.origin, bank)).response.headers.location));
      assert.equal(toBank.pathname, '/dev-oidc/bankid/auth');
      assert.equal(toBank.searchParams.get('code_challenge_method'), 'S256');
      assert.match(String(toBank.searchParams.get('state')), /^[A-Za-z0-9_-]{43}$/);
      assert.ok(toBank.searchParams.get('nonce'));
      assert.equal(toBank.searchParams.get('acr_values'), SUBSTANTIAL);
    });

    it('sends the minimum upstream: RequestedAuthnContext minimum for SAML, acr_values for OIDC', async () => {
      const low = await brana.registerSep({ minimumLoa: 'low' });
      const toMojeid = (await startLogin(brana.url.origin, low, { idpHint: 'mojeid', acrValues: SUBSTANTIAL })).response;
      const { xml } = authnRequestOf(new URL(String(toMojeid.headers.location), brana.url.origin).href);
      assert.match(xml, /<samlp:RequestedAuthnContext[^>]*Comparison="minimum"[^>]*><saml:AuthnContextClassRef[^>]*>http:\/\/eidas\.europa\.eu\/LoA\/substantial</);
      assert.match(xml, /<eidas:SPType[^>]*>public</);
      assert.doesNotMatch(xml, /ForceAuthn="true"/);
      const toBank = new URL(String((await startLogin(brana.url.origin, low, { idpHint: 'bankid' })).response.headers.location), brana.url.origin);
      assert.equal(toBank.searchParams.get('acr_values'), `${SUBSTANTIAL} ${LOW}`, 'acceptable values from the means\' maximum down to the minimum');
    });
  });

  describe('downgrades and forgeries', () => {
    it('refuses a signed substantial for a high request', async () => {
      const high = await brana.registerSep({ minimumLoa: 'high' });
      const attempt = await forged(high, 'mojeid', 'msvobodova', { loa: 'substantial' });
      assert.equal(attempt.page.status, 403);
      assert.equal(attempt.reason, 'loa_below_minimum');
      assert.equal(await codesIssuedTo(brana.broker, high.clientId), 0);
    });

    it('refuses an unsigned "high", and a "high" signed only on the envelope', async () => {
      const high = await brana.registerSep({ minimumLoa: 'high' });
      for (const change of [{ signAssertion: false, signResponse: false }, { signAssertion: false, signResponse: true }]) {
        const attempt = await forged(high, 'eobcanka', '100000001', { loa: 'high', ...change });
        assert.equal(attempt.page.status, 400, JSON.stringify(change));
        assert.equal(attempt.reason, 'signature_invalid', JSON.stringify(change));
      }
      assert.equal(await codesIssuedTo(brana.broker, high.clientId), 0);
    });

    it('ignores a "high" carried in attributes next to a signed substantial context', async () => {
      const high = await brana.registerSep({ minimumLoa: 'high' });
      const attributes = [
        ...JAN_NOVAK,
        { name: 'http://eidas.europa.eu/LoA', values: [HIGH] },
        { name: 'urn:oasis:names:tc:SAML:2.0:ac:classes:AuthnContextClassRef', values: [HIGH] },
        { name: 'AuthnContextClassRef', values: [HIGH] },
      ];
      const attempt = await forged(high, 'mojeid', 'msvobodova', { loa: 'substantial', attributes });
      assert.equal(attempt.reason, 'loa_below_minimum');
      assert.equal(await codesIssuedTo(brana.broker, high.clientId), 0);
    });

    it('refuses an authentication context that is no eIDAS LoA and that the means does not map', async () => {
      const sep = await brana.registerSep();
      const attempt = await forged(sep, 'eobcanka', '100000001', { loa: 'urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport' });
      assert.equal(attempt.reason, 'loa_unmapped');
    });

    it('caps what a substantial means signs at substantial, so that a session from it steps up for high', async () => {
      const substantial = await brana.registerSep({ minimumLoa: 'substantial' });
      const attempt = await forged(substantial, 'nia-id', 'jan.novak', { loa: 'high' });
      const code = authorizationResponse(attempt.page, substantial).get('code')!;
      const token = await redeemCode(brana.url.origin, substantial, code, attempt.codeVerifier);
      assert.equal(decodeJwt(token.body.id_token as string).acr, SUBSTANTIAL, 'nia-id is registered for substantial at most');
      assert.equal(attempt.records.find((record) => record.event === 'response_received')?.loa, 'substantial');

      const high = await brana.registerSep({ minimumLoa: 'high' });
      const silent = await startLogin(brana.url.origin, high, { prompt: 'none', scope: 'openid' }, attempt.citizen);
      assert.equal(authorizationResponse(silent.response, high).get('error'), 'login_required');
    });
  });

  describe('step-up, max_age and prompt=login', () => {
    it('makes a citizen with a substantial session log in again at a high means for a SeP that needs high', async () => {
      const portal = await brana.registerSep({ minimumLoa: 'substantial' });
      const high = await brana.registerSep({ minimumLoa: 'high' });
      const first = await completeLogin(brana.url.origin, portal, { means: 'mojeid', login: 'jnovak', scope: 'openid' });
      assert.equal(first.idToken.acr, SUBSTANTIAL);

      const sso = await startLogin(brana.url.origin, await brana.registerSep({ minimumLoa: 'substantial' }), { scope: 'openid' }, first.citizen);
      assert.equal(sso.response.status, 303, 'a SeP needing no more than the session has gets single sign-on');
      assert.ok(new URL(String(sso.response.headers.location)).searchParams.get('code'));

      const silent = await startLogin(brana.url.origin, high, { prompt: 'none', scope: 'openid' }, first.citizen);
      assert.equal(authorizationResponse(silent.response, high).get('error'), 'login_required');
      assert.equal(await codesIssuedTo(brana.broker, high.clientId), 0);

      const stepUp = await startLogin(brana.url.origin, high, { scope: 'openid' }, first.citizen);
      assert.deepEqual(offered(stepUp.response.text), ['eobcanka', 'mojeid', 'ica-starcos']);
      const idp = await loginAtIdp(first.citizen, await chooseMeans(first.citizen, stepUp.response, 'eobcanka'), '100000001');
      const code = authorizationResponse(await returnToBrana(first.citizen, idp), high).get('code')!;
      const stepped = decodeJwt((await redeemCode(brana.url.origin, high, code, stepUp.codeVerifier)).body.id_token as string);
      assert.equal(stepped.acr, HIGH);
      assert.deepEqual(stepped.amr, ['eobcanka']);
    });

    it('asks a SAML means for ForceAuthn on prompt=login and max_age, and states a fresh auth_time', async () => {
      const sep = await brana.registerSep();
      const first = await completeLogin(brana.url.origin, sep, { means: 'eobcanka', login: '100000001', scope: 'openid' });
      for (const options of [{ prompt: 'login' }, { maxAge: 0 }]) {
        const before = Math.floor(Date.now() / 1000);
        const again = await startLogin(brana.url.origin, sep, { scope: 'openid', idpHint: 'eobcanka', ...options }, first.citizen);
        assert.equal(again.response.status, 303, 'no single sign-on: the citizen goes to the means again');
        const { xml } = authnRequestOf(new URL(String(again.response.headers.location), brana.url.origin).href);
        assert.match(xml, /ForceAuthn="true"/, JSON.stringify(options));
        const idp = await loginAtIdp(first.citizen, again.response, '100000001');
        const code = authorizationResponse(await returnToBrana(first.citizen, idp), sep).get('code')!;
        const token = decodeJwt((await redeemCode(brana.url.origin, sep, code, again.codeVerifier)).body.id_token as string);
        assert.ok(Number(token.auth_time) >= before, `auth_time ${String(token.auth_time)} is not fresh (${before})`);
      }
    });

    it('refuses an old authentication when a fresh one was asked for, and accepts it when it was not', async () => {
      const sep = await brana.registerSep();
      const threeMinutesAgo = new Date(Date.now() - 3 * 60_000);
      const stale = { now: threeMinutesAgo, validitySeconds: 600 };
      const forcedRun = await startLogin(brana.url.origin, sep, { scope: 'openid', idpHint: 'eobcanka', prompt: 'login' });
      const forcedIdp = await loginAtIdp(forcedRun.citizen, forcedRun.response, '100000001');
      const forcedPage = await postToAcs(forcedRun.citizen, forcedIdp.acs, { SAMLResponse: await forgedResponse(brana, 'eobcanka', authnRequestIdOf(forcedIdp.sealedRequest), stale) });
      assert.equal(forcedPage.status, 400);
      assert.equal((await recordsOfLogin(brana.broker, forcedRun.codeVerifier)).find((record) => record.event === 'error')?.reason, 'authn_not_fresh');
      assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 0);

      const plain = await forged(sep, 'eobcanka', '100000001', stale);
      assert.ok(authorizationResponse(plain.page, sep).get('code'), 'an SSO-style older authentication is fine when none was forced');
    });

    it('asks an OIDC means for prompt=login and max_age=0, which ends the provider\'s own single sign-on', async () => {
      const sep = await brana.registerSep();
      const first = await completeLogin(brana.url.origin, sep, { means: 'bankid', login: 'jan.novak', scope: 'openid' });
      // Brána's own session would give single sign-on; the bank's session would too, without prompt=login.
      const other = await brana.registerSep();
      const quiet = await startLogin(brana.url.origin, other, { scope: 'openid', idpHint: 'bankid' }, first.citizen);
      assert.equal(quiet.response.status, 303);
      assert.ok(new URL(String(quiet.response.headers.location)).searchParams.get('code'), 'single sign-on at Brána');

      const before = Math.floor(Date.now() / 1000);
      const forced = await startLogin(brana.url.origin, sep, { scope: 'openid', idpHint: 'bankid', prompt: 'login' }, first.citizen);
      const toBank = new URL(String(forced.response.headers.location), brana.url.origin);
      assert.equal(toBank.searchParams.get('prompt'), 'login');
      assert.equal(toBank.searchParams.get('max_age'), '0');
      const atBank = await first.citizen.get(toBank.pathname + toBank.search);
      const loginPage = await first.citizen.get(String(atBank.headers.location));
      assert.equal(loginPage.status, 200, 'the bank shows its login page again instead of its single sign-on');
      assert.match(loginPage.text, /Bankovní identita/);
      const idp = await loginAtIdp(first.citizen, atBank, 'jan.novak');
      const code = authorizationResponse(await returnToBrana(first.citizen, idp), sep).get('code')!;
      const token = decodeJwt((await redeemCode(brana.url.origin, sep, code, forced.codeVerifier)).body.id_token as string);
      assert.ok(Number(token.auth_time) >= before);
      assert.equal(token.sub, first.idToken.sub);
    });
  });
});
