import type { Document, Element } from '@xmldom/xmldom';
import { UpstreamRejected } from '../contract.ts';
import { NS, XmlRejected, attributeOf, childElements, descendants, forEachElementBelow, parseStrictXml, singleChild, textOf } from './xml.ts';

/** The largest SAMLResponse (base64) Brána reads; real NIA responses are a few tens of kB. */
export const MAX_SAML_RESPONSE_LENGTH = 256 * 1024;

export const ALLOWED_SIGNATURE_METHODS: ReadonlySet<string> = new Set([
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha384',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
  'http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1',
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256',
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384',
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512',
]);
export const ALLOWED_DIGESTS: ReadonlySet<string> = new Set([
  'http://www.w3.org/2001/04/xmlenc#sha256',
  'http://www.w3.org/2001/04/xmldsig-more#sha384',
  'http://www.w3.org/2001/04/xmlenc#sha512',
]);
export const ALLOWED_TRANSFORMS: ReadonlySet<string> = new Set([
  'http://www.w3.org/2000/09/xmldsig#enveloped-signature',
  'http://www.w3.org/2001/10/xml-exc-c14n#',
]);
export const ALLOWED_CANONICALIZATION: ReadonlySet<string> = new Set(['http://www.w3.org/2001/10/xml-exc-c14n#']);
export const ALLOWED_DATA_ENCRYPTION: ReadonlySet<string> = new Set([
  'http://www.w3.org/2001/04/xmlenc#aes128-cbc',
  'http://www.w3.org/2001/04/xmlenc#aes256-cbc',
  'http://www.w3.org/2009/xmlenc11#aes128-gcm',
  'http://www.w3.org/2009/xmlenc11#aes256-gcm',
]);
// RSA-OAEP only: PKCS#1 v1.5 key transport (rsa-1_5) is a padding oracle waiting to happen.
// (node-saml's xml-encryption would still decrypt rsa-1_5, so the refusal has to be here.)
export const ALLOWED_KEY_TRANSPORT: ReadonlySet<string> = new Set(['http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p']);
// NIA wraps keys with RSA-OAEP-MGF1P and a SHA-1 OAEP digest; that digest is not a signature hash.
export const ALLOWED_OAEP_DIGESTS: ReadonlySet<string> = new Set(['http://www.w3.org/2000/09/xmldsig#sha1', 'http://www.w3.org/2001/04/xmlenc#sha256']);

export const STATUS_SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';

/** What the guard learned from the outside of a response, before any signature is checked. */
export interface ResponseEnvelope {
  xml: string;
  document: Document;
  requestId: string;
  statusCode: string;
  secondLevelStatusCode: string | undefined;
  hasEncryptedAssertion: boolean;
  /** The data encryption of the EncryptedAssertion (already on the allow-list), if there is one. */
  dataEncryption: string | null;
  hasResponseSignature: boolean;
}

function invalid(reason: string, detail?: string): UpstreamRejected {
  return new UpstreamRejected(reason, 'invalid_response', detail);
}

function algorithmOf(element: Element | undefined): string {
  return element?.getAttribute('Algorithm') ?? '';
}

/** Every signature anywhere in the document must use algorithms on our list, with at most two transforms. */
export function checkSignatures(document: Document): void {
  for (const signature of descendants(document, NS.dsig, 'Signature')) {
    const signedInfos = childElements(signature, NS.dsig, 'SignedInfo');
    if (signedInfos.length !== 1) throw invalid('signature_malformed', 'SignedInfo must appear once');
    const signedInfo = signedInfos[0]!;
    const method = singleChild(signedInfo, NS.dsig, 'SignatureMethod');
    if (!ALLOWED_SIGNATURE_METHODS.has(algorithmOf(method))) throw invalid('signature_algorithm_refused', algorithmOf(method));
    const canonicalization = singleChild(signedInfo, NS.dsig, 'CanonicalizationMethod');
    if (!ALLOWED_CANONICALIZATION.has(algorithmOf(canonicalization))) throw invalid('signature_algorithm_refused', algorithmOf(canonicalization));
    const references = childElements(signedInfo, NS.dsig, 'Reference');
    if (references.length !== 1) throw invalid('signature_malformed', 'exactly one Reference is allowed');
    const reference = references[0]!;
    const digest = singleChild(reference, NS.dsig, 'DigestMethod');
    if (!ALLOWED_DIGESTS.has(algorithmOf(digest))) throw invalid('signature_algorithm_refused', algorithmOf(digest));
    const transforms = descendants(reference, NS.dsig, 'Transform');
    if (transforms.length > 2) throw invalid('signature_malformed', 'too many transforms');
    for (const transform of transforms) {
      if (!ALLOWED_TRANSFORMS.has(algorithmOf(transform))) throw invalid('signature_algorithm_refused', algorithmOf(transform));
    }
  }
}

const ID_ATTRIBUTES = ['ID', 'Id', 'id'] as const;

/** Two elements with one ID make "which one was signed" ambiguous: refuse them outright. */
export function checkUniqueIds(document: Document): void {
  const seen = new Set<string>();
  forEachElementBelow(document, (element) => {
    for (const name of ID_ATTRIBUTES) {
      const value = element.getAttribute(name);
      if (!value) continue;
      if (seen.has(value)) throw invalid('duplicate_id');
      seen.add(value);
    }
  });
}

function checkEncryption(encrypted: Element): void {
  const data = singleChild(encrypted, NS.xenc, 'EncryptedData');
  if (!data) throw invalid('encryption_malformed');
  if (!ALLOWED_DATA_ENCRYPTION.has(algorithmOf(singleChild(data, NS.xenc, 'EncryptionMethod')))) {
    throw invalid('encryption_algorithm_refused', algorithmOf(singleChild(data, NS.xenc, 'EncryptionMethod')));
  }
  const keys = [...descendants(encrypted, NS.xenc, 'EncryptedKey')];
  if (keys.length !== 1) throw invalid('encryption_malformed', 'exactly one EncryptedKey is allowed');
  const keyMethod = singleChild(keys[0]!, NS.xenc, 'EncryptionMethod');
  if (!ALLOWED_KEY_TRANSPORT.has(algorithmOf(keyMethod))) throw invalid('encryption_algorithm_refused', algorithmOf(keyMethod));
  const oaepDigest = keyMethod ? singleChild(keyMethod, NS.dsig, 'DigestMethod') : undefined;
  if (oaepDigest && !ALLOWED_OAEP_DIGESTS.has(algorithmOf(oaepDigest))) throw invalid('encryption_algorithm_refused', algorithmOf(oaepDigest));
}

/** A SAML response read just far enough to know which request it claims to answer. */
export interface ReadResponse {
  xml: string;
  document: Document;
  requestId: string;
}

/**
 * Reads a posted SAMLResponse: bounded, base64, strictly parsed XML (no DOCTYPE), a Response that
 * names the request it answers. Nothing in it is trusted yet; refusals here concern no known login.
 */
export function readResponse(body: Record<string, unknown>): ReadResponse {
  const encoded = body.SAMLResponse;
  if (typeof encoded !== 'string' || !encoded) throw invalid('missing_response');
  if (encoded.length > MAX_SAML_RESPONSE_LENGTH) throw invalid('response_too_large');
  const compact = encoded.replace(/[\r\n ]/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) throw invalid('response_not_base64');
  const xml = Buffer.from(compact, 'base64').toString('utf8');

  let document: Document;
  try {
    document = parseStrictXml(xml);
  } catch (err) {
    throw invalid(err instanceof XmlRejected && /DOCTYPE/.test(err.message) ? 'doctype_refused' : 'xml_malformed', (err as Error).message);
  }
  const root = document.documentElement as Element;
  if (root.namespaceURI !== NS.protocol || root.localName !== 'Response') throw invalid('not_a_response');
  const requestId = attributeOf(root, 'InResponseTo');
  if (!requestId) throw invalid('unsolicited_response');
  return { xml, document, requestId };
}

/**
 * Reads the outside of a SAML response to a known request and refuses what a SAML library would let
 * through: a second root or assertion, weak or unexpected algorithms, a wrong Destination or Issuer,
 * and an unsigned response where the means requires a signed one.
 */
export function inspectResponse(read: ReadResponse, expected: { destination: string; idpEntityId: string; requireSignedResponse: boolean }): ResponseEnvelope {
  const { xml, document, requestId } = read;
  const root = document.documentElement as Element;
  if (root.getAttribute('Version') !== '2.0' || !root.getAttribute('ID')) throw invalid('response_malformed');

  if (attributeOf(root, 'Destination') !== expected.destination) throw invalid('destination_mismatch');
  try {
    const issuer = singleChild(root, NS.assertion, 'Issuer');
    if (issuer && textOf(issuer).trim() !== expected.idpEntityId) throw invalid('issuer_mismatch');

    const status = singleChild(root, NS.protocol, 'Status');
    const topCode = status ? singleChild(status, NS.protocol, 'StatusCode') : undefined;
    const statusCode = topCode?.getAttribute('Value') ?? '';
    const secondLevelStatusCode = topCode ? (singleChild(topCode, NS.protocol, 'StatusCode')?.getAttribute('Value') ?? undefined) : undefined;
    if (!statusCode) throw invalid('status_missing');

    const assertions = childElements(root, NS.assertion, 'Assertion');
    const encrypted = childElements(root, NS.assertion, 'EncryptedAssertion');
    // Assertions anywhere else (inside Extensions, a wrapper, a second signature) are a wrapping attack.
    const everywhere = descendants(document, NS.assertion, 'Assertion').length + descendants(document, NS.assertion, 'EncryptedAssertion').length;
    if (statusCode === STATUS_SUCCESS) {
      if (assertions.length + encrypted.length !== 1 || everywhere !== 1) throw invalid('assertion_count');
    } else if (everywhere !== 0) {
      throw invalid('assertion_with_failure_status');
    }

    checkSignatures(document);
    checkUniqueIds(document);
    for (const element of encrypted) checkEncryption(element);

    // Present means it must verify (one, and valid): the adapter checks it whether or not it is required.
    const hasResponseSignature = childElements(root, NS.dsig, 'Signature').length > 0;
    if (statusCode === STATUS_SUCCESS && !hasResponseSignature && expected.requireSignedResponse) {
      throw invalid('signature_invalid', 'the response is not signed');
    }
    const encryptedData = encrypted[0] ? singleChild(encrypted[0], NS.xenc, 'EncryptedData') : undefined;
    const dataEncryption = encryptedData ? algorithmOf(singleChild(encryptedData, NS.xenc, 'EncryptionMethod')) : null;
    return { xml, document, requestId, statusCode, secondLevelStatusCode, hasEncryptedAssertion: encrypted.length > 0, dataEncryption, hasResponseSignature };
  } catch (err) {
    if (err instanceof XmlRejected) throw invalid('response_malformed', err.message);
    throw err;
  }
}

/**
 * The assertion inside an EncryptedAssertion, read again once node-saml has decrypted and verified
 * it: the checks above cannot see through the encryption, and node-saml's own verification accepts
 * RSA-SHA1, SHA-1 digests and a DOCTYPE there. Call it only on a plaintext whose response signature
 * was verified (decrypting anything else would make Brána a decryption oracle).
 */
export function inspectDecryptedAssertion(plaintext: string): Document {
  let document: Document;
  try {
    document = parseStrictXml(plaintext);
  } catch (err) {
    // Bytes that are not XML are what a wrong key or a changed ciphertext decrypts to.
    throw invalid(err instanceof XmlRejected && /DOCTYPE/.test(err.message) ? 'doctype_refused' : 'decryption_failed', (err as Error).message);
  }
  const root = document.documentElement as Element;
  if (root.namespaceURI !== NS.assertion || root.localName !== 'Assertion') throw invalid('assertion_count', 'the plaintext is not one assertion');
  if (descendants(document, NS.assertion, 'Assertion').length !== 1) throw invalid('assertion_count');
  try {
    checkSignatures(document);
    checkUniqueIds(document);
  } catch (err) {
    if (err instanceof XmlRejected) throw invalid('assertion_malformed', err.message);
    throw err;
  }
  return document;
}
