import fs from 'node:fs';
import path from 'node:path';
import { samlId, type KeyFiles, type XmlSecWorkspace } from './xmlsec.ts';

/**
 * SAML messages written by hand as text and signed / encrypted by xmlsec1: an identity provider (or
 * an attacker) that shares no code with Brána. Values are placed into the XML as given, so a test can
 * put a comment, a CDATA section or a whole element anywhere; `text()` escapes plain values.
 */

export const ALGORITHMS = {
  rsaSha256: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  rsaSha1: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1',
  hmacSha256: 'http://www.w3.org/2001/04/xmldsig-more#hmac-sha256',
  sha256: 'http://www.w3.org/2001/04/xmlenc#sha256',
  sha1: 'http://www.w3.org/2000/09/xmldsig#sha1',
  excC14n: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  c14n: 'http://www.w3.org/TR/2001/REC-xml-c14n-20010315',
  enveloped: 'http://www.w3.org/2000/09/xmldsig#enveloped-signature',
  aes256Cbc: 'http://www.w3.org/2001/04/xmlenc#aes256-cbc',
  aes128Cbc: 'http://www.w3.org/2001/04/xmlenc#aes128-cbc',
  aes256Gcm: 'http://www.w3.org/2009/xmlenc11#aes256-gcm',
  rsaOaep: 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p',
  rsa15: 'http://www.w3.org/2001/04/xmlenc#rsa-1_5',
} as const;

export const STATUS_SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';
export const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';
export const LOA = {
  low: 'http://eidas.europa.eu/LoA/low',
  substantial: 'http://eidas.europa.eu/LoA/substantial',
  high: 'http://eidas.europa.eu/LoA/high',
} as const;
const EIDAS = 'http://eidas.europa.eu/attributes/naturalperson/';
export const ATTRIBUTE_NAMES = {
  givenName: `${EIDAS}CurrentGivenName`,
  familyName: `${EIDAS}CurrentFamilyName`,
  dateOfBirth: `${EIDAS}DateOfBirth`,
  placeOfBirth: `${EIDAS}PlaceOfBirth`,
  eMail: 'http://www.stork.gov.eu/1.0/eMail',
  statusCode: 'urn:oasis:names:tc:SAML:2.0:protocol/statuscode',
} as const;

export function text(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export interface Person {
  givenName: string;
  familyName: string;
  dateOfBirth: string;
  placeOfBirth: string;
}

/** Citizens of the embedded test register (src/development/test-citizens.json). */
export const JAN_NOVAK: Person = { givenName: 'Jan', familyName: 'Novák', dateOfBirth: '1980-04-12', placeOfBirth: 'Praha' };
export const MARIE_SVOBODOVA: Person = { givenName: 'Marie', familyName: 'Svobodová', dateOfBirth: '1975-11-03', placeOfBirth: 'Brno' };

export interface SamlAttributeXml {
  name: string;
  /** Inner XML of each AttributeValue (escape plain text with `text()`). */
  values: string[];
}

export function personAttributes(person: Person): SamlAttributeXml[] {
  return [
    { name: ATTRIBUTE_NAMES.givenName, values: [text(person.givenName)] },
    { name: ATTRIBUTE_NAMES.familyName, values: [text(person.familyName)] },
    { name: ATTRIBUTE_NAMES.dateOfBirth, values: [text(person.dateOfBirth)] },
    { name: ATTRIBUTE_NAMES.placeOfBirth, values: [text(person.placeOfBirth)] },
  ];
}

/** Every field of an Assertion; all are inserted as given (already XML). */
export interface AssertionFields {
  id: string;
  issueInstant: string;
  issuer: string;
  nameId: string;
  confirmationMethod: string;
  inResponseTo: string;
  recipient: string;
  confirmationNotOnOrAfter: string;
  /** Extra attributes on SubjectConfirmationData (e.g. ` NotBefore="…"`). */
  confirmationExtra: string;
  notBefore: string;
  notOnOrAfter: string;
  audience: string;
  authnInstant: string;
  classRef: string;
  attributes: SamlAttributeXml[];
}

export interface SignatureOptions {
  signatureMethod: string;
  digestMethod: string;
  canonicalization: string;
  transforms: string[];
  /** Ask xmlsec1 to put the signer's certificate into KeyInfo. */
  certificateInKeyInfo: boolean;
  /** The Reference URI; `#<id of the signed element>` unless a test says otherwise. */
  referenceUri?: string;
}

export const DEFAULT_SIGNATURE: SignatureOptions = {
  signatureMethod: ALGORITHMS.rsaSha256,
  digestMethod: ALGORITHMS.sha256,
  canonicalization: ALGORITHMS.excC14n,
  transforms: [ALGORITHMS.enveloped, ALGORITHMS.excC14n],
  certificateInKeyInfo: true,
};

/** An unsigned ds:Signature for xmlsec1 to fill in. */
export function signatureTemplate(referencedId: string, options: Partial<SignatureOptions> = {}): string {
  const o = { ...DEFAULT_SIGNATURE, ...options };
  return (
    `<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>` +
    `<ds:CanonicalizationMethod Algorithm="${o.canonicalization}"/>` +
    `<ds:SignatureMethod Algorithm="${o.signatureMethod}"/>` +
    `<ds:Reference URI="${o.referenceUri ?? `#${referencedId}`}"><ds:Transforms>` +
    o.transforms.map((t) => `<ds:Transform Algorithm="${t}"/>`).join('') +
    `</ds:Transforms><ds:DigestMethod Algorithm="${o.digestMethod}"/><ds:DigestValue></ds:DigestValue></ds:Reference>` +
    `</ds:SignedInfo><ds:SignatureValue></ds:SignatureValue>` +
    (o.certificateInKeyInfo ? `<ds:KeyInfo><ds:X509Data></ds:X509Data></ds:KeyInfo>` : '') +
    `</ds:Signature>`
  );
}

export function assertionXml(f: AssertionFields, signature = ''): string {
  const attributes = f.attributes
    .map(
      (a) =>
        `<saml:Attribute Name="${text(a.name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">` +
        a.values.map((v) => `<saml:AttributeValue xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">${v}</saml:AttributeValue>`).join('') +
        `</saml:Attribute>`,
    )
    .join('');
  return (
    `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${f.id}" Version="2.0" IssueInstant="${f.issueInstant}">` +
    `<saml:Issuer>${f.issuer}</saml:Issuer>` +
    signature +
    `<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">${f.nameId}</saml:NameID>` +
    `<saml:SubjectConfirmation Method="${f.confirmationMethod}"><saml:SubjectConfirmationData InResponseTo="${f.inResponseTo}" NotOnOrAfter="${f.confirmationNotOnOrAfter}" Recipient="${f.recipient}"${f.confirmationExtra}/></saml:SubjectConfirmation></saml:Subject>` +
    `<saml:Conditions NotBefore="${f.notBefore}" NotOnOrAfter="${f.notOnOrAfter}"><saml:AudienceRestriction><saml:Audience>${f.audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions>` +
    `<saml:AuthnStatement AuthnInstant="${f.authnInstant}" SessionIndex="${samlId()}"><saml:AuthnContext><saml:AuthnContextClassRef>${f.classRef}</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
    (attributes ? `<saml:AttributeStatement>${attributes}</saml:AttributeStatement>` : '') +
    `</saml:Assertion>`
  );
}

export interface ResponseFields {
  id: string;
  issueInstant: string;
  destination: string;
  inResponseTo: string;
  issuer: string;
  statusCode: string;
  secondStatusCode?: string;
  /** Whatever goes after Status: an Assertion, an EncryptedAssertion, nothing, or more. */
  body: string;
}

export function responseXml(f: ResponseFields, signature = ''): string {
  return (
    `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${f.id}" Version="2.0" IssueInstant="${f.issueInstant}" Destination="${f.destination}" InResponseTo="${f.inResponseTo}">` +
    `<saml:Issuer>${f.issuer}</saml:Issuer>` +
    signature +
    `<samlp:Status><samlp:StatusCode Value="${f.statusCode}">${f.secondStatusCode ? `<samlp:StatusCode Value="${f.secondStatusCode}"/>` : ''}</samlp:StatusCode></samlp:Status>` +
    f.body +
    `</samlp:Response>`
  );
}

export interface EncryptionOptions {
  dataAlgorithm: string;
  keyTransport: string;
  /** The OAEP digest (omitted for rsa-1_5). */
  oaepDigest: string | null;
}

export const NIA_ENCRYPTION: EncryptionOptions = { dataAlgorithm: ALGORITHMS.aes256Cbc, keyTransport: ALGORITHMS.rsaOaep, oaepDigest: ALGORITHMS.sha1 };

export function encryptionTemplate(o: EncryptionOptions): string {
  return (
    `<xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Type="http://www.w3.org/2001/04/xmlenc#Element">` +
    `<xenc:EncryptionMethod Algorithm="${o.dataAlgorithm}"/>` +
    `<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><xenc:EncryptedKey>` +
    `<xenc:EncryptionMethod Algorithm="${o.keyTransport}">${o.oaepDigest ? `<ds:DigestMethod Algorithm="${o.oaepDigest}"/>` : ''}</xenc:EncryptionMethod>` +
    `<xenc:CipherData><xenc:CipherValue/></xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo>` +
    `<xenc:CipherData><xenc:CipherValue/></xenc:CipherData></xenc:EncryptedData>`
  );
}

/** Brána's service provider for one means as an identity provider sees it: from its published metadata. */
export interface ServiceProviderView {
  entityId: string;
  acsUrl: string;
  encryptionCertFile: string;
}

export async function readServiceProvider(origin: string, means: string, workspace: XmlSecWorkspace): Promise<ServiceProviderView> {
  return serviceProviderFromMetadata(await (await fetch(`${origin}/saml/${means}/metadata`)).text(), means, workspace);
}

/** Brána's service provider for one means, read from its SP metadata (as an IdP is given it). */
export function serviceProviderFromMetadata(metadata: string, means: string, workspace: XmlSecWorkspace): ServiceProviderView {
  const entityId = /entityID="([^"]+)"/.exec(metadata)?.[1];
  const acsUrl = /<AssertionConsumerService[^>]*Location="([^"]+)"/.exec(metadata)?.[1];
  const encryption = /<KeyDescriptor use="encryption">[\s\S]*?<ds:X509Certificate>([^<]+)<\/ds:X509Certificate>/.exec(metadata)?.[1];
  if (!entityId || !acsUrl || !encryption) throw new Error(`cannot read Brána's SP metadata for ${means}`);
  const body = encryption.replace(/\s+/g, '');
  const pem = `-----BEGIN CERTIFICATE-----\n${body.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
  return { entityId, acsUrl, encryptionCertFile: workspace.file(`${means}-sp-encryption.crt.pem`, pem) };
}

/** The key files of a means' development IdP, as the broker generated them (the IdP's own key). */
export function developmentIdpKeys(keysDir: string, means: string): KeyFiles {
  const dir = path.join(keysDir, 'dev-idp');
  const keyFile = path.join(dir, `${means}.key.pem`);
  const certFile = path.join(dir, `${means}.crt.pem`);
  if (!fs.existsSync(keyFile) || !fs.existsSync(certFile)) throw new Error(`no development IdP key for ${means}`);
  return { keyFile, certFile };
}

export interface IdentityProviderView {
  means: string;
  entityId: string;
  keys: KeyFiles;
}

/** What an identity provider needs to answer one of Brána's requests. */
export interface Answering {
  requestId: string;
  now?: number;
}

/**
 * An identity provider (the real key of a means) or a forger, producing responses with xmlsec1.
 * `fields()` gives a correct answer for Jan Novák; tests change fields, signatures and structure.
 */
export class IndependentIdp {
  readonly idp: IdentityProviderView;
  readonly sp: ServiceProviderView;
  readonly workspace: XmlSecWorkspace;

  constructor(idp: IdentityProviderView, sp: ServiceProviderView, workspace: XmlSecWorkspace) {
    this.idp = idp;
    this.sp = sp;
    this.workspace = workspace;
  }

  assertionFields(answering: Answering, person: Person = JAN_NOVAK, loa: string = LOA.high): AssertionFields {
    const now = answering.now ?? Date.now();
    return {
      id: samlId(),
      issueInstant: iso(now),
      issuer: text(this.idp.entityId),
      nameId: `subject-${samlId().slice(1, 17)}`,
      confirmationMethod: BEARER,
      inResponseTo: answering.requestId,
      recipient: text(this.sp.acsUrl),
      confirmationNotOnOrAfter: iso(now + 5 * 60_000),
      confirmationExtra: '',
      notBefore: iso(now - 5_000),
      notOnOrAfter: iso(now + 5 * 60_000),
      audience: text(this.sp.entityId),
      authnInstant: iso(now),
      classRef: loa,
      attributes: personAttributes(person),
    };
  }

  responseFields(answering: Answering, body: string): ResponseFields {
    return {
      id: samlId(),
      issueInstant: iso(answering.now ?? Date.now()),
      destination: text(this.sp.acsUrl),
      inResponseTo: answering.requestId,
      issuer: text(this.idp.entityId),
      statusCode: STATUS_SUCCESS,
      body,
    };
  }

  async signedAssertion(fields: AssertionFields, options: Partial<SignatureOptions> = {}, signer: KeyFiles = this.idp.keys): Promise<string> {
    return this.workspace.sign(assertionXml(fields, signatureTemplate(fields.id, options)), signer);
  }

  async encrypted(assertion: string, options: EncryptionOptions = NIA_ENCRYPTION): Promise<string> {
    const sessionKey = /aes128/.test(options.dataAlgorithm) ? 'aes-128' : 'aes-256';
    const data = await this.workspace.encrypt(assertion, encryptionTemplate(options), this.sp.encryptionCertFile, sessionKey);
    return `<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">${data}</saml:EncryptedAssertion>`;
  }

  async signedResponse(fields: ResponseFields, options: Partial<SignatureOptions> = {}, signer: KeyFiles = this.idp.keys): Promise<string> {
    return this.workspace.sign(responseXml(fields, signatureTemplate(fields.id, options)), signer);
  }

  /**
   * A correct answer as NIA sends it: the assertion signed, encrypted to Brána, inside a signed
   * response. Each layer can be switched off.
   */
  async answer(
    answering: Answering,
    options: { person?: Person; loa?: string; assertion?: Partial<AssertionFields>; response?: Partial<ResponseFields>; signAssertion?: boolean; encrypt?: boolean; signResponse?: boolean } = {},
  ): Promise<string> {
    const fields = { ...this.assertionFields(answering, options.person, options.loa), ...options.assertion };
    let assertion = options.signAssertion === false ? assertionXml(fields) : await this.signedAssertion(fields);
    if (options.encrypt !== false) assertion = await this.encrypted(assertion);
    const response = { ...this.responseFields(answering, assertion), ...options.response };
    return options.signResponse === false ? responseXml(response) : this.signedResponse(response);
  }
}

export function base64(xml: string): string {
  return Buffer.from(xml, 'utf8').toString('base64');
}
