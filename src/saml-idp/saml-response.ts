import { promisify } from 'node:util';
import xmlenc from 'xml-encryption';
import { loaUri, type Loa } from '../domain/loa.ts';
import { escapeXml } from '../domain/xml-escape.ts';
import type { KeyPairWithCertificate } from '../keys/certificate.ts';
import { STATUS, type SamlStatus } from './saml-status.ts';
import { samlId, samlInstant, signEnveloped } from './xml-signing.ts';

const encrypt = promisify(xmlenc.encrypt) as unknown as (content: string, options: Record<string, unknown>) => Promise<string>;

/** How long a SeP may take to consume an assertion. */
export const ASSERTION_LIFETIME_MS = 5 * 60_000;

const NAMEID_FORMATS = {
  persistent: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
  transient: 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient',
} as const;

/** Who the Response is for and what it answers. */
export interface ResponseAddress {
  idpEntityId: string;
  spEntityId: string;
  acsUrl: string;
  /** The AuthnRequest's ID; null when it could not even be read (then no InResponseTo). */
  inResponseTo: string | null;
}

export interface IssuedAssertion {
  nameId: string;
  nameIdFormat: 'persistent' | 'transient';
  loa: Loa;
  authnInstant: number;
  /** The SessionIndex: the citizen's Brána session, which a LogoutRequest of this SeP may name. */
  sessionIndex: string;
  /** eIDAS attribute URIs and their values (NameFormat uri). */
  attributes: Array<{ name: string; values: string[] }>;
  /** The SeP's encryption certificate (PEM). */
  encryptionCertificate: string;
  /** The data encryption (XML Encryption URI); the key is always wrapped with RSA-OAEP-MGF1P. */
  dataEncryption: string;
}

function statusXml(status: SamlStatus): string {
  return `<samlp:Status><samlp:StatusCode Value="${status.code}">${status.second ? `<samlp:StatusCode Value="${status.second}"/>` : ''}</samlp:StatusCode></samlp:Status>`;
}

function responseXml(id: string, address: ResponseAddress, now: number, status: SamlStatus, assertion: string): string {
  return (
    `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${id}" Version="2.0" IssueInstant="${samlInstant(now)}" Destination="${escapeXml(address.acsUrl)}"${address.inResponseTo ? ` InResponseTo="${escapeXml(address.inResponseTo)}"` : ''}>` +
    `<saml:Issuer>${escapeXml(address.idpEntityId)}</saml:Issuer>` +
    statusXml(status) +
    assertion +
    `</samlp:Response>`
  );
}

/**
 * The Assertion of a successful login: the pseudonym as NameID, bound to the request (bearer
 * confirmation with InResponseTo, Recipient and NotOnOrAfter), the SeP as the only audience, the LoA
 * reached, the released attributes. Signed (RSA-SHA256), then encrypted to the SeP's certificate:
 * AES-256-GCM content (or what the SeP's metadata asks for), the key wrapped with RSA-OAEP-MGF1P.
 */
async function encryptedAssertion(id: string, address: ResponseAddress, issued: IssuedAssertion, now: number, signing: KeyPairWithCertificate): Promise<string> {
  const until = samlInstant(now + ASSERTION_LIFETIME_MS);
  const attributes = issued.attributes
    .map(
      (attribute) =>
        `<saml:Attribute Name="${escapeXml(attribute.name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">` +
        attribute.values.map((value) => `<saml:AttributeValue xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">${escapeXml(value)}</saml:AttributeValue>`).join('') +
        `</saml:Attribute>`,
    )
    .join('');
  const xml =
    `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${id}" Version="2.0" IssueInstant="${samlInstant(now)}">` +
    `<saml:Issuer>${escapeXml(address.idpEntityId)}</saml:Issuer>` +
    `<saml:Subject><saml:NameID Format="${NAMEID_FORMATS[issued.nameIdFormat]}" NameQualifier="${escapeXml(address.idpEntityId)}" SPNameQualifier="${escapeXml(address.spEntityId)}">${escapeXml(issued.nameId)}</saml:NameID>` +
    `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData InResponseTo="${escapeXml(address.inResponseTo ?? '')}" NotOnOrAfter="${until}" Recipient="${escapeXml(address.acsUrl)}"/></saml:SubjectConfirmation></saml:Subject>` +
    `<saml:Conditions NotBefore="${samlInstant(now - 5_000)}" NotOnOrAfter="${until}"><saml:AudienceRestriction><saml:Audience>${escapeXml(address.spEntityId)}</saml:Audience></saml:AudienceRestriction></saml:Conditions>` +
    `<saml:AuthnStatement AuthnInstant="${samlInstant(issued.authnInstant)}" SessionIndex="${escapeXml(issued.sessionIndex)}"><saml:AuthnContext><saml:AuthnContextClassRef>${loaUri(issued.loa)}</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
    (attributes ? `<saml:AttributeStatement>${attributes}</saml:AttributeStatement>` : '') +
    `</saml:Assertion>`;
  const signed = signEnveloped(xml, 'Assertion', id, signing);
  const encrypted = await encrypt(signed, {
    rsa_pub: issued.encryptionCertificate,
    pem: issued.encryptionCertificate,
    encryptionAlgorithm: issued.dataEncryption,
    keyEncryptionAlgorithm: 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p',
    // CBC only where the SeP's metadata asks for it (NIA's suite); the Response signature covers it.
    disallowEncryptionWithInsecureAlgorithm: false,
    warnInsecureAlgorithm: false,
  });
  return `<saml:EncryptedAssertion>${encrypted}</saml:EncryptedAssertion>`;
}

/** A signed Response carrying one signed, encrypted Assertion. */
export async function successResponse(address: ResponseAddress, issued: IssuedAssertion, signing: KeyPairWithCertificate, now = Date.now()): Promise<{ xml: string; responseId: string; assertionId: string }> {
  const responseId = samlId();
  const assertionId = samlId();
  const assertion = await encryptedAssertion(assertionId, address, issued, now, signing);
  return { xml: signEnveloped(responseXml(responseId, address, now, STATUS.success, assertion), 'Response', responseId, signing), responseId, assertionId };
}

/** A signed Response that says why there is no assertion: never an assertion with a failure. */
export function errorResponse(address: ResponseAddress, status: SamlStatus, signing: KeyPairWithCertificate, now = Date.now()): { xml: string; responseId: string } {
  const responseId = samlId();
  return { xml: signEnveloped(responseXml(responseId, address, now, status, ''), 'Response', responseId, signing), responseId };
}
