import assert from 'node:assert/strict';
import fs from 'node:fs';
import supertest from 'supertest';
import { providersFolder, samlMeansFile } from '../support/external-idp.ts';
import { JAN_NOVAK_ATTRIBUTES, assertJanNovakLoggedIn, loginThroughIdp, type AnswerShape } from '../support/interop-login.ts';
import { startSimpleSamlPhp, type SimpleSamlPhpIdp, type SspSpOptions } from '../support/simplesamlphp-idp.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

/**
 * SimpleSAMLphp 1.19, as Debian ships it, is the IdP of several means: one SimpleSAMLphp, one
 * service provider entry per means (Brána's SP metadata, converted by SimpleSAMLphp's own parser),
 * each with the signing and encryption options of one configuration people run. The citizen logs in
 * through SimpleSAMLphp's login form.
 *
 * SimpleSAMLphp 1.19 signs both the Response and the Assertion unless told otherwise
 * (modules/saml/lib/IdP/SAML2.php: both options default to true).
 *
 * SimpleSAMLphp 1.19 cannot encrypt to a certificate with AES-GCM: its EncryptedAssertion always
 * makes an aes128-cbc session key for RSA key transport (`sharedkey_algorithm` applies only to a
 * pre-shared `sharedkey`, which has no EncryptedKey and which Brána does not use). An encrypted
 * Assertion in an unsigned Response therefore comes from pysaml2 (pysaml2.test.ts), and here only
 * as what Brána must refuse.
 */

/** SimpleSAMLphp's AuthnContextClassRef for a password login over http (over https: PasswordProtectedTransport). */
const PASSWORD = 'urn:oasis:names:tc:SAML:2.0:ac:classes:Password';

interface Configuration {
  means: string;
  /** What the configuration is, in words. */
  title: string;
  /** saml20-sp-remote options for Brána's entry; `validate.authnrequest`: SimpleSAMLphp checks Brána's request signature. */
  options: SspSpOptions;
  /** What SimpleSAMLphp sends with these options, checked so that each test tests what it says. */
  shape: AnswerShape;
}

const CBC = 'http://www.w3.org/2001/04/xmlenc#aes128-cbc';
const OAEP = 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p';
const SIGNED_BOTH: AnswerShape = { responseSigned: true, assertionSigned: true, dataEncryption: null, keyTransport: null };

const ACCEPTED: Configuration[] = [
  {
    means: 'ssp-defaults',
    title: "SimpleSAMLphp 1.19's defaults: the Response and the Assertion signed (saml20.sign.response and saml20.sign.assertion default to true), no encryption",
    options: {},
    shape: SIGNED_BOTH,
  },
  {
    means: 'ssp-signed-assertion',
    title: 'the Assertion signed, the Response not (saml20.sign.response false)',
    options: { 'saml20.sign.response': false },
    shape: { responseSigned: false, assertionSigned: true, dataEncryption: null, keyTransport: null },
  },
  {
    means: 'ssp-encrypted',
    title: 'the Response signed, the Assertion signed and encrypted (assertion.encryption: aes128-cbc, rsa-oaep-mgf1p)',
    options: { 'assertion.encryption': true },
    shape: { responseSigned: true, assertionSigned: null, dataEncryption: CBC, keyTransport: OAEP },
  },
  {
    means: 'ssp-shibboleth-shape',
    title: 'the Response signed, the Assertion not signed but encrypted (aes128-cbc)',
    options: { 'saml20.sign.assertion': false, 'assertion.encryption': true },
    shape: { responseSigned: true, assertionSigned: null, dataEncryption: CBC, keyTransport: OAEP },
  },
];

const REFUSED: Array<Configuration & { reason: string; authnContextMap?: Record<string, string> }> = [
  {
    // Brána would be a padding oracle if it decrypted CBC that no signature covers.
    means: 'ssp-cbc-unsigned-response',
    title: 'the Assertion signed and encrypted with aes128-cbc in an unsigned Response',
    options: { 'saml20.sign.response': false, 'assertion.encryption': true },
    shape: { responseSigned: false, assertionSigned: null, dataEncryption: CBC, keyTransport: OAEP },
    reason: 'signature_invalid',
  },
  {
    // SimpleSAMLphp's Password context is no eIDAS LoA: a means file must map it.
    means: 'ssp-unmapped',
    title: "SimpleSAMLphp's defaults for a means whose file does not map the Password context",
    options: {},
    shape: SIGNED_BOTH,
    reason: 'loa_unmapped',
    authnContextMap: {},
  },
];

describe('interop: SimpleSAMLphp 1.19 as the identity provider', function () {
  let ssp: SimpleSamlPhpIdp;
  let brana: TestBroker;
  let providers: string;

  before(async () => {
    ssp = await startSimpleSamlPhp({
      users: [{ username: 'jan.novak', password: 'heslo-jana', attributes: { uid: ['jan.novak'], ...JAN_NOVAK_ATTRIBUTES } }],
    });
    providers = providersFolder({
      keep: [],
      files: { 'simplesamlphp.xml': await ssp.metadata() },
      extra: Object.fromEntries(
        [...ACCEPTED, ...REFUSED].map((configuration) => [
          configuration.means,
          samlMeansFile(
            { name: { cs: configuration.means, en: configuration.means } },
            { metadata: 'simplesamlphp.xml', authnContextMap: 'authnContextMap' in configuration ? configuration.authnContextMap : { [PASSWORD]: 'substantial' } },
          ),
        ]),
      ),
    });
    brana = await startTestBroker({ env: { BRANA_PROVIDERS_DIR: providers } });
    for (const configuration of [...ACCEPTED, ...REFUSED]) {
      const metadata = await supertest(brana.url.origin).get(`/saml/${configuration.means}/metadata`);
      assert.equal(metadata.status, 200);
      ssp.addServiceProvider(configuration.means, metadata.text, { 'validate.authnrequest': true, ...configuration.options });
    }
  });
  after(async () => {
    await brana?.close();
    await ssp?.close();
    if (providers) fs.rmSync(providers, { recursive: true, force: true });
  });

  const atSimpleSamlPhp = (location: string) => ssp.login(location, 'jan.novak', 'heslo-jana');

  for (const configuration of ACCEPTED) {
    it(`logs Jan Novák in through SimpleSAMLphp's login form: ${configuration.title}`, async () => {
      const sep = await brana.registerSep();
      const login = await loginThroughIdp(brana, sep, configuration.means, ssp.origin, atSimpleSamlPhp);
      assert.deepEqual(login.shape, configuration.shape);
      assertJanNovakLoggedIn(login, configuration.means, 'substantial');
    });
  }

  for (const configuration of REFUSED) {
    it(`refuses ${configuration.title} (${configuration.reason}), and nothing is issued`, async () => {
      const sep = await brana.registerSep();
      const login = await loginThroughIdp(brana, sep, configuration.means, ssp.origin, atSimpleSamlPhp);
      assert.deepEqual(login.shape, configuration.shape);
      assert.equal(login.refusal, configuration.reason);
      const events = login.records.map((record) => record.event);
      assert.ok(!events.includes('identity_resolved') && !events.includes('token_issued'), events.join(', '));
    });
  }
});
