import assert from 'node:assert/strict';
import supertest from 'supertest';
import { parseServiceProviderMetadata } from '../../src/saml-idp/sp-metadata.ts';
import { chooseMeans, Citizen, completeLogin, decideConsent, loginAtIdp, postToAcs } from '../support/login-driver.ts';
import { samlAnswerOf, samlSep, sendToBrana, validatedBySep } from '../support/saml-sep.ts';
import { decodeEntities } from '../support/html.ts';
import { startSimpleSamlPhpSp, type SimpleSamlPhpSp } from '../support/simplesamlphp-sp.ts';
import { sepDocument, startTestBroker, type TestBroker } from '../support/test-broker.ts';

const EIDAS = 'http://eidas.europa.eu/attributes/naturalperson/';

/**
 * SimpleSAMLphp 1.19 (Debian simplesamlphp) as a SAML SeP of Brána, sharing no code with it: its
 * saml:SP signs its AuthnRequest (HTTP-Redirect) with eIDAS RequestedAttributes and a minimum LoA,
 * and checks, decrypts and reads Brána's Response with its own libraries (SAML2, xmlseclibs).
 */
describe('interop: SimpleSAMLphp as a SAML SeP', function () {
  this.timeout(60_000);
  let brana: TestBroker;
  let sp: SimpleSamlPhpSp;

  before(async () => {
    brana = await startTestBroker();
    sp = await startSimpleSamlPhpSp((await supertest(brana.url.origin).get('/saml-idp/metadata')).text);
    const metadata = await sp.metadata();
    const serviceProvider = parseServiceProviderMetadata(metadata, 'SimpleSAMLphp SP metadata', { allowLoopbackHttp: true });
    await brana.broker.registration.register(
      sepDocument({ redirectUris: serviceProvider.assertionConsumerServices.map((service) => service.url), group: 'hradec-kralove' }),
      'active',
      'test',
      { saml: { serviceProvider, metadata: { xml: metadata, source: 'simplesamlphp' } } },
    );
  });
  after(async () => {
    await sp?.close();
    await brana?.close();
  });

  it('logs Jan Novák in: SimpleSAMLphp verifies the Response, decrypts the Assertion, reads the pseudonym, LoA and attributes', async () => {
    const toBrana = await sp.start();
    assert.ok(toBrana.startsWith(`${brana.url.origin}/saml-idp/sso?SAMLRequest=`), toBrana);
    const citizen = new Citizen(brana.url.origin);
    let page = await citizen.follow(await citizen.get(toBrana));
    page = await chooseMeans(citizen, page, 'eobcanka');
    const idp = await loginAtIdp(citizen, page, '100000001');
    const answer = samlAnswerOf(await decideConsent(citizen, await postToAcs(citizen, idp.acs, idp.fields), 'agree'));
    const { login, status, page: spPage } = await sp.finish(answer.acs, { SAMLResponse: answer.SAMLResponse, ...(answer.RelayState ? { RelayState: answer.RelayState } : {}) });
    assert.ok(login, `SimpleSAMLphp refused the Response (${status}): ${spPage.slice(0, 1500)}\n${sp.log().slice(-3000)}`);
    assert.equal(login.nameIdFormat, 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent');
    assert.match(login.nameId, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(login.authnContext, 'http://eidas.europa.eu/LoA/high');
    assert.deepEqual(login.attributes[`${EIDAS}PersonIdentifier`], [`CZ/CZ/${login.nameId}`]);
    assert.deepEqual(login.attributes[`${EIDAS}CurrentGivenName`], ['Jan']);
    assert.deepEqual(login.attributes[`${EIDAS}CurrentFamilyName`], ['Novák']);

    const oidcSep = await brana.registerSep({ group: 'hradec-kralove' });
    const oidc = await completeLogin(brana.url.origin, oidcSep, { means: 'eobcanka', login: '100000001', scope: 'openid' });
    assert.equal(login.nameId, oidc.idToken.sub, 'the pseudonym an OIDC SeP of the group gets as sub');
  });

  it('shares the Brána session with another SeP, and single logout round-trips: Brána tells SimpleSAMLphp (signed LogoutRequest it accepts) and answers its own LogoutRequest', async () => {
    const citizen = new Citizen(brana.url.origin);
    sp.newBrowser();
    const logIn = async () => {
      let page = await citizen.follow(await citizen.get(await sp.start()));
      if (/name="means"/.test(page.text)) {
        page = await chooseMeans(citizen, page, 'eobcanka');
        const idp = await loginAtIdp(citizen, page, '100000001');
        page = await postToAcs(citizen, idp.acs, idp.fields);
      }
      const answer = samlAnswerOf(await decideConsent(citizen, page, 'agree'));
      const { login } = await sp.finish(answer.acs, { SAMLResponse: answer.SAMLResponse, ...(answer.RelayState ? { RelayState: answer.RelayState } : {}) });
      assert.ok(login, sp.log().slice(-3000));
    };
    await logIn();
    assert.equal(await sp.loggedIn(), true);
    // A node-saml SeP in the same browser: SSO, straight to consent.
    const other = await samlSep(brana, { sloBinding: 'HTTP-Redirect' });
    const consent = await citizen.follow(await sendToBrana(other, citizen));
    assert.match(consent.text, /name="decision"/);
    const otherProfile = await validatedBySep(other, samlAnswerOf(await decideConsent(citizen, consent, 'agree')));

    // node-saml logs out: Brána's logout page tells SimpleSAMLphp in a frame, and SimpleSAMLphp accepts it.
    const out = await citizen.get(await other.saml.getLogoutUrlAsync(otherProfile, 'x', {}));
    const frames = [...out.text.matchAll(/<iframe src="([^"]+)"/g)].map((match) => decodeEntities(match[1]!));
    assert.equal(frames.length, 1, out.text.slice(0, 1500));
    const told = await sp.visit(frames[0]!);
    assert.ok(told.status === 302 || told.status === 303, `${told.status}: ${told.page.slice(0, 1500)}\n${sp.log().slice(-3000)}`);
    assert.ok(told.location?.startsWith(`${brana.url.origin}/saml-idp/slo?SAMLResponse=`), `SimpleSAMLphp answers with its LogoutResponse: ${told.location}`);
    assert.equal(await sp.loggedIn(), false, 'SimpleSAMLphp ended its session');
    // Its LogoutResponse, loaded in the frame, is acknowledged.
    assert.equal((await citizen.get(told.location!)).status, 200);

    // SimpleSAMLphp logs out of a new session: Brána checks its signed LogoutRequest and answers it.
    await logIn();
    const toBrana = await sp.logoutStart();
    assert.ok(toBrana.startsWith(`${brana.url.origin}/saml-idp/slo?SAMLRequest=`), toBrana);
    const answered = await citizen.get(toBrana);
    assert.equal(answered.status, 303, answered.text.slice(0, 1000));
    const back = await sp.visit(answered.headers.location as string);
    assert.ok(back.status === 302 || back.status === 303, `${back.status}: ${back.page.slice(0, 1500)}\n${sp.log().slice(-3000)}`);
    assert.equal(await sp.loggedIn(), false);
    const record = (await brana.broker.log.query({ event: 'logout' })).at(-1)!;
    assert.equal(record.outcome, 'success');
    assert.equal(record.detail.protocol, 'saml');
  });
});
