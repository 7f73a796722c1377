import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import supertest from 'supertest';
import { codesIssuedTo, recordsOfLogin } from '../support/audit.ts';
import { providersFolder } from '../support/external-idp.ts';
import { authorizationResponse, completeLogin, decodeJwt, redeemCode, startLogin, type Citizen, type Sep } from '../support/login-driver.ts';
import { TestOpenIdProvider } from '../support/test-openid-provider.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

const SUBSTANTIAL = 'http://eidas.europa.eu/LoA/substantial';
const HIGH = 'http://eidas.europa.eu/LoA/high';
const JAN = { sub: 'bank-subject-jan', claims: { given_name: 'Jan', family_name: 'Novák', birthdate: '1980-04-12', birthplace: 'Praha' } };

function testbankMeans(issuer: string, timeoutSeconds = 10): Record<string, unknown> {
  return {
    name: { cs: 'Testovací banka', en: 'Test bank' },
    administrator: { cs: 'Testovací banka, a.s.', en: 'Test bank' },
    loa: 'substantial',
    protocol: 'oidc',
    oidc: { issuer, clientId: 'brana-testbank', clientSecretEnv: 'BRANA_TESTBANK_SECRET', timeoutSeconds, acr: { 'urn:test:strong': 'high' } },
  };
}

/** The browser at the bank: follows its redirects (with the bank's own cookies) until it is sent back to Brána. */
async function throughProvider(location: string, bank: ReturnType<typeof supertest.agent>, op: TestOpenIdProvider): Promise<string> {
  let next = location;
  for (let hops = 0; hops < 10; hops += 1) {
    const url = new URL(next, op.issuer);
    if (url.origin !== new URL(op.issuer).origin) return url.href;
    const response = await bank.get(url.pathname + url.search).redirects(0);
    if (response.status < 300 || response.status >= 400) throw new Error(`the bank answered ${response.status}: ${response.text.slice(0, 300)}`);
    next = String(response.headers.location);
  }
  throw new Error('too many redirects at the bank');
}

describe('an upstream OpenID Provider (a bank) behind the same contract', () => {
  let op: TestOpenIdProvider;
  let brana: TestBroker;
  let providers: string;

  before(async () => {
    op = new TestOpenIdProvider({ account: JAN, acr: SUBSTANTIAL });
    await op.start();
    // slowbank is the same bank with a short back-channel timeout, for the test of a bank that never answers.
    providers = providersFolder({
      keep: ['eobcanka', 'mojeid', 'bankid'],
      extra: { testbank: testbankMeans(op.issuer), slowbank: { ...testbankMeans(op.issuer, 1), name: { cs: 'Pomalá banka', en: 'Slow bank' } } },
    });
    process.env.BRANA_TESTBANK_SECRET = op.clientSecret;
    brana = await startTestBroker({ env: { BRANA_PROVIDERS_DIR: providers } });
    await op.registerClient(`${brana.url.origin}/oidc/testbank/callback`, `${brana.url.origin}/oidc/slowbank/callback`);
  });
  after(async () => {
    await brana.close();
    await op.stop();
    delete process.env.BRANA_TESTBANK_SECRET;
  });
  beforeEach(() => {
    op.behaviour = { account: JAN, acr: SUBSTANTIAL };
  });

  /** A login sent to the bank; returns where the bank sends the browser back, without going there yet. */
  async function toBank(sep: Sep, options: Parameters<typeof startLogin>[2] = {}, means = 'testbank'): Promise<{ citizen: Citizen; codeVerifier: string; callback: string; state: string }> {
    const started = await startLogin(brana.url.origin, sep, { scope: 'openid profile', idpHint: means, ...options });
    assert.equal(started.response.status, 303);
    const callback = await throughProvider(String(started.response.headers.location), supertest.agent(op.issuer), op);
    return { citizen: started.citizen, codeVerifier: started.codeVerifier, callback, state: started.state };
  }

  async function back(citizen: Citizen, callback: string) {
    return citizen.follow(await citizen.get(callback));
  }

  async function reason(codeVerifier: string): Promise<string | null | undefined> {
    return (await recordsOfLogin(brana.broker, codeVerifier)).find((record) => record.event === 'error')?.reason;
  }

  it('logs a citizen in through the bank: discovery, code flow with PKCE, nonce, the bank\'s signed acr, the same person as through eObčanka', async () => {
    const sep = await brana.registerSep({ allowedAttributes: ['CurrentGivenName', 'CurrentFamilyName', 'DateOfBirth'] });
    const viaBank = await completeLoginThroughBank(sep);
    assert.equal(viaBank.idToken.acr, SUBSTANTIAL);
    assert.deepEqual(viaBank.idToken.amr, ['testbank']);
    assert.equal(viaBank.userinfo.family_name, 'Novák');
    const asked = op.lastAuthorization!;
    assert.equal(asked.get('code_challenge_method'), 'S256');
    assert.ok(asked.get('code_challenge') && asked.get('nonce') && asked.get('state'));
    assert.equal(asked.get('redirect_uri'), `${brana.url.origin}/oidc/testbank/callback`);
    assert.equal(asked.get('acr_values'), SUBSTANTIAL);
    const viaCard = await completeLogin(brana.url.origin, sep, { means: 'eobcanka', login: '100000001', scope: 'openid' });
    assert.equal(viaBank.idToken.sub, viaCard.idToken.sub);
  });

  async function completeLoginThroughBank(sep: Sep) {
    const login = await toBank(sep, { scope: 'openid profile' });
    let page = await back(login.citizen, login.callback);
    if (page.status === 200 && /name="decision"/.test(page.text)) {
      const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)![1]!;
      const uid = /action="\/interaction\/([^/]+)\/consent"/.exec(page.text)![1]!;
      page = await login.citizen.follow(await login.citizen.post(`/interaction/${uid}/consent`, { csrf, decision: 'agree' }));
    }
    const code = authorizationResponse(page, sep).get('code')!;
    const token = await redeemCode(brana.url.origin, sep, code, login.codeVerifier);
    const info = await supertest(brana.url.origin).get('/me').set('Authorization', `Bearer ${String(token.body.access_token)}`);
    return { idToken: decodeJwt(token.body.id_token as string), userinfo: info.body as Record<string, unknown> };
  }

  it('caps a high acr from a substantial means, maps the means\' own acr values, and refuses an ID token without an eIDAS LoA', async () => {
    const sep = await brana.registerSep();
    for (const acr of [HIGH, 'urn:test:strong']) {
      op.behaviour = { account: JAN, acr };
      const login = await toBank(sep, { scope: 'openid' });
      const code = authorizationResponse(await back(login.citizen, login.callback), sep).get('code')!;
      assert.equal(decodeJwt((await redeemCode(brana.url.origin, sep, code, login.codeVerifier)).body.id_token as string).acr, SUBSTANTIAL, acr);
    }
    op.behaviour = { account: JAN, acr: undefined };
    const login = await toBank(sep, { scope: 'openid' });
    const page = await back(login.citizen, login.callback);
    assert.equal(page.status, 400);
    assert.equal(await reason(login.codeVerifier), 'loa_missing');
  });

  it('refuses a mix-up: an authorization response naming another issuer, or none', async () => {
    const sep = await brana.registerSep();
    for (const [change, expected] of [
      [(url: URL) => url.searchParams.set('iss', `${brana.url.origin}/dev-oidc/bankid`), 'issuer_mismatch'],
      [(url: URL) => url.searchParams.delete('iss'), 'issuer_missing'],
    ] as const) {
      const login = await toBank(sep, { scope: 'openid' });
      const tampered = new URL(login.callback);
      change(tampered);
      const page = await back(login.citizen, tampered.href);
      assert.equal(page.status, 400, expected);
      assert.match(page.text, /Odpověď od poskytovatele identity se nepodařilo ověřit/);
      assert.equal(await reason(login.codeVerifier), expected);
    }
    assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 0);
  });

  it('refuses an unknown state, another means\' state, an injected code, a late answer and a replayed callback', async () => {
    const sep = await brana.registerSep();
    const first = await toBank(sep, { scope: 'openid' });
    const unknown = new URL(first.callback);
    unknown.searchParams.set('state', 'x'.repeat(43));
    assert.equal((await back(first.citizen, unknown.href)).status, 400);

    const second = await toBank(sep, { scope: 'openid' });
    // The attacker's code, delivered with the victim's state: PKCE makes the bank refuse it.
    const injected = new URL(second.callback);
    injected.searchParams.set('code', new URL(first.callback).searchParams.get('code')!);
    const page = await back(second.citizen, injected.href);
    assert.equal(page.status, 400);
    assert.equal(await reason(second.codeVerifier), 'token_invalid_grant');

    const third = await toBank(sep, { scope: 'openid' });
    assert.ok(authorizationResponse(await back(third.citizen, third.callback), sep).get('code'));
    const replay = await back(third.citizen, third.callback);
    assert.equal(replay.status, 400);
    assert.ok((await brana.broker.log.query({ event: 'error' })).some((record) => record.reason === 'replayed_response'));

    const late = await toBank(sep, { scope: 'openid' });
    await brana.broker.db('upstream_request').where({ request_id: new URL(late.callback).searchParams.get('state')! }).update({ expires_at: Date.now() - 1 });
    assert.equal((await back(late.citizen, late.callback)).status, 400, 'an answer after the request expired');
    assert.equal(await reason(late.codeVerifier), 'request_expired');

    const toOtherMeans = new URL(third.callback.replace('/oidc/testbank/', '/oidc/bankid/'));
    assert.equal((await back(third.citizen, toOtherMeans.href)).status, 400, 'a state is valid only at its own means\' callback');
    assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 1);
  });

  describe('when the bank fails', () => {
    it('a cancel at the bank: a page offering the other means and a retry; giving up is access_denied with a description', async () => {
      const sep = await brana.registerSep();
      op.behaviour = { account: JAN, acr: SUBSTANTIAL, error: 'access_denied' };
      const login = await toBank(sep);
      const page = await back(login.citizen, login.callback);
      assert.equal(page.status, 200, 'a cancel is the citizen\'s choice, not an error');
      assert.match(page.text, /Přihlášení prostředkem Testovací banka jste zrušili/);
      assert.match(page.text, /Zkusit znovu: Testovací banka/);
      for (const other of ['eobcanka', 'mojeid', 'bankid', 'slowbank']) assert.match(page.text, new RegExp(`value="${other}"`));
      assert.equal(await reason(login.codeVerifier), 'oidc_access_denied');

      const english = await login.citizen.agent.get(new URL(String(page.request.url)).pathname + new URL(String(page.request.url)).search).set('Cookie', 'brana_lang=en').redirects(0);
      assert.match(english.text, /You cancelled the login with Test bank/);

      const uid = /action="\/interaction\/([^/]+)\/abort"/.exec(page.text)![1]!;
      const params = authorizationResponse(await login.citizen.follow(await login.citizen.post(`/interaction/${uid}/abort`, { after: 'cancelled' })), sep);
      assert.equal(params.get('error'), 'access_denied');
      assert.equal(params.get('error_description'), 'The citizen gave up the login after the identity means failed (cancelled)');
      const errors = (await recordsOfLogin(brana.broker, login.codeVerifier)).filter((record) => record.event === 'error');
      assert.deepEqual(errors.map((record) => record.reason), ['oidc_access_denied', 'cancelled_by_citizen', 'access_denied']);
      assert.equal(errors[1]!.detail.after, 'cancelled');
      assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 0);
    });

    it('an error answer from the bank: the authentication failed page', async () => {
      const sep = await brana.registerSep();
      op.behaviour = { account: JAN, acr: SUBSTANTIAL, error: 'server_error' };
      const login = await toBank(sep);
      const page = await back(login.citizen, login.callback);
      assert.equal(page.status, 400);
      assert.match(page.text, /Poskytovatel identity vás nepřihlásil/);
      assert.equal(await reason(login.codeVerifier), 'oidc_server_error');
    });

    it('a stale authentication when a fresh one was asked for', async () => {
      const sep = await brana.registerSep();
      op.behaviour = { account: JAN, acr: SUBSTANTIAL, authTime: Math.floor(Date.now() / 1000) - 600 };
      const login = await toBank(sep, { scope: 'openid', prompt: 'login' });
      assert.equal(op.lastAuthorization!.get('prompt'), 'login');
      const page = await back(login.citizen, login.callback);
      assert.equal(page.status, 400);
      assert.equal(await reason(login.codeVerifier), 'authn_not_fresh');
      assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 0);
    });

    it('a bank that does not answer in time: the unreachable page, and the reason in the log', async () => {
      const sep = await brana.registerSep();
      op.behaviour = { account: JAN, acr: SUBSTANTIAL, holdTokenRequests: true };
      const login = await toBank(sep, { scope: 'openid' }, 'slowbank');
      const page = await back(login.citizen, login.callback);
      assert.equal(page.status, 503);
      assert.match(page.text, /Poskytovatel identity neodpověděl včas nebo není dostupný/);
      assert.match(page.text, /value="eobcanka"/);
      assert.equal(await reason(login.codeVerifier), 'upstream_timeout');
      assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 0);
    });

    it('a bank that cannot be reached: the unreachable page, and the reason in the log', async () => {
      const sep = await brana.registerSep();
      const login = await toBank(sep, { scope: 'openid' });
      await op.stop();
      try {
        const page = await back(login.citizen, login.callback);
        assert.equal(page.status, 503);
        assert.match(page.text, /Poskytovatel identity neodpověděl včas nebo není dostupný/);
        assert.equal(await reason(login.codeVerifier), 'upstream_unreachable');
        assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 0);
      } finally {
        await op.start();
      }
    });
  });

  it('starts with a bank whose discovery cannot be fetched, and keeps that means out of the selection', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const down = providersFolder({ keep: ['eobcanka', 'mojeid'], extra: { downbank: { ...testbankMeans(`http://127.0.0.1:${port}`), name: { cs: 'Nedostupná banka', en: 'Unreachable bank' } } } });
    const other = await startTestBroker({ env: { BRANA_PROVIDERS_DIR: down } });
    try {
      const [status] = other.broker.registry.metadataStatus().filter((item) => item.means === 'downbank');
      assert.equal(status!.state, 'failing');
      assert.equal(status!.available, false);
      const sep = await other.registerSep();
      const selection = await startLogin(other.url.origin, sep);
      assert.doesNotMatch(selection.response.text, /value="downbank"/);
      assert.match(selection.response.text, /Dočasně nedostupné: Nedostupná banka/);
      const failed = (await other.broker.log.query({ event: 'metadata_refresh_failed' })).find((record) => record.means === 'downbank');
      assert.equal(failed?.detail.trigger, 'start');
    } finally {
      await other.close();
    }
  });
});
