import type { AssertionLog } from '../audit/assertion-log.ts';
import { consentGiven, consentRefused, loginCancelled } from '../audit/audit-events.ts';
import type { ConsentStore } from '../consent/consent-store.ts';
import type { ErrorCode } from '../pages/i18n.ts';
import type { Journey, JourneyFrontend, JourneyResult } from './journey.ts';
import type { Pseudonyms } from '../pseudonym/pseudonym.ts';
import type { Sep } from '../sep/sep.ts';
import type { Database } from '../store/database.ts';
import type { UpstreamRequestStore } from '../upstream/upstream-request-store.ts';

export interface LoginCompletionDependencies {
  requests: UpstreamRequestStore;
  consents: ConsentStore;
  log: AssertionLog;
  pseudonyms: Pseudonyms;
  db: Database;
}

/** How consent came to be given: asked now, remembered, or not needed (nothing to release). */
export type ConsentKind = 'one-time' | 'permanent' | 'not-required';

/**
 * The end of a login, whatever the SeP's protocol: the person an accepted answer resolved, the grant
 * of exactly what the citizen consented to (with its log record and, if asked, the permanent consent
 * in one transaction), or the SeP's refusal when the citizen refused or gave up. The journey's
 * frontend turns each result into its protocol's answer.
 */
export class LoginCompletion {
  private readonly deps: LoginCompletionDependencies;

  constructor(deps: LoginCompletionDependencies) {
    this.deps = deps;
  }

  /** The login an accepted answer brings to this journey; undefined if there is none (or it was taken up). */
  async afterAnswer(journey: Journey, requestId: string): Promise<JourneyResult | undefined> {
    const answer = await this.deps.requests.successfulAnswerFor(journey.uid, requestId);
    if (journey.stage !== 'login' || !answer?.personId || !answer.acr) return undefined;
    return { kind: 'login', accountId: answer.personId, acr: answer.acr, means: answer.means, authnInstant: answer.authnInstant ?? Date.now() };
  }

  /** The grant of what may be released (asked ∩ allowed ∩ consented), saved and logged. */
  async grant(frontend: JourneyFrontend, journey: Journey, sep: Sep, accountId: string, kind: ConsentKind, permanent: boolean): Promise<JourneyResult> {
    const { deps } = this;
    const decision = journey.releaseDecision(sep.allowedAttributes);
    const grantId = await frontend.saveGrant(journey, accountId, decision);
    await deps.db.transaction(async (trx) => {
      if (permanent) await deps.consents.grantPermanent(accountId, sep.clientId, decision.consentable, trx);
      await deps.log.append(
        consentGiven({
          sepId: sep.clientId,
          requestId: journey.sepRequestId,
          pseudonym: deps.pseudonyms.forGroup(accountId, sep.group),
          kind: permanent ? 'permanent' : kind,
          attributes: decision.consentable,
          refusedBySepRegistration: decision.refused,
          grantId,
        }),
        trx,
      );
    });
    return { kind: 'consent', decision, grantId };
  }

  /** The citizen refused to release the data: the SeP gets access_denied (SAML: RequestDenied). */
  async refuseConsent(journey: Journey, sep: Sep, accountId: string): Promise<JourneyResult> {
    await this.deps.log.append(
      consentRefused({
        sepId: sep.clientId,
        requestId: journey.sepRequestId,
        pseudonym: this.deps.pseudonyms.forGroup(accountId, sep.group),
        attributes: journey.releaseDecision(sep.allowedAttributes).consentable,
      }),
    );
    return { kind: 'denied', reason: 'consent_refused', description: 'The citizen refused to release the requested data' };
  }

  /** The citizen gave up (on an error page, or at the selection): the SeP learns no more than the error's code. */
  async abandon(journey: Journey, after: ErrorCode | null): Promise<JourneyResult> {
    await this.deps.log.append(loginCancelled({ sepId: journey.sepId, requestId: journey.sepRequestId, after }));
    const description = after ? `The citizen gave up the login after the identity means failed (${after})` : 'The citizen cancelled the login';
    return { kind: 'denied', reason: 'cancelled', description };
  }
}
