import { randomBytes } from 'node:crypto';
import { SignedXml } from 'xml-crypto';
import type { KeyPairWithCertificate } from '../keys/certificate.ts';
import { privateKeyOf } from '../keys/private-keys.ts';

export const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
const DIGEST_SHA256 = 'http://www.w3.org/2001/04/xmlenc#sha256';
const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
const ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';

/** A SAML ID: an NCName, 160 random bits. */
export function samlId(): string {
  return `_${randomBytes(20).toString('hex')}`;
}

/** A SAML time (xs:dateTime in UTC, whole seconds). */
export function samlInstant(at: number): string {
  return new Date(at).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * An enveloped RSA-SHA256 signature (exclusive c14n, SHA-256 digest) over the element with this ID,
 * placed right after its Issuer as SAML's schema wants it. Brána's own XML only: the ID is one Brána
 * made, never a value from a request.
 */
export function signEnveloped(xml: string, localName: string, id: string, key: KeyPairWithCertificate, place: 'after-issuer' | 'first-child' = 'after-issuer'): string {
  const signature = new SignedXml({ privateKey: privateKeyOf(key.privateKeyPem), publicCert: key.certificatePem, signatureAlgorithm: RSA_SHA256, canonicalizationAlgorithm: EXC_C14N });
  const element = `//*[local-name(.)='${localName}' and @ID='${id}']`;
  signature.addReference({ xpath: element, digestAlgorithm: DIGEST_SHA256, transforms: [ENVELOPED, EXC_C14N] });
  signature.computeSignature(xml, {
    prefix: 'ds',
    location: place === 'after-issuer' ? { reference: `${element}/*[local-name(.)='Issuer']`, action: 'after' } : { reference: element, action: 'prepend' },
  });
  return signature.getSignedXml();
}
