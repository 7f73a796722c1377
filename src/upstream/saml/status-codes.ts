import type { UpstreamOutward } from '../contract.ts';

/**
 * The status codes of SAML 2.0 core (3.2.2.2), the only ones that reach the assertion log by name:
 * anything else an identity provider (or anyone posting to the ACS) writes there becomes
 * `status_other`, so the log and the statistics hold a closed set of reasons.
 */
const KNOWN_STATUS_CODES = new Set([
  'Requester',
  'Responder',
  'VersionMismatch',
  'AuthnFailed',
  'InvalidAttrNameOrValue',
  'InvalidNameIDPolicy',
  'NoAuthnContext',
  'NoAvailableIDP',
  'NoPassive',
  'NoSupportedIDP',
  'PartialLogout',
  'ProxyCountExceeded',
  'RequestDenied',
  'RequestUnsupported',
  'RequestVersionDeprecated',
  'RequestVersionTooHigh',
  'RequestVersionTooLow',
  'ResourceNotRecognized',
  'TooManyResponses',
  'UnknownAttrProfile',
  'UnknownPrincipal',
  'UnsupportedBinding',
]);

const PREFIX = 'urn:oasis:names:tc:SAML:2.0:status:';

/**
 * What the citizen is told for a status: the citizen declined (RequestDenied), or the means cannot
 * reach the level of assurance requested (NoAuthnContext); any other status is a failed login.
 */
const OUTWARD: Readonly<Record<string, UpstreamOutward>> = { RequestDenied: 'cancelled', NoAuthnContext: 'loa_too_low' };

function known(code: string | undefined): string | undefined {
  if (!code?.startsWith(PREFIX)) return undefined;
  const name = code.slice(PREFIX.length);
  return KNOWN_STATUS_CODES.has(name) ? name : undefined;
}

/** The log reason of an error status (the more specific second-level code first), and what the citizen is told. */
export function statusReason(topLevel: string, secondLevel: string | undefined): { reason: string; outward: UpstreamOutward } {
  const name = known(secondLevel) ?? known(topLevel);
  return { reason: name ? `status_${name}` : 'status_other', outward: (name && OUTWARD[name]) || 'authn_failed' };
}
