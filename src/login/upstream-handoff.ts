import type { AssertionLog, AuditRecord } from '../audit/assertion-log.ts';
import { meansSelectionFailed, requestSentUpstream } from '../audit/audit-events.ts';
import type { Loa } from '../domain/loa.ts';
import type { IdentityMeans } from '../means/identity-means.ts';
import type { BrokerMetrics } from '../metrics/broker-metrics.ts';
import type { Database, Transaction } from '../store/database.ts';
import type { BrowserHandoff } from '../upstream/contract.ts';
import type { IdentityMeansRegistry } from '../upstream/identity-means-registry.ts';
import { MetadataUnavailable } from '../upstream/metadata/metadata-source.ts';
import type { UpstreamRequestStore } from '../upstream/upstream-request-store.ts';

export interface UpstreamHandoffDependencies {
  registry: IdentityMeansRegistry;
  requests: UpstreamRequestStore;
  log: AssertionLog;
  db: Database;
  metrics: BrokerMetrics;
}

/** One login about to leave for an identity means. */
export interface LoginLeaving {
  interactionUid: string;
  sepId: string;
  /** The id of the SeP's request in the assertion log. */
  sepRequestId: string | null;
  spType: 'public' | 'private';
  minimumLoa: Loa;
  forceAuthn: boolean;
  means: IdentityMeans;
}

export type HandoffOutcome = { kind: 'handoff'; handoff: BrowserHandoff } | { kind: 'unavailable' } | { kind: 'declined' };

export interface HandoffOptions {
  /**
   * Hand off only by redirect, and only to a means that is available: otherwise nothing is recorded
   * or logged and the outcome is `declined` (the interaction page then hands off, or says why not).
   */
  onlyByRedirect?: boolean;
  /**
   * Records of the same request that precede the hand-off's own (the authorization request's
   * `request_received`): written with it, in its transaction and its one log statement.
   */
  along?: AuditRecord[];
  /**
   * Writes of the same request that the hand-off's commit carries too (oidc-provider's interaction,
   * held by the authorization request): made first in its transaction, so that the login and its
   * hand-off are stored together or not at all, with one commit.
   */
  writesAlong?: (trx: Transaction) => Promise<void>;
}

/**
 * Sending a login to an identity means: the adapter writes the request, and the server records it
 * (the request the answer must match) together with its log record, in one transaction, before the
 * browser is handed over. A means whose metadata is not current is refused, and that is logged too.
 */
export class UpstreamHandoff {
  private readonly deps: UpstreamHandoffDependencies;

  constructor(deps: UpstreamHandoffDependencies) {
    this.deps = deps;
  }

  async start(login: LoginLeaving, options: HandoffOptions = {}): Promise<HandoffOutcome> {
    const { deps } = this;
    const entry = deps.registry.get(login.means.id);
    if (!entry || !deps.registry.available(login.means.id)) return options.onlyByRedirect ? { kind: 'declined' } : this.unavailable(login);
    const timed = deps.metrics.time('upstream_request', login.means.id);
    let handoff: BrowserHandoff;
    try {
      handoff = await entry.adapter.startLogin({ minimumLoa: login.minimumLoa, forceAuthn: login.forceAuthn, spType: login.spType });
    } catch (err) {
      if (!(err instanceof MetadataUnavailable)) throw err;
      return options.onlyByRedirect ? { kind: 'declined' } : this.unavailable(login);
    }
    // The request made, but not to be sent this way: it is forgotten, never recorded.
    if (options.onlyByRedirect && handoff.kind !== 'redirect') return { kind: 'declined' };
    await deps.db.transaction(async (trx) => {
      await options.writesAlong?.(trx);
      await deps.requests.record(
        {
          requestId: handoff.requestId,
          means: login.means.id,
          interactionUid: login.interactionUid,
          sepId: login.sepId,
          sepRequestId: login.sepRequestId,
          minimumLoa: login.minimumLoa,
          forceAuthn: login.forceAuthn,
        },
        trx,
      );
      await deps.log.appendMany(
        [
          ...(options.along ?? []),
          requestSentUpstream({
            sepId: login.sepId,
            requestId: login.sepRequestId,
            means: login.means.id,
            loa: login.minimumLoa,
            upstreamRequestId: handoff.requestId,
            forceAuthn: login.forceAuthn,
          }),
        ],
        trx,
      );
    });
    timed();
    return { kind: 'handoff', handoff };
  }

  /** The means is stopped (its metadata expired or cannot be loaded). */
  private async unavailable(login: LoginLeaving): Promise<HandoffOutcome> {
    await this.deps.log.append(meansSelectionFailed({ sepId: login.sepId, requestId: login.sepRequestId, means: login.means.id, reason: 'means_metadata_unavailable' }));
    return { kind: 'unavailable' };
  }
}
