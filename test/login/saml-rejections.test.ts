import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { ResponseSpec } from '../../src/devidp/saml-response-builder.ts';
import { codesIssuedTo, recordsOfLogin } from '../support/audit.ts';
import { authnRequestIdOf, chooseMeans, loginAtIdp, postToAcs, startLogin, type Citizen } from '../support/login-driver.ts';
import { attacker, developmentIdp, forgedResponse, serviceProvider } from '../support/saml-forge.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

interface Case {
  name: string;
  reasons: string[];
  sep?: Record<string, unknown>;
  /** Builds the SAMLResponse (base64) from the id of the request Brána really sent. */
  response(brana: TestBroker, requestId: string, genuine: string): Promise<string>;
}

const minutesAgo = (minutes: number) => new Date(Date.now() - minutes * 60_000);

const CASES: Case[] = [
  {
    name: 'an unsigned response and assertion',
    reasons: ['signature_invalid'],
    response: (b, id) => forgedResponse(b, 'eobcanka', id, { signAssertion: false, signResponse: false }),
  },
  {
    name: 'a response signed by a key not in the means\' metadata',
    reasons: ['signature_invalid'],
    response: (b, id) => {
      const forger = attacker(developmentIdp(b, 'eobcanka').entityId);
      return forgedResponse(b, 'eobcanka', id, { assertionSigner: forger, responseSigner: forger });
    },
  },
  {
    name: 'a response from the other means\' IdP (its real key, its own issuer)',
    reasons: ['issuer_mismatch', 'signature_invalid'],
    response: (b, id) => forgedResponse(b, 'eobcanka', id, { idp: developmentIdp(b, 'mojeid') }),
  },
  {
    name: 'a response signed with the other means\' real key under this means\' name',
    reasons: ['signature_invalid'],
    response: (b, id) => forgedResponse(b, 'eobcanka', id, { idp: { ...developmentIdp(b, 'mojeid'), entityId: developmentIdp(b, 'eobcanka').entityId } }),
  },
  {
    name: 'a wrong InResponseTo',
    reasons: ['in_response_to_invalid'],
    response: (b) => forgedResponse(b, 'eobcanka', `_${randomBytes(20).toString('hex')}`),
  },
  {
    name: 'an assertion answering another request than its response',
    reasons: ['in_response_to_invalid'],
    response: (b, id) => forgedResponse(b, 'eobcanka', id, { overrides: { subjectInResponseTo: `_${randomBytes(20).toString('hex')}` } }),
  },
  {
    name: 'an expired assertion',
    // node-saml finds no bearer confirmation still valid before it reaches the Conditions.
    reasons: ['expired', 'stale', 'subject_confirmation_invalid'],
    response: (b, id) => forgedResponse(b, 'eobcanka', id, { now: minutesAgo(10), validitySeconds: 300 }),
  },
  {
    name: 'an assertion for another audience',
    reasons: ['audience_mismatch'],
    response: (b, id) => forgedResponse(b, 'eobcanka', id, { overrides: { audience: 'https://other-sp.example.cz/metadata' } }),
  },
  {
    name: 'a response for another Destination',
    reasons: ['destination_mismatch'],
    response: (b, id) => forgedResponse(b, 'eobcanka', id, { overrides: { destination: serviceProvider(b, 'mojeid').acsUrl } }),
  },
  {
    name: 'a bearer confirmation for another Recipient',
    reasons: ['recipient_mismatch'],
    response: (b, id) => forgedResponse(b, 'eobcanka', id, { overrides: { recipient: serviceProvider(b, 'mojeid').acsUrl } }),
  },
  {
    name: 'a LoA below the requested minimum (signed substantial for a high request)',
    reasons: ['loa_below_minimum'],
    sep: { minimumLoa: 'high' },
    response: (b, id) => forgedResponse(b, 'eobcanka', id, { loa: 'substantial' } as Partial<ResponseSpec>),
  },
  {
    name: 'a top-level Success with AuthnFailed inside the assertion (NIA\'s sharp edge)',
    reasons: ['authn_failed_in_attribute'],
    response: (b, id) =>
      forgedResponse(b, 'eobcanka', id, {
        attributes: [{ name: 'urn:oasis:names:tc:SAML:2.0:protocol/statuscode', values: ['urn:oasis:names:tc:SAML:2.0:status:AuthnFailed'] }],
      }),
  },
];

async function reachIdp(brana: TestBroker, sep: Awaited<ReturnType<TestBroker['registerSep']>>): Promise<{ citizen: Citizen; requestId: string; codeVerifier: string; acs: string; genuine: string }> {
  const started = await startLogin(brana.url.origin, sep, { scope: 'openid profile' });
  const idp = await loginAtIdp(started.citizen, await chooseMeans(started.citizen, started.response, 'eobcanka'), '100000001');
  return { citizen: started.citizen, requestId: authnRequestIdOf(idp.sealedRequest), codeVerifier: started.codeVerifier, acs: idp.acs, genuine: idp.fields.SAMLResponse! };
}

describe('SAML responses Brána must refuse', () => {
  let brana: TestBroker;
  before(async () => {
    brana = await startTestBroker();
  });
  after(async () => brana.close());

  for (const testCase of CASES) {
    it(`refuses ${testCase.name}, logs why, and issues no code`, async () => {
      const sep = await brana.registerSep(testCase.sep ?? {});
      const login = await reachIdp(brana, sep);
      const page = await postToAcs(login.citizen, login.acs, { SAMLResponse: await testCase.response(brana, login.requestId, login.genuine) });

      assert.ok(page.status >= 400, `expected an error page, got ${page.status} ${String(page.headers.location ?? '')}`);
      assert.match(page.text, /Přihlášení se nezdařilo/);
      assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 0);
      const records = await recordsOfLogin(brana.broker, login.codeVerifier);
      // An answer to no request of ours cannot be tied to this login; its record stands alone.
      const error = records.find((r) => r.event === 'error') ?? (await brana.broker.log.query({ event: 'error' })).at(-1);
      assert.ok(error, 'the refusal is in the assertion log');
      assert.ok(testCase.reasons.includes(String(error.reason)), `reason ${error.reason} not among ${testCase.reasons.join(', ')}`);
      assert.ok(!records.some((r) => r.event === 'identity_resolved' || r.event === 'token_issued'));
    });
  }

  it('refuses a replayed response and a replayed assertion', async () => {
    const sep = await brana.registerSep();
    const login = await reachIdp(brana, sep);
    const first = await postToAcs(login.citizen, login.acs, { SAMLResponse: login.genuine });
    assert.ok(first.status === 200 || first.status === 303, 'the genuine response is accepted once');
    assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 0, 'still at consent');

    const replay = await postToAcs(login.citizen, login.acs, { SAMLResponse: login.genuine });
    assert.ok(replay.status >= 400);
    const reasons = (await recordsOfLogin(brana.broker, login.codeVerifier)).filter((r) => r.event === 'error').map((r) => r.reason);
    assert.deepEqual(reasons, ['replayed_response']);

    // The same signed assertion id, wrapped in an answer to a fresh request, is refused too.
    const second = await reachIdp(brana, sep);
    const reused = await forgedResponse(brana, 'eobcanka', second.requestId, { overrides: { assertionId: '_fixed-assertion-id-for-replay' } });
    assert.ok((await postToAcs(second.citizen, second.acs, { SAMLResponse: reused })).status < 400);
    const third = await reachIdp(brana, sep);
    const again = await forgedResponse(brana, 'eobcanka', third.requestId, { overrides: { assertionId: '_fixed-assertion-id-for-replay' } });
    assert.ok((await postToAcs(third.citizen, third.acs, { SAMLResponse: again })).status >= 400);
    const thirdReasons = (await recordsOfLogin(brana.broker, third.codeVerifier)).filter((r) => r.event === 'error').map((r) => r.reason);
    assert.deepEqual(thirdReasons, ['replayed_assertion']);
  });

  it('refuses an answer posted to the ACS of a means it was not sent to', async () => {
    const sep = await brana.registerSep();
    const login = await reachIdp(brana, sep);
    const wrongAcs = serviceProvider(brana, 'mojeid').acsUrl;
    const page = await postToAcs(login.citizen, wrongAcs, { SAMLResponse: login.genuine });
    assert.ok(page.status >= 400);
    assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 0);
  });

  it('does not let one browser finish another browser\'s login (login CSRF)', async () => {
    const sep = await brana.registerSep();
    const victim = await reachIdp(brana, sep);
    const attackerLogin = await reachIdp(brana, sep);
    // The attacker makes the victim's browser post the attacker's genuine answer.
    const page = await postToAcs(victim.citizen, attackerLogin.acs, { SAMLResponse: attackerLogin.genuine });
    assert.equal(page.status, 400);
    assert.match(page.text, /Přihlášení trvalo příliš dlouho nebo bylo otevřeno v jiném prohlížeči/);
    assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 0);
  });
});
