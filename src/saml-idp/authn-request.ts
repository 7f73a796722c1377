import type { Element } from '@xmldom/xmldom';
import { attributeOfSamlName, type AttributeId } from '../domain/attributes.ts';
import { loaFromUri, weakestLoa, type Loa } from '../domain/loa.ts';
import type { AssertionConsumerService, SamlSepRecord } from '../sep/saml-service-provider.ts';
import type { Sep } from '../sep/sep.ts';
import { CLOCK_SKEW_MS } from '../upstream/contract.ts';
import { NS, XmlRejected, attributeOf, childElements, singleChild, textOf } from '../upstream/saml/xml.ts';
import { defaultAssertionConsumerService } from './sp-metadata.ts';
import { STATUS, type SamlStatus } from './saml-status.ts';
import { BindingRefused, MAX_RELAY_STATE_LENGTH, envelopeOf, verifiedRoot, type Envelope, type SamlMessageInput } from './saml-bindings.ts';

/** How old an AuthnRequest may be; its id is remembered longer than this, so a replay is always caught. */
export const MAX_REQUEST_AGE_MS = 10 * 60_000;
const MAX_REQUESTED_ATTRIBUTES = 40;

const NAMEID_PERSISTENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent';
const NAMEID_TRANSIENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient';
const NAMEID_UNSPECIFIED = 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified';
const ATTRNAME_URI = 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri';

/** An attribute the SeP asked for in `eidas:RequestedAttributes`. */
export interface RequestedAttribute {
  id: AttributeId;
  required: boolean;
  /** `eidas:AttributeValue`s, e.g. the age for isAgeOver. */
  values: string[];
}

/** An AuthnRequest that passed every check, read only from what its signature covers. */
export interface SamlAuthnRequest {
  id: string;
  sep: Sep;
  serviceProvider: SamlSepRecord;
  acs: AssertionConsumerService;
  relayState: string | null;
  forceAuthn: boolean;
  isPassive: boolean;
  /** The LoA asked for (RequestedAuthnContext, minimum); null when none. */
  requestedLoa: Loa | null;
  nameIdFormat: 'persistent' | 'transient';
  requestedAttributes: RequestedAttribute[];
  binding: 'redirect' | 'post';
}

/**
 * A refused AuthnRequest. `reason` is one of a closed set, for the log. `respondTo` is set only when
 * the SeP is known and active and the ACS is one of its registered ones: Brána then answers it with a
 * signed error Response there; otherwise the citizen gets a page, and nothing goes anywhere.
 */
export class AuthnRequestRefused extends Error {
  readonly reason: string;
  readonly status: SamlStatus;
  readonly respondTo: { sep: Sep; serviceProvider: SamlSepRecord; acs: AssertionConsumerService; requestId: string | null; relayState: string | null } | null;

  constructor(reason: string, status: SamlStatus, respondTo: AuthnRequestRefused['respondTo'] = null) {
    super(reason);
    this.reason = reason;
    this.status = status;
    this.respondTo = respondTo;
  }
}

/** The SeP an Issuer names, if it is a registered SAML SeP (any status: the caller decides). */
export type SamlSepLookup = (entityId: string) => Promise<{ sep: Sep; serviceProvider: SamlSepRecord } | undefined>;

export interface AuthnRequestContext {
  findSep: SamlSepLookup;
  /** Brána's SSO URL: a Destination must name it. */
  ssoUrl: string;
  /** The SeP environment this instance serves. */
  environment: Sep['environment'];
  now?: number;
}

/** What the browser brought: the Redirect binding's raw query, or the POST binding's form. */
export type AuthnRequestInput = SamlMessageInput;

const refused = (reason: string, status: SamlStatus = STATUS.requestDenied) => new AuthnRequestRefused(reason, status);

/** The ACS a request asks for, only ever one the SeP registered (by index, or its exact URL). */
function chooseAcs(root: Element, serviceProvider: SamlSepRecord): AssertionConsumerService | null {
  const services = serviceProvider.serviceProvider.assertionConsumerServices;
  const index = attributeOf(root, 'AssertionConsumerServiceIndex');
  const url = attributeOf(root, 'AssertionConsumerServiceURL');
  const binding = attributeOf(root, 'ProtocolBinding');
  if (index !== undefined && url !== undefined) return null; // SAML Core §3.4.1: mutually exclusive
  if (binding !== undefined && binding !== 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST') return null;
  if (index !== undefined) return /^\d{1,5}$/.test(index) ? (services.find((service) => service.index === Number(index)) ?? null) : null;
  if (url !== undefined) return services.find((service) => service.url === url) ?? null;
  return defaultAssertionConsumerService(serviceProvider.serviceProvider);
}

/** The requested LoA: RequestedAuthnContext with `minimum` (or `exact`) and eIDAS URIs; anything else is NoAuthnContext. */
function requestedLoaOf(root: Element): Loa | null {
  const context = singleChild(root, NS.protocol, 'RequestedAuthnContext');
  if (!context) return null;
  const comparison = attributeOf(context, 'Comparison') ?? 'exact';
  // `exact` is what many SP libraries send by default; Brána treats it as the minimum it must reach.
  if (comparison !== 'minimum' && comparison !== 'exact') throw refused('authn_context_comparison_refused', STATUS.noAuthnContext);
  if (childElements(context, NS.assertion, 'AuthnContextDeclRef').length) throw refused('authn_context_unsupported', STATUS.noAuthnContext);
  const levels = childElements(context, NS.assertion, 'AuthnContextClassRef').map((element) => loaFromUri(textOf(element).trim()));
  if (!levels.length || levels.some((level) => level === undefined)) throw refused('authn_context_unsupported', STATUS.noAuthnContext);
  return (levels as Loa[]).reduce(weakestLoa);
}

function nameIdFormatOf(root: Element): 'persistent' | 'transient' {
  const policy = singleChild(root, NS.protocol, 'NameIDPolicy');
  const format = policy ? attributeOf(policy, 'Format') : undefined;
  if (format === undefined || format === NAMEID_PERSISTENT || format === NAMEID_UNSPECIFIED) return 'persistent';
  if (format === NAMEID_TRANSIENT) return 'transient';
  throw refused('nameid_format_refused', STATUS.invalidNameIdPolicy);
}

/** eidas:SPType must agree with the registration; eidas:RequestedAttributes become attribute ids. */
function extensionsOf(root: Element, sep: Sep): RequestedAttribute[] {
  const extensions = singleChild(root, NS.protocol, 'Extensions');
  if (!extensions) return [];
  const spType = singleChild(extensions, NS.eidas, 'SPType');
  if (spType && textOf(spType).trim() !== sep.spType) throw refused('sp_type_mismatch');
  const list = singleChild(extensions, NS.eidas, 'RequestedAttributes');
  if (!list) return [];
  const elements = childElements(list, NS.eidas, 'RequestedAttribute');
  if (elements.length > MAX_REQUESTED_ATTRIBUTES) throw refused('too_many_attributes');
  const requested: RequestedAttribute[] = [];
  for (const element of elements) {
    const name = attributeOf(element, 'Name') ?? '';
    const nameFormat = attributeOf(element, 'NameFormat');
    const required = attributeOf(element, 'isRequired') === 'true';
    const id = nameFormat === undefined || nameFormat === ATTRNAME_URI ? attributeOfSamlName(name) : undefined;
    if (!id) {
      // An attribute Brána does not know cannot be given: a SeP that requires it is told so.
      if (required) throw refused('attribute_unknown');
      continue;
    }
    // Never beyond the registration: a required attribute the SeP may not have ends the request.
    if (!sep.allowedAttributes.includes(id) && id !== 'PersonIdentifier') {
      if (required) throw refused('attribute_not_allowed');
    }
    if (requested.some((other) => other.id === id)) continue;
    // eIDAS writes eidas:AttributeValue; some SP libraries (pysaml2) saml:AttributeValue.
    const values = [...childElements(element, NS.eidas, 'AttributeValue'), ...childElements(element, NS.assertion, 'AttributeValue')].map((value) => textOf(value).trim()).slice(0, 5);
    requested.push({ id, required, values });
  }
  return requested;
}

/**
 * Reads an AuthnRequest strictly: bounded and inflated with a bound, strict XML (no DOCTYPE), an
 * Issuer that is an active SAML SeP of this environment, an ACS from its metadata, a valid signature
 * by one of its registered certificates (the query signature on the Redirect binding, an enveloped
 * one on POST — whose signed bytes alone are read from then on), fresh, addressed to Brána, and
 * asking only for what Brána can do. Each refusal has one reason.
 */
export async function readAuthnRequest(input: AuthnRequestInput, context: AuthnRequestContext): Promise<SamlAuthnRequest> {
  const now = context.now ?? Date.now();
  let envelope: Envelope;
  try {
    envelope = envelopeOf(input);
  } catch (err) {
    if (err instanceof BindingRefused) throw refused(err.reason);
    throw err;
  }
  const outer = envelope.document.documentElement as Element;
  if (outer.namespaceURI !== NS.protocol || outer.localName !== 'AuthnRequest') throw refused('not_an_authn_request');
  if (envelope.relayState !== null && envelope.relayState.length > MAX_RELAY_STATE_LENGTH) throw refused('relay_state_too_long');
  let issuerElement: Element | undefined;
  try {
    issuerElement = singleChild(outer, NS.assertion, 'Issuer');
  } catch {
    throw refused('request_malformed');
  }
  const issuer = issuerElement ? textOf(issuerElement).trim() : '';
  if (!issuer) throw refused('issuer_missing');
  const found = await context.findSep(issuer);
  if (!found || found.sep.status !== 'active' || found.sep.environment !== context.environment || found.sep.protocol !== 'saml') throw refused('unknown_issuer');
  const acs = chooseAcs(outer, found.serviceProvider);
  if (!acs) throw refused('acs_not_registered');
  // From here on the SeP and where to answer it are known: a refusal is a signed error Response there.
  const outerId = attributeOf(outer, 'ID') ?? null;
  const answer = (reason: string, status: SamlStatus = STATUS.requestDenied) =>
    new AuthnRequestRefused(reason, status, { sep: found.sep, serviceProvider: found.serviceProvider, acs, requestId: outerId && outerId.length <= 256 ? outerId : null, relayState: envelope.relayState });
  const certificates = found.serviceProvider.serviceProvider.signingCertificates;

  let root: Element;
  try {
    root = verifiedRoot(input.binding, envelope, certificates, 'AuthnRequest', issuer);
  } catch (err) {
    if (err instanceof BindingRefused) throw answer(err.reason);
    throw err;
  }
  // On POST the signed bytes must ask for the same ACS the unsigned outside named.
  if (chooseAcs(root, found.serviceProvider) !== acs) throw answer('signature_invalid');

  try {
    const id = attributeOf(root, 'ID') ?? '';
    if (!/^[A-Za-z_][\w.-]{0,255}$/.test(id) || root.getAttribute('Version') !== '2.0') throw answer('request_malformed');
    const issued = Date.parse(attributeOf(root, 'IssueInstant') ?? '');
    if (Number.isNaN(issued)) throw answer('request_malformed');
    if (issued > now + CLOCK_SKEW_MS || issued < now - MAX_REQUEST_AGE_MS - CLOCK_SKEW_MS) throw answer('request_expired');
    const destination = attributeOf(root, 'Destination');
    // Required on a signed request by SAML Bindings §3.4.5.2 / §3.5.5.2 when signed; checked whenever present.
    if (destination !== undefined && destination !== context.ssoUrl) throw answer('destination_mismatch');
    const requestedLoa = requestedLoaOf(root);
    const nameIdFormat = nameIdFormatOf(root);
    const requestedAttributes = extensionsOf(root, found.sep);
    return {
      id,
      sep: found.sep,
      serviceProvider: found.serviceProvider,
      acs,
      relayState: envelope.relayState,
      forceAuthn: attributeOf(root, 'ForceAuthn') === 'true',
      isPassive: attributeOf(root, 'IsPassive') === 'true',
      requestedLoa,
      nameIdFormat,
      requestedAttributes,
      binding: input.binding,
    };
  } catch (err) {
    if (err instanceof AuthnRequestRefused) throw err.respondTo ? err : answer(err.reason, err.status);
    if (err instanceof XmlRejected) throw answer('request_malformed');
    throw err;
  }
}
