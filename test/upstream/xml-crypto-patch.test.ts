import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { DOMParser, type Element } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';
import { generateSelfSignedCertificate } from '../../src/keys/certificate.ts';
import { verifiedContent } from '../../src/upstream/saml/signature-verification.ts';
import { JAN_NOVAK, assertionXml, personAttributes, responseXml, type AssertionFields } from '../support/independent-idp.ts';
import { WRAPPING_ATTACKS, type SignedPieces } from '../support/signature-wrapping.ts';
import { samlId } from '../support/xmlsec.ts';

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

/**
 * Second part of the patch (docs/BENCHMARKS.md, "Patches"): a reference under enveloped-signature +
 * exclusive c14n is canonicalised from the node itself, leaving the loaded signature out, instead of
 * from a deep clone with the signature and comments removed; loadSignature finds its parts by one walk
 * over the signature instead of four XPath evaluations and no longer serialises it; checkSignature
 * takes loadSignature's parse of the canonical SignedInfo when it canonicalises the same bytes.
 */
const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
const ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';
const DSIG = 'http://www.w3.org/2000/09/xmldsig#';
const SAML = 'urn:oasis:names:tc:SAML:2.0:assertion';
const xmlCrypto = requireFromXmlCrypto('./index.js') as {
  ExclusiveCanonicalization: new () => object;
};

/** The Node.prototype.cloneNode calls (of Brána's xmldom, whose trees xml-crypto verifies) while `work` runs. */
function clonesDuring(work: () => void): number {
  const prototype = (createRequire(import.meta.url)('@xmldom/xmldom') as { Node: { prototype: { cloneNode: (deep?: boolean) => unknown } } }).Node.prototype;
  const original = prototype.cloneNode;
  let count = 0;
  prototype.cloneNode = function (this: unknown, deep?: boolean) {
    count += 1;
    return original.call(this, deep);
  };
  try {
    work();
  } finally {
    prototype.cloneNode = original;
  }
  return count;
}

/** xml-crypto's canonicalisation of `node` for a same-document reference, as validateReference calls it. */
function canonicalReference(signer: SignedXml, node: Element, transforms: string[], prefixList: string[] = []): string {
  const ref = { transforms, uri: `#${node.getAttribute('ID') ?? 'x'}`, xpath: '//*', inclusiveNamespacesPrefixList: prefixList, resolvedElement: node };
  return (signer as unknown as { getCanonReferenceXml: (doc: unknown, ref: unknown, node: unknown) => string }).getCanonReferenceXml(node.ownerDocument, ref, node);
}

/** A verifier that canonicalises through the clone path: the same algorithm, registered as another class. */
function clonePathVerifier(): SignedXml {
  const signer = new SignedXml({ publicCert: key.certificatePem, getCertFromKeyInfo: () => null });
  const registry = (signer as unknown as { CanonicalizationAlgorithms: Record<string, unknown> }).CanonicalizationAlgorithms;
  registry[EXC_C14N] = class extends xmlCrypto.ExclusiveCanonicalization {};
  return signer;
}

function outcome(work: () => string): string {
  try {
    return `ok:${work()}`;
  } catch (err) {
    return `error:${(err as Error).message}`;
  }
}

function signedWith(xml: string, id: string, after: string, transforms = [ENVELOPED, EXC_C14N], prefixList?: string): string {
  const signer = new SignedXml({ privateKey: key.privateKeyPem, canonicalizationAlgorithm: EXC_C14N, signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256' });
  signer.addReference({ xpath: `//*[@ID='${id}']`, transforms, digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256', ...(prefixList ? { inclusiveNamespacesPrefixList: prefixList.split(' ') } : {}) });
  signer.computeSignature(xml, { prefix: 'ds', location: { reference: `//*[@ID='${id}']/*[local-name()='${after}']`, action: 'after' } });
  return signer.getSignedXml();
}

/** Genuine signed pieces in the shape test/support/signature-wrapping.ts rearranges, signed by xml-crypto. */
function genuinePieces(responseSigned: boolean): SignedPieces {
  const fields = {
    id: samlId(), issueInstant: '2026-01-01T00:00:00Z', issuer: 'https://idp.example', nameId: 'jan', confirmationMethod: 'urn:oasis:names:tc:SAML:2.0:cm:bearer',
    inResponseTo: '_req', confirmationNotOnOrAfter: '2026-01-01T00:05:00Z', recipient: 'https://brana.example/acs', confirmationExtra: '', notBefore: '2026-01-01T00:00:00Z',
    notOnOrAfter: '2026-01-01T00:05:00Z', audience: 'https://brana.example', authnInstant: '2026-01-01T00:00:00Z', classRef: 'http://eidas.europa.eu/LoA/high',
    attributes: personAttributes(JAN_NOVAK),
  } as unknown as AssertionFields;
  const assertion = signedWith(assertionXml(fields), fields.id, 'Issuer');
  const responseId = samlId();
  const unsigned = responseXml({ id: responseId, issueInstant: '2026-01-01T00:00:00Z', destination: 'https://brana.example/acs', inResponseTo: '_req', issuer: 'https://idp.example', statusCode: 'urn:oasis:names:tc:SAML:2.0:status:Success', body: assertion });
  return { assertion, response: responseSigned ? signedWith(unsigned, responseId, 'Issuer') : unsigned };
}

/** Varied documents: genuine signed messages, odd but well-formed XML around them, and every wrapping attack. */
function variedDocuments(): Array<{ name: string; xml: string }> {
  const documents: Array<{ name: string; xml: string }> = [];
  for (const responseSigned of [true, false]) {
    const pieces = genuinePieces(responseSigned);
    documents.push({ name: `genuine (response signed: ${responseSigned})`, xml: pieces.response });
    for (const attack of WRAPPING_ATTACKS) documents.push({ name: `${attack.name} (response signed: ${responseSigned})`, xml: attack.build(pieces, responseSigned) });
  }
  const base = genuinePieces(true).response;
  documents.push(
    { name: 'comments everywhere', xml: base.replace(/<saml:/g, '<!-- c --><saml:').replace(/<\/saml:NameID>/, '<!--x-->tail</saml:NameID>') },
    { name: 'comments inside the signature', xml: base.replace(/<ds:SignedInfo>/g, '<ds:SignedInfo><!-- in SignedInfo -->').replace(/<ds:SignatureValue>/g, '<ds:SignatureValue><!--v-->') },
    { name: 'CDATA, character references and special characters', xml: base.replace('>jan<', '><![CDATA[j<a>n & "x"]]>&#13;&amp;&lt;&gt;\u00e1\r\n<').replace('Version="2.0"', 'Version="2.0" a="&quot;&#9;&#10;&lt;&amp;"') },
    { name: 'default namespace redeclared, xml:lang and prefixed attributes', xml: base.replace('<saml:Subject>', '<saml:Subject xmlns="urn:other" xml:lang="cs" xmlns:o="urn:o" o:x="1"><Inner xmlns=""><o:In/></Inner>') },
    { name: 'a signature inside a signature\'s Object', xml: base.replace('</ds:Signature>', '<ds:Object><ds:Signature><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="x"/></ds:SignedInfo><ds:SignatureValue>abc</ds:SignatureValue></ds:Signature></ds:Object></ds:Signature>') },
    { name: 'whitespace and empty elements', xml: base.replace(/></g, '>\n  <').replace('<saml:Issuer>', '<saml:Issuer  >') },
  );
  return documents;
}

describe('xml-crypto, patched: a reference canonicalised without copying the document', () => {
  it('gives the very bytes of the clone path for every element, signature and transform list of varied documents, wrapping attacks included', () => {
    let compared = 0;
    for (const { name, xml } of variedDocuments()) {
      const document = new DOMParser().parseFromString(xml, 'text/xml');
      const elements = Array.from(document.getElementsByTagName('*') as unknown as ArrayLike<Element>);
      const signatures = elements.filter((element) => element.namespaceURI === DSIG && element.localName === 'Signature');
      // A signature loaded from another parse of the same text is found again by its SignatureValue.
      const elsewhere = new DOMParser().parseFromString(xml, 'text/xml').getElementsByTagNameNS(DSIG, 'Signature');
      const loaded: Array<Element | null> = [...signatures, ...(Array.from(elsewhere as unknown as ArrayLike<Element>)), null];
      const before = document.toString();
      for (const signature of loaded) {
        const inPlace = new SignedXml({ publicCert: key.certificatePem, getCertFromKeyInfo: () => null });
        const cloning = clonePathVerifier();
        if (signature) {
          const loads = [inPlace, cloning].map((signer) => outcome(() => (signer.loadSignature(signature as unknown as Node), '')));
          assert.equal(loads[0], loads[1], `${name}: loading a signature`);
          if (loads[0] !== 'ok:') continue;
        }
        for (const element of elements) {
          for (const transforms of [[ENVELOPED, EXC_C14N], [EXC_C14N]]) {
            let fast = '';
            const clones = clonesDuring(() => {
              fast = outcome(() => canonicalReference(inPlace, element, transforms));
            });
            const slow = outcome(() => canonicalReference(cloning, element, transforms));
            assert.equal(fast, slow, `${name}: <${element.tagName}> under ${transforms.join(', ')}`);
            if (signature) assert.equal(clones, 0, `${name}: <${element.tagName}> was canonicalised from a copy`);
            compared += 1;
          }
        }
      }
      assert.equal(document.toString(), before, `${name}: the document was changed`);
    }
    assert.ok(compared > 1000, `${compared} comparisons`);
  });

  it('verifies a signed Response and its signed Assertion without a single deep copy', () => {
    const pieces = genuinePieces(true);
    const document = new DOMParser().parseFromString(pieces.response, 'text/xml');
    const response = document.documentElement!;
    const assertion = document.getElementsByTagNameNS(SAML, 'Assertion')[0]!;
    let contents: Array<string | null> = [];
    const clones = clonesDuring(() => {
      contents = [verifiedContent(response, [key.certificatePem]), verifiedContent(assertion, [key.certificatePem])];
    });
    assert.ok(contents.every((content) => content !== null), 'both signatures verify');
    assert.equal(clones, 0);
    // The Response's signed bytes leave its own signature out and keep the assertion's.
    assert.equal((contents[0]!.match(/<ds:Signature /g) ?? []).length, 1);
  });

  it('still takes the clone path where c14n changes the node: an inclusive namespace prefix list', () => {
    const xml = signedWith(RESPONSE.replace('<samlp:Response ', '<samlp:Response xmlns:x="urn:x" '), '_a1', 'Issuer', [ENVELOPED, EXC_C14N], 'x');
    const document = new DOMParser().parseFromString(xml, 'text/xml');
    const assertion = document.getElementsByTagNameNS(SAML, 'Assertion')[0]!;
    const signer = new SignedXml({ publicCert: key.certificatePem, getCertFromKeyInfo: () => null });
    signer.loadSignature(assertion.getElementsByTagNameNS(DSIG, 'Signature')[0]! as unknown as Node);
    let valid = false;
    const clones = clonesDuring(() => {
      valid = signer.checkSignature(document as unknown as globalThis.Document);
    });
    assert.equal(valid, true);
    assert.ok(clones > 0, 'the reference was canonicalised from a copy');
    assert.match(signer.getSignedReferences()[0]!, /xmlns:x="urn:x"/);
    assert.ok(!document.toString().includes('<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:x='), 'the document itself is unchanged');
  });
});

describe('xml-crypto, patched: a signature loaded without XPath, and its SignedInfo parsed once per check', () => {
  /** The XPath expressions loadSignature used to evaluate over the signature. */
  const LOAD_XPATHS = {
    canonicalizationAlgorithm: ".//*[local-name(.)='CanonicalizationMethod']/@Algorithm",
    signatureAlgorithm: ".//*[local-name(.)='SignatureMethod']/@Algorithm",
    signatureValue: ".//*[local-name(.)='SignatureValue']/text()",
    keyInfo: ".//*[local-name(.)='KeyInfo']",
  } as const;

  it('finds what the XPath expressions found, in odd signatures too', () => {
    const findSignatureParts = (requireFromXmlCrypto('./utils.js') as { findSignatureParts: (node: unknown) => Record<keyof typeof LOAD_XPATHS, unknown> }).findSignatureParts;
    const DS = `xmlns:ds="${DSIG}"`;
    const signatures = [
      `<ds:Signature ${DS}><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="c"/><ds:SignatureMethod Algorithm="s"/></ds:SignedInfo><ds:SignatureValue>v</ds:SignatureValue><ds:KeyInfo/></ds:Signature>`,
      // A CanonicalizationMethod earlier in document order than SignedInfo's, one without Algorithm, foreign namespaces.
      `<ds:Signature ${DS}><ds:Object><x:CanonicalizationMethod xmlns:x="urn:x" Algorithm="early"/><ds:SignatureMethod/></ds:Object><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="c"/><ds:SignatureMethod Algorithm="s"/></ds:SignedInfo><ds:SignatureValue>v</ds:SignatureValue></ds:Signature>`,
      `<ds:Signature ${DS}><ds:SignedInfo><ds:CanonicalizationMethod/><ds:CanonicalizationMethod x:Algorithm="p" xmlns:x="urn:x"/><ds:CanonicalizationMethod Algorithm="third"/></ds:SignedInfo><ds:SignatureValue/><ds:SignatureValue><!--c-->v2<!--d-->w</ds:SignatureValue><ds:KeyInfo><ds:KeyInfo/></ds:KeyInfo></ds:Signature>`,
      `<ds:Signature ${DS}><ds:SignatureValue><![CDATA[cdata]]>text</ds:SignatureValue><SignatureValue>other</SignatureValue></ds:Signature>`,
      `<ds:Signature ${DS}><ds:SignatureValue><e>inner</e>after</ds:SignatureValue><KeyInfo/></ds:Signature>`,
      `<ds:Signature ${DS}/>`,
      `<ds:Signature ${DS}><a><b><c><ds:SignatureMethod Algorithm="deep"/></c></b><SignatureMethod Algorithm="later"/></a></ds:Signature>`,
    ];
    for (const xml of signatures) {
      const document = new DOMParser().parseFromString(`<root>${xml}</root>`, 'text/xml');
      const signature = document.documentElement!.firstChild!;
      for (const node of [signature, document]) {
        const found = findSignatureParts(node);
        for (const [part, expression] of Object.entries(LOAD_XPATHS) as Array<[keyof typeof LOAD_XPATHS, string]>) {
          const selected = xpath.select1(expression, node) ?? null;
          assert.equal(found[part], selected, `${part} in ${xml}`);
        }
      }
    }
  });

  it('loads and checks a signature without evaluating XPath, serialising it, or parsing its SignedInfo twice', () => {
    const xml = signed(RESPONSE, '_a1');
    const document = new DOMParser().parseFromString(xml, 'text/xml');
    const assertion = document.getElementsByTagNameNS(SAML, 'Assertion')[0]!;
    const signature = assertion.getElementsByTagNameNS(DSIG, 'Signature')[0]!;
    const expressions: string[] = [];
    const originals = { select: xpath.select, select1: xpath.select1 };
    for (const name of Object.keys(originals) as Array<keyof typeof originals>) {
      xpath[name] = (expression: unknown, ...rest: unknown[]) => {
        expressions.push(String(expression));
        return originals[name](expression, ...rest);
      };
    }
    const serialise = signature.toString;
    let serialised = 0;
    signature.toString = function (this: Element) {
      serialised += 1;
      return serialise.call(this);
    };
    let sizes: number[] = [];
    let valid = false;
    const signer = new SignedXml({ publicCert: key.certificatePem, getCertFromKeyInfo: () => null });
    try {
      sizes = parsedByXmlCrypto(() => {
        signer.loadSignature(signature as unknown as Node);
        valid = signer.checkSignature(document as unknown as globalThis.Document);
      });
    } finally {
      Object.assign(xpath, originals);
      signature.toString = serialise;
    }
    assert.equal(valid, true);
    assert.deepEqual(expressions, []);
    assert.equal(serialised, 0);
    assert.equal(sizes.length, 1, `parsed: ${sizes.join(', ')}`);
    // Asked for, the signature is still there, serialised then.
    assert.equal(signer.getSignatureXml(), signature.toString());
  });

  it('parses SignedInfo again when the bytes it verifies are not the ones it loaded: only what it verifies is trusted', () => {
    const xml = signed(RESPONSE, '_a1');
    const document = new DOMParser().parseFromString(xml, 'text/xml');
    const signature = document.getElementsByTagNameNS(DSIG, 'Signature')[0]!;
    const signer = new SignedXml({ publicCert: key.certificatePem, getCertFromKeyInfo: () => null });
    signer.loadSignature(signature as unknown as Node);
    // SignedInfo changed in memory after loading: a reference to another element, its digest kept.
    const reference = signature.getElementsByTagNameNS(DSIG, 'Reference')[0]!;
    reference.setAttribute('URI', '#_r1');
    let valid: boolean | undefined;
    const sizes = parsedByXmlCrypto(() => {
      try {
        valid = signer.checkSignature(document as unknown as globalThis.Document);
      } catch {
        valid = false;
      }
    });
    assert.equal(valid, false);
    assert.equal(sizes.length, 1, 'the changed SignedInfo was parsed afresh');
    assert.deepEqual(signer.getSignedReferences(), []);
    assert.equal(signer.getReferences()[0]!.uri, '#_r1', 'the references are those of the SignedInfo checked');
  });
});
