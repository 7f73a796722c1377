import type { AttributeId } from '../domain/attributes.ts';
import type { Loa } from '../domain/loa.ts';
import type { IdentityMeans } from '../means/identity-means.ts';

/** Clock skew Brána tolerates between itself and an identity means, whatever its protocol. */
export const CLOCK_SKEW_MS = 30_000;

/**
 * The contract between Brána and an identity means, after Dex's connector: the server owns all state.
 * An adapter builds the request the browser carries (`startLogin`), says which request an answer
 * claims to answer (`correlate`: InResponseTo, `state`), and turns the answer plus the request the
 * server found into one normalised identity (`handleAnswer`). It holds no store: the server records
 * the request before the hand-off and consumes it when the answer is accepted.
 */
export interface UpstreamAdapter<Answer extends CorrelatedAnswer = CorrelatedAnswer> {
  readonly means: IdentityMeans;
  /** Builds the request for the identity means and names it; nothing is stored here. */
  startLogin(login: UpstreamLoginStart): Promise<BrowserHandoff>;
  /**
   * Reads just enough of an answer (the SAML ACS form, the OIDC callback's query) to name the request
   * it claims to answer; throws UpstreamRejected when it cannot. Nothing in it is trusted yet.
   */
  correlate(input: Record<string, unknown>): Answer;
  /**
   * Checks the answer strictly against the request the server recorded for it (outstanding, of this
   * means); returns the identity or throws UpstreamRejected with exactly one reason.
   */
  handleAnswer(answer: Answer, expected: ExpectedRequest): Promise<UpstreamIdentity>;
}

/** An answer whose claimed request is known, with whatever the adapter already parsed of it. */
export interface CorrelatedAnswer {
  requestId: string;
  /**
   * The reason a refusal carries when no outstanding request of this means has that id, in the
   * protocol's own words (SAML: `in_response_to_invalid`; OIDC: `unknown_request`).
   */
  readonly unknownRequestReason: string;
}

/** The request the server recorded before the hand-off, as far as checking its answer needs it. */
export interface ExpectedRequest {
  requestId: string;
  means: string;
  minimumLoa: Loa;
  forceAuthn: boolean;
  /** When the request was sent (ms): a forced authentication must be at least this fresh. */
  createdAt: number;
}

export interface ServiceProviderMetadata {
  serviceProviderMetadata(): string;
}

export interface UpstreamLoginStart {
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

/** What the citizen is told, whatever the detail: one of a few outward messages. */
export type UpstreamOutward = 'invalid_response' | 'authn_failed' | 'cancelled' | 'loa_too_low' | 'unknown_request' | 'means_unavailable' | 'means_unreachable';

/**
 * Why an answer was refused. `reason` is a stable code for the assertion log; the citizen sees one of
 * a few outward messages chosen by `outward`, never the detail (which goes to no log either: it may
 * carry what an attacker wrote).
 */
export class UpstreamRejected extends Error {
  readonly reason: string;
  readonly outward: UpstreamOutward;
  /** What exactly was found, for an operator (e.g. the refused algorithm); may quote the answer. */
  readonly detail: string | undefined;

  constructor(reason: string, outward: UpstreamOutward, detail?: string) {
    super(detail ? `${reason}: ${detail}` : reason);
    this.name = 'UpstreamRejected';
    this.reason = reason;
    this.outward = outward;
    this.detail = detail;
  }
}
