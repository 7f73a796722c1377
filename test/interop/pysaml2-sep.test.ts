import assert from 'node:assert/strict';
import supertest from 'supertest';
import { parseServiceProviderMetadata } from '../../src/saml-idp/sp-metadata.ts';
import { chooseMeans, Citizen, completeLogin, decideConsent, loginAtIdp, postToAcs } from '../support/login-driver.ts';
import { Pysaml2Sp } from '../support/pysaml2-sp.ts';
import { samlAnswerOf } from '../support/saml-sep.ts';
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
