/** A SAML status: the top-level code and the second-level one that says why (SAML Core §3.2.2.2). */
export interface SamlStatus {
  code: string;
  second: string | null;
}

const STATUS_PREFIX = 'urn:oasis:names:tc:SAML:2.0:status:';
const status = (code: string, second: string | null): SamlStatus => ({ code: STATUS_PREFIX + code, second: second === null ? null : STATUS_PREFIX + second });

/** The statuses Brána answers SePs with, as NIA's profile names them (never NIA's Success-with-failure quirk). */
export const STATUS = {
  success: status('Success', null),
  /** The request was refused: not signed, not verifiable, not allowed. */
  requestDenied: status('Requester', 'RequestDenied'),
  invalidNameIdPolicy: status('Requester', 'InvalidNameIDPolicy'),
  /** The LoA asked for cannot be met, or is asked for in a way Brána does not understand. */
  noAuthnContext: status('Responder', 'NoAuthnContext'),
  /** IsPassive: Brána cannot log anybody in without showing them a page. */
  noPassive: status('Responder', 'NoPassive'),
  /** The citizen did not log in (gave up, or the means failed). */
  authnFailed: status('Responder', 'AuthnFailed'),
  /** The citizen refused to release the data. */
  consentRefused: status('Responder', 'RequestDenied'),
} as const;
