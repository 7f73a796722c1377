import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type supertest from 'supertest';
import { decodeEntities } from '../support/html.ts';
import { Citizen, redeemCode, type Sep } from '../support/login-driver.ts';
import { clientKeys, codeFor, jwt } from '../support/oidc-attacker.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

/**
 * RP-initiated logout under attack: Brána must never send a browser to a URL a SeP did not register
 * for itself, and must not trust an id_token_hint it did not sign. Names in quotes are the OpenID
 * conformance suite modules the case corresponds to.
 */

interface LoggedIn {
  sep: Sep;
  citizen: Citizen;
  idToken: string;
}

describe('OIDC logout attacks', () => {
  let brana: TestBroker;
  let origin: string;
  before(async () => {
    brana = await startTestBroker();
    origin = brana.url.origin;
  });
  after(async () => brana.close());

  async function loggedIn(sep?: Sep): Promise<LoggedIn> {
    const registered = sep ?? (await brana.registerSep());
    const code = await codeFor(origin, registered, { scope: 'openid' });
    const token = await redeemCode(origin, registered, code.code, code.codeVerifier);
    assert.equal(token.status, 200);
    return { sep: registered, citizen: code.citizen, idToken: String(token.body.id_token) };
  }

  const endSession = (citizen: Citizen, params: Record<string, string>) => citizen.get(`/session/end?${new URLSearchParams(params).toString()}`);

  /** Confirms the logout page's form, as the citizen pressing "Ano, odhlásit" would. */
  async function confirm(citizen: Citizen, page: supertest.Response): Promise<supertest.Response> {
    const action = /<form[^>]*action="([^"]+)"/.exec(page.text)?.[1];
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(page.text)?.[1];
    assert.ok(action && xsrf, 'the logout page has its confirmation form');
    return citizen.post(decodeEntities(action), { xsrf: decodeEntities(xsrf), logout: 'yes' });
  }

  function assertRefusedWithoutRedirect(page: supertest.Response): void {
    assert.equal(page.status, 400, `${page.status} ${String(page.headers.location ?? '')}`);
    assert.equal(page.headers.location, undefined);
    assert.doesNotMatch(page.text, /attacker\.example/);
    assert.doesNotMatch(page.text, /name="xsrf"/, 'no logout form to confirm');
  }

  it('"oidcc-rp-initiated-logout": redirects to the registered URI with state (the control)', async () => {
    const { sep, citizen, idToken } = await loggedIn();
    const postLogout = (await brana.broker.seps.find(sep.clientId))!.postLogoutRedirectUris[0]!;
    const page = await endSession(citizen, { id_token_hint: idToken, post_logout_redirect_uri: postLogout, state: 'xyz' });
    assert.equal(page.status, 200);
    const done = await confirm(citizen, page);
    assert.equal(done.status, 303);
    assert.equal(done.headers.location, `${postLogout}?state=xyz`);
  });

  it('"oidcc-rp-initiated-logout-bad-post-logout-redirect-uri" and "…-query-added-to-post-logout-redirect-uri": never redirected to', async () => {
    const { sep, citizen, idToken } = await loggedIn();
    const registered = (await brana.broker.seps.find(sep.clientId))!.postLogoutRedirectUris[0]!;
    for (const uri of ['https://attacker.example/', `${registered}?next=https://attacker.example/`, `${registered}#x`, registered.replace('https://', 'http://'), `${registered}/`]) {
      assertRefusedWithoutRedirect(await endSession(citizen, { id_token_hint: idToken, post_logout_redirect_uri: uri }));
    }
  });

  it('refuses another SeP\'s registered logout URI, with this SeP\'s hint or with its client_id', async () => {
    const { sep, citizen, idToken } = await loggedIn();
    const other = await brana.registerSep();
    const othersUri = (await brana.broker.seps.find(other.clientId))!.postLogoutRedirectUris[0]!;
    assertRefusedWithoutRedirect(await endSession(citizen, { id_token_hint: idToken, post_logout_redirect_uri: othersUri }));
    assertRefusedWithoutRedirect(await endSession(citizen, { id_token_hint: idToken, client_id: other.clientId, post_logout_redirect_uri: othersUri }));
    assertRefusedWithoutRedirect(await endSession(citizen, { client_id: sep.clientId, post_logout_redirect_uri: othersUri }));
  });

  it('ignores a post_logout_redirect_uri when nothing says which SeP asks: the citizen stays on Brána', async () => {
    const { citizen } = await loggedIn();
    const page = await endSession(citizen, { post_logout_redirect_uri: 'https://attacker.example/', state: 'x' });
    assert.doesNotMatch(page.text, /attacker\.example/);
    const done = await confirm(citizen, page);
    assert.equal(done.status, 303);
    assert.equal(new URL(String(done.headers.location), origin).origin, origin, String(done.headers.location));
  });

  it('"oidcc-rp-initiated-logout-modified-id-token-hint" and "…-bad-id-token-hint": forged hints are refused', async () => {
    const { sep, citizen, idToken } = await loggedIn();
    const registered = (await brana.broker.seps.find(sep.clientId))!.postLogoutRedirectUris[0]!;
    const [header, payload, signature] = idToken.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
    const brokerKey = (JSON.parse(readFileSync(path.join(brana.keysDir, 'oidc-signing.jwks.json'), 'utf8')) as { keys: Array<Record<string, unknown>> }).keys[0]!;
    const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...brokerPublicKey } = brokerKey;
    const attacker = clientKeys(String(brokerKey.kid));
    const forged = [
      `${header}.${payload}.${signature.slice(0, -4)}${signature.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`,
      `${header}.${Buffer.from(JSON.stringify({ ...claims, sub: 'someone-else' })).toString('base64url')}.${signature}`,
      jwt({ alg: 'RS256', kid: brokerKey.kid }, claims, { rsa: attacker.privateKey }),
      jwt({ alg: 'none' }, claims, 'none'),
      jwt({ alg: 'HS256', kid: brokerKey.kid }, claims, { hmac: JSON.stringify(brokerPublicKey) }),
      'not-a-jwt',
    ];
    for (const hint of forged) {
      assertRefusedWithoutRedirect(await endSession(citizen, { id_token_hint: hint, post_logout_redirect_uri: registered }));
    }
  });

  it('refuses a logout confirmation posted without the page\'s token or from another browser', async () => {
    const { citizen, idToken } = await loggedIn();
    const page = await endSession(citizen, { id_token_hint: idToken });
    const forged = await citizen.post('/session/end/confirm', { xsrf: 'x'.repeat(43), logout: 'yes' });
    assert.equal(forged.status, 400);
    const stranger = new Citizen(origin);
    const stolen = /name="xsrf" value="([^"]+)"/.exec(page.text)![1]!;
    const crossBrowser = await stranger.post('/session/end/confirm', { xsrf: decodeEntities(stolen), logout: 'yes' });
    assert.equal(crossBrowser.status, 400);
    // The genuine confirmation still works, and ends on Brána's own page.
    const done = await confirm(citizen, page);
    assert.equal(done.status, 303);
    assert.equal(new URL(String(done.headers.location), origin).origin, origin);
  });
});
