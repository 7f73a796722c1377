import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';
import type { AssertionLog } from '../audit/assertion-log.ts';
import { consentGiven, consentRefused, loginCancelled } from '../audit/audit-events.ts';
import { requestIdOf } from '../audit/request-id.ts';
import type { ConsentStore } from '../consent/consent-store.ts';
import { releaseDecision } from '../consent/release-policy.ts';
import { loaUri } from '../domain/loa.ts';
import type { ErrorCode } from '../pages/i18n.ts';
import { buildGrant } from '../oidc/grants.ts';
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

/** The interaction a login is in, as oidc-provider describes it. */
export type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;

/** How consent came to be given: asked now, remembered, or not needed (nothing to release). */
export type ConsentKind = 'one-time' | 'permanent' | 'not-required';

/**
 * The end of a login, as results for oidc-provider to resume with: the person an accepted answer
 * resolved, the grant of exactly what the citizen consented to (with its log record and, if asked,
 * the permanent consent in one transaction), or the SeP's `access_denied` when the citizen refused
 * or gave up.
 */
export class LoginCompletion {
  private readonly deps: LoginCompletionDependencies;

  constructor(deps: LoginCompletionDependencies) {
    this.deps = deps;
  }

  /** The login an accepted answer brings to this interaction; undefined if there is none (or it was taken up). */
  async afterAnswer(interaction: Interaction, requestId: string): Promise<InteractionResults | undefined> {
    const answer = await this.deps.requests.successfulAnswerFor(interaction.uid, requestId);
    if (interaction.prompt.name !== 'login' || !answer?.personId || !answer.acr) return undefined;
    return {
      login: {
        accountId: answer.personId,
        acr: loaUri(answer.acr),
        amr: [answer.means],
        ts: Math.floor((answer.authnInstant ?? Date.now()) / 1000),
        remember: false,
      },
    };
  }

  /** The grant of what may be released (asked ∩ allowed ∩ consented), saved and logged. */
  async grant(provider: Provider, interaction: Interaction, sep: Sep, accountId: string, kind: ConsentKind, permanent: boolean): Promise<InteractionResults> {
    const { deps } = this;
    const decision = releaseDecision(interaction.params, sep.allowedAttributes);
    const grantId = await buildGrant(provider, accountId, sep.clientId, decision, interaction.params.scope).save();
    await deps.db.transaction(async (trx) => {
      if (permanent) await deps.consents.grantPermanent(accountId, sep.clientId, decision.consentable, trx);
      await deps.log.append(
        consentGiven({
          sepId: sep.clientId,
          requestId: requestIdOf(interaction.params.code_challenge),
          pseudonym: deps.pseudonyms.forGroup(accountId, sep.group),
          kind: permanent ? 'permanent' : kind,
          attributes: decision.consentable,
          refusedBySepRegistration: decision.refused,
          grantId,
        }),
        trx,
      );
    });
    return { consent: { grantId } };
  }

  /** The citizen refused to release the data: the SeP gets access_denied. */
  async refuseConsent(interaction: Interaction, sep: Sep, accountId: string): Promise<InteractionResults> {
    await this.deps.log.append(
      consentRefused({
        sepId: sep.clientId,
        requestId: requestIdOf(interaction.params.code_challenge),
        pseudonym: this.deps.pseudonyms.forGroup(accountId, sep.group),
        attributes: releaseDecision(interaction.params, sep.allowedAttributes).consentable,
      }),
    );
    return { error: 'access_denied', error_description: 'The citizen refused to release the requested data' };
  }

  /** The citizen gave up (on an error page, or at the selection): the SeP learns no more than the error's code. */
  async abandon(interaction: Interaction, after: ErrorCode | null): Promise<InteractionResults> {
    await this.deps.log.append(loginCancelled({ sepId: String(interaction.params.client_id), requestId: requestIdOf(interaction.params.code_challenge), after }));
    const description = after ? `The citizen gave up the login after the identity means failed (${after})` : 'The citizen cancelled the login';
    return { error: 'access_denied', error_description: description };
  }
}
