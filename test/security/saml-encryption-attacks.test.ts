import assert from 'node:assert/strict';
import { expectAccepted, expectRefused, startAttackBed, type AttackBed, type Outcome } from '../support/attack-bed.ts';
import { ALGORITHMS, assertionXml, base64, encryptionTemplate, NIA_ENCRYPTION, signatureTemplate, type EncryptionOptions, type IndependentIdp } from '../support/independent-idp.ts';
import { startUpstreamLogin, type UpstreamLogin } from '../support/upstream-login.ts';
import { after as afterElement, flipByte as flip, withCipherValue, withoutSignature } from '../support/xml-surgery.ts';

/**
 * Attacks on the EncryptedAssertion, made with xmlsec1: weak key transport, ciphertext tampering
 * (the padding-oracle family), decryption before authentication, and weak signatures hidden where
 * only the decrypted assertion shows them. Every failure looks the same to the citizen.
 */

const AES_GCM: EncryptionOptions = { ...NIA_ENCRYPTION, dataAlgorithm: ALGORITHMS.aes256Gcm };

/** Ciphertext changes an attacker makes, by what they probe for. */
const TAMPERING: Array<{ name: string; encryption: EncryptionOptions; which: 0 | 1; change: (b: Buffer) => Buffer }> = [
  { name: 'AES-CBC: last byte of the next-to-last block flipped (a padding probe)', encryption: NIA_ENCRYPTION, which: 1, change: flip((n) => n - 17) },
  { name: 'AES-CBC: the IV changed (the first block decrypts to other bytes)', encryption: NIA_ENCRYPTION, which: 1, change: flip(() => 3) },
  { name: 'AES-CBC: the last block dropped', encryption: NIA_ENCRYPTION, which: 1, change: (b) => b.subarray(0, b.length - 16) },
  { name: 'RSA-OAEP: the wrapped key changed', encryption: NIA_ENCRYPTION, which: 0, change: flip((n) => n - 1) },
  { name: 'AES-GCM: the tag changed', encryption: AES_GCM, which: 1, change: flip((n) => n - 1) },
  { name: 'AES-GCM: a ciphertext byte changed', encryption: AES_GCM, which: 1, change: flip((n) => Math.floor(n / 2)) },
  { name: 'AES-GCM: truncated', encryption: AES_GCM, which: 1, change: (b) => b.subarray(0, b.length - 20) },
];

describe('SAML encryption attacks (messages made with xmlsec1)', () => {
  let bed: AttackBed;
  const outcomes: Array<{ name: string; means: string } & Outcome> = [];
  before(async () => {
    bed = await startAttackBed();
  });
  after(async () => bed.close());

  async function login(means: 'eobcanka' | 'nia-id' = 'eobcanka'): Promise<{ login: UpstreamLogin; idp: IndependentIdp }> {
    const sep = await bed.brana.registerSep();
    return { login: await startUpstreamLogin(bed.brana.url.origin, sep, means), idp: bed.idp[means] };
  }

  /** The response signed anew by the IdP's real key (what only an insider could do). */
  async function resigned(idp: IndependentIdp, response: string): Promise<string> {
    const unsigned = withoutSignature(response);
    const id = /<samlp:Response[^>]*\sID="([^"]+)"/.exec(unsigned)![1]!;
    return bed.workspace.sign(afterElement(unsigned, 'saml:Issuer', signatureTemplate(id)), idp.idp.keys);
  }

  async function refuse(name: string, l: UpstreamLogin, xml: string, reasons: readonly string[]): Promise<Outcome> {
    const outcome = await expectRefused(bed, l, base64(xml), reasons);
    outcomes.push({ name, means: l.means, ...outcome });
    return outcome;
  }

  it('accepts AES-256-GCM as well as NIA\'s AES-256-CBC (the controls)', async () => {
    for (const encryption of [NIA_ENCRYPTION, AES_GCM]) {
      const { login: l, idp } = await login();
      const fields = idp.assertionFields(l);
      const encrypted = await idp.encrypted(await idp.signedAssertion(fields), encryption);
      await expectAccepted(l, base64(await idp.signedResponse(idp.responseFields(l, encrypted))));
    }
  });

  for (const tampering of TAMPERING) {
    it(`refuses ${tampering.name}: at the signature when an attacker did it, at decryption when the IdP signed it`, async () => {
      const attacker = await login();
      const reencrypted = await attacker.idp.encrypted(await attacker.idp.signedAssertion(attacker.idp.assertionFields(attacker.login)), tampering.encryption);
      const base = await attacker.idp.signedResponse(attacker.idp.responseFields(attacker.login, reencrypted));
      const tampered = withCipherValue(base, tampering.which, tampering.change);
      await refuse(`${tampering.name} (attacker)`, attacker.login, tampered, ['signature_invalid']);

      const insider = await login();
      const encrypted = await insider.idp.encrypted(await insider.idp.signedAssertion(insider.idp.assertionFields(insider.login)), tampering.encryption);
      const response = await insider.idp.signedResponse(insider.idp.responseFields(insider.login, encrypted));
      await refuse(`${tampering.name} (signed by the IdP)`, insider.login, await resigned(insider.idp, withCipherValue(response, tampering.which, tampering.change)), ['decryption_failed']);
    });
  }

  it('does not decrypt under a response signature it cannot verify, even where the means accepts unsigned responses', async () => {
    const { login: l, idp } = await login('nia-id');
    const encrypted = await idp.encrypted(await idp.signedAssertion(idp.assertionFields(l)));
    // A padding probe wrapped in a response signed by the attacker: answering "decryption failed"
    // here would be the oracle.
    const probe = withCipherValue(await idp.signedResponse(idp.responseFields(l, encrypted), {}, bed.attackerKeys), 1, flip((n) => n - 17));
    await refuse('padding probe under an attacker-signed response', l, probe, ['signature_invalid']);
  });

  it('refuses an EncryptedAssertion in an unsigned response, whatever the means accepts', async () => {
    for (const means of ['eobcanka', 'nia-id'] as const) {
      const { login: l, idp } = await login(means);
      await refuse(`unsigned response around an EncryptedAssertion (${means})`, l, await idp.answer(l, { signResponse: false }), ['signature_invalid']);
    }
  });

  it('refuses RSA PKCS#1 v1.5 key transport and Triple-DES, before decrypting', async () => {
    const weak: EncryptionOptions[] = [
      { dataAlgorithm: ALGORITHMS.aes256Cbc, keyTransport: ALGORITHMS.rsa15, oaepDigest: null },
      { dataAlgorithm: 'http://www.w3.org/2001/04/xmlenc#tripledes-cbc', keyTransport: ALGORITHMS.rsaOaep, oaepDigest: ALGORITHMS.sha1 },
    ];
    for (const encryption of weak) {
      const { login: l, idp } = await login();
      const template = encryptionTemplate(encryption);
      const data = await bed.workspace.encrypt(await idp.signedAssertion(idp.assertionFields(l)), template, idp.sp.encryptionCertFile, encryption.dataAlgorithm.includes('tripledes') ? ('des-192' as 'aes-128') : 'aes-256');
      const encrypted = `<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">${data}</saml:EncryptedAssertion>`;
      await refuse(`weak encryption ${encryption.keyTransport} ${encryption.dataAlgorithm}`, l, await idp.signedResponse(idp.responseFields(l, encrypted)), ['encryption_algorithm_refused']);
    }
  });

  it('refuses an assertion encrypted for someone else\'s key', async () => {
    const { login: l, idp } = await login();
    const data = await bed.workspace.encrypt(await idp.signedAssertion(idp.assertionFields(l)), encryptionTemplate(NIA_ENCRYPTION), bed.attackerKeys.certFile, 'aes-256');
    const encrypted = `<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">${data}</saml:EncryptedAssertion>`;
    await refuse('encrypted for another key', l, await idp.signedResponse(idp.responseFields(l, encrypted)), ['decryption_failed']);
  });

  describe('inside the encryption, where only the decrypted assertion shows it', () => {
    async function innerSigned(sign: Parameters<IndependentIdp['signedAssertion']>[1], signer?: 'hmac') {
      const { login: l, idp } = await login();
      const fields = idp.assertionFields(l);
      const assertion =
        signer === 'hmac'
          ? await bed.workspace.sign(assertionXml(fields, signatureTemplate(fields.id, { ...sign, certificateInKeyInfo: false })), { hmacKeyFile: idp.idp.keys.certFile })
          : await idp.signedAssertion(fields, sign);
      return { l, xml: await idp.signedResponse(idp.responseFields(l, await idp.encrypted(assertion))) };
    }

    it('refuses an assertion signed with RSA-SHA1, or with a SHA-1 digest, in a response signed with RSA-SHA256', async () => {
      for (const sign of [{ signatureMethod: ALGORITHMS.rsaSha1 }, { digestMethod: ALGORITHMS.sha1 }]) {
        const { l, xml } = await innerSigned(sign);
        await refuse(`inner ${JSON.stringify(sign)}`, l, xml, ['signature_algorithm_refused']);
      }
    });

    it('refuses an assertion signed with HMAC keyed with the IdP\'s public certificate', async () => {
      const { l, xml } = await innerSigned({ signatureMethod: ALGORITHMS.hmacSha256 }, 'hmac');
      await refuse('inner HMAC', l, xml, ['signature_algorithm_refused', 'signature_invalid']);
    });

    it('refuses an assertion signature with three Transforms', async () => {
      const { l, xml } = await innerSigned({ transforms: [ALGORITHMS.enveloped, ALGORITHMS.excC14n, ALGORITHMS.excC14n] });
      await refuse('inner three transforms', l, xml, ['signature_malformed', 'signature_invalid']);
    });

    it('refuses an unsigned assertion in a signed response', async () => {
      const { login: l, idp } = await login();
      const xml = await idp.signedResponse(idp.responseFields(l, await idp.encrypted(assertionXml(idp.assertionFields(l)))));
      await refuse('inner assertion unsigned', l, xml, ['signature_invalid']);
    });

    it('refuses a plaintext that is not one assertion', async () => {
      const { login: l, idp } = await login();
      const fields = idp.assertionFields(l);
      const two = (await idp.signedAssertion(fields)) + (await idp.signedAssertion({ ...fields, id: `${fields.id}x` }));
      const xml = await idp.signedResponse(idp.responseFields(l, await idp.encrypted(`<x:Pair xmlns:x="urn:example">${two}</x:Pair>`)));
      await refuse('two assertions inside the encryption', l, xml, ['assertion_count', 'invalid_response', 'signature_invalid', 'decryption_failed']);
    });
  });

  describe('and across all of them', () => {
    it('shows the citizen one and the same page for every signature and decryption failure (per means: the page names it)', () => {
      assert.ok(outcomes.length >= 25, `only ${outcomes.length} refusals were collected`);
      for (const means of new Set(outcomes.map((o) => o.means))) {
        const [first, ...rest] = outcomes.filter((o) => o.means === means);
        for (const outcome of rest) {
          assert.equal(outcome.status, first!.status, `${outcome.name} answered ${outcome.status}`);
          assert.equal(outcome.page, first!.page, `${outcome.name} showed a different page`);
        }
      }
    });
  });
});
