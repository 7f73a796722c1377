import assert from 'node:assert/strict';
import { DOMParser } from '@xmldom/xmldom';
import fc from 'fast-check';
import supertest from 'supertest';
import { codesIssuedTo, recordsOfLogin } from '../support/audit.ts';
import { BOUNDED_MS, fuzzParameters, mutate, mutationArbitrary, type Mutation } from '../support/fuzz.ts';
import { buildAssertion, samlId, signElement } from '../../src/devidp/saml-response-builder.ts';
import { authnRequestIdOf, loginAtIdp, postToAcs, startLogin, type Sep } from '../support/login-driver.ts';
import { developmentIdp, JAN_NOVAK, serviceProvider } from '../support/saml-forge.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

/**
 * Property-based fuzzing of the ACS: genuine answers (each to a fresh request, so every check can
 * be reached) truncated and mutated as XML, as base64 and as a form. Whatever arrives: no 5xx, no
 * crash, an answer within a generous bound, and never a login as anyone but the person the IdP
 * really authenticated.
 */

type Target = { on: 'xml'; mutations: Mutation[] } | { on: 'base64'; mutations: Mutation[] } | { on: 'form'; fields: Record<string, string> };

const targetArbitrary: fc.Arbitrary<Target> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ on: fc.constant('xml' as const), mutations: fc.array(mutationArbitrary, { minLength: 1, maxLength: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ on: fc.constant('base64' as const), mutations: fc.array(mutationArbitrary, { minLength: 1, maxLength: 2 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      on: fc.constant('form' as const),
      fields: fc.dictionary(fc.constantFrom('SAMLResponse', 'RelayState', 'SAMLRequest', 'SigAlg', 'Signature', '__proto__', 'constructor'), fc.string({ maxLength: 300, unit: 'binary' }), { maxKeys: 4 }),
    }),
  },
);

describe('fuzzing the ACS (fast-check)', () => {
  let brana: TestBroker;
  let sep: Sep;
  let janPseudonym: string;

  before(async () => {
    brana = await startTestBroker({ env: { BRANA_RATE_LIMIT_LOGIN: '1000000', BRANA_RATE_LIMIT_ACS: '1000000' } });
    sep = await brana.registerSep();
    const genuine = await answered();
    await postToAcs(genuine.citizen, genuine.acs, { SAMLResponse: genuine.samlResponse });
    const resolved = (await recordsOfLogin(brana.broker, genuine.codeVerifier)).find((r) => r.event === 'identity_resolved');
    janPseudonym = String(resolved?.pseudonym);
    assert.ok(resolved?.pseudonym);
  });
  after(async () => brana.close());

  /** A fresh login answered by the development IdP for Jan Novák: the seed a mutation starts from. */
  async function answered() {
    const started = await startLogin(brana.url.origin, sep, { scope: 'openid profile', idpHint: 'eobcanka' });
    const idp = await loginAtIdp(started.citizen, started.response, '100000001');
    return { citizen: started.citizen, acs: idp.acs, samlResponse: idp.fields.SAMLResponse!, codeVerifier: started.codeVerifier, requestId: authnRequestIdOf(idp.sealedRequest) };
  }

  it('answers every mutated answer with a refusal or, if nothing that matters changed, Jan\'s login', async () => {
    await fc.assert(
      fc.asyncProperty(targetArbitrary, async (target) => {
        const seed = await answered();
        let fields: Record<string, string>;
        if (target.on === 'form') fields = target.fields;
        else if (target.on === 'base64') fields = { SAMLResponse: target.mutations.reduce(mutate, seed.samlResponse) };
        else fields = { SAMLResponse: Buffer.from(target.mutations.reduce(mutate, Buffer.from(seed.samlResponse, 'base64').toString('utf8')), 'utf8').toString('base64') };

        const started = Date.now();
        const page = await postToAcs(seed.citizen, seed.acs, fields);
        const elapsed = Date.now() - started;
        assert.ok(page.status < 500, `answered ${page.status}`);
        assert.ok(elapsed < BOUNDED_MS, `took ${elapsed} ms`);
        const resolved = (await recordsOfLogin(brana.broker, seed.codeVerifier)).filter((r) => r.event === 'identity_resolved');
        if (page.status === 200 && /name="decision"/.test(page.text)) {
          assert.equal(resolved.length, 1);
          assert.equal(resolved[0]!.pseudonym, janPseudonym, 'a mutated answer logged in someone else');
        } else {
          assert.ok(page.status >= 400, `neither a refusal nor the consent page: ${page.status}`);
          assert.equal(resolved.length, 0);
        }
      }),
      fuzzParameters(40),
    );
    assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 0);
    assert.equal((await supertest(brana.url.origin).get('/healthz')).status, 200, 'Brána still answers');
  });

  it('answers mutated assertions that the IdP really signed (reaching the checks after the signature) without a 5xx', async () => {
    const idp = developmentIdp(brana, 'eobcanka');
    const sp = serviceProvider(brana, 'eobcanka');
    await fc.assert(
      fc.asyncProperty(fc.array(mutationArbitrary, { minLength: 1, maxLength: 2 }), async (mutations) => {
        const seed = await answered();
        const assertionId = samlId();
        const assertion = mutations.reduce(mutate, buildAssertion({ idp, sp, inResponseTo: seed.requestId, subject: 'fuzz', loa: 'high', attributes: JAN_NOVAK }, assertionId));
        const responseId = samlId();
        let xml: string;
        try {
          // The IdP signs whatever it is given, if it parses at all; otherwise the mutant goes unsigned.
          // (Parsed quietly first: the signer's own parser would print every error.)
          new DOMParser({ onError: (level) => { if (level !== 'warning') throw new Error('not well-formed'); } }).parseFromString(assertion, 'text/xml');
          const signed = signElement(assertion, 'Assertion', assertionId, idp);
          const response = `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${responseId}" Version="2.0" IssueInstant="${new Date().toISOString()}" Destination="${sp.acsUrl}" InResponseTo="${seed.requestId}"><saml:Issuer>${idp.entityId}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>${signed}</samlp:Response>`;
          xml = signElement(response, 'Response', responseId, idp);
        } catch {
          xml = assertion;
        }
        const started = Date.now();
        const page = await postToAcs(seed.citizen, seed.acs, { SAMLResponse: Buffer.from(xml, 'utf8').toString('base64') });
        assert.ok(page.status < 500, `answered ${page.status}`);
        assert.ok(Date.now() - started < BOUNDED_MS);
      }),
      fuzzParameters(30),
    );
    assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 0);
    assert.equal((await supertest(brana.url.origin).get('/healthz')).status, 200, 'Brána still answers');
  });
});
