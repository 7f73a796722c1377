import type { Element } from '@xmldom/xmldom';
import { escapeXml } from '../domain/xml-escape.ts';
import type { KeyPairWithCertificate } from '../keys/certificate.ts';
import type { SamlSepRecord } from '../sep/saml-service-provider.ts';
import type { Sep } from '../sep/sep.ts';
import { CLOCK_SKEW_MS } from '../upstream/contract.ts';
import { NS, XmlRejected, attributeOf, singleChild, textOf } from '../upstream/saml/xml.ts';
import { BindingRefused, MAX_RELAY_STATE_LENGTH, envelopeOf, verifiedRoot, type SamlMessageInput } from './saml-bindings.ts';
import type { SamlSepLookup } from './authn-request.ts';
import type { SamlStatus } from './saml-status.ts';
import { samlId, samlInstant, signEnveloped } from './xml-signing.ts';

/** How old a LogoutRequest may be. */
const MAX_LOGOUT_AGE_MS = 10 * 60_000;

/** A LogoutRequest that passed every check, read only from signed bytes. */
export interface SamlLogoutRequest {
  id: string;
  sep: Sep;
  serviceProvider: SamlSepRecord;
  /** The SeP's SingleLogoutService from its metadata: the only place the LogoutResponse goes. */
  singleLogout: { url: string; binding: string };
  nameId: string;
  /** The SessionIndexes the SeP names (at most 4): which of its sessions at Brána it ends. */
  sessionIndexes: string[];
  relayState: string | null;
}

/** A refused LogoutRequest; `respondTo` only when the SeP is known and registered an SLO endpoint. */
export class LogoutRefused extends Error {
  readonly reason: string;
  readonly respondTo: { sep: Sep; serviceProvider: SamlSepRecord; singleLogout: { url: string; binding: string }; requestId: string | null; relayState: string | null } | null;

  constructor(reason: string, respondTo: LogoutRefused['respondTo'] = null) {
    super(reason);
    this.reason = reason;
    this.respondTo = respondTo;
  }
}

/**
 * Reads a SeP's LogoutRequest as strictly as an AuthnRequest: bounded, strict XML, an Issuer that is
 * an active SAML SeP with a SingleLogoutService in its metadata, signed (query or enveloped) by a
 * certificate of that metadata, fresh, addressed to Brána, naming the subject.
 */
export async function readLogoutRequest(input: SamlMessageInput, context: { findSep: SamlSepLookup; sloUrl: string; environment: Sep['environment']; now?: number }): Promise<SamlLogoutRequest> {
  const now = context.now ?? Date.now();
  let envelope;
  try {
    envelope = envelopeOf(input);
  } catch (err) {
    if (err instanceof BindingRefused) throw new LogoutRefused(err.reason);
    throw err;
  }
  const outer = envelope.document.documentElement as Element;
  if (outer.namespaceURI !== NS.protocol || outer.localName !== 'LogoutRequest') throw new LogoutRefused('not_a_logout_request');
  if (envelope.relayState !== null && envelope.relayState.length > MAX_RELAY_STATE_LENGTH) throw new LogoutRefused('relay_state_too_long');
  let issuer = '';
  try {
    const element = singleChild(outer, NS.assertion, 'Issuer');
    issuer = element ? textOf(element).trim() : '';
  } catch {
    throw new LogoutRefused('request_malformed');
  }
  const found = issuer ? await context.findSep(issuer) : undefined;
  if (!found || found.sep.status !== 'active' || found.sep.environment !== context.environment || found.sep.protocol !== 'saml') throw new LogoutRefused('unknown_issuer');
  const singleLogout = found.serviceProvider.serviceProvider.singleLogout;
  if (!singleLogout) throw new LogoutRefused('no_single_logout_service');
  const outerId = attributeOf(outer, 'ID') ?? null;
  const answer = (reason: string) => new LogoutRefused(reason, { sep: found.sep, serviceProvider: found.serviceProvider, singleLogout, requestId: outerId && outerId.length <= 256 ? outerId : null, relayState: envelope.relayState });
  const certificates = found.serviceProvider.serviceProvider.signingCertificates;

  let root: Element;
  try {
    root = verifiedRoot(input.binding, envelope, certificates, 'LogoutRequest', issuer);
  } catch (err) {
    if (err instanceof BindingRefused) throw answer(err.reason);
    throw err;
  }
  try {
    const id = attributeOf(root, 'ID') ?? '';
    if (!/^[A-Za-z_][\w.-]{0,255}$/.test(id) || root.getAttribute('Version') !== '2.0') throw answer('request_malformed');
    const issued = Date.parse(attributeOf(root, 'IssueInstant') ?? '');
    if (Number.isNaN(issued) || issued > now + CLOCK_SKEW_MS || issued < now - MAX_LOGOUT_AGE_MS - CLOCK_SKEW_MS) throw answer('request_expired');
    const destination = attributeOf(root, 'Destination');
    if (destination !== undefined && destination !== context.sloUrl) throw answer('destination_mismatch');
    const nameIdElement = singleChild(root, NS.assertion, 'NameID');
    const nameId = nameIdElement ? textOf(nameIdElement).trim() : '';
    if (!nameId || nameId.length > 256) throw answer('name_id_missing');
    const sessionIndexes = Array.from(root.getElementsByTagNameNS(NS.protocol, 'SessionIndex'))
      .filter((element) => element.parentNode === root)
      .map((element) => textOf(element).trim());
    if (sessionIndexes.length > 4 || sessionIndexes.some((index) => !index || index.length > 256)) throw answer('request_malformed');
    return { id, sep: found.sep, serviceProvider: found.serviceProvider, singleLogout, nameId, sessionIndexes, relayState: envelope.relayState };
  } catch (err) {
    if (err instanceof LogoutRefused) throw err;
    if (err instanceof XmlRejected) throw answer('request_malformed');
    throw err;
  }
}

/**
 * Whether a message on the SLO endpoint is a LogoutResponse: a SeP answering the LogoutRequest Brána
 * sent it when the citizen's session ended. Nothing depends on it (the session is gone already), so it
 * is only acknowledged; anything unreadable is not one.
 */
export function isLogoutResponse(input: SamlMessageInput): boolean {
  try {
    const root = envelopeOf(input, 'SAMLResponse').document.documentElement as Element;
    return root.namespaceURI === NS.protocol && root.localName === 'LogoutResponse';
  } catch (err) {
    if (err instanceof BindingRefused || err instanceof XmlRejected) return false;
    throw err;
  }
}

/** Brána's LogoutResponse to a SeP's SingleLogoutService (signed enveloped; on Redirect the query signature covers it instead). */
export function logoutResponseXml(address: { idpEntityId: string; destination: string; inResponseTo: string | null }, status: SamlStatus, signing: KeyPairWithCertificate | null, now = Date.now()): string {
  const id = samlId();
  const xml =
    `<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${id}" Version="2.0" IssueInstant="${samlInstant(now)}" Destination="${escapeXml(address.destination)}"${address.inResponseTo ? ` InResponseTo="${escapeXml(address.inResponseTo)}"` : ''}>` +
    `<saml:Issuer>${escapeXml(address.idpEntityId)}</saml:Issuer>` +
    `<samlp:Status><samlp:StatusCode Value="${status.code}">${status.second ? `<samlp:StatusCode Value="${status.second}"/>` : ''}</samlp:StatusCode></samlp:Status>` +
    `</samlp:LogoutResponse>`;
  return signing ? signEnveloped(xml, 'LogoutResponse', id, signing) : xml;
}
