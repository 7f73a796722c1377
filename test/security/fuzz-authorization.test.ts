import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import supertest from 'supertest';
import { codesIssuedTo } from '../support/audit.ts';
import { BOUNDED_MS, fuzzParameters, HOSTILE_FRAGMENTS, mutate, mutationArbitrary } from '../support/fuzz.ts';
import type { Sep } from '../support/login-driver.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

/**
 * Property-based fuzzing of the authorization endpoint (and, more briefly, the token endpoint):
 * well-formed, malformed, truncated and mutated parameters, repeated parameters and raw query
 * bytes. Whatever arrives: no 5xx, no crash, an answer within a generous bound, a redirect only
 * to Brána's own pages or to a redirect URI the named SeP registered, and never a code or token.
 */

const VERIFIER = 'fuzz-verifier-'.padEnd(43, 'x');
const CHALLENGE = createHash('sha256').update(VERIFIER).digest('base64url');

describe('fuzzing the authorization endpoint (fast-check)', () => {
  let brana: TestBroker;
  let sep: Sep;
  before(async () => {
    brana = await startTestBroker({ env: { BRANA_RATE_LIMIT_LOGIN: '1000000', BRANA_RATE_LIMIT_TOKEN_FAILURES: '1000000' } });
    sep = await brana.registerSep({ redirectUris: ['https://portal.example.cz/callback', 'https://portal.example.cz/cb?tenant=1'] });
  });
  after(async () => brana.close());

  const text = fc.oneof(fc.string({ maxLength: 60 }), fc.string({ maxLength: 30, unit: 'binary' }), fc.constantFrom(...HOSTILE_FRAGMENTS), fc.string({ minLength: 2000, maxLength: 6000, unit: 'grapheme-ascii' }));
  const value = (...typical: string[]) => fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...typical) }, { weight: 2, arbitrary: text }, { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...typical), fc.array(mutationArbitrary, { minLength: 1, maxLength: 2 })).map(([t, m]) => m.reduce(mutate, t)) });

  const parameters = () =>
    fc.record(
      {
        client_id: value(sep.clientId, 'unknown-client', ''),
        redirect_uri: value('https://portal.example.cz/callback', 'https://portal.example.cz/cb?tenant=1', 'https://attacker.example/'),
        response_type: value('code', 'token', 'id_token', 'code id_token', 'none', ''),
        scope: value('openid', 'openid profile email address phone', 'profile', 'openid loahigh', 'openid offline_access'),
        state: text,
        nonce: text,
        code_challenge: value(CHALLENGE, 'short'),
        code_challenge_method: value('S256', 'plain', 'S512'),
        prompt: value('none', 'login', 'consent', 'none login', 'select_account', 'create'),
        max_age: value('0', '-1', '10', '1e309', 'NaN'),
        acr_values: value('http://eidas.europa.eu/LoA/high', 'http://eidas.europa.eu/LoA/low substantial'),
        claims: value('{"userinfo":{"email":null}}', '{"id_token":{"acr":{"essential":true,"values":["x"]}}}', '{', '[]', 'null', '{"__proto__":{"x":1}}'),
        idp_hint: value('eobcanka', 'mojeid', '../../etc'),
        ui_locales: value('cs', 'en', 'xx-YY'),
        request: value('eyJhbGciOiJub25lIn0.eyJjbGllbnRfaWQiOiJ4In0.', 'not-a-jwt'),
        response_mode: value('query', 'fragment', 'form_post', 'web_message', 'jwt'),
      },
      { requiredKeys: [] },
    );

  /** A redirect may go to Brána's own pages, or to a URI this SeP registered, carrying no code. */
  function assertSafeRedirect(location: string): void {
    const url = new URL(location, brana.url.origin);
    if (url.origin === brana.url.origin) return;
    const registered = ['https://portal.example.cz/callback', 'https://portal.example.cz/cb?tenant=1'];
    assert.ok(registered.some((uri) => location === uri || location.startsWith(`${uri}${uri.includes('?') ? '&' : '?'}`) || location.startsWith(`${uri}#`)), `redirect to ${location}`);
    const params = new URLSearchParams(url.hash ? url.hash.slice(1) : url.search);
    assert.equal(params.get('code'), null, 'a code without a login');
    assert.equal(params.get('access_token'), null);
    assert.equal(params.get('id_token'), null);
  }

  it('answers any authorization request safely, and its next step too', async () => {
    await fc.assert(
      fc.asyncProperty(parameters(), fc.array(fc.constantFrom('redirect_uri', 'client_id', 'state', 'scope'), { maxLength: 2 }), fc.option(fc.constantFrom('%', '%zz', '%00', '&&&', '=', '%E0%A4%A', '+%2B'), { nil: undefined }), async (params, repeated, raw) => {
        const query = new URLSearchParams(Object.entries(params) as Array<[string, string]>);
        for (const name of repeated) query.append(name, 'https://attacker.example/');
        const started = Date.now();
        const first = await supertest(brana.url.origin).get(`/auth?${query.toString()}${raw ? `&${raw}` : ''}`).redirects(0);
        assert.ok(first.status < 500, `answered ${first.status}`);
        assert.ok(Date.now() - started < BOUNDED_MS);
        const location = first.headers.location as string | undefined;
        if (location) {
          assertSafeRedirect(location);
          // One step further inside Brána (an interaction page, a selection, a hand-off upstream).
          const url = new URL(location, brana.url.origin);
          if (url.origin === brana.url.origin) {
            const next = await supertest(brana.url.origin).get(url.pathname + url.search).set('Cookie', ([] as string[]).concat(first.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]).join('; ')).redirects(0);
            assert.ok(next.status < 500, `the next step answered ${next.status}`);
            if (next.headers.location) {
              const after = new URL(next.headers.location as string, brana.url.origin);
              if (after.origin !== brana.url.origin) assertSafeRedirect(next.headers.location as string);
            }
          }
        }
      }),
      fuzzParameters(150),
    );
    assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 0);
    assert.equal((await supertest(brana.url.origin).get('/healthz')).status, 200, 'Brána still answers');
  });

  it('answers any token request without a 5xx and without tokens', async () => {
    const form = fc.dictionary(fc.constantFrom('grant_type', 'code', 'redirect_uri', 'code_verifier', 'client_id', 'client_secret', 'client_assertion', 'client_assertion_type', 'refresh_token', 'scope', 'resource'), text, { maxKeys: 8 });
    await fc.assert(
      fc.asyncProperty(form, fc.option(fc.tuple(text, text), { nil: undefined }), async (fields, basic) => {
        const request = supertest(brana.url.origin).post('/token').type('form');
        if (basic) request.set('Authorization', `Basic ${Buffer.from(`${basic[0]}:${basic[1]}`, 'latin1').toString('base64')}`);
        const started = Date.now();
        const response = await request.send(fields);
        assert.ok(response.status < 500, `answered ${response.status}: ${response.text.slice(0, 200)}`);
        assert.ok(Date.now() - started < BOUNDED_MS);
        assert.equal(response.body.access_token, undefined);
      }),
      fuzzParameters(80),
    );
  });
});
