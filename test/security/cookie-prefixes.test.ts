import assert from 'node:assert/strict';
import supertest from 'supertest';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

const query = (sep: { clientId: string; redirectUri: string }) =>
  new URLSearchParams({ client_id: sep.clientId, redirect_uri: sep.redirectUri, response_type: 'code', scope: 'openid', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' }).toString();

const cookiesOf = (response: supertest.Response) => ([] as string[]).concat(response.headers['set-cookie'] ?? []);
const nameOf = (cookie: string) => cookie.slice(0, cookie.indexOf('='));

/**
 * Issue 13, item 4: on https a sibling sub-domain (`evil.example.cz` beside `brana.example.cz`)
 * must not be able to plant Brána's cookies. Cookies Brána sets on `/` carry `__Host-` (Secure,
 * Path=/, no Domain); those oidc-provider scopes to one interaction's path carry `__Secure-`.
 * (A whole login over https, through a TLS proxy, is test/cluster/two-nodes.test.ts.)
 */
describe('Security: cookie prefixes on https', () => {
  let brana: TestBroker;
  before(async () => {
    brana = await startTestBroker({ env: { BRANA_TRUST_PROXY: 'true', BRANA_PUBLIC_URL: 'https://brana.example.cz' } });
  });
  after(async () => brana.close());
  const request = (path: string) => supertest(brana.broker.app).get(path).set('X-Forwarded-Proto', 'https').set('X-Forwarded-For', '203.0.113.60').redirects(0);

  it('names the interaction cookies __Secure- (Secure, never a Domain) and carries no unprefixed cookie', async () => {
    const sep = await brana.registerSep();
    const cookies = cookiesOf(await request(`/auth?${query(sep)}`));
    const names = cookies.map(nameOf);
    assert.ok(names.includes('__Secure-brana_interaction') && names.includes('__Secure-brana_resume'), names.join(', '));
    for (const cookie of cookies) {
      assert.match(nameOf(cookie), /^__(Secure|Host)-/, cookie);
      assert.match(cookie, /;\s*secure/i, cookie);
      assert.doesNotMatch(cookie, /;\s*domain=/i, cookie);
    }
  });

  it('names the My-account cookie __Host- with Secure, Path=/ and no Domain', async () => {
    const cookies = cookiesOf(await request('/account/login'));
    const account = cookies.find((cookie) => cookie.startsWith('__Host-brana_account='));
    assert.ok(account, cookies.join(' | '));
    assert.match(account, /;\s*secure/i);
    assert.match(account, /;\s*path=\/(;|$)/i);
    assert.doesNotMatch(account, /;\s*domain=/i);
  });

  it('keeps plain-http development working with unprefixed names (browsers refuse prefixes without Secure)', async () => {
    const plain = await startTestBroker();
    try {
      const sep = await plain.registerSep();
      const names = cookiesOf(await supertest(plain.url.origin).get(`/auth?${query(sep)}`).redirects(0)).map(nameOf);
      assert.ok(names.includes('_interaction'), names.join(', '));
      assert.ok(!names.some((name) => name.startsWith('__')), names.join(', '));
    } finally {
      await plain.close();
    }
  });
});
