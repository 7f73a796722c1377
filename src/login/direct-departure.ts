import type { AuditRecord } from '../audit/assertion-log.ts';
import type { IdentityMeans } from '../means/identity-means.ts';
import type { SepStore } from '../sep/sep-store.ts';
import type { Transaction } from '../store/database.ts';
import type { IdentityMeansRegistry } from '../upstream/identity-means-registry.ts';
import type { Journey } from './journey.ts';
import type { UpstreamHandoff } from './upstream-handoff.ts';

/**
 * The means a journey goes to without the selection page: the one the SeP named (OIDC idp_hint), if
 * it qualifies, or the only one that qualifies. Undefined when the citizen has to choose.
 */
export function straightTo(journey: Journey, candidates: readonly IdentityMeans[]): IdentityMeans | undefined {
  const hinted = journey.idpHint === undefined ? undefined : candidates.find((means) => means.id === journey.idpHint);
  if (hinted) return hinted;
  return candidates.length === 1 ? candidates[0] : undefined;
}

export interface DirectDepartureDependencies {
  seps: SepStore;
  registry: IdentityMeansRegistry;
  handoff: UpstreamHandoff;
}

/**
 * A login that goes straight to a means leaves at the SeP's own request: the authorization request
 * hands it to the means (its request row and `request_sent_upstream` record, exactly as the
 * interaction page would write them) and the browser is sent to the means at once, without first
 * loading the interaction page only to be redirected again. Only a hand-off by redirect leaves this
 * way; anything else — a choice to make, a means stopped, a hand-off by form post, a SeP no longer
 * active — is left to the interaction page, which then does it with nothing written here.
 */
export class DirectDeparture {
  private readonly deps: DirectDepartureDependencies;

  constructor(deps: DirectDepartureDependencies) {
    this.deps = deps;
  }

  /**
   * Where to send the browser of a journey that has just begun; undefined: to its interaction page.
   * `along`: the request's own records, written with the hand-off's when it hands off (else not at all);
   * `writesAlong`: the request's own writes (its interaction), likewise in the hand-off's transaction.
   */
  async redirectFor(journey: Journey, along: AuditRecord[] = [], writesAlong?: (trx: Transaction) => Promise<void>): Promise<string | undefined> {
    if (journey.stage !== 'login') return undefined;
    const { deps } = this;
    const sep = await deps.seps.find(journey.sepId);
    if (!sep || sep.status !== 'active') return undefined;
    const minimum = journey.minimumLoa(sep.minimumLoa);
    const means = straightTo(journey, deps.registry.qualifying(minimum, sep));
    if (!means) return undefined;
    const outcome = await deps.handoff.start(
      { interactionUid: journey.uid, sepId: sep.clientId, sepRequestId: journey.sepRequestId, spType: sep.spType, minimumLoa: minimum, forceAuthn: journey.forceAuthn, means },
      { onlyByRedirect: true, along, ...(writesAlong ? { writesAlong } : {}) },
    );
    return outcome.kind === 'handoff' && outcome.handoff.kind === 'redirect' ? outcome.handoff.url : undefined;
  }
}
