import assert from 'node:assert/strict';
import supertest from 'supertest';
import { parseServiceProviderMetadata } from '../../src/saml-idp/sp-metadata.ts';
import { chooseMeans, Citizen, completeLogin, decideConsent, loginAtIdp, postToAcs } from '../support/login-driver.ts';
import { Pysaml2Sp } from '../support/pysaml2-sp.ts';
import { samlAnswerOf, samlSep, sendToBrana, validatedBySep } from '../support/saml-sep.ts';
import { decodeEntities } from '../support/html.ts';
import { sepDocument, startTestBroker, type TestBroker } from '../support/test-broker.ts';

const EIDAS = 'http://eidas.europa.eu/attributes/naturalperson/';

/**
 * pysaml2 (Debian python3-pysaml2) as a SeP of Brána's SAML IdP, sharing no code with Brána or
 * node-saml: it trusts Brána's published IdP metadata, signs its AuthnRequests itself (eIDAS SPType,
 * RequestedAttributes, a minimum LoA), and checks and decrypts Brána's Response itself.
 */
describe('interop: pysaml2 as a SAML SeP', function () {
  this.timeout(60_000);
  let brana: TestBroker;
  let sp: Pysaml2Sp;
  let clientId: string;

  before(async () => {
    brana = await startTestBroker();
    sp = Pysaml2Sp.create((await supertest(brana.url.origin).get('/saml-idp/metadata')).text);
    const metadata = await sp.metadata();
    const serviceProvider = parseServiceProviderMetadata(metadata, 'pysaml2 SP metadata', { allowLoopbackHttp: true });
    const registered = await brana.broker.registration.register(sepDocument({ redirectUris: [sp.acs], group: 'hradec-kralove' }), 'active', 'test', {
      saml: { serviceProvider, metadata: { xml: metadata, source: 'pysaml2' } },
    });
    clientId = registered.sep.clientId;
  });
  after(async () => {
    sp?.remove();
    await brana?.close();
  });

  for (const binding of ['redirect', 'post'] as const) {
    it(`logs Jan Novák in over HTTP-${binding === 'redirect' ? 'Redirect' : 'POST'}: pysaml2 verifies the Response, decrypts the Assertion, reads the pseudonym, LoA and attributes`, async () => {
      const request = await sp.request(binding, 'pysaml2-relay');
      const citizen = new Citizen(brana.url.origin);
      const sent = binding === 'redirect' ? await citizen.get(request.url!) : await citizen.post(request.action!, request.fields!);
      let page = await citizen.follow(sent);
      page = await chooseMeans(citizen, page, 'eobcanka');
      const idp = await loginAtIdp(citizen, page, '100000001');
      const consent = await postToAcs(citizen, idp.acs, idp.fields);
      const answer = samlAnswerOf(await decideConsent(citizen, consent, 'agree'));
      assert.equal(answer.acs, sp.acs);
      assert.equal(answer.RelayState, 'pysaml2-relay');
      const login = await sp.response(request.id, answer.SAMLResponse);
      assert.equal(login.issuer, `${brana.url.origin}/saml-idp/metadata`);
      assert.equal(login.name_id_format, 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent');
      assert.match(login.name_id, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(login.authn_context, 'http://eidas.europa.eu/LoA/high');
      assert.deepEqual(login.attributes[`${EIDAS}PersonIdentifier`], [`CZ/CZ/${login.name_id}`]);
      assert.deepEqual(login.attributes[`${EIDAS}CurrentGivenName`], ['Jan']);
      assert.deepEqual(login.attributes[`${EIDAS}CurrentFamilyName`], ['Novák']);
      assert.deepEqual(login.attributes[`${EIDAS}DateOfBirth`], ['1980-04-12']);

      const oidcSep = await brana.registerSep({ group: 'hradec-kralove' });
      const oidc = await completeLogin(brana.url.origin, oidcSep, { means: 'eobcanka', login: '100000001', scope: 'openid' });
      assert.equal(login.name_id, oidc.idToken.sub, 'the pseudonym an OIDC SeP of the group gets as sub');
    });
  }

  it('shares the Brána session with another SeP (SSO), and single logout round-trips both ways: pysaml2 verifies Brána\'s LogoutRequest and LogoutResponse', async () => {
    // pysaml2 logs the citizen in through a means…
    const request = await sp.request('redirect', 'pysaml2-relay');
    const citizen = new Citizen(brana.url.origin);
    let page = await citizen.follow(await citizen.get(request.url!));
    page = await chooseMeans(citizen, page, 'eobcanka');
    const idp = await loginAtIdp(citizen, page, '100000001');
    const login = await sp.response(request.id, samlAnswerOf(await decideConsent(citizen, await postToAcs(citizen, idp.acs, idp.fields), 'agree')).SAMLResponse);
    assert.ok(login.session_index);
    // …and a node-saml SeP in the same browser gets SSO: straight to consent.
    const other = await samlSep(brana, { sloBinding: 'HTTP-Redirect' });
    const consent = await citizen.follow(await sendToBrana(other, citizen));
    assert.match(consent.text, /name="decision"/);
    const otherProfile = await validatedBySep(other, samlAnswerOf(await decideConsent(citizen, consent, 'agree')));

    // pysaml2 logs out: Brána tells node-saml in a frame, then answers pysaml2, which verifies it.
    const logout = await sp.logoutRequest(login.name_id, login.session_index, 'after-logout');
    const out = await citizen.get(logout.url);
    assert.equal(out.status, 200);
    const frames = [...out.text.matchAll(/<iframe src="([^"]+)"/g)].map((match) => new URL(decodeEntities(match[1]!)));
    assert.equal(frames.length, 1);
    const told = await other.saml.validateRedirectAsync(Object.fromEntries(frames[0]!.searchParams), frames[0]!.search.slice(1));
    assert.equal(told.profile?.nameID, otherProfile.nameID);
    const next = decodeEntities(/<a href="([^"]+)" id="after-frames"/.exec(out.text)![1]!);
    assert.ok(next.startsWith(sp.slo));
    const answered = await sp.logoutResponse(next);
    assert.equal(answered.status, 'urn:oasis:names:tc:SAML:2.0:status:Success');
    assert.equal(answered.in_response_to, logout.id);

    // The other way round: node-saml logs out of a new session, and pysaml2 reads Brána's LogoutRequest.
    const again = new Citizen(brana.url.origin);
    const second = await sp.request('redirect', 'again');
    let page2 = await again.follow(await again.get(second.url!));
    page2 = await chooseMeans(again, page2, 'eobcanka');
    const idp2 = await loginAtIdp(again, page2, '100000001');
    const login2 = await sp.response(second.id, samlAnswerOf(await decideConsent(again, await postToAcs(again, idp2.acs, idp2.fields), 'agree')).SAMLResponse);
    const otherAgain = await validatedBySep(other, samlAnswerOf(await decideConsent(again, await again.follow(await sendToBrana(other, again)), 'agree')));
    const out2 = await again.get(await other.saml.getLogoutUrlAsync(otherAgain, 'x', {}));
    const frame = [...out2.text.matchAll(/<iframe src="([^"]+)"/g)].map((match) => decodeEntities(match[1]!));
    assert.equal(frame.length, 1);
    const received = await sp.logoutReceived(frame[0]!);
    assert.equal(received.name_id, login2.name_id);
    assert.deepEqual(received.session_indexes, [login2.session_index]);
    assert.equal(received.issuer, `${brana.url.origin}/saml-idp/metadata`);
  });

  it('refuses to read a Response meant for another of its requests (pysaml2 checks InResponseTo against what it sent)', async () => {
    const first = await sp.request('redirect', 'one');
    const other = await sp.request('redirect', 'two');
    const citizen = new Citizen(brana.url.origin);
    let page = await citizen.follow(await citizen.get(first.url!));
    page = await chooseMeans(citizen, page, 'eobcanka');
    const idp = await loginAtIdp(citizen, page, '100000001');
    const answer = samlAnswerOf(await decideConsent(citizen, await postToAcs(citizen, idp.acs, idp.fields), 'agree'));
    await assert.rejects(sp.response(other.id, answer.SAMLResponse), /pysaml2 SP response failed.*(InResponseTo|Unsolicited|unsolicited)/s);
    assert.ok((await brana.broker.log.query({ sepId: clientId, event: 'token_issued' })).length >= 1);
  });
});
