import { randomBytes, X509Certificate } from 'node:crypto';
import { promisify } from 'node:util';
import { SignedXml } from 'xml-crypto';
import xmlenc from 'xml-encryption';
import { loaUri, type Loa } from '../domain/loa.ts';
import { escapeXml } from '../domain/xml-escape.ts';

const encrypt = promisify(xmlenc.encrypt) as unknown as (content: string, options: Record<string, unknown>) => Promise<string>;

export interface SigningIdentity {
  entityId: string;
  privateKeyPem: string;
  certificatePem: string;
}

export interface SamlAttribute {
  name: string;
  values: string[];
}

/**
 * Everything a SAML Response is made of. Defaults give what NIA sends: an assertion signed with
 * RSA-SHA256, encrypted with AES-256-CBC under an RSA-OAEP-MGF1P key, inside a signed Response.
 * Tests override single fields to make the responses that must be refused.
 */
export interface ResponseSpec {
  idp: SigningIdentity;
  sp: { entityId: string; acsUrl: string; encryptionCertificatePem: string | null };
  inResponseTo: string;
  subject: string;
  loa: Loa | string;
  attributes: SamlAttribute[];
  now?: Date;
  validitySeconds?: number;
  status?: { code: string; second?: string; message?: string };
  signAssertion?: boolean;
  signResponse?: boolean;
  encrypt?: boolean;
  /** How the EncryptedKey names our certificate: NIA's WIF token reference (default) or the certificate. */
  keyReference?: 'wif' | 'certificate';
  /** Signs with this key instead of the IdP's (a forger's key). */
  assertionSigner?: SigningIdentity;
  responseSigner?: SigningIdentity;
  overrides?: Partial<{
    issuer: string;
    responseIssuer: string;
    destination: string;
    recipient: string;
    audience: string;
    subjectInResponseTo: string;
    confirmationMethod: string;
    notBefore: string;
    notOnOrAfter: string;
    issueInstant: string;
    assertionId: string;
    responseId: string;
  }>;
}

export function samlId(): string {
  return `_${randomBytes(20).toString('hex')}`;
}

function iso(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const SIGNATURE_RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
const DIGEST_SHA256 = 'http://www.w3.org/2001/04/xmlenc#sha256';
const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
const ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';

/** Signs the element with this ID, placing the signature right after its Issuer as SAML requires. */
export function signElement(xml: string, elementLocalName: string, id: string, signer: SigningIdentity): string {
  const signature = new SignedXml({
    privateKey: signer.privateKeyPem,
    publicCert: signer.certificatePem,
    signatureAlgorithm: SIGNATURE_RSA_SHA256,
    canonicalizationAlgorithm: EXC_C14N,
  });
  signature.addReference({
    xpath: `//*[local-name(.)='${elementLocalName}' and @ID='${id}']`,
    digestAlgorithm: DIGEST_SHA256,
    transforms: [ENVELOPED, EXC_C14N],
  });
  signature.computeSignature(xml, {
    prefix: 'ds',
    location: { reference: `//*[local-name(.)='${elementLocalName}' and @ID='${id}']/*[local-name(.)='Issuer']`, action: 'after' },
  });
  return signature.getSignedXml();
}

const WSSE = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd';

/**
 * How NIA (a Windows Identity Foundation STS) names the key it wrapped the assertion key for: not the
 * certificate itself but a WS-Security token reference by issuer and serial number.
 */
export function wifKeyReference(certificatePem: string): string {
  const certificate = new X509Certificate(certificatePem);
  // node prints the issuer one RDN a line, most significant first; X509IssuerName is RFC 2253 (reversed).
  const issuer = certificate.issuer.split('\n').filter(Boolean).reverse().join(', ');
  const serial = BigInt(`0x${certificate.serialNumber}`).toString(10);
  return (
    `<o:SecurityTokenReference xmlns:o="${WSSE}"><X509Data><X509IssuerSerial>` +
    `<X509IssuerName>${escapeXml(issuer)}</X509IssuerName><X509SerialNumber>${serial}</X509SerialNumber>` +
    `</X509IssuerSerial></X509Data></o:SecurityTokenReference>`
  );
}

/**
 * An EncryptedAssertion as NIA sends it: AES-256-CBC content, the key wrapped with RSA-OAEP-MGF1P and a
 * SHA-1 OAEP digest, the EncryptedKey inside EncryptedData/KeyInfo, and (by default) a WIF-style key
 * reference instead of the certificate.
 */
export async function encryptAssertion(assertionXml: string, certificatePem: string, keyReference: 'wif' | 'certificate' = 'wif'): Promise<string> {
  let encrypted = await encrypt(assertionXml, {
    rsa_pub: certificatePem,
    pem: certificatePem,
    encryptionAlgorithm: 'http://www.w3.org/2001/04/xmlenc#aes256-cbc',
    keyEncryptionAlgorithm: 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p',
    keyEncryptionDigest: 'sha1',
    // AES-CBC is what NIA sends; the Response signature around it is what protects it.
    disallowEncryptionWithInsecureAlgorithm: false,
    warnInsecureAlgorithm: false,
  });
  if (keyReference === 'wif') {
    const keyInfo = /<KeyInfo>\s*<X509Data>\s*<X509Certificate>[^<]*<\/X509Certificate>\s*<\/X509Data>\s*<\/KeyInfo>/;
    if (!keyInfo.test(encrypted)) throw new Error('xml-encryption changed the shape of its EncryptedKey');
    encrypted = encrypted.replace(keyInfo, `<KeyInfo>${wifKeyReference(certificatePem)}</KeyInfo>`);
  }
  return `<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">${encrypted}</saml:EncryptedAssertion>`;
}

export function buildAssertion(spec: ResponseSpec, assertionId: string): string {
  const now = spec.now ?? new Date();
  const o = spec.overrides ?? {};
  const until = o.notOnOrAfter ?? iso(new Date(now.getTime() + (spec.validitySeconds ?? 300) * 1000));
  const notBefore = o.notBefore ?? iso(new Date(now.getTime() - 5_000));
  const issueInstant = o.issueInstant ?? iso(now);
  const loa = spec.loa.startsWith('http') ? spec.loa : loaUri(spec.loa as Loa);
  const attributes = spec.attributes
    .map(
      (attribute) =>
        `<saml:Attribute Name="${escapeXml(attribute.name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">${attribute.values
          .map((value) => `<saml:AttributeValue xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">${escapeXml(value)}</saml:AttributeValue>`)
          .join('')}</saml:Attribute>`,
    )
    .join('');
  return (
    `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${assertionId}" Version="2.0" IssueInstant="${issueInstant}">` +
    `<saml:Issuer>${escapeXml(o.issuer ?? spec.idp.entityId)}</saml:Issuer>` +
    `<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">${escapeXml(spec.subject)}</saml:NameID>` +
    `<saml:SubjectConfirmation Method="${escapeXml(o.confirmationMethod ?? 'urn:oasis:names:tc:SAML:2.0:cm:bearer')}">` +
    `<saml:SubjectConfirmationData InResponseTo="${escapeXml(o.subjectInResponseTo ?? spec.inResponseTo)}" NotOnOrAfter="${until}" Recipient="${escapeXml(o.recipient ?? spec.sp.acsUrl)}"/>` +
    `</saml:SubjectConfirmation></saml:Subject>` +
    `<saml:Conditions NotBefore="${notBefore}" NotOnOrAfter="${until}"><saml:AudienceRestriction><saml:Audience>${escapeXml(o.audience ?? spec.sp.entityId)}</saml:Audience></saml:AudienceRestriction></saml:Conditions>` +
    `<saml:AuthnStatement AuthnInstant="${iso(now)}" SessionIndex="${samlId()}"><saml:AuthnContext><saml:AuthnContextClassRef>${escapeXml(loa)}</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
    (attributes ? `<saml:AttributeStatement>${attributes}</saml:AttributeStatement>` : '') +
    `</saml:Assertion>`
  );
}

/** A complete SAML Response as XML text. */
export async function buildSamlResponse(spec: ResponseSpec): Promise<string> {
  const now = spec.now ?? new Date();
  const o = spec.overrides ?? {};
  const responseId = o.responseId ?? samlId();
  const status = spec.status ?? { code: 'urn:oasis:names:tc:SAML:2.0:status:Success' };
  const success = status.code === 'urn:oasis:names:tc:SAML:2.0:status:Success';

  let assertionPart = '';
  if (success) {
    const assertionId = o.assertionId ?? samlId();
    let assertion = buildAssertion(spec, assertionId);
    if (spec.signAssertion ?? true) assertion = signElement(assertion, 'Assertion', assertionId, spec.assertionSigner ?? spec.idp);
    const shouldEncrypt = (spec.encrypt ?? true) && spec.sp.encryptionCertificatePem;
    assertionPart = shouldEncrypt ? await encryptAssertion(assertion, spec.sp.encryptionCertificatePem!, spec.keyReference) : assertion;
  }
  const statusXml =
    `<samlp:Status><samlp:StatusCode Value="${escapeXml(status.code)}">` +
    (status.second ? `<samlp:StatusCode Value="${escapeXml(status.second)}"/>` : '') +
    `</samlp:StatusCode>` +
    (status.message ? `<samlp:StatusMessage>${escapeXml(status.message)}</samlp:StatusMessage>` : '') +
    `</samlp:Status>`;
  let response =
    `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${responseId}" Version="2.0" IssueInstant="${o.issueInstant ?? iso(now)}" Destination="${escapeXml(o.destination ?? spec.sp.acsUrl)}" InResponseTo="${escapeXml(spec.inResponseTo)}">` +
    `<saml:Issuer>${escapeXml(o.responseIssuer ?? o.issuer ?? spec.idp.entityId)}</saml:Issuer>` +
    statusXml +
    assertionPart +
    `</samlp:Response>`;
  if (spec.signResponse ?? true) response = signElement(response, 'Response', responseId, spec.responseSigner ?? spec.idp);
  return response;
}
