import assert from 'node:assert/strict';
import { expectAccepted, expectRefused, startAttackBed, type AttackBed, type Outcome } from '../support/attack-bed.ts';
import { ALGORITHMS, assertionXml, base64, DEFAULT_SIGNATURE, responseXml, signatureTemplate, type IndependentIdp } from '../support/independent-idp.ts';
import { startUpstreamLogin, type UpstreamLogin } from '../support/upstream-login.ts';
import { after as afterElement, element, idOf, replaceSpan, signatureOf, span, swap, withoutSignature } from '../support/xml-surgery.ts';
import { TO_MARIE, WRAPPING_ATTACKS, withBody } from '../support/signature-wrapping.ts';

/**
 * Signature attacks on SAML responses, made with xmlsec1 (see test/support/xmlsec.ts), never with
 * the libraries Brána verifies with. Two kinds of genuine message are attacked:
 * - "signed response": eObčanka as shipped — the Response and the Assertion are both signed;
 * - "signed assertion only": a means configured to accept an unsigned Response around a signed
 *   Assertion, where assertion-level wrapping is the classic way in.
 * The attacker's goal in every wrapping case: log in as Marie Svobodová with a signature made for
 * Jan Novák's login.
 */

type Kind = 'signed response' | 'signed assertion only';

/** A genuine answer to one login, in pieces an attacker can rearrange. */
interface Genuine {
  login: UpstreamLogin;
  idp: IndependentIdp;
  /** The signed Assertion, as the IdP signed it. */
  assertion: string;
  /** The whole Response (signed or not, by kind) holding exactly `assertion`. */
  response: string;
}

/** What the signature really covers: the original, without the signature (enveloped transform). */
const original = (a: string) => withoutSignature(a);

/** Reasons that mean "refused as a wrapping attack" (which check catches it first may differ). */
const WRAPPING_REASONS = ['assertion_count', 'duplicate_id', 'signature_invalid', 'signature_malformed'];

describe('SAML signature attacks (messages made with xmlsec1)', () => {
  let bed: AttackBed;
  const outcomes: Array<{ name: string; means: string } & Outcome> = [];
  before(async () => {
    bed = await startAttackBed();
  });
  after(async () => bed.close());

  async function genuine(kind: Kind, options: { sign?: Partial<typeof DEFAULT_SIGNATURE> } = {}): Promise<Genuine> {
    const means = kind === 'signed response' ? 'eobcanka' : 'nia-id';
    const idp = bed.idp[means];
    const sep = await bed.brana.registerSep();
    const login = await startUpstreamLogin(bed.brana.url.origin, sep, means);
    const assertion = await idp.signedAssertion(idp.assertionFields(login), options.sign);
    const fields = idp.responseFields(login, assertion);
    const response = kind === 'signed response' ? await idp.signedResponse(fields, options.sign) : responseXml(fields);
    return { login, idp, assertion, response };
  }

  async function refuse(name: string, g: Genuine, xml: string, reasons: readonly string[]): Promise<void> {
    outcomes.push({ name, means: g.login.means, ...(await expectRefused(bed, g.login, base64(xml), reasons)) });
  }

  for (const kind of ['signed response', 'signed assertion only'] as const) {
    describe(`with a ${kind}`, () => {
      it('accepts the genuine message (the control: the attacks below start from it)', async () => {
        const g = await genuine(kind);
        await expectAccepted(g.login, base64(g.response));
      });

      for (const variant of WRAPPING_ATTACKS) {
        it(`refuses ${variant.name}`, async () => {
          const g = await genuine(kind);
          await refuse(`${kind}: ${variant.name}`, g, variant.build(g, kind === 'signed response'), WRAPPING_REASONS);
        });
      }

      it('refuses the message with every signature removed', async () => {
        const g = await genuine(kind);
        const stripped = kind === 'signed response' ? withoutSignature(withBody(g, original(g.assertion))) : withBody(g, original(g.assertion));
        await refuse(`${kind}: no signature`, g, stripped, ['signature_invalid']);
      });

      it('refuses an empty ds:Signature in place of the real one', async () => {
        const g = await genuine(kind);
        const empty = '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"/>';
        const emptied = replaceSpan(g.response, span(g.response, 'ds:Signature'), empty);
        await refuse(`${kind}: empty Signature`, g, emptied, ['signature_malformed']);
      });

      it('refuses a signature whose SignatureValue is empty', async () => {
        const g = await genuine(kind);
        const emptied = g.response.replace(/<ds:SignatureValue>[^<]*<\/ds:SignatureValue>/, '<ds:SignatureValue></ds:SignatureValue>');
        await refuse(`${kind}: empty SignatureValue`, g, emptied, ['signature_invalid']);
      });

      it('refuses a message signed by an attacker\'s key with its certificate in KeyInfo', async () => {
        const g = await genuine(kind);
        const fields = g.idp.assertionFields(g.login);
        const forgedAssertion = await g.idp.signedAssertion(fields, {}, bed.attackerKeys);
        const response = g.idp.responseFields(g.login, forgedAssertion);
        const forged = kind === 'signed response' ? await g.idp.signedResponse(response, {}, bed.attackerKeys) : responseXml(response);
        assert.match(forged, /<ds:X509Certificate>/);
        await refuse(`${kind}: attacker's key`, g, forged, ['signature_invalid']);
      });

      it('refuses a message signed with HMAC, keyed with the IdP\'s public certificate', async () => {
        const g = await genuine(kind);
        const hmac = { hmacKeyFile: g.idp.idp.keys.certFile };
        const hmacSignature = { signatureMethod: ALGORITHMS.hmacSha256, certificateInKeyInfo: false };
        const fields = g.idp.assertionFields(g.login);
        const assertion = await bed.workspace.sign(assertionXml(fields, signatureTemplate(fields.id, hmacSignature)), hmac);
        const response = g.idp.responseFields(g.login, assertion);
        const forged = kind === 'signed response' ? await bed.workspace.sign(responseXml(response, signatureTemplate(response.id, hmacSignature)), hmac) : responseXml(response);
        await refuse(`${kind}: HMAC keyed with the public certificate`, g, forged, ['signature_algorithm_refused']);
      });

      it('refuses a signature with two SignedInfo elements', async () => {
        const g = await genuine(kind);
        const signedInfo = element(g.response, 'ds:SignedInfo');
        const doubled = g.response.replace(signedInfo, signedInfo + signedInfo.replace(/<ds:DigestValue>[^<]*</, '<ds:DigestValue>AAAA<'));
        await refuse(`${kind}: two SignedInfo`, g, doubled, ['signature_malformed']);
      });

      it('refuses changed content whose new digest hides in a comment inside DigestValue', async () => {
        const g = await genuine(kind);
        // The digest of the evil assertion (the key does not matter for a digest: any key will do).
        const evil = swap(original(g.assertion), TO_MARIE);
        const evilSigned = await bed.workspace.sign(evil.replace('</saml:Issuer>', `</saml:Issuer>${signatureTemplate(idOf(evil))}`), bed.attackerKeys);
        const evilDigest = /<ds:DigestValue>([^<]+)</.exec(evilSigned)![1]!;
        const genuineSignature = signatureOf(g.assertion);
        const smuggled = genuineSignature.replace(/<ds:DigestValue>([^<]+)</, (_m, digest: string) => `<ds:DigestValue><!--${evilDigest}-->${digest}<`);
        const body = evil.replace('</saml:Issuer>', `</saml:Issuer>${smuggled}`);
        await refuse(`${kind}: comment in DigestValue`, g, withBody(g, body), ['signature_invalid']);
      });

      it('refuses RSA-SHA1 signatures and SHA-1 digests', async () => {
        for (const sign of [{ signatureMethod: ALGORITHMS.rsaSha1 }, { digestMethod: ALGORITHMS.sha1 }]) {
          const g = await genuine(kind, { sign });
          await refuse(`${kind}: ${JSON.stringify(sign)}`, g, g.response, ['signature_algorithm_refused']);
        }
      });

      it('refuses a signature with three Transforms', async () => {
        const g = await genuine(kind, { sign: { transforms: [ALGORITHMS.enveloped, ALGORITHMS.excC14n, ALGORITHMS.excC14n] } });
        await refuse(`${kind}: three transforms`, g, g.response, ['signature_malformed']);
      });

      it('refuses a signature over the whole document (Reference URI="")', async () => {
        const g = await genuine(kind, { sign: { referenceUri: '' } });
        await refuse(`${kind}: Reference URI=""`, g, g.response, ['signature_invalid', 'signature_malformed']);
      });

      it('refuses a second element with the signed element\'s ID', async () => {
        const g = await genuine(kind);
        const twin = `<samlp:Extensions><x:Twin xmlns:x="urn:example:twin" ID="${idOf(g.assertion)}"/></samlp:Extensions>`;
        await refuse(`${kind}: duplicate ID`, g, afterElement(g.response, 'saml:Issuer', twin), ['duplicate_id']);
      });
    });
  }

  describe('a response signature the means does not require', () => {
    // nia-id requires only the assertion to be signed; a response signature that is there must still verify.
    it('refuses a genuine signed assertion inside a response whose own signature is by an attacker', async () => {
      const g = await genuine('signed assertion only');
      const forged = await g.idp.signedResponse(g.idp.responseFields(g.login, g.assertion), {}, bed.attackerKeys);
      await refuse('signed assertion only: response signed by an attacker', g, forged, ['signature_invalid']);
    });

    it('refuses a genuine signed assertion inside a response whose own signature was broken', async () => {
      const g = await genuine('signed assertion only');
      const signed = await g.idp.signedResponse(g.idp.responseFields(g.login, g.assertion));
      // The response's SignatureValue comes first (its signature precedes the assertion's).
      const broken = signed.replace(/<ds:SignatureValue>([A-Za-z0-9+/])/, (_all, first: string) => `<ds:SignatureValue>${first === 'A' ? 'B' : 'A'}`);
      assert.notEqual(broken, signed);
      await refuse('signed assertion only: response signature broken', g, broken, ['signature_invalid']);
    });
  });

  describe('across means and across every refusal', () => {
  it('refuses a response signed with another means\' real key (IdP mix-up), under either issuer', async () => {
    const mojeid = bed.idp.mojeid;
    for (const issuer of ['eobcanka', 'mojeid'] as const) {
      const g = await genuine('signed response');
      const fields = { ...g.idp.assertionFields(g.login), issuer: bed.idp[issuer].idp.entityId };
      const assertion = await g.idp.signedAssertion(fields, {}, mojeid.idp.keys);
      const response = await g.idp.signedResponse({ ...g.idp.responseFields(g.login, assertion), issuer: bed.idp[issuer].idp.entityId }, {}, mojeid.idp.keys);
      await refuse(`IdP mix-up (${issuer} issuer)`, g, response, issuer === 'eobcanka' ? ['signature_invalid'] : ['issuer_mismatch']);
    }
  });

  it('shows the citizen one and the same page for every signature failure above (per means: the page names it)', () => {
    assert.ok(outcomes.length >= 40, `only ${outcomes.length} refusals were collected`);
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
