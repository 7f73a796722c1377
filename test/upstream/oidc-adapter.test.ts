import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Loa } from '../../src/domain/loa.ts';
import { readIdentityMeansFile, type OidcMeans } from '../../src/means/identity-means.ts';
import type { ExpectedRequest, UpstreamIdentity, UpstreamOutward } from '../../src/upstream/contract.ts';
import { MetadataSource } from '../../src/upstream/metadata/metadata-source.ts';
import { discoveryUrl, parseDiscovery, type OpenIdProviderMetadata } from '../../src/upstream/oidc/discovery.ts';
import { OidcAdapter } from '../../src/upstream/oidc/oidc-adapter.ts';
import { HostileBank, type IdTokenForgery } from '../support/hostile-bank.ts';
import { refusalOf } from '../support/upstream-refusal.ts';
import { jwt } from '../support/oidc-attacker.ts';

/**
 * The OpenID Connect adapter on its own: a table of what a bank (written by hand on node:http, no
 * OIDC library) answers, each callback handed straight to `OidcAdapter.correlate` and `handleAnswer`
 * with the request the server would have recorded. No broker, no database. A row gives either the
 * identity or exactly one refusal reason.
 */

const PUBLIC_URL = new URL('https://brana.test.example/');
const MEANS_ID = 'hostilebank';

type Query = Record<string, string>;

type Outcome = { identity: { acr: Loa } } | { reason: string; outward: UpstreamOutward };

interface Row {
  name: string;
  /** What the bank's token endpoint puts in the ID token (a correct token when absent). */
  idToken?: IdTokenForgery;
  /** What the bank's token endpoint answers instead of tokens. */
  tokenAnswer?: HostileBank['tokenAnswer'];
  /** The callback's query as the browser brings it, changed. */
  callback?: (query: Query) => Query;
  /** Changes to the request the server found for the answer. */
  expected?: Partial<ExpectedRequest>;
  outcome: Outcome;
}

const refused = (reason: string, outward: UpstreamOutward = 'invalid_response'): Outcome => ({ reason, outward });
const accepted = (acr: Loa): Outcome => ({ identity: { acr } });
const signed = (change: Record<string, unknown>): IdTokenForgery => (claims, bank) => bank.sign({ ...claims, ...change });
const providerError = (error: string) => (query: Query): Query => ({ state: query.state!, iss: query.iss!, error, error_description: 'the bank says no' });

const ROWS: Row[] = [
  { name: 'the bank\'s correct ID token (substantial)', outcome: accepted('substantial') },
  { name: 'an ID token at LoA high, capped at the means\' substantial', idToken: signed({ acr: 'http://eidas.europa.eu/LoA/high' }), outcome: accepted('substantial') },
  { name: 'an ID token at LoA low, which stays low', idToken: signed({ acr: 'http://eidas.europa.eu/LoA/low' }), outcome: accepted('low') },
  { name: 'the bank\'s own acr value, mapped by the means file', idToken: signed({ acr: 'urn:bank:strong' }), outcome: accepted('substantial') },

  { name: 'a callback without state', callback: ({ state: _state, ...query }) => query, outcome: refused('state_missing') },
  { name: 'a callback whose state is another login\'s', expected: { requestId: randomBytes(32).toString('base64url') }, outcome: refused('unknown_request', 'unknown_request') },
  { name: 'a callback for a request of another means', expected: { means: 'otherbank' }, outcome: refused('unknown_request', 'unknown_request') },
  { name: 'a callback naming another issuer (mix-up)', callback: (query) => ({ ...query, iss: 'https://other-bank.example.cz' }), outcome: refused('issuer_mismatch') },
  { name: 'a callback without iss from a provider that promises it (RFC 9207)', callback: ({ iss: _iss, ...query }) => query, outcome: refused('issuer_missing') },
  { name: 'the provider\'s access_denied (the citizen cancelled)', callback: providerError('access_denied'), outcome: refused('oidc_access_denied', 'cancelled') },
  { name: 'the provider\'s temporarily_unavailable', callback: providerError('temporarily_unavailable'), outcome: refused('oidc_temporarily_unavailable', 'means_unreachable') },
  { name: 'the provider\'s login_required', callback: providerError('login_required'), outcome: refused('oidc_login_required', 'authn_failed') },
  { name: 'a provider error that is no OAuth error code', callback: providerError('<script>alert(1)</script>'), outcome: refused('oidc_unknown', 'authn_failed') },
  { name: 'another issuer\'s error (mix-up beats the error)', callback: (query) => ({ ...providerError('access_denied')(query), iss: 'https://other-bank.example.cz' }), outcome: refused('issuer_mismatch') },

  // A 5xx is an outage whatever its body says (openid-client reads OAuth errors from 4xx answers only).
  {
    name: 'a token endpoint that answers 503 with an OAuth error',
    tokenAnswer: { status: 503, contentType: 'application/json', body: JSON.stringify({ error: 'temporarily_unavailable' }) },
    outcome: refused('upstream_http_error', 'means_unreachable'),
  },
  { name: 'a token endpoint that answers 502 with an HTML page', tokenAnswer: { status: 502, contentType: 'text/html', body: '<h1>Bad gateway</h1>' }, outcome: refused('upstream_http_error', 'means_unreachable') },
  { name: 'a token endpoint that refuses the code (invalid_grant)', tokenAnswer: { status: 400, contentType: 'application/json', body: JSON.stringify({ error: 'invalid_grant' }) }, outcome: refused('token_invalid_grant') },

  { name: 'an ID token with alg none', idToken: (claims) => jwt({ alg: 'none', typ: 'JWT' }, claims, 'none'), outcome: refused('id_token_invalid') },
  { name: 'an ID token signed with HS256 keyed with the bank\'s public JWK', idToken: (claims, b) => jwt({ alg: 'HS256', typ: 'JWT', kid: b.kid }, claims, { hmac: JSON.stringify(b.publicJwk) }), outcome: refused('id_token_invalid') },
  {
    name: 'an ID token signed by another key under the bank\'s kid',
    idToken: (claims, b) => jwt({ alg: 'RS256', typ: 'JWT', kid: b.kid }, claims, { rsa: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey }),
    outcome: refused('id_token_invalid'),
  },
  {
    name: 'an ID token whose payload was changed under the bank\'s signature',
    idToken: (claims, b) => {
      const [header, , signature] = b.sign(claims).split('.');
      return `${header}.${Buffer.from(JSON.stringify({ ...claims, family_name: 'Svobodová', given_name: 'Marie', birthdate: '1975-11-03' })).toString('base64url')}.${signature}`;
    },
    outcome: refused('id_token_invalid'),
  },
  { name: 'an ID token from another issuer', idToken: signed({ iss: 'https://other-bank.example.cz' }), outcome: refused('id_token_invalid') },
  { name: 'an ID token for another audience', idToken: signed({ aud: 'another-relying-party' }), outcome: refused('id_token_invalid') },
  { name: 'an ID token for several audiences, without azp', idToken: (claims, b) => b.sign({ ...claims, aud: [b.clientId, 'another-relying-party'] }), outcome: refused('id_token_invalid') },
  { name: 'an expired ID token', idToken: (claims, b) => b.sign({ ...claims, iat: Number(claims.iat) - 900, exp: Number(claims.iat) - 600 }), outcome: refused('id_token_invalid') },
  // As a SAML assertion issued in the future is refused (not_yet_valid): beyond the clock tolerance, iat is a lie.
  { name: 'an ID token issued 15 minutes in the future', idToken: (claims, b) => b.sign({ ...claims, iat: Number(claims.iat) + 900, exp: Number(claims.iat) + 1200 }), outcome: refused('id_token_invalid') },
  { name: 'an ID token without nonce', idToken: signed({ nonce: undefined }), outcome: refused('id_token_invalid') },
  { name: 'an ID token with the nonce of another login (a replayed token)', idToken: signed({ nonce: 'nonce-of-an-earlier-login' }), outcome: refused('id_token_invalid') },
  { name: 'an ID token without subject', idToken: signed({ sub: undefined }), outcome: refused('id_token_invalid') },
  { name: 'a token response without an ID token', idToken: () => undefined, outcome: refused('id_token_invalid') },
  { name: 'an ID token that is not a JWT', idToken: () => 'not.a.jwt', outcome: refused('id_token_invalid') },
  { name: 'an ID token without acr', idToken: signed({ acr: undefined }), outcome: refused('loa_missing') },
  { name: 'an ID token with an acr no eIDAS level stands for', idToken: signed({ acr: 'urn:bank:password' }), outcome: refused('loa_unmapped') },
];

function oidcMeans(bank: HostileBank, dir: string): OidcMeans {
  const document = bank.meansFile('BRANA_TEST_BANK_SECRET') as { oidc: Record<string, unknown> };
  const file = path.join(dir, `${MEANS_ID}.json`);
  fs.writeFileSync(file, JSON.stringify({ id: MEANS_ID, ...document, oidc: { ...document.oidc, acr: { 'urn:bank:strong': 'substantial' } } }));
  const means = readIdentityMeansFile(file);
  if (means.protocol !== 'oidc') throw new Error('not an OIDC means');
  return means;
}

async function discoveryOf(bank: HostileBank): Promise<MetadataSource<OpenIdProviderMetadata>> {
  const location = discoveryUrl(bank.issuer);
  const source = new MetadataSource<OpenIdProviderMetadata>({
    means: MEANS_ID,
    location,
    load: MetadataSource.url(location, 5_000, 'application/json'),
    parse: (text) => parseDiscovery(text, { source: location, issuer: bank.issuer }),
    refreshIntervalMs: 3_600_000,
  });
  await source.refresh('start');
  return source;
}

describe('OidcAdapter: a table of what an OpenID Provider answers, checked without a broker', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-oidc-adapter-'));
  let bank: HostileBank;
  let adapter: OidcAdapter;

  before(async () => {
    bank = new HostileBank();
    await bank.start();
    adapter = new OidcAdapter({
      means: oidcMeans(bank, dir),
      issuer: bank.issuer,
      clientId: bank.clientId,
      clientSecret: bank.clientSecret,
      discovery: await discoveryOf(bank),
      publicUrl: PUBLIC_URL,
      stateKey: randomBytes(32),
      allowLoopbackHttp: true,
    });
  });
  after(async () => {
    await bank?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  afterEach(() => {
    bank.forge = undefined;
    bank.tokenAnswer = undefined;
  });

  /** A login through the bank, as far as the callback the browser brings back; the ID token the bank issued, if any. */
  async function throughBank(row: Row): Promise<{ query: Query; requestId: string; idToken: () => string | undefined }> {
    let issued: string | undefined;
    const forge = row.idToken;
    bank.forge = (claims, b, authorization) => (issued = forge ? forge(claims, b, authorization) : b.sign(claims));
    bank.tokenAnswer = row.tokenAnswer;
    const handoff = await adapter.startLogin({ minimumLoa: 'low', forceAuthn: false, spType: 'public' });
    assert.equal(handoff.kind, 'redirect');
    const atBank = await fetch(handoff.url, { redirect: 'manual' });
    const callback = new URL(atBank.headers.get('location') ?? '');
    assert.equal(`${callback.origin}${callback.pathname}`, adapter.redirectUri);
    const query = Object.fromEntries(callback.searchParams) as Query;
    return { query: row.callback ? row.callback(query) : query, requestId: handoff.requestId, idToken: () => issued };
  }

  for (const row of ROWS) {
    const outcome = row.outcome;
    it(`${'identity' in outcome ? 'accepts' : `refuses (${outcome.reason})`} ${row.name}`, async () => {
      const { query, requestId, idToken } = await throughBank(row);
      const expected: ExpectedRequest = { requestId, means: MEANS_ID, minimumLoa: 'low', forceAuthn: false, createdAt: Date.now(), ...row.expected };
      const handle = () => adapter.handleAnswer(adapter.correlate(query), expected);
      if ('identity' in outcome) {
        const identity = await handle();
        const token = idToken()!;
        const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as { auth_time: number; exp: number };
        const hash = createHash('sha256').update(token).digest('hex');
        assert.deepEqual(identity, {
          means: MEANS_ID,
          authority: bank.issuer,
          acr: outcome.identity.acr,
          instant: new Date(claims.auth_time * 1000),
          subject: 'bank-subject-jan',
          attributes: { CurrentGivenName: ['Jan'], CurrentFamilyName: ['Novák'], DateOfBirth: ['1980-04-12'], PlaceOfBirth: ['Praha'] },
          messageHash: hash,
          assertionId: hash,
          assertionExpiresAt: new Date(claims.exp * 1000),
          requestId,
        } satisfies UpstreamIdentity);
        return;
      }
      const err = await refusalOf(handle);
      assert.equal(err.reason, outcome.reason, err.message);
      assert.equal(err.outward, outcome.outward);
    });
  }

  it('says which login a callback answers by its state alone (correlate)', async () => {
    const { query, requestId } = await throughBank({ name: 'correlate', outcome: accepted('substantial') });
    assert.deepEqual(adapter.correlate(query), { requestId, unknownRequestReason: 'unknown_request', query });
  });
});
