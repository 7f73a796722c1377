import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import supertest from 'supertest';
import { codesIssuedTo } from '../support/audit.ts';
import { providersFolder } from '../support/external-idp.ts';
import { HostileBank, type IdTokenForgery } from '../support/hostile-bank.ts';
import { startLogin, type Sep } from '../support/login-driver.ts';
import { jwt } from '../support/oidc-attacker.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

/**
 * Brána as the relying party of an identity means that speaks OpenID Connect (the bank identities,
 * most of NIA's logins): a bank — or whoever answers in its name — returns forged, misaddressed,
 * expired or replayed ID tokens. Each is refused: no code to the SeP, no person resolved, one
 * reason in the assertion log.
 */

const SECRET_ENV = 'BRANA_HOSTILEBANK_SECRET';

describe('attacks through an upstream OpenID Provider (a bank answering with forged ID tokens)', () => {
  let bank: HostileBank;
  let brana: TestBroker;
  let sep: Sep;

  before(async () => {
    bank = new HostileBank();
    await bank.start();
    process.env[SECRET_ENV] = bank.clientSecret;
    brana = await startTestBroker({ env: { BRANA_PROVIDERS_DIR: providersFolder({ keep: ['eobcanka'], extra: { hostilebank: bank.meansFile(SECRET_ENV) } }) } });
    sep = await brana.registerSep();
  });
  after(async () => {
    await brana.close();
    await bank.stop();
    delete process.env[SECRET_ENV];
  });
  afterEach(() => {
    bank.forge = undefined;
  });

  /** A login through the bank; returns Brána's answer to the bank's callback, followed within Brána. */
  async function throughBank(forge?: IdTokenForgery) {
    bank.forge = forge;
    const started = await startLogin(brana.url.origin, sep, { scope: 'openid profile', idpHint: 'hostilebank' });
    assert.equal(started.response.status, 303, 'sent to the bank');
    const atBank = await supertest(bank.issuer).get(new URL(String(started.response.headers.location)).pathname + new URL(String(started.response.headers.location)).search).redirects(0);
    const callback = String(atBank.headers.location);
    assert.ok(callback.startsWith(`${brana.url.origin}/oidc/hostilebank/callback?`), callback);
    const before = Number(((await brana.broker.db('assertion_log').max('seq as seq').first()) as { seq: number | null }).seq ?? 0);
    const page = await started.citizen.follow(await started.citizen.get(callback));
    const records = (await brana.broker.db('assertion_log').where('seq', '>', before).orderBy('seq')) as Array<{ event: string; reason: string | null }>;
    return { page, records };
  }

  async function expectRefused(forge: IdTokenForgery, reasons: string[]): Promise<void> {
    const { page, records } = await throughBank(forge);
    assert.ok(page.status >= 400 && page.status < 500, `expected a refusal page, got ${page.status}`);
    assert.match(page.text, /Přihlášení se nezdařilo/);
    assert.ok(!records.some((r) => r.event === 'identity_resolved' || r.event === 'response_received'), records.map((r) => r.event).join(', '));
    const errors = records.filter((r) => r.event === 'error');
    assert.equal(errors.length, 1);
    assert.ok(reasons.includes(String(errors[0]!.reason)), `reason ${errors[0]!.reason} is not among ${reasons.join(', ')}`);
    assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 0);
  }

  it('accepts the bank\'s correct ID token (the control)', async () => {
    const { page, records } = await throughBank();
    assert.equal(page.status, 200, page.text.slice(0, 300));
    assert.match(page.text, /name="decision"/);
    assert.ok(records.some((r) => r.event === 'identity_resolved'));
  });

  const forgeries: Array<[string, IdTokenForgery]> = [
    ['alg none', (claims) => jwt({ alg: 'none', typ: 'JWT' }, claims, 'none')],
    ['HS256 keyed with the bank\'s public JWK', (claims, b) => jwt({ alg: 'HS256', typ: 'JWT', kid: b.kid }, claims, { hmac: JSON.stringify(b.publicJwk) })],
    ['HS256 keyed with the bank\'s public key modulus', (claims, b) => jwt({ alg: 'HS256', typ: 'JWT', kid: b.kid }, claims, { hmac: String(b.publicJwk.n) })],
    ['signed by another key under the bank\'s kid', (claims, b) => jwt({ alg: 'RS256', typ: 'JWT', kid: b.kid }, claims, { rsa: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey })],
    ['a changed payload under the bank\'s signature', (claims, b) => {
      const [header, , signature] = b.sign(claims).split('.');
      return `${header}.${Buffer.from(JSON.stringify({ ...claims, family_name: 'Svobodová', given_name: 'Marie', birthdate: '1975-11-03' })).toString('base64url')}.${signature}`;
    }],
    ['another issuer', (claims, b) => b.sign({ ...claims, iss: 'https://other-bank.example.cz' })],
    ['another audience', (claims, b) => b.sign({ ...claims, aud: 'another-relying-party' })],
    ['several audiences and no azp', (claims, b) => b.sign({ ...claims, aud: [b.clientId, 'another-relying-party'] })],
    ['expired', (claims, b) => b.sign({ ...claims, iat: Number(claims.iat) - 900, exp: Number(claims.iat) - 600 })],
    ['no nonce', (claims, b) => b.sign({ ...claims, nonce: undefined })],
    ['the nonce of another login (a replayed ID token)', (claims, b) => b.sign({ ...claims, nonce: 'nonce-of-an-earlier-login' })],
    ['no subject', (claims, b) => b.sign({ ...claims, sub: undefined })],
    ['no ID token at all', () => undefined],
    ['an ID token that is not a JWT', () => 'not.a.jwt'],
  ];
  for (const [name, forge] of forgeries) {
    it(`refuses an ID token with ${name}`, async () => {
      await expectRefused(forge, ['id_token_invalid', 'id_token_missing', 'token_failed', 'authorization_response_invalid']);
    });
  }

  it('refuses an ID token claiming no eIDAS level of assurance', async () => {
    await expectRefused((claims, b) => b.sign({ ...claims, acr: 'urn:bank:password' }), ['loa_unmapped']);
  });
});
