import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import supertest from 'supertest';
import { CLIENT_ASSERTION_TYPE, clientAssertionClaims, clientKeys, codeFor, jwt, tokenRequest, type ClientKeys, type Code } from '../support/oidc-attacker.ts';
import { redeemCode, userinfo, type Sep } from '../support/login-driver.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

/**
 * The token endpoint under attack: codes, PKCE and client authentication. Names in quotes are the
 * OpenID conformance suite modules the case corresponds to.
 */

function assertNoTokens(response: supertest.Response, status: number, error: string): void {
  assert.equal(response.status, status, `${response.status} ${response.text}`);
  assert.equal(response.body.error, error);
  assert.equal(response.body.access_token, undefined);
  assert.equal(response.body.id_token, undefined);
}

describe('OIDC token endpoint attacks', () => {
  let brana: TestBroker;
  let origin: string;
  before(async () => {
    brana = await startTestBroker();
    origin = brana.url.origin;
  });
  after(async () => brana.close());

  const grant = (sep: Sep, code: Code, verifier = code.codeVerifier) => ({ grant_type: 'authorization_code', code: code.code, redirect_uri: sep.redirectUri, code_verifier: verifier });

  describe('codes and PKCE', () => {
    it('"oidcc-codereuse": a code redeemed twice fails and revokes what it gave', async () => {
      const sep = await brana.registerSep();
      const code = await codeFor(origin, sep);
      const first = await redeemCode(origin, sep, code.code, code.codeVerifier);
      assert.equal(first.status, 200);
      assertNoTokens(await redeemCode(origin, sep, code.code, code.codeVerifier), 400, 'invalid_grant');
      assert.equal((await userinfo(origin, first.body.access_token as string)).status, 401);
    });

    it('"fapi2-security-profile-final-ensure-authorization-code-is-bound-to-client": another SeP cannot redeem the code', async () => {
      const sep = await brana.registerSep();
      const other = await brana.registerSep();
      const code = await codeFor(origin, sep);
      const injected = await tokenRequest(origin, { ...grant(sep, code), redirect_uri: other.redirectUri }, { id: other.clientId, secret: other.clientSecret });
      assertNoTokens(injected, 400, 'invalid_grant');
      const sameRedirect = await tokenRequest(origin, grant(sep, code), { id: other.clientId, secret: other.clientSecret });
      assertNoTokens(sameRedirect, 400, 'invalid_grant');
    });

    it('a code redeemed with another redirect_uri than it was issued for fails', async () => {
      const sep = await brana.registerSep({ redirectUris: [`https://sep-two.example.cz/a`, `https://sep-two.example.cz/b`] });
      const code = await codeFor(origin, sep);
      assertNoTokens(await tokenRequest(origin, { ...grant(sep, code), redirect_uri: 'https://sep-two.example.cz/b' }, { id: sep.clientId, secret: sep.clientSecret }), 400, 'invalid_grant');
    });

    it('"fapi2-security-profile-final-ensure-pkce-code-verifier-required" and "…-incorrect-pkce-code-verifier-rejected"', async () => {
      const sep = await brana.registerSep();
      const code = await codeFor(origin, sep);
      const { code_verifier: _omitted, ...withoutVerifier } = grant(sep, code);
      assertNoTokens(await tokenRequest(origin, withoutVerifier, { id: sep.clientId, secret: sep.clientSecret }), 400, 'invalid_grant');
      assertNoTokens(await tokenRequest(origin, grant(sep, code, 'A'.repeat(43)), { id: sep.clientId, secret: sep.clientSecret }), 400, 'invalid_grant');
    });
  });

  describe('revocation', () => {
    it('refuses one SeP revoking another SeP\'s access token: the token keeps working, nothing is recorded', async () => {
      const owner = await brana.registerSep();
      const other = await brana.registerSep();
      const code = await codeFor(origin, owner);
      const tokens = await redeemCode(origin, owner, code.code, code.codeVerifier);
      const accessToken = tokens.body.access_token as string;
      const refused = await supertest(origin).post('/token/revocation').auth(other.clientId, other.clientSecret).type('form').send({ token: accessToken });
      assert.equal(refused.status, 400, refused.text);
      assert.equal(refused.body.error, 'invalid_request');
      assert.equal((await userinfo(origin, accessToken)).status, 200);
      assert.deepEqual(await brana.broker.log.query({ sepId: owner.clientId, event: 'token_revoked' }), []);

      const own = await supertest(origin).post('/token/revocation').auth(owner.clientId, owner.clientSecret).type('form').send({ token: accessToken });
      assert.equal(own.status, 200);
      assert.equal((await userinfo(origin, accessToken)).status, 401);
      assert.equal((await brana.broker.log.query({ sepId: owner.clientId, event: 'token_revoked' })).length, 1);
    });
  });

  describe('client authentication with a secret', () => {
    let sep: Sep;
    let code: Code;
    before(async () => {
      sep = await brana.registerSep();
      code = await codeFor(origin, sep);
    });

    it('refuses a wrong secret, no authentication, and the secret of another SeP', async () => {
      const other = await brana.registerSep();
      assertNoTokens(await tokenRequest(origin, grant(sep, code), { id: sep.clientId, secret: `${sep.clientSecret}x` }), 401, 'invalid_client');
      assertNoTokens(await tokenRequest(origin, { ...grant(sep, code), client_id: sep.clientId }), 401, 'invalid_client');
      assertNoTokens(await tokenRequest(origin, grant(sep, code), { id: sep.clientId, secret: other.clientSecret }), 401, 'invalid_client');
    });

    it('refuses two authentication methods at once', async () => {
      const both = await tokenRequest(origin, { ...grant(sep, code), client_id: sep.clientId, client_secret: sep.clientSecret }, { id: sep.clientId, secret: sep.clientSecret });
      assertNoTokens(both, 400, 'invalid_request');
    });

    it('refuses a client assertion from a SeP registered for a secret (client_secret_jwt is not enabled)', async () => {
      // (oidc-provider treats client_secret_basic and client_secret_post as one method: see docs/SECURITY.md.)
      const hmacWithSecret = jwt({ alg: 'HS256', typ: 'JWT' }, clientAssertionClaims(sep.clientId, origin), { hmac: sep.clientSecret });
      const assertion = await tokenRequest(origin, { ...grant(sep, code), client_id: sep.clientId, client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: hmacWithSecret });
      assertNoTokens(assertion, 401, 'invalid_client');
    });

    it('still redeems the code with the right secret after all of that (the refusals above were about authentication)', async () => {
      const ok = await tokenRequest(origin, grant(sep, code), { id: sep.clientId, secret: sep.clientSecret });
      assert.equal(ok.status, 200);
    });
  });

  describe('client authentication with private_key_jwt', () => {
    let keys: ClientKeys;
    let sep: Sep;
    let code: Code;
    const brokerJwks = () => JSON.parse(readFileSync(path.join(brana.keysDir, 'oidc-signing.jwks.json'), 'utf8')) as { keys: Array<Record<string, unknown>> };

    before(async () => {
      keys = clientKeys();
      sep = await brana.registerSep({ tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [keys.publicJwk] } });
      code = await codeFor(origin, sep);
    });

    const withAssertion = (assertion: string) =>
      tokenRequest(origin, { ...grant(sep, code), client_id: sep.clientId, client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: assertion });
    const signed = (change: Record<string, unknown> = {}, header: Record<string, unknown> = {}) =>
      jwt({ alg: 'RS256', typ: 'JWT', kid: keys.publicJwk.kid, ...header }, clientAssertionClaims(sep.clientId, origin, change), { rsa: keys.privateKey });

    it('"fapi2-security-profile-final-ensure-client-assertion-with-wrong-aud-fails"', async () => {
      for (const aud of ['https://other-op.example.cz', `${origin}/other`, sep.clientId]) assertNoTokens(await withAssertion(signed({ aud })), 401, 'invalid_client');
    });

    it('"fapi2-security-profile-final-ensure-client-assertion-with-exp-is-5-minutes-in-past-fails"', async () => {
      const now = Math.floor(Date.now() / 1000);
      assertNoTokens(await withAssertion(signed({ iat: now - 600, exp: now - 300 })), 401, 'invalid_client');
      const { exp: _none, ...withoutExp } = clientAssertionClaims(sep.clientId, origin);
      assertNoTokens(await withAssertion(jwt({ alg: 'RS256', kid: keys.publicJwk.kid }, withoutExp, { rsa: keys.privateKey })), 401, 'invalid_client');
    });

    it('"fapi2-security-profile-final-ensure-client-assertion-with-no-sub-fails", and iss or sub of another SeP', async () => {
      const other = await brana.registerSep();
      assertNoTokens(await withAssertion(signed({ sub: undefined })), 401, 'invalid_client');
      // The client_id sent with the assertion no longer matches its sub: a malformed request.
      assertNoTokens(await withAssertion(signed({ sub: other.clientId })), 400, 'invalid_request');
      assertNoTokens(await withAssertion(signed({ iss: other.clientId })), 401, 'invalid_client');
    });

    it('refuses alg none, and HS256 keyed with the SeP\'s or Brána\'s public key (key confusion)', async () => {
      assertNoTokens(await withAssertion(jwt({ alg: 'none', typ: 'JWT' }, clientAssertionClaims(sep.clientId, origin), 'none')), 401, 'invalid_client');
      for (const publicKey of [keys.publicPem, JSON.stringify(keys.publicJwk), String(keys.publicJwk.n), JSON.stringify(brokerJwks().keys.map(({ d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub }) => pub)[0])]) {
        const confused = jwt({ alg: 'HS256', typ: 'JWT', kid: keys.publicJwk.kid }, clientAssertionClaims(sep.clientId, origin), { hmac: publicKey });
        assertNoTokens(await withAssertion(confused), 401, 'invalid_client');
      }
    });

    it('refuses an assertion signed by another key under the SeP\'s kid', async () => {
      const stranger = clientKeys(String(keys.publicJwk.kid));
      const forged = jwt({ alg: 'RS256', typ: 'JWT', kid: keys.publicJwk.kid }, clientAssertionClaims(sep.clientId, origin), { rsa: stranger.privateKey });
      assertNoTokens(await withAssertion(forged), 401, 'invalid_client');
    });

    it('refuses a replayed client assertion (jti seen before)', async () => {
      const other = await codeFor(origin, sep);
      const assertion = signed();
      const first = await tokenRequest(origin, { ...grant(sep, other), client_id: sep.clientId, client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: assertion });
      assert.equal(first.status, 200, first.text);
      assertNoTokens(await withAssertion(assertion), 401, 'invalid_client');
    });

    it('"oidcc-ensure-client-assertion-with-iss-aud-succeeds": the correct assertion redeems the code after all of that', async () => {
      const ok = await withAssertion(signed());
      assert.equal(ok.status, 200, ok.text);
      assert.ok(ok.body.id_token);
    });
  });
});
