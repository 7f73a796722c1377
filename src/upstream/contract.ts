import type { AttributeId } from '../domain/attributes.ts';
import type { Loa } from '../domain/loa.ts';
import type { IdentityMeans } from '../means/identity-means.ts';

/**
 * The contract between Brána and an identity means, after Dex's connector: the server owns all state,
 * the adapter only turns a login request into something the browser carries, and the answer into one
 * normalised identity. Optional capabilities (logout, metadata) are separate small interfaces.
 */
export interface UpstreamAdapter {
  readonly means: IdentityMeans;
  /** Builds the request for the identity means; the request is recorded before this returns. */
  startLogin(login: UpstreamLoginStart): Promise<BrowserHandoff>;
  /**
   * Checks an answer strictly (the SAML ACS form, or the OIDC callback's query); returns the identity
   * or throws UpstreamRejected.
   */
  handleResponse(body: Record<string, unknown>): Promise<UpstreamIdentity>;
}

export interface ServiceProviderMetadata {
  serviceProviderMetadata(): string;
}

export interface UpstreamLoginStart {
  interactionUid: string;
  sepId: string;
  /** The id of the SeP's request in the assertion log. */
  sepRequestId: string | null;
  minimumLoa: Loa;
  forceAuthn: boolean;
  spType: 'public' | 'private';
}

/** How the browser reaches the identity means (a redirect, or a form it posts), and our request's id. */
export type BrowserHandoff = ({ kind: 'redirect'; url: string } | { kind: 'post'; url: string; fields: Record<string, string> }) & {
  requestId: string;
};

/** One normalised upstream identity: what every adapter produces, whatever its protocol. */
export interface UpstreamIdentity {
  means: string;
  /** The issuer (entity id) whose signature was verified. */
  authority: string;
  /** The LoA the signed assertion states, already checked and capped by the means' maximum. */
  acr: Loa;
  instant: Date;
  /** The subject as the means names it (SAML NameID); not a national number. */
  subject: string;
  attributes: Partial<Record<AttributeId, string[]>>;
  /** SHA-256 of the raw message, for the assertion log. */
  messageHash: string;
  assertionId: string;
  assertionExpiresAt: Date;
  /** The id of our request this answers. */
  requestId: string;
}

/**
 * Why an answer was refused. `reason` is a stable code for the assertion log; the citizen sees one of
 * a few outward messages chosen by `outward`, never the detail.
 */
export class UpstreamRejected extends Error {
  readonly reason: string;
  readonly outward: 'invalid_response' | 'authn_failed' | 'cancelled' | 'loa_too_low' | 'unknown_request' | 'means_unavailable' | 'means_unreachable';
  readonly requestId: string | undefined;

  constructor(reason: string, outward: UpstreamRejected['outward'], requestId?: string, detail?: string) {
    super(detail ? `${reason}: ${detail}` : reason);
    this.name = 'UpstreamRejected';
    this.reason = reason;
    this.outward = outward;
    this.requestId = requestId;
  }
}
