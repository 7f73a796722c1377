import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { DOMParser } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';
import { generateSelfSignedCertificate } from '../../src/keys/certificate.ts';
import { verifiedContent } from '../../src/upstream/saml/signature-verification.ts';

/**
 * patches/xml-crypto+6.3.2.patch (docs/BENCHMARKS.md, "Patches"): xml-crypto finds a signature's
 * reference, and the namespaces around it and around SignedInfo, by walking the elements once
 * instead of evaluating XPath over every node of the document (three such scans per signature, each
 * copying a context per node: the largest cost of verifying an answer). These tests fail without
 * the patch (the scans are counted) and check that the selection is the one the XPath made.
 */
const requireFromXmlCrypto = createRequire(createRequire(import.meta.url).resolve('xml-crypto'));
const xpath = requireFromXmlCrypto('xpath') as Record<'select' | 'select1' | 'selectWithResolver', (...args: unknown[]) => unknown>;

/** The whole-document XPath expressions evaluated while `work` runs. */
function wholeDocumentScans(work: () => void): string[] {
  const seen: string[] = [];
  const originals = { select: xpath.select, select1: xpath.select1, selectWithResolver: xpath.selectWithResolver };
  for (const name of Object.keys(originals) as Array<keyof typeof originals>) {
    xpath[name] = (expression: unknown, ...rest: unknown[]) => {
      if (typeof expression === 'string' && expression.startsWith('//')) seen.push(expression);
      return originals[name](expression, ...rest);
    };
  }
  try {
    work();
  } finally {
    Object.assign(xpath, originals);
  }
  return seen;
}

/** The sizes of the XML texts xml-crypto's own parser parses while `work` runs. */
function parsedByXmlCrypto(work: () => void): number[] {
  const xmldom = requireFromXmlCrypto('@xmldom/xmldom') as { DOMParser: { prototype: { parseFromString: (source: string, type?: string) => unknown } } };
  const original = xmldom.DOMParser.prototype.parseFromString;
  const sizes: number[] = [];
  xmldom.DOMParser.prototype.parseFromString = function (this: unknown, source: string, type?: string) {
    sizes.push(typeof source === 'string' ? source.length : -1);
    return original.call(this, source, type);
  };
  try {
    work();
  } finally {
    xmldom.DOMParser.prototype.parseFromString = original;
  }
  return sizes;
}

const key = generateSelfSignedCertificate('xml-crypto patch test');

function signed(xml: string, id: string): string {
  const signer = new SignedXml({ privateKey: key.privateKeyPem, canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#', signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256' });
  signer.addReference({
    xpath: `//*[@ID='${id}']`,
    transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#'],
    digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256',
  });
  signer.computeSignature(xml, { location: { reference: `//*[@ID='${id}']/*[1]`, action: 'after' } });
  return signer.getSignedXml();
}

const ASSERTION = '<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a1"><saml:Issuer>https://idp.example</saml:Issuer><saml:Subject><saml:NameID>citizen</saml:NameID></saml:Subject></saml:Assertion>';
const RESPONSE = `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r1"><saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">https://idp.example</saml:Issuer>${ASSERTION}</samlp:Response>`;

describe('xml-crypto, patched: references found by one walk over the elements, not by XPath over every node', () => {
  it('verifies an enveloped signature without a single whole-document XPath', () => {
    const xml = signed(RESPONSE, '_a1');
    const document = new DOMParser().parseFromString(xml, 'text/xml');
    const assertion = document.getElementsByTagNameNS('urn:oasis:names:tc:SAML:2.0:assertion', 'Assertion')[0]!;
    let content: string | null = null;
    const scans = wholeDocumentScans(() => {
      content = verifiedContent(assertion, [key.certificatePem]);
    });
    assert.ok(content, 'the signature verifies');
    assert.match(content!, /^<saml:Assertion [^>]*ID="_a1"/);
    assert.deepEqual(scans, []);
  });

  it('verifies the document Brána parsed, as it is: the XML is not parsed again, and a change to the tree shows', () => {
    const xml = signed(RESPONSE, '_a1');
    const document = new DOMParser().parseFromString(xml, 'text/xml');
    const assertion = document.getElementsByTagNameNS('urn:oasis:names:tc:SAML:2.0:assertion', 'Assertion')[0]!;
    let content: string | null = null;
    const sizes = parsedByXmlCrypto(() => {
      content = verifiedContent(assertion, [key.certificatePem]);
    });
    assert.ok(content, 'the signature verifies');
    // Only the canonical SignedInfo (a few hundred characters) is parsed, never the whole message.
    assert.ok(sizes.length > 0 && sizes.every((size) => size >= 0 && size < xml.length / 2), `parsed: ${sizes.join(', ')} of ${xml.length}`);
    // The tree is what is verified: a citizen changed in memory, not in any text, no longer verifies.
    const nameId = document.getElementsByTagNameNS('urn:oasis:names:tc:SAML:2.0:assertion', 'NameID')[0]!;
    nameId.firstChild!.nodeValue = 'somebody else';
    assert.equal(verifiedContent(assertion, [key.certificatePem]), null);
  });

  it('still refuses what the XPath refused: a twin under another ID name, even one with a prefix', () => {
    const xml = signed(RESPONSE, '_a1');
    for (const twin of ['<x:T xmlns:x="urn:t" Id="_a1"/>', '<x:T xmlns:x="urn:t" x:ID="_a1"/>']) {
      const doubled = xml.replace('</saml:Issuer>', `</saml:Issuer>${twin}`);
      const signer = new SignedXml({ publicCert: key.certificatePem, getCertFromKeyInfo: () => null });
      const document = new DOMParser().parseFromString(doubled, 'text/xml');
      signer.loadSignature(document.getElementsByTagNameNS('http://www.w3.org/2000/09/xmldsig#', 'Signature')[0]! as unknown as Node);
      assert.throws(() => signer.checkSignature(doubled), /multiple elements with the same value/);
    }
  });

  it('counts a namespace declaration named ID as the XPath did: refused as a twin, not let through', () => {
    const xml = signed(RESPONSE, '_a1').replace('<saml:Issuer xmlns:saml', '<saml:Issuer xmlns:ID="_a1" xmlns:saml');
    const signer = new SignedXml({ publicCert: key.certificatePem, getCertFromKeyInfo: () => null });
    const document = new DOMParser().parseFromString(xml, 'text/xml');
    signer.loadSignature(document.getElementsByTagNameNS('http://www.w3.org/2000/09/xmldsig#', 'Signature')[0]! as unknown as Node);
    assert.throws(() => signer.checkSignature(xml), /multiple elements with the same value/);
  });
});
