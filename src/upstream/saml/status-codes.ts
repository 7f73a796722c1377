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

function known(code: string | undefined): string | undefined {
  if (!code?.startsWith(PREFIX)) return undefined;
  const name = code.slice(PREFIX.length);
  return KNOWN_STATUS_CODES.has(name) ? name : undefined;
}

/** The log reason of an error status (the more specific second-level code first), and whether the citizen declined. */
export function statusReason(topLevel: string, secondLevel: string | undefined): { reason: string; cancelled: boolean } {
  const name = known(secondLevel) ?? known(topLevel);
  return { reason: name ? `status_${name}` : 'status_other', cancelled: name === 'RequestDenied' };
}
