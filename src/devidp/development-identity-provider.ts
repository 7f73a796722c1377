import { createHmac, createHash, timingSafeEqual, verify as verifySignature } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import type { Element } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';
import { attribute } from '../domain/attributes.ts';
import { loaAtLeast, loaFromUri, type Loa } from '../domain/loa.ts';
import { escapeXml } from '../domain/xml-escape.ts';
import { certificateBody, type KeyPairWithCertificate } from '../keys/certificate.ts';
import type { SamlMeans } from '../means/identity-means.ts';
import { NS, XmlRejected, childElements, parseStrictXml, requiredChild, singleChild, textOf } from '../upstream/saml/xml.ts';
import { buildSamlResponse, type SamlAttribute } from './saml-response-builder.ts';
import { readServiceProviderMetadata, type ServiceProviderInfo } from './sp-metadata-reader.ts';
import { developmentAccounts, type DevelopmentAccount, type ForeignTestCitizen, type TestCitizen } from './test-citizens.ts';

const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
const STATUS = {
  success: 'urn:oasis:names:tc:SAML:2.0:status:Success',
  responder: 'urn:oasis:names:tc:SAML:2.0:status:Responder',
  requestDenied: 'urn:oasis:names:tc:SAML:2.0:status:RequestDenied',
  noAuthnContext: 'urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext',
  authnFailed: 'urn:oasis:names:tc:SAML:2.0:status:AuthnFailed',
};

/** The parts of an AuthnRequest the development IdP acts on, carried through its login form. */
export interface PendingAuthnRequest {
  id: string;
  minimumLoa: Loa;
  forceAuthn: boolean;
  relayState: string;
  issuedAt: number;
}

export class AuthnRequestRejected extends Error {}

/**
 * An embedded SAML identity provider for development: real keys, real metadata, signed AuthnRequests
 * checked, and answers shaped as NIA sends them (signed, encrypted). It serves one identity means and
 * knows the test citizens who have an account there. Stateless, so any node of a cluster can serve it.
 */
export class DevelopmentIdentityProvider {
  readonly means: SamlMeans;
  readonly baseUrl: string;
  readonly entityId: string;
  readonly ssoUrl: string;
  private readonly keys: KeyPairWithCertificate;
  private readonly formKey: Buffer;
  private readonly accountList: DevelopmentAccount[];
  private readonly spMetadataXml: () => string;
  private sp: ServiceProviderInfo | undefined;

  constructor(options: {
    means: SamlMeans;
    publicUrl: URL;
    keys: KeyPairWithCertificate;
    citizens: TestCitizen[];
    foreignCitizens: ForeignTestCitizen[];
    serviceProviderMetadata: () => string;
  }) {
    this.means = options.means;
    this.baseUrl = new URL(`/dev-idp/${options.means.id}`, options.publicUrl).href;
    this.entityId = `${this.baseUrl}/metadata`;
    this.ssoUrl = `${this.baseUrl}/sso`;
    this.keys = options.keys;
    this.formKey = createHash('sha256').update('dev-idp-form').update(options.keys.privateKeyPem).digest();
    this.accountList = developmentAccounts(options.means, this.formKey, options.citizens, options.foreignCitizens);
    this.spMetadataXml = options.serviceProviderMetadata;
  }

  private serviceProvider(): ServiceProviderInfo {
    this.sp ??= readServiceProviderMetadata(this.spMetadataXml());
    return this.sp;
  }

  /** Where answers go: the broker's ACS for this means, from its metadata. */
  acsUrl(): string {
    return this.serviceProvider().acsUrl;
  }

  metadataXml(): string {
    const certificate = certificateBody(this.keys.certificatePem);
    return (
      `<?xml version="1.0" encoding="UTF-8"?>` +
      `<md:EntityDescriptor xmlns:md="${NS.metadata}" xmlns:ds="${NS.dsig}" entityID="${escapeXml(this.entityId)}" cacheDuration="PT1H">` +
      `<md:IDPSSODescriptor WantAuthnRequestsSigned="true" protocolSupportEnumeration="${NS.protocol}">` +
      `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${certificate}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>` +
      `<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>` +
      `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${escapeXml(this.ssoUrl)}"/>` +
      `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${escapeXml(this.ssoUrl)}"/>` +
      `</md:IDPSSODescriptor></md:EntityDescriptor>`
    );
  }

  accounts(): Array<{ login: string; name: string }> {
    return this.accountList.map((account) => ({ login: account.login, name: account.displayName }));
  }

  /** Checks an HTTP-Redirect AuthnRequest: the query signature over the raw parameters, then the XML. */
  readRedirectRequest(rawQuery: string): PendingAuthnRequest {
    const raw = new Map<string, string>();
    for (const part of rawQuery.split('&')) {
      const [name, value = ''] = part.split('=');
      if (name && !raw.has(name)) raw.set(name, value);
    }
    const samlRequest = raw.get('SAMLRequest');
    const sigAlg = raw.get('SigAlg');
    const signature = raw.get('Signature');
    if (!samlRequest || !sigAlg || !signature) throw new AuthnRequestRejected('the request is not signed');
    if (decodeURIComponent(sigAlg) !== RSA_SHA256) throw new AuthnRequestRejected('the request must be signed with RSA-SHA256');
    const relay = raw.get('RelayState');
    const signed = `SAMLRequest=${samlRequest}${relay !== undefined ? `&RelayState=${relay}` : ''}&SigAlg=${sigAlg}`;
    const ok = verifySignature('RSA-SHA256', Buffer.from(signed), this.serviceProvider().signingCertificatePem, Buffer.from(decodeURIComponent(signature), 'base64'));
    if (!ok) throw new AuthnRequestRejected('the request signature is not valid');
    let xml: string;
    try {
      xml = inflateRawSync(Buffer.from(decodeURIComponent(samlRequest), 'base64'), { maxOutputLength: 64 * 1024 }).toString('utf8');
    } catch {
      throw new AuthnRequestRejected('the request is not a deflated SAML message');
    }
    return this.readRequestXml(xml, relay === undefined ? '' : decodeURIComponent(relay), false);
  }

  /** Checks an HTTP-POST AuthnRequest: an enveloped XML signature over the whole request. */
  readPostRequest(samlRequest: string, relayState: string): PendingAuthnRequest {
    const xml = Buffer.from(samlRequest, 'base64').toString('utf8');
    return this.readRequestXml(xml, relayState, true);
  }

  private readRequestXml(xml: string, relayState: string, embeddedSignature: boolean): PendingAuthnRequest {
    let request: Element;
    try {
      request = parseStrictXml(xml).documentElement as Element;
    } catch (err) {
      throw new AuthnRequestRejected(`the request is not readable: ${(err as XmlRejected).message}`);
    }
    if (request.namespaceURI !== NS.protocol || request.localName !== 'AuthnRequest') throw new AuthnRequestRejected('not an AuthnRequest');
    const id = request.getAttribute('ID') ?? '';
    if (embeddedSignature) {
      const signatureNode = singleChild(request, NS.dsig, 'Signature');
      if (!signatureNode) throw new AuthnRequestRejected('the request is not signed');
      const signature = new SignedXml({ publicCert: this.serviceProvider().signingCertificatePem });
      signature.loadSignature(signatureNode as unknown as Node);
      const references = signature.getReferences();
      if (references.length !== 1 || references[0]!.uri !== `#${id}` || !signature.checkSignature(xml)) {
        throw new AuthnRequestRejected('the request signature is not valid');
      }
    }
    const sp = this.serviceProvider();
    if (textOf(requiredChild(request, NS.assertion, 'Issuer')).trim() !== sp.entityId) throw new AuthnRequestRejected('unknown service provider');
    if (request.getAttribute('Destination') !== this.ssoUrl) throw new AuthnRequestRejected('the request is meant for another identity provider');
    if (request.getAttribute('AssertionConsumerServiceURL') !== sp.acsUrl) throw new AuthnRequestRejected('the AssertionConsumerServiceURL is not the registered one');
    const context = singleChild(request, NS.protocol, 'RequestedAuthnContext');
    const classRefs = context ? childElements(context, NS.assertion, 'AuthnContextClassRef').map((ref) => loaFromUri(textOf(ref).trim())) : [];
    const minimumLoa = classRefs.find((loa): loa is Loa => loa !== undefined) ?? 'low';
    return { id, minimumLoa, forceAuthn: request.getAttribute('ForceAuthn') === 'true', relayState, issuedAt: Date.now() };
  }

  /** The pending request as a tamper-proof form field, so no state is kept between the two steps. */
  sealRequest(request: PendingAuthnRequest): string {
    const payload = Buffer.from(JSON.stringify(request)).toString('base64url');
    return `${payload}.${createHmac('sha256', this.formKey).update(payload).digest('base64url')}`;
  }

  openRequest(sealed: unknown): PendingAuthnRequest {
    if (typeof sealed !== 'string') throw new AuthnRequestRejected('missing request');
    const [payload = '', mac = ''] = sealed.split('.');
    const expected = createHmac('sha256', this.formKey).update(payload).digest();
    const given = Buffer.from(mac, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new AuthnRequestRejected('the login form was altered');
    const request = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as PendingAuthnRequest;
    if (Date.now() - request.issuedAt > 15 * 60_000) throw new AuthnRequestRejected('the login form has expired');
    return request;
  }

  /** The requested attributes this account can assert, under their SAML names. */
  private attributesFor(account: DevelopmentAccount): SamlAttribute[] {
    return this.means.saml.requestedAttributes
      .filter((id) => account.values[id] !== undefined)
      .map((id) => ({ name: attribute(id).samlName, values: [account.values[id]!] }));
  }

  /** The SAML Response (XML) for a citizen's login or cancellation at this IdP. */
  async answer(request: PendingAuthnRequest, decision: { login: string } | 'cancel' | 'fail'): Promise<string> {
    const sp = this.serviceProvider();
    const base = {
      idp: { entityId: this.entityId, privateKeyPem: this.keys.privateKeyPem, certificatePem: this.keys.certificatePem },
      sp: { entityId: sp.entityId, acsUrl: sp.acsUrl, encryptionCertificatePem: sp.encryptionCertificatePem },
      inResponseTo: request.id,
    };
    const failure = (second: string, message: string) =>
      buildSamlResponse({ ...base, subject: '', loa: 'low', attributes: [], status: { code: STATUS.responder, second, message } });
    if (decision === 'cancel') return failure(STATUS.requestDenied, 'The citizen cancelled the login');
    if (decision === 'fail') return failure(STATUS.authnFailed, 'Authentication failed');
    const account = this.accountList.find((candidate) => candidate.login === decision.login);
    if (!account) return failure(STATUS.authnFailed, 'Unknown account');
    if (!loaAtLeast(account.loa, request.minimumLoa)) return failure(STATUS.noAuthnContext, 'The requested level of assurance cannot be reached');
    return buildSamlResponse({ ...base, subject: account.subject, loa: account.loa, attributes: this.attributesFor(account) });
  }
}
