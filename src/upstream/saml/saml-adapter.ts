import { createHash } from 'node:crypto';
import { SAML, ValidateInResponseTo, type SamlConfig } from '@node-saml/node-saml';
import type { Element } from '@xmldom/xmldom';
import { loaUri, type Loa } from '../../domain/loa.ts';
import type { SamlMeans } from '../../means/identity-means.ts';
import type { BrokerKeys } from '../../keys/key-store.ts';
import { UpstreamRejected, type BrowserHandoff, type ServiceProviderMetadata, type UpstreamAdapter, type UpstreamIdentity, type UpstreamLoginStart } from '../contract.ts';
import type { UpstreamRequestStore } from '../upstream-request-store.ts';
import { UPSTREAM_REQUEST_TTL_MS } from '../upstream-request-store.ts';
import { decryptAssertion } from './assertion-decryption.ts';
import { readVerifiedAssertion } from './assertion-reader.ts';
import { eidasExtensions } from './eidas-extensions.ts';
import { MetadataUnavailable, type MetadataSource } from '../metadata/metadata-source.ts';
import type { IdpMetadata } from './idp-metadata.ts';
import { RequestIdCache, answerBeingChecked, loginBeingStarted } from './request-id-cache.ts';
import { STATUS_SUCCESS, inspectDecryptedAssertion, inspectResponse, type ResponseEnvelope } from './response-guard.ts';
import { NS, childElements } from './xml.ts';
import { certificateBody } from '../../keys/certificate.ts';

/** Clock skew Brána tolerates between itself and an identity provider. */
export const CLOCK_SKEW_MS = 30_000;
/** The oldest assertion (by IssueInstant) Brána accepts. */
export const MAX_ASSERTION_AGE_MS = 5 * 60_000;

/** The citizen declined at the identity provider; any other error status is a failed authentication. */
const CANCEL_STATUSES = new Set(['urn:oasis:names:tc:SAML:2.0:status:RequestDenied']);

export interface SamlAdapterSettings {
  means: SamlMeans;
  metadata: MetadataSource<IdpMetadata>;
  keys: BrokerKeys;
  requests: UpstreamRequestStore;
  publicUrl: URL;
}

/**
 * Maps node-saml's error messages to stable reason codes for the assertion log. node-saml's own
 * messages are known; anything else while an EncryptedAssertion is being read comes from the
 * decryption (xml-encryption, OpenSSL, or parsing the plaintext). The citizen sees the same page
 * whatever the reason.
 */
function reasonFromLibraryError(message: string, encrypted: boolean): string {
  if (/InResponseTo/i.test(message)) return 'in_response_to_invalid';
  if (/signature/i.test(message)) return 'signature_invalid';
  if (/expired/i.test(message)) return 'expired';
  if (/not yet valid/i.test(message)) return 'not_yet_valid';
  if (/audience/i.test(message)) return 'audience_mismatch';
  if (/subject confirmation/i.test(message)) return 'subject_confirmation_invalid';
  if (encrypted || /decrypt|EncryptedAssertion|encrypt|cipher|key/i.test(message)) return 'decryption_failed';
  return 'invalid_response';
}

/**
 * A SAML 2.0 identity means on node-saml, with node-saml's unsafe defaults replaced: InResponseTo
 * always checked against the database, SHA-256 signatures, `minimum` comparison, a small explicit
 * clock skew, audience checked, assertions signed. Checks node-saml lacks are in response-guard and
 * assertion-reader.
 */
export class SamlAdapter implements UpstreamAdapter, ServiceProviderMetadata {
  readonly means: SamlMeans;
  readonly entityId: string;
  readonly acsUrl: string;
  private readonly metadata: MetadataSource<IdpMetadata>;
  private readonly keys: BrokerKeys;
  private readonly cache: RequestIdCache;
  private readonly requests: UpstreamRequestStore;
  private variants = new Map<string, SAML>();
  private variantsVersion = -1;

  constructor(settings: SamlAdapterSettings) {
    this.means = settings.means;
    this.metadata = settings.metadata;
    this.keys = settings.keys;
    this.cache = new RequestIdCache(settings.requests, settings.means.id);
    this.requests = settings.requests;
    this.entityId = new URL(`/saml/${settings.means.id}/metadata`, settings.publicUrl).href;
    this.acsUrl = new URL(`/saml/${settings.means.id}/acs`, settings.publicUrl).href;
  }

  /** What Brána is as a service provider for this means: independent of the IdP's metadata. */
  private serviceProviderConfig(): SamlConfig {
    return {
      issuer: this.entityId,
      callbackUrl: this.acsUrl,
      audience: this.entityId,
      // A function, so that certificates announced by refreshed metadata apply without a restart.
      idpCert: (callback) => callback(null, this.metadata.current().signingCertificates),
      privateKey: this.keys.samlSigning.privateKeyPem,
      publicCert: this.keys.samlSigning.certificatePem,
      // The parsed key, not its PEM: node-saml hands it straight to crypto.privateDecrypt (through
      // xml-encryption), which takes a KeyObject; parsing the PEM again cost more than the RSA
      // operation itself, on every assertion. Its declared type is the PEM's.
      decryptionPvk: this.keys.samlEncryption.privateKey as unknown as string,
      signatureAlgorithm: 'sha256',
      digestAlgorithm: 'sha256',
      wantAssertionsSigned: true,
      wantAuthnResponseSigned: this.means.saml.requireSignedResponse,
      validateInResponseTo: ValidateInResponseTo.always,
      cacheProvider: this.cache,
      requestIdExpirationPeriodMs: UPSTREAM_REQUEST_TTL_MS,
      acceptedClockSkewMs: CLOCK_SKEW_MS,
      maxAssertionAgeMs: MAX_ASSERTION_AGE_MS,
      racComparison: 'minimum',
      identifierFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
      providerName: 'Brána',
    };
  }

  private baseConfig(): SamlConfig {
    const idp = this.metadata.current();
    return {
      ...this.serviceProviderConfig(),
      entryPoint: idp.singleSignOn.redirect ?? idp.singleSignOn.post!,
      idpIssuer: idp.entityId,
      authnRequestBinding: idp.singleSignOn.redirect ? 'HTTP-Redirect' : 'HTTP-POST',
      skipRequestCompression: !idp.singleSignOn.redirect,
    };
  }

  /**
   * node-saml takes the requested LoA, ForceAuthn and extensions per instance, not per request; the
   * few combinations are built once and kept (rebuilt when the metadata changes).
   */
  private variant(minimumLoa: Loa, forceAuthn: boolean, spType: 'public' | 'private', responseSigned = this.means.saml.requireSignedResponse): SAML {
    if (this.variantsVersion !== this.metadata.currentVersion()) {
      this.variants = new Map();
      this.variantsVersion = this.metadata.currentVersion();
    }
    const key = `${minimumLoa}|${forceAuthn}|${spType}|${responseSigned}`;
    let saml = this.variants.get(key);
    if (!saml) {
      saml = new SAML({
        ...this.baseConfig(),
        wantAuthnResponseSigned: responseSigned,
        authnContext: [loaUri(minimumLoa)],
        forceAuthn,
        samlAuthnRequestExtensions: eidasExtensions(spType, this.means.saml.requestedAttributes),
      });
      this.variants.set(key, saml);
    }
    return saml;
  }

  async startLogin(login: UpstreamLoginStart): Promise<BrowserHandoff> {
    const saml = this.variant(login.minimumLoa, login.forceAuthn, login.spType);
    const idp = this.metadata.current();
    const context: UpstreamLoginStart & { requestId?: string } = { ...login };
    return loginBeingStarted.run(context, async (): Promise<BrowserHandoff> => {
      if (idp.singleSignOn.redirect) {
        const url = await saml.getAuthorizeUrlAsync('', undefined, {});
        return { kind: 'redirect', url, requestId: context.requestId! };
      }
      const message = await saml.getAuthorizeMessageAsync('', undefined, {});
      const fields = Object.fromEntries(Object.entries(message).filter(([, value]) => typeof value === 'string' && value !== '')) as Record<string, string>;
      return { kind: 'post', url: idp.singleSignOn.post!, fields, requestId: context.requestId! };
    });
  }

  async handleResponse(body: Record<string, unknown>): Promise<UpstreamIdentity> {
    let idp: IdpMetadata;
    try {
      idp = this.metadata.current();
    } catch (err) {
      // Without current metadata no key is trusted: nothing from this means is accepted.
      if (err instanceof MetadataUnavailable) throw new UpstreamRejected('metadata_unavailable', 'means_unavailable', undefined, err.message);
      throw err;
    }
    const envelope = inspectResponse(body, {
      destination: this.acsUrl,
      idpEntityId: idp.entityId,
      requireSignedResponse: this.means.saml.requireSignedResponse,
    });
    const { requestId } = envelope;
    const request = await this.requests.find(requestId);
    if (request && request.means === this.means.id && request.consumedAt !== null) throw new UpstreamRejected('replayed_response', 'invalid_response', requestId);
    if (envelope.statusCode !== STATUS_SUCCESS) {
      // An error status is often unsigned: it may only end the login, never start one.
      const cancelled = CANCEL_STATUSES.has(envelope.secondLevelStatusCode ?? '') || CANCEL_STATUSES.has(envelope.statusCode);
      throw new UpstreamRejected(`status_${(envelope.secondLevelStatusCode ?? envelope.statusCode).split(':').pop()}`, cancelled ? 'cancelled' : 'authn_failed', requestId);
    }

    let assertionXml: string;
    try {
      // node-saml decrypts an EncryptedAssertion whenever the response signature is optional, even
      // if that signature fails; so for an encrypted assertion it is always required: decrypting
      // unauthenticated ciphertext would make Brána a padding oracle.
      const validator = this.variant('low', false, 'public', this.means.saml.requireSignedResponse || envelope.hasEncryptedAssertion);
      const { profile } = await answerBeingChecked.run({ request }, () => validator.validatePostResponseAsync({ SAMLResponse: Buffer.from(envelope.xml, 'utf8').toString('base64') }));
      if (!profile?.getAssertionXml) throw new Error('no assertion');
      assertionXml = profile.getAssertionXml();
    } catch (err) {
      if (err instanceof UpstreamRejected) throw err;
      throw new UpstreamRejected(reasonFromLibraryError((err as Error).message, envelope.hasEncryptedAssertion), 'invalid_response', requestId, (err as Error).message);
    }
    if (envelope.hasEncryptedAssertion) this.inspectDecrypted(envelope);

    const content = readVerifiedAssertion(assertionXml, {
      idpEntityId: idp.entityId,
      acsUrl: this.acsUrl,
      requestId,
      maximumLoa: this.means.loa,
      clockSkewMs: CLOCK_SKEW_MS,
      maxAgeMs: MAX_ASSERTION_AGE_MS,
      now: Date.now(),
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
      requestId,
    };
  }

  /**
   * The guard's algorithm and DOCTYPE checks, applied to the assertion inside the encryption. Runs
   * after node-saml has verified the response signature, so only authenticated ciphertext is
   * decrypted (a second time: node-saml does not hand out the decrypted assertion with its signature).
   */
  private inspectDecrypted(envelope: ResponseEnvelope): void {
    const encrypted = childElements(envelope.document.documentElement as Element, NS.assertion, 'EncryptedAssertion')[0]!;
    let plaintext: string;
    try {
      // AES-CBC is what NIA sends; here it is authenticated by the verified response signature.
      plaintext = decryptAssertion(encrypted, this.keys.samlEncryption.privateKey);
    } catch (err) {
      throw new UpstreamRejected('decryption_failed', 'invalid_response', envelope.requestId, (err as Error).message);
    }
    inspectDecryptedAssertion(plaintext, envelope.requestId);
  }

  serviceProviderMetadata(): string {
    return new SAML(this.serviceProviderConfig()).generateServiceProviderMetadata(
      certificateBody(this.keys.samlEncryption.certificatePem),
      certificateBody(this.keys.samlSigning.certificatePem),
    );
  }
}
