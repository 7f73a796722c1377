import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type supertest from 'supertest';
import { codesIssuedTo, recordsOfLogin } from '../support/audit.ts';
import { decodeEntities, hiddenFields } from '../support/html.ts';
import { authorizationResponse, chooseMeans, Citizen, decideConsent, decodeJwt, loginAtIdp, postToAcs, redeemCode, startLogin, type Sep } from '../support/login-driver.ts';
import { codeFor } from '../support/oidc-attacker.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

/**
 * The authorization endpoint and the interaction pages under attack. Names in quotes are the OpenID
 * conformance suite modules the case corresponds to.
 */

function authorizationQuery(sep: Sep, change: Record<string, string | undefined> = {}): string {
  const verifier = randomBytes(32).toString('base64url');
  const params: Record<string, string | undefined> = {
    client_id: sep.clientId,
    redirect_uri: sep.redirectUri,
    response_type: 'code',
    scope: 'openid profile',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    state: randomBytes(8).toString('hex'),
    nonce: randomBytes(8).toString('hex'),
    ...change,
  };
  return new URLSearchParams(Object.entries(params).filter((entry): entry is [string, string] => entry[1] !== undefined)).toString();
}

/** Refused without sending the browser anywhere: an error page, no Location header. */
function assertErrorPageWithoutRedirect(response: supertest.Response): void {
  assert.equal(response.status, 400, `${response.status} ${String(response.headers.location ?? '')}`);
  assert.equal(response.headers.location, undefined);
  assert.match(response.text, /Přihlášení se nezdařilo/);
}

/** Refused back to the SeP's registered redirect URI with an error (in the query or the fragment), never with a code. */
function assertErrorRedirect(response: supertest.Response, sep: Sep, error: string): void {
  authorizationResponse(response, sep);
  const location = new URL(String(response.headers.location));
  const params = new URLSearchParams(location.hash ? location.hash.slice(1) : location.search);
  assert.equal(params.get('error'), error);
  assert.equal(params.get('code'), null);
  assert.equal(params.get('access_token'), null);
  assert.equal(params.get('id_token'), null);
}

describe('OIDC authorization endpoint and interaction attacks', () => {
  let brana: TestBroker;
  let origin: string;
  before(async () => {
    brana = await startTestBroker();
    origin = brana.url.origin;
  });
  after(async () => brana.close());

  describe('redirect_uri is matched exactly', () => {
    let sep: Sep;
    let other: Sep;
    before(async () => {
      sep = await brana.registerSep({ redirectUris: ['https://portal.example.cz/callback', 'https://portal.example.cz/return?tenant=1'] });
      other = await brana.registerSep();
    });

    const variants: Array<[string, () => string]> = [
      ['"oidcc-ensure-registered-redirect-uri": an unregistered URI', () => 'https://attacker.example/callback'],
      ['a trailing slash', () => 'https://portal.example.cz/callback/'],
      ['another case in the path', () => 'https://portal.example.cz/Callback'],
      ['another case in the host', () => 'https://PORTAL.example.cz/callback'],
      ['the default port written out', () => 'https://portal.example.cz:443/callback'],
      ['another port', () => 'https://portal.example.cz:8443/callback'],
      ['plain http', () => 'http://portal.example.cz/callback'],
      ['a percent-encoded path', () => 'https://portal.example.cz/%63allback'],
      ['"oidcc-redirect-uri-query-added": a query added', () => 'https://portal.example.cz/callback?next=https://attacker.example'],
      ['"oidcc-redirect-uri-query-mismatch": another query value', () => 'https://portal.example.cz/return?tenant=2'],
      ['a query parameter added to a registered query', () => 'https://portal.example.cz/return?tenant=1&x=1'],
      ['a fragment added', () => 'https://portal.example.cz/callback#x'],
      ['user information before the host', () => 'https://attacker@portal.example.cz/callback'],
      ['the registered host as user information of another', () => 'https://portal.example.cz@attacker.example/callback'],
      ['a subdomain', () => 'https://evil.portal.example.cz/callback'],
      ['another SeP\'s registered URI', () => other.redirectUri],
    ];
    for (const [name, uri] of variants) {
      it(`refuses ${name}, without redirecting`, async () => {
        const response = await new Citizen(origin).get(`/auth?${authorizationQuery(sep, { redirect_uri: uri() })}`);
        assertErrorPageWithoutRedirect(response);
        assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 0);
      });
    }

    it('"oidcc-ensure-redirect-uri-in-authorization-request": refuses a request without redirect_uri, even with one registered', async () => {
      const single = await brana.registerSep();
      assertErrorPageWithoutRedirect(await new Citizen(origin).get(`/auth?${authorizationQuery(single, { redirect_uri: undefined })}`));
    });

    it('refuses redirect_uri given twice, with the same or different values', async () => {
      for (const second of ['https://portal.example.cz/callback', 'https://attacker.example/callback']) {
        const query = `${authorizationQuery(sep)}&redirect_uri=${encodeURIComponent(second)}`;
        assertErrorPageWithoutRedirect(await new Citizen(origin).get(`/auth?${query}`));
      }
    });

    it('refuses every other parameter given twice (state, client_id, code_challenge)', async () => {
      for (const [name, value] of [['state', 'x'], ['client_id', other.clientId], ['code_challenge', 'A'.repeat(43)]]) {
        const response = await new Citizen(origin).get(`/auth?${authorizationQuery(sep)}&${name}=${encodeURIComponent(value!)}`);
        if (response.status === 400) assertErrorPageWithoutRedirect(response);
        else assertErrorRedirect(response, sep, 'invalid_request');
      }
    });
  });

  describe('response types and PKCE', () => {
    it('"oidcc-response-type-missing" and unregistered response types: an error, never a code or token', async () => {
      const sep = await brana.registerSep();
      const missing = await new Citizen(origin).get(`/auth?${authorizationQuery(sep, { response_type: undefined })}`);
      assertErrorRedirect(missing, sep, 'invalid_request');
      for (const type of ['token', 'id_token', 'code id_token', 'code token', 'id_token token', 'none']) {
        const response = await new Citizen(origin).get(`/auth?${authorizationQuery(sep, { response_type: type })}`);
        const location = String(response.headers.location ?? '');
        assert.ok(!/[?#&](code|access_token|id_token)=/.test(location), `${type}: ${location}`);
        assertErrorRedirect(response, sep, 'unsupported_response_type');
      }
      assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 0);
    });

    it('"fapi2-security-profile-final-par-ensure-pkce-required", "…-par-plain-pkce-rejected", and a malformed challenge', async () => {
      const sep = await brana.registerSep();
      const cases = [{ code_challenge: undefined, code_challenge_method: undefined }, { code_challenge_method: 'plain' }, { code_challenge: 'short' }, { code_challenge_method: 'S512' }];
      for (const change of cases) assertErrorRedirect(await new Citizen(origin).get(`/auth?${authorizationQuery(sep, change)}`), sep, 'invalid_request');
      assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 0);
    });
  });

  describe('state and nonce', () => {
    const NASTY = `a"b'<script>alert(1)</script>&amp;&#x27;é%20+/?#=${'x'.repeat(200)}`;

    it('echoes state byte for byte in the redirect and nonce in the ID token', async () => {
      const sep = await brana.registerSep();
      const citizen = new Citizen(origin);
      const verifier = randomBytes(32).toString('base64url');
      const challenge = createHash('sha256').update(verifier).digest('base64url');
      let response = await citizen.follow(await citizen.get(`/auth?${authorizationQuery(sep, { state: NASTY, nonce: NASTY, code_challenge: challenge })}`));
      response = await chooseMeans(citizen, response, 'eobcanka');
      const idp = await loginAtIdp(citizen, response, '100000001');
      response = await decideConsent(citizen, await postToAcs(citizen, idp.acs, idp.fields), 'agree');
      const params = authorizationResponse(response, sep);
      assert.equal(params.get('state'), NASTY);
      const token = await redeemCode(origin, sep, params.get('code')!, verifier);
      assert.equal(decodeJwt(String(token.body.id_token)).nonce, NASTY);
    });

    it('escapes state in the form_post page, which carries its script by hash, not inline-unsafe', async () => {
      const sep = await brana.registerSep();
      const citizen = new Citizen(origin);
      let response = await citizen.follow(await citizen.get(`/auth?${authorizationQuery(sep, { state: NASTY, response_mode: 'form_post' })}`));
      response = await chooseMeans(citizen, response, 'eobcanka');
      const idp = await loginAtIdp(citizen, response, '100000001');
      const page = await decideConsent(citizen, await postToAcs(citizen, idp.acs, idp.fields), 'agree');
      assert.equal(page.status, 200);
      assert.ok(!page.text.includes('<script>alert(1)</script>'), 'state reached the page unescaped');
      const state = /name="state" value="([^"]*)"/.exec(page.text)?.[1];
      assert.equal(decodeEntities(state ?? ''), NASTY);
      const csp = String(page.headers['content-security-policy']);
      assert.match(csp, /script-src [^;]*'sha256-/);
      assert.doesNotMatch(csp, /unsafe-inline/);
      assert.match(csp, /frame-ancestors 'none'/);
    });

    it('never reflects request parameters unescaped into Brána\'s own pages', async () => {
      const sep = await brana.registerSep();
      const payload = '"><script>alert(1)</script>';
      const pages = [
        await new Citizen(origin).follow(await new Citizen(origin).get(`/auth?${authorizationQuery(sep, { idp_hint: payload, ui_locales: payload, login_hint: payload, state: payload })}`)),
        await new Citizen(origin).get(`/auth?${authorizationQuery(sep, { client_id: payload })}`),
        await new Citizen(origin).get(`/auth?${authorizationQuery(sep, { redirect_uri: `https://attacker.example/${payload}` })}`),
        await new Citizen(origin).get(`/language?to=en&back=${encodeURIComponent(`/x${payload}`)}`),
      ];
      for (const page of pages) assert.ok(!page.text.includes('<script>alert(1)</script>'), page.text.slice(0, 300));
    });
  });

  describe('prompt=none', () => {
    it('"oidcc-prompt-none-not-logged-in": login_required', async () => {
      const sep = await brana.registerSep();
      assertErrorRedirect(await new Citizen(origin).get(`/auth?${authorizationQuery(sep, { prompt: 'none' })}`), sep, 'login_required');
    });

    it('consent_required for a SeP the citizen has not consented to, even while logged in for another SeP', async () => {
      const first = await brana.registerSep();
      const second = await brana.registerSep({ group: 'jina-skupina' });
      const { citizen } = await codeFor(origin, first);
      const response = await citizen.get(`/auth?${authorizationQuery(second, { prompt: 'none' })}`);
      assertErrorRedirect(await citizen.follow(response), second, 'consent_required');
      assert.equal(await codesIssuedTo(brana.broker, second.clientId), 0);
    });

    it('"oidcc-prompt-none-logged-in": a code when nothing needs asking (the control)', async () => {
      const sep = await brana.registerSep();
      const { citizen } = await codeFor(origin, sep);
      const response = await citizen.follow(await citizen.get(`/auth?${authorizationQuery(sep, { prompt: 'none', scope: 'openid' })}`));
      assert.ok(authorizationResponse(response, sep).get('code'));
    });
  });

  describe('forms posted to the interaction', () => {
    it('refuses a means chosen from another origin or from an opaque origin, and starts nothing upstream', async () => {
      const sep = await brana.registerSep();
      const started = await startLogin(origin, sep);
      const action = /action="(\/interaction\/[^/]+\/means)"/.exec(started.response.text)![1]!;
      for (const from of ['https://attacker.example', 'null']) {
        const response = await started.citizen.agent.post(action).set('Origin', from).type('form').send({ means: 'eobcanka' }).redirects(0);
        assert.equal(response.status, 400);
        assert.equal(response.headers.location, undefined);
      }
      const events = (await recordsOfLogin(brana.broker, started.codeVerifier)).map((r) => r.event);
      assert.ok(!events.includes('request_sent_upstream'));
    });

    it('refuses a consent posted by another browser with the victim\'s form token', async () => {
      const sep = await brana.registerSep();
      const victim = await startLogin(origin, sep);
      const idp = await loginAtIdp(victim.citizen, await chooseMeans(victim.citizen, victim.response, 'eobcanka'), '100000001');
      const consent = await postToAcs(victim.citizen, idp.acs, idp.fields);
      const action = /action="(\/interaction\/[^/]+\/consent)"/.exec(consent.text)![1]!;
      const attacker = new Citizen(origin);
      const response = await attacker.post(action, { csrf: hiddenFields(consent.text).csrf!, decision: 'agree' });
      assert.equal(response.status, 400);
      assert.match(response.text, /Přihlášení trvalo příliš dlouho nebo bylo otevřeno v jiném prohlížeči/);
      assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 0);
      // The victim's own consent still works.
      assert.ok(authorizationResponse(await decideConsent(victim.citizen, consent, 'agree'), sep).get('code'));
    });

    it('refuses a cancellation posted from another origin; the login goes on', async () => {
      const sep = await brana.registerSep();
      const started = await startLogin(origin, sep);
      const action = /action="(\/interaction\/[^/]+\/abort)"/.exec(started.response.text)![1]!;
      const response = await started.citizen.agent.post(action).set('Origin', 'https://attacker.example').type('form').send({}).redirects(0);
      assert.equal(response.status, 400);
      const events = (await recordsOfLogin(brana.broker, started.codeVerifier)).map((r) => r.reason);
      assert.ok(!events.includes('cancelled_by_citizen'));
    });
  });

  describe('sessions', () => {
    it('gives a new session identifier at login, so a planted session cookie never carries the victim\'s login (session fixation)', async () => {
      const sep = await brana.registerSep();
      const host = new URL(origin).hostname;
      const cookiesOf = (citizen: Citizen) => citizen.agent.jar.getCookies({ domain: host, path: '/', secure: false, script: false });
      // The attacker logs in as Marie and plants that session in the victim's browser.
      const attacker = new Citizen(origin);
      await codeFor(origin, sep, { citizen: attacker, login: '100000002' });
      const planted = cookiesOf(attacker).filter((cookie) => cookie.name.startsWith('_session'));
      assert.equal(planted.length, 2, 'the attacker has a signed session cookie to plant');
      const victim = new Citizen(origin);
      for (const cookie of planted) victim.agent.jar.setCookie(`${cookie.name}=${cookie.value}; Path=/`, host, '/');
      // The victim logs in as Jan in that browser (prompt=login: a fresh authentication).
      const code = await codeFor(origin, sep, { citizen: victim, login: '100000001', prompt: 'login' });
      const sessionAfter = cookiesOf(victim).find((cookie) => cookie.name === '_session')?.value;
      assert.ok(sessionAfter);
      assert.notEqual(sessionAfter, planted.find((cookie) => cookie.name === '_session')!.value);
      assert.ok(decodeJwt(String((await redeemCode(origin, sep, code.code, code.codeVerifier)).body.id_token)).sub, 'the victim is logged in at the SeP');
      // The attacker's browser, with the planted cookies, holds no login at all any more: the victim's
      // login ended the planted session and started a new one under a new identifier.
      const probe = await attacker.follow(await attacker.get(`/auth?${authorizationQuery(sep, { prompt: 'none', scope: 'openid' })}`));
      assertErrorRedirect(probe, sep, 'login_required');
    });

    it('keeps interaction and session cookies HttpOnly, SameSite=Lax and host-only', async () => {
      const sep = await brana.registerSep();
      const response = await new Citizen(origin).get(`/auth?${authorizationQuery(sep)}`);
      const cookies = ([] as string[]).concat(response.headers['set-cookie'] ?? []);
      assert.ok(cookies.length > 0);
      for (const cookie of cookies) {
        assert.match(cookie, /; httponly/i, cookie);
        assert.match(cookie, /; samesite=lax/i, cookie);
        assert.doesNotMatch(cookie, /; domain=/i, cookie);
      }
    });
  });

  describe('framing', () => {
    it('forbids framing of every page: selection, consent, errors, logout, oidc-provider\'s own pages', async () => {
      const sep = await brana.registerSep();
      const started = await startLogin(origin, sep);
      const idp = await loginAtIdp(started.citizen, await chooseMeans(started.citizen, started.response, 'eobcanka'), '100000001');
      const consent = await postToAcs(started.citizen, idp.acs, idp.fields);
      const pages = [
        started.response,
        consent,
        await new Citizen(origin).get(`/auth?${authorizationQuery(sep, { redirect_uri: 'https://attacker.example/' })}`),
        await new Citizen(origin).get('/interaction/unknown-uid'),
        await new Citizen(origin).get('/session/end'),
        await new Citizen(origin).get('/.well-known/openid-configuration'),
      ];
      for (const page of pages) {
        assert.equal(page.headers['x-frame-options'], 'DENY');
        assert.match(String(page.headers['content-security-policy']), /frame-ancestors 'none'/);
      }
    });
  });
});
