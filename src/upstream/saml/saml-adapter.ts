import { createHash, randomBytes } from 'node:crypto';
import { SAML, ValidateInResponseTo, type SamlConfig } from '@node-saml/node-saml';
import type { Element } from '@xmldom/xmldom';
import { loaAtLeast, loaUri, type Loa } from '../../domain/loa.ts';
import type { SamlMeans } from '../../means/identity-means.ts';
import type { SamlKeys } from '../../keys/key-store.ts';
import { privateKeyOf } from '../../keys/private-keys.ts';
import { certificateBody } from '../../keys/certificate.ts';
import { CLOCK_SKEW_MS, UpstreamRejected, type BrowserHandoff, type CorrelatedAnswer, type ExpectedRequest, type ServiceProviderMetadata, type UpstreamAdapter, type UpstreamIdentity, type UpstreamLoginStart } from '../contract.ts';
import { MetadataUnavailable, type MetadataSource } from '../metadata/metadata-source.ts';
import { decryptAssertion } from './assertion-decryption.ts';
import { readVerifiedAssertion } from './assertion-reader.ts';
import { eidasExtensions } from './eidas-extensions.ts';
import type { IdpMetadata } from './idp-metadata.ts';
import { STATUS_SUCCESS, inspectDecryptedAssertion, inspectResponse, readResponse, type ReadResponse, type ResponseEnvelope } from './response-guard.ts';
import { verifiedContent } from './signature-verification.ts';
import { statusReason } from './status-codes.ts';
import { NS, XmlRejected, childElements, parseStrictXml } from './xml.ts';

/** The oldest assertion (by IssueInstant) Brána accepts. */
export const MAX_ASSERTION_AGE_MS = 5 * 60_000;

export interface SamlAdapterSettings {
  means: SamlMeans;
  /** Only the metadata in use is read (`current()`): a refreshing source, or one document held still. */
  metadata: Pick<MetadataSource<IdpMetadata>, 'current'>;
  keys: SamlKeys;
  publicUrl: URL;
  /** The clock, for tests that replay answers written at another time. */
  now?: () => number;
}

/** A SAML answer read as far as the request it names. */
export interface SamlAnswer extends CorrelatedAnswer {
  response: ReadResponse;
}

/** Data encryption that authenticates its ciphertext: decrypting it reveals nothing to whoever changed it. */
export const AEAD_DATA_ENCRYPTION: ReadonlySet<string> = new Set(['http://www.w3.org/2009/xmlenc11#aes128-gcm', 'http://www.w3.org/2009/xmlenc11#aes256-gcm']);

/**
 * The root of signed bytes, parsed strictly: the tree every value is read from afterwards. `reason`
 * is the refusal when the bytes do not parse (a verified Response, or a verified Assertion).
 */
function signedTree(signed: string, reason: 'response_malformed' | 'assertion_malformed'): Element {
  try {
    return parseStrictXml(signed).documentElement as Element;
  } catch (err) {
    if (err instanceof XmlRejected) throw invalid(reason, err.message);
    throw err;
  }
}

/** The one assertion a verified Response's signed bytes hold, read in the tree parsed from them. */
function coveredAssertion(signedResponse: string): Element {
  const assertion = childElements(signedTree(signedResponse, 'response_malformed'), NS.assertion, 'Assertion')[0];
  if (!assertion) throw invalid('assertion_count', 'the signature does not cover the assertion');
  return assertion;
}

function invalid(reason: string, detail?: string): UpstreamRejected {
  return new UpstreamRejected(reason, 'invalid_response', detail);
}

/**
 * A SAML 2.0 identity means. node-saml builds the AuthnRequest (signed, SHA-256, `minimum`
 * comparison, eIDAS extensions) and the SP metadata; the answer is checked by Brána itself, in
 * stages that each refuse with one reason: the guard reads the outside (response-guard), every
 * signature present is verified with xml-crypto against the means' certificates only, an encrypted
 * assertion is decrypted once (CBC only inside a verified response signature), a valid signature must
 * cover the assertion, and the assertion is read from signed bytes alone (assertion-reader). The
 * request it answers is found by the server.
 */
export class SamlAdapter implements UpstreamAdapter<SamlAnswer>, ServiceProviderMetadata {
  readonly means: SamlMeans;
  readonly entityId: string;
  readonly acsUrl: string;
  private readonly metadata: Pick<MetadataSource<IdpMetadata>, 'current'>;
  private readonly keys: SamlKeys;
  private readonly now: () => number;

  constructor(settings: SamlAdapterSettings) {
    this.means = settings.means;
    this.metadata = settings.metadata;
    this.keys = settings.keys;
    this.now = settings.now ?? Date.now;
    this.entityId = new URL(`/saml/${settings.means.id}/metadata`, settings.publicUrl).href;
    this.acsUrl = new URL(`/saml/${settings.means.id}/acs`, settings.publicUrl).href;
  }

  /** What Brána is as a service provider for this means: independent of the IdP's metadata. */
  private serviceProviderConfig(): SamlConfig {
    return {
      issuer: this.entityId,
      callbackUrl: this.acsUrl,
      audience: this.entityId,
      // node-saml only writes requests here; answers are verified by Brána against the metadata.
      idpCert: (callback) => callback(null, this.metadata.current().signingCertificates),
      // A KeyObject parsed once (patched node-saml): signing with it costs half of signing with the PEM.
      privateKey: privateKeyOf(this.keys.samlSigning.privateKeyPem),
      publicCert: this.keys.samlSigning.certificatePem,
      // Only so that the SP metadata announces the encryption certificate; Brána decrypts itself.
      decryptionPvk: this.keys.samlEncryption.privateKey as unknown as string,
      signatureAlgorithm: 'sha256',
      digestAlgorithm: 'sha256',
      wantAssertionsSigned: true,
      wantAuthnResponseSigned: this.means.saml.requireSignedResponse,
      // The server records the request; node-saml keeps no request ids of its own.
      validateInResponseTo: ValidateInResponseTo.never,
      racComparison: 'minimum',
      identifierFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
      providerName: 'Brána',
    };
  }

  /** node-saml takes the requested LoA, ForceAuthn, extensions and the request id per instance. */
  private requestWriter(idp: IdpMetadata, login: UpstreamLoginStart, requestId: string): SAML {
    return new SAML({
      ...this.serviceProviderConfig(),
      entryPoint: idp.singleSignOn.redirect ?? idp.singleSignOn.post!,
      idpIssuer: idp.entityId,
      authnRequestBinding: idp.singleSignOn.redirect ? 'HTTP-Redirect' : 'HTTP-POST',
      skipRequestCompression: !idp.singleSignOn.redirect,
      ...this.requestedAuthnContext(login.minimumLoa),
      forceAuthn: login.forceAuthn,
      samlAuthnRequestExtensions: eidasExtensions(login.spType, this.means.saml.requestedAttributes),
      generateUniqueId: () => requestId,
    });
  }

  /**
   * The authentication context Brána asks for, in the words the means understands: the eIDAS URI of
   * the minimum with comparison `minimum`, or, for a means with its own URIs (`authnContextMap`),
   * exactly those of its URIs that stand for at least the minimum.
   */
  private requestedAuthnContext(minimum: Loa): Pick<SamlConfig, 'authnContext' | 'racComparison'> {
    const own = Object.entries(this.means.saml.authnContextMap)
      .filter(([, loa]) => loaAtLeast(loa, minimum))
      .map(([uri]) => uri);
    return own.length ? { authnContext: own, racComparison: 'exact' } : { authnContext: [loaUri(minimum)], racComparison: 'minimum' };
  }

  async startLogin(login: UpstreamLoginStart): Promise<BrowserHandoff> {
    const idp = this.metadata.current();
    // An xs:ID must not start with a digit.
    const requestId = `_${randomBytes(20).toString('hex')}`;
    const writer = this.requestWriter(idp, login, requestId);
    if (idp.singleSignOn.redirect) return { kind: 'redirect', url: await writer.getAuthorizeUrlAsync('', undefined, {}), requestId };
    const message = await writer.getAuthorizeMessageAsync('', undefined, {});
    const fields = Object.fromEntries(Object.entries(message).filter(([, value]) => typeof value === 'string' && value !== '')) as Record<string, string>;
    return { kind: 'post', url: idp.singleSignOn.post!, fields, requestId };
  }

  correlate(input: Record<string, unknown>): SamlAnswer {
    const response = readResponse(input);
    return { requestId: response.requestId, unknownRequestReason: 'in_response_to_invalid', response };
  }

  async handleAnswer(answer: SamlAnswer, expected: ExpectedRequest): Promise<UpstreamIdentity> {
    if (expected.requestId !== answer.requestId || expected.means !== this.means.id) throw invalid('in_response_to_invalid');
    let idp: IdpMetadata;
    try {
      idp = this.metadata.current();
    } catch (err) {
      // Without current metadata no key is trusted: nothing from this means is accepted.
      if (err instanceof MetadataUnavailable) throw new UpstreamRejected('metadata_unavailable', 'means_unavailable', err.message);
      throw err;
    }
    const envelope = inspectResponse(answer.response, { destination: this.acsUrl, idpEntityId: idp.entityId, requireSignedResponse: this.means.saml.requireSignedResponse });
    const root = envelope.document.documentElement as Element;
    const certificates = idp.signingCertificates;

    // A signature that is present must verify, whether or not this means requires it.
    const signedResponse = envelope.hasResponseSignature ? verifiedContent(root, certificates) : null;
    if (envelope.hasResponseSignature && signedResponse === null) throw invalid('signature_invalid', 'the response signature does not verify');

    if (envelope.statusCode !== STATUS_SUCCESS) {
      // An error status is often unsigned: it may only end the login, never start one.
      const status = statusReason(envelope.statusCode, envelope.secondLevelStatusCode);
      throw new UpstreamRejected(status.reason, status.outward);
    }

    const assertion = envelope.hasEncryptedAssertion ? this.decryptedAssertion(envelope, signedResponse, certificates) : this.signedAssertion(envelope, root, signedResponse, certificates);
    const content = readVerifiedAssertion(assertion, {
      idpEntityId: idp.entityId,
      acsUrl: this.acsUrl,
      audience: this.entityId,
      authnContextMap: this.means.saml.authnContextMap,
      requestId: expected.requestId,
      maximumLoa: this.means.loa,
      clockSkewMs: CLOCK_SKEW_MS,
      maxAgeMs: MAX_ASSERTION_AGE_MS,
      now: this.now(),
    });
    return {
      means: this.means.id,
      authority: content.issuer,
      acr: content.acr,
      instant: content.authnInstant,
      subject: content.subject,
      attributes: content.attributes,
      messageHash: createHash('sha256').update(envelope.xml).digest('hex'),
      assertionId: content.assertionId,
      assertionExpiresAt: content.expiresAt,
      requestId: expected.requestId,
    };
  }

  /**
   * The assertion, read from signed bytes: its own signature's when it carries one (which must
   * verify), else those of the verified Response signature that covers it, where the means accepts
   * that. The element returned belongs to a tree parsed from those bytes, never to the message.
   */
  private signedAssertion(envelope: ResponseEnvelope, root: Element, signedResponse: string | null, certificates: readonly string[]): Element {
    const assertion = childElements(root, NS.assertion, 'Assertion')[0]!;
    if (childElements(assertion, NS.dsig, 'Signature').length > 0) {
      const signed = verifiedContent(assertion, certificates);
      if (signed === null) throw invalid('signature_invalid', 'the assertion signature does not verify');
      return signedTree(signed, 'assertion_malformed');
    }
    if (this.means.saml.requireSignedAssertion) throw invalid('signature_invalid', 'the assertion is not signed');
    if (signedResponse === null) throw invalid('signature_invalid', 'no signature covers the assertion');
    return coveredAssertion(signedResponse);
  }

  /**
   * An encrypted assertion, decrypted once. Inside a verified Response signature it is taken from the
   * bytes that signature covers. In an unsigned Response only authenticated encryption (AES-GCM) is
   * decrypted: changed CBC ciphertext would make Brána a padding oracle. The plaintext is then checked
   * like any assertion (strictly parsed, its algorithms on the list) and must be covered by a valid
   * signature: its own, or the Response's.
   */
  private decryptedAssertion(envelope: ResponseEnvelope, signedResponse: string | null, certificates: readonly string[]): Element {
    if (signedResponse === null && !AEAD_DATA_ENCRYPTION.has(envelope.dataEncryption ?? '')) throw invalid('signature_invalid', 'CBC-encrypted assertion in an unsigned response');
    const container = signedResponse === null ? (envelope.document.documentElement as Element) : signedTree(signedResponse, 'response_malformed');
    const encrypted = childElements(container, NS.assertion, 'EncryptedAssertion')[0];
    if (!encrypted) throw invalid('assertion_count', 'the signature does not cover the EncryptedAssertion');
    let plaintext: string;
    try {
      plaintext = decryptAssertion(encrypted, this.keys.samlEncryption.privateKey);
    } catch (err) {
      throw invalid('decryption_failed', (err as Error).message);
    }
    const document = inspectDecryptedAssertion(plaintext);
    const assertion = document.documentElement as Element;
    if (childElements(assertion, NS.dsig, 'Signature').length > 0) {
      const signed = verifiedContent(assertion, certificates);
      if (signed === null) throw invalid('signature_invalid', 'the assertion signature does not verify');
      return signedTree(signed, 'assertion_malformed');
    }
    if (this.means.saml.requireSignedAssertion) throw invalid('signature_invalid', 'the assertion is not signed');
    if (signedResponse === null) throw invalid('signature_invalid', 'no signature covers the assertion');
    // The plaintext of the EncryptedAssertion the Response signature covers, already parsed strictly
    // (inspectDecryptedAssertion): read in that tree rather than parsed a second time.
    return assertion;
  }

  serviceProviderMetadata(): string {
    return new SAML(this.serviceProviderConfig()).generateServiceProviderMetadata(
      certificateBody(this.keys.samlEncryption.certificatePem),
      certificateBody(this.keys.samlSigning.certificatePem),
    );
  }
}
