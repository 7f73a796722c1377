import type { Request, Response } from 'express';
import type { ReleaseDecision } from '../consent/release-policy.ts';
import type { AttributeId } from '../domain/attributes.ts';
import type { Loa } from '../domain/loa.ts';
import type { Transaction } from '../store/database.ts';

/**
 * One citizen's login for one SeP, whatever protocol the SeP speaks: the part of the journey after
 * the protocol edge (means selection, hand-off, the answer, consent) sees only this. OIDC journeys
 * are oidc-provider's interactions (`oidc-journeys.ts`); SAML journeys are Brána's own
 * (`saml-idp/saml-journeys.ts`).
 */
export interface Journey {
  readonly uid: string;
  readonly protocol: 'oidc' | 'saml';
  readonly sepId: string;
  /** The id of the SeP's request in the assertion log. */
  readonly sepRequestId: string | null;
  /** What the journey waits for: the citizen to log in with a means, or to consent. */
  readonly stage: 'login' | 'consent' | 'other';
  /** The person the login resolved (at the consent stage). */
  readonly accountId: string | undefined;
  /** The SeP wants the means to authenticate anew (OIDC prompt=login or max_age; SAML ForceAuthn). */
  readonly forceAuthn: boolean;
  /** The SeP wants an answer without any page for the citizen (SAML IsPassive; OIDC prompt=none is oidc-provider's). */
  readonly passive: boolean;
  /** The means the SeP names to skip the selection (OIDC idp_hint). */
  readonly idpHint: string | undefined;
  /** The LoA this login needs: the SeP's registered minimum or what it asked for, the stricter. */
  minimumLoa(registered: Loa): Loa;
  /** What this request may release to a SeP registered for `allowed`. */
  releaseDecision(allowed: readonly AttributeId[]): ReleaseDecision;
}

/** How a journey ends a stage; the frontend turns it into its protocol's answer. */
export type JourneyResult =
  /** The identity means answered and the person is known: on to consent. */
  | { kind: 'login'; accountId: string; acr: Loa; means: string; authnInstant: number }
  /** The citizen consented (or nothing needed consent): release `decision.consentable`. */
  | { kind: 'consent'; decision: ReleaseDecision; grantId: string | null }
  /** The citizen refused consent or gave up: the SeP learns no more than that. */
  | { kind: 'denied'; reason: 'consent_refused' | 'cancelled' | 'passive_impossible'; description: string };

/** The journey a URL names is not (or no longer) this browser's. */
export class JourneyGone extends Error {}

/** One protocol's side of the journey: finds a browser's journey and answers the SeP at its end. */
export interface JourneyFrontend {
  /** The journey `uid` names, if this browser is in it; JourneyGone otherwise. */
  details(req: Request, res: Response, uid: string): Promise<Journey>;
  /** Records what the citizen consented to where the protocol needs it (an OIDC grant); its id, or null. */
  saveGrant(journey: Journey, accountId: string, decision: ReleaseDecision): Promise<string | null>;
  /**
   * At the login stage, before the selection page: continues the journey from the browser's Brána
   * session if the protocol leaves that to Brána (SAML; oidc-provider decides it for OIDC before the
   * journey exists). True when it answered the browser.
   */
  continueFromSession?(req: Request, res: Response, journey: Journey, qualifying: readonly string[], minimum: Loa): Promise<boolean>;
  /** Ends the stage: the browser goes on (to consent, to the SeP) with this result. */
  finish(req: Request, res: Response, journey: Journey, result: JourneyResult): Promise<void>;
  /**
   * Ends the login stage where the identity means' answer arrives, without the browser's cookies
   * (the answer comes cross-site): the result is stored on the journey `uid`, to be taken up only by
   * the browser that holds the journey's own resume cookie. Read before the answer's transaction:
   * the journey `uid` if it still waits for a login, as the step that stores the result in that
   * transaction (with the answer's consumption and records: all or nothing); undefined when it
   * does not wait for a login any more (the browser then goes to its interaction, where its cookies
   * decide, as before). Optional: a frontend without it always takes that way.
   */
  awaitingAnswer?(uid: string): Promise<AnswerFinish | undefined>;
}

/** Stores an accepted answer's login result on its journey, in the answer's transaction. */
export interface AnswerFinish {
  /** Writes `result` in `trx`; the URL to send the browser to, or undefined if the journey expired meanwhile. */
  finish(result: LoginResult, trx: Transaction): Promise<string | undefined>;
}

/** A login stage's result: the person an accepted answer resolved. */
export type LoginResult = Extract<JourneyResult, { kind: 'login' }>;

/** The frontend of a journey, by its uid: SAML journeys' uids begin with `saml-`, every other is OIDC's. */
export class JourneyFrontends {
  private readonly oidc: JourneyFrontend;
  private readonly saml: JourneyFrontend | undefined;

  constructor(oidc: JourneyFrontend, saml?: JourneyFrontend) {
    this.oidc = oidc;
    this.saml = saml;
  }

  of(uid: string): JourneyFrontend {
    if (uid.startsWith(SAML_JOURNEY_PREFIX)) {
      if (!this.saml) throw new JourneyGone();
      return this.saml;
    }
    return this.oidc;
  }
}

export const SAML_JOURNEY_PREFIX = 'saml-';
