import assert from 'node:assert/strict';
import fs from 'node:fs';
import supertest from 'supertest';
import { providersFolder, samlMeansFile } from '../support/external-idp.ts';
import { JAN_NOVAK_ATTRIBUTES, assertJanNovakLoggedIn, loginThroughIdp, type AnswerShape } from '../support/interop-login.ts';
import { AES128_GCM, SHIBBOLETH_DEFAULTS, startPysaml2Idp, type Pysaml2Idp, type Pysaml2SpOptions } from '../support/pysaml2-idp.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

/**
 * pysaml2 (Debian python3-pysaml2) as a second IdP, sharing no code with SimpleSAMLphp or Brána:
 * a small server (test/support/pysaml2-idp.py) that checks Brána's request signature and answers at
 * once for Jan Novák. One means per answer shape:
 *  - Shibboleth IdP's defaults: the Response signed, the Assertion not, encrypted with aes128-gcm
 *    (rsa-oaep-mgf1p key transport);
 *  - the Assertion signed and encrypted with aes128-gcm in an unsigned Response: the shape
 *    SimpleSAMLphp 1.19 cannot produce (it encrypts to a certificate only with aes128-cbc).
 */

const PASSWORD_PROTECTED_TRANSPORT = 'urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport';
const OAEP = 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p';

interface Configuration {
  means: string;
  title: string;
  options: Pysaml2SpOptions;
  shape: AnswerShape;
}

const CONFIGURATIONS: Configuration[] = [
  {
    means: 'pysaml2-shibboleth',
    title: "Shibboleth IdP's defaults: the Response signed, the Assertion not signed, encrypted with aes128-gcm",
    options: SHIBBOLETH_DEFAULTS,
    shape: { responseSigned: true, assertionSigned: null, dataEncryption: AES128_GCM, keyTransport: OAEP },
  },
  {
    means: 'pysaml2-signed-assertion-gcm',
    title: 'the Assertion signed and encrypted with aes128-gcm, the Response not signed',
    options: { sign_response: false, sign_assertion: true, encrypt_assertion: true, data_encryption: AES128_GCM },
    shape: { responseSigned: false, assertionSigned: null, dataEncryption: AES128_GCM, keyTransport: OAEP },
  },
];

/** pysaml2 7.0.1 out of the box signs with rsa-sha1 and sha1 digests: Brána refuses SHA-1. */
const SHA1_SIGNED: Configuration & { reason: string } = {
  means: 'pysaml2-sha1',
  title: "pysaml2's own signature defaults (rsa-sha1, sha1 digests) in Shibboleth's shape",
  options: { ...SHIBBOLETH_DEFAULTS, sign_alg: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1', digest_alg: 'http://www.w3.org/2000/09/xmldsig#sha1' },
  shape: { responseSigned: true, assertionSigned: null, dataEncryption: AES128_GCM, keyTransport: OAEP },
  reason: 'signature_algorithm_refused',
};

describe('interop: pysaml2 as the identity provider', function () {
  let idp: Pysaml2Idp;
  let brana: TestBroker;
  let providers: string;

  before(async () => {
    idp = await startPysaml2Idp({ nameId: 'pysaml2-jan-novak', authnContext: PASSWORD_PROTECTED_TRANSPORT, attributes: JAN_NOVAK_ATTRIBUTES });
    providers = providersFolder({
      keep: [],
      files: { 'pysaml2.xml': await idp.metadata() },
      extra: Object.fromEntries(
        [...CONFIGURATIONS, SHA1_SIGNED].map(({ means }) => [
          means,
          samlMeansFile({ name: { cs: means, en: means } }, { metadata: 'pysaml2.xml', authnContextMap: { [PASSWORD_PROTECTED_TRANSPORT]: 'substantial' } }),
        ]),
      ),
    });
    brana = await startTestBroker({ env: { BRANA_PROVIDERS_DIR: providers } });
    for (const { means, options } of [...CONFIGURATIONS, SHA1_SIGNED]) {
      const metadata = await supertest(brana.url.origin).get(`/saml/${means}/metadata`);
      assert.equal(metadata.status, 200);
      idp.addServiceProvider(means, metadata.text, new URL(`/saml/${means}/metadata`, brana.url).href, options);
    }
  });
  after(async () => {
    await brana?.close();
    await idp?.close();
    if (providers) fs.rmSync(providers, { recursive: true, force: true });
  });

  for (const configuration of CONFIGURATIONS) {
    it(`logs Jan Novák in through pysaml2: ${configuration.title}`, async () => {
      const sep = await brana.registerSep();
      const login = await loginThroughIdp(brana, sep, configuration.means, idp.origin, (location) => idp.answer(location));
      assert.deepEqual(login.shape, configuration.shape);
      assertJanNovakLoggedIn(login, configuration.means, 'substantial');
    });
  }

  it(`refuses ${SHA1_SIGNED.title} (${SHA1_SIGNED.reason}), and nothing is issued`, async () => {
    const sep = await brana.registerSep();
    const login = await loginThroughIdp(brana, sep, SHA1_SIGNED.means, idp.origin, (location) => idp.answer(location));
    assert.deepEqual(login.shape, SHA1_SIGNED.shape);
    assert.equal(login.refusal, SHA1_SIGNED.reason);
    // The operator reads which algorithm was refused in the log record, never more of the answer.
    const refused = login.records.find((record) => record.event === 'error')!;
    assert.equal(refused.detail.problem, 'http://www.w3.org/2000/09/xmldsig#rsa-sha1');
    const events = login.records.map((record) => record.event);
    assert.ok(!events.includes('identity_resolved') && !events.includes('token_issued'), events.join(', '));
  });
});
