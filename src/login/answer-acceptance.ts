import type { AssertionLog } from '../audit/assertion-log.ts';
import { identityResolved, responseReceived, upstreamResponseRefused } from '../audit/audit-events.ts';
import { newHelpDeskReference } from '../audit/help-desk-reference.ts';
import { loaAtLeast } from '../domain/loa.ts';
import { RegisterUnavailable } from '../identity/population-register.ts';
import { ResolutionFailed, type Identified, type IdentityResolution } from '../identity/resolution.ts';
import { logger } from '../log/logger.ts';
import type { BrokerMetrics } from '../metrics/broker-metrics.ts';
import type { ErrorCode } from '../pages/i18n.ts';
import type { Pseudonyms } from '../pseudonym/pseudonym.ts';
import type { SepStore } from '../sep/sep-store.ts';
import type { Database } from '../store/database.ts';
import { CLOCK_SKEW_MS, UpstreamRejected, type UpstreamIdentity } from '../upstream/contract.ts';
import type { IdentityMeansRegistry } from '../upstream/identity-means-registry.ts';
import type { UpstreamRequest, UpstreamRequestStore } from '../upstream/upstream-request-store.ts';

export interface AnswerAcceptanceDependencies {
  registry: IdentityMeansRegistry;
  requests: UpstreamRequestStore;
  resolution: IdentityResolution;
  seps: SepStore;
  log: AssertionLog;
  pseudonyms: Pseudonyms;
  db: Database;
  metrics: BrokerMetrics;
}

/** What became of an answer from an identity means. */
export type AnswerOutcome =
  /** Accepted: the browser goes on to its interaction, where its own cookies bind the result to it. */
  | { kind: 'accepted'; interactionUid: string; requestId: string }
  /**
   * Refused while its login can still go on: the citizen is shown the failure and the other means.
   * `reference`: the code in the refusal's log record, for the citizen to quote to the help desk.
   */
  | { kind: 'refused'; outward: ErrorCode; interactionUid: string; reference: string }
  /** Refused with no login to go back to (unknown, answered or foreign request, or unreadable). */
  | { kind: 'refused'; outward: ErrorCode; interactionUid: null; reference: string | null };

/**
 * Refusals whose explanation is Brána's own words, an algorithm or a context URI (never a fragment
 * of the message or a parser's quote of it, which could hold personal data): the log keeps it for
 * the operator, so that `signature_algorithm_refused` says which algorithm.
 */
const EXPLAINED_REASONS = new Set([
  'signature_algorithm_refused',
  'signature_malformed',
  'signature_invalid',
  'encryption_algorithm_refused',
  'encryption_malformed',
  'assertion_count',
  'subject_confirmation_invalid',
  'authn_statement_invalid',
  'loa_unmapped',
]);

/** A refusal after the adapter's checks: the answer was genuine but cannot complete this login. */
class LoginRefused extends Error {
  readonly reason: string;
  readonly outward: ErrorCode;

  constructor(reason: string, outward: ErrorCode) {
    super(reason);
    this.reason = reason;
    this.outward = outward;
  }
}

/**
 * Accepting an answer from an identity means, whatever its protocol: the adapter names the request
 * the answer claims to answer, the server finds it (outstanding, of this means), the adapter checks
 * the answer against it, and the server then checks what only it knows (the LoA and freshness the
 * request asked for), identifies the person in the register, and records the result in one
 * transaction with its log records. The register is asked before that transaction: a slow register
 * holds no lock. Every refusal writes exactly one log record, with a reason from a closed set.
 */
export class AnswerAcceptance {
  private readonly deps: AnswerAcceptanceDependencies;

  constructor(deps: AnswerAcceptanceDependencies) {
    this.deps = deps;
  }

  async receive(meansId: string, input: Record<string, unknown>): Promise<AnswerOutcome> {
    const { deps } = this;
    const entry = deps.registry.get(meansId);
    if (!entry) return { kind: 'refused', outward: 'not_found', interactionUid: null, reference: null };
    // Without current metadata no key of the means is trusted: nothing from it is even read.
    if (!deps.registry.available(meansId)) return this.refuse(meansId, 'metadata_unavailable', 'means_unavailable', undefined);
    let answer;
    try {
      answer = entry.adapter.correlate(input);
    } catch (err) {
      if (!(err instanceof UpstreamRejected)) throw err;
      return this.refuse(meansId, err.reason, err.outward, undefined);
    }
    const request = await deps.requests.find(answer.requestId);
    // A request never made, or made to another means (no IdP mix-up), is not ours to answer.
    if (!request || request.means !== meansId) return this.refuse(meansId, answer.unknownRequestReason, 'unknown_request', undefined);
    deps.metrics.observe('identity_means', meansId, (Date.now() - request.createdAt) / 1000);
    if (request.consumedAt !== null) return this.refuse(meansId, 'replayed_response', 'invalid_response', request);
    // Refused before anything is redeemed or decrypted: a late answer costs nothing.
    if (request.expiresAt <= Date.now()) return this.refuse(meansId, 'request_expired', 'unknown_request', request);

    let identity: UpstreamIdentity;
    let identified: Identified;
    try {
      identity = await entry.adapter.handleAnswer(answer, request);
      this.checkRequested(identity, request);
      identified = await this.identify(identity);
    } catch (err) {
      if (err instanceof UpstreamRejected) return this.refuse(meansId, err.reason, err.outward, request, err.detail);
      if (err instanceof LoginRefused) return this.refuse(meansId, err.reason, err.outward, request);
      throw err;
    }
    try {
      await this.record(identity, identified, request);
    } catch (err) {
      if (err instanceof LoginRefused) return this.refuse(meansId, err.reason, err.outward, request);
      throw err;
    }
    return { kind: 'accepted', interactionUid: request.interactionUid, requestId: request.requestId };
  }

  /** An answer whose form could not even be read (too large, compressed, another charset). */
  async refuseUnreadable(meansId: string, reason: 'response_too_large' | 'request_malformed'): Promise<AnswerOutcome> {
    return this.refuse(meansId, reason, 'invalid_response', undefined);
  }

  /** What the request asked for that the answer must meet: the LoA, and with ForceAuthn a fresh authentication. */
  private checkRequested(identity: UpstreamIdentity, request: UpstreamRequest): void {
    if (!loaAtLeast(identity.acr, request.minimumLoa)) throw new LoginRefused('loa_below_minimum', 'loa_too_low');
    // prompt=login / max_age: the means was asked to authenticate anew; an older authentication is not that.
    if (request.forceAuthn && identity.instant.getTime() < request.createdAt - CLOCK_SKEW_MS) throw new LoginRefused('authn_not_fresh', 'authn_failed');
  }

  private async identify(identity: UpstreamIdentity): Promise<Identified> {
    try {
      return await this.deps.resolution.identify(identity);
    } catch (err) {
      if (err instanceof ResolutionFailed) throw new LoginRefused(`resolution_${err.reason}`, 'not_identified');
      // The register service is down or answers nonsense: the answer was genuine, the citizen may try again shortly.
      if (err instanceof RegisterUnavailable) throw new LoginRefused('register_unavailable', 'register_unavailable');
      throw err;
    }
  }

  /** Consumes the request, remembers the assertion, records the person and the log records: all or nothing. */
  private async record(identity: UpstreamIdentity, identified: Identified, request: UpstreamRequest): Promise<void> {
    const { deps } = this;
    const sep = await deps.seps.find(request.sepId);
    await deps.db.transaction(async (trx) => {
      if (!(await deps.requests.consume(request.requestId, request.means, trx))) throw new LoginRefused('replayed_response', 'unknown_request');
      if (!(await deps.requests.rememberAssertion(identity.means, identity.assertionId, identity.assertionExpiresAt.getTime(), trx))) {
        throw new LoginRefused('replayed_assertion', 'invalid_response');
      }
      await deps.log.append(
        responseReceived({
          sepId: request.sepId,
          requestId: request.sepRequestId,
          means: identity.means,
          loa: identity.acr,
          upstreamRequestId: identity.requestId,
          assertionId: identity.assertionId,
          messageSha256: identity.messageHash,
          authority: identity.authority,
        }),
        trx,
      );
      const resolved = await deps.resolution.record(identified, trx);
      await deps.requests.recordSuccess(request.requestId, { personId: resolved.person.id, acr: identity.acr, authnInstant: identity.instant.getTime() }, trx);
      await deps.log.append(
        identityResolved({
          sepId: request.sepId,
          requestId: request.sepRequestId,
          means: identity.means,
          loa: identity.acr,
          pseudonym: sep ? deps.pseudonyms.forGroup(resolved.person.id, sep.group) : null,
          firstTime: resolved.firstTime,
          attributesAsserted: Object.keys(identity.attributes).sort(),
          // Values only where the operator turned value logging on for this SeP.
          ...(sep?.logAttributeValues ? { values: { subject: identity.subject, attributeValues: identity.attributes } } : {}),
        }),
        trx,
      );
    });
  }

  /**
   * One refusal, one log record. Only a request that exists and belongs to this means lends the
   * record its SeP and login; nothing the answer itself says is written beyond the reason code. The
   * record carries a fresh help-desk reference, which the citizen's page shows.
   */
  private async refuse(meansId: string, reason: string, outward: ErrorCode, found: UpstreamRequest | undefined, problem?: string): Promise<AnswerOutcome> {
    const { deps } = this;
    // As it stands now: another answer may have been accepted for it meanwhile.
    const request = found ? await deps.requests.find(found.requestId) : undefined;
    const reference = newHelpDeskReference();
    await deps.db.transaction(async (trx) => {
      if (request && request.outcome === null) await deps.requests.recordFailure(request.requestId, trx);
      await deps.log.append(
        upstreamResponseRefused({
          sepId: request?.sepId ?? null,
          requestId: request?.sepRequestId ?? null,
          means: meansId,
          reason,
          upstreamRequestId: request?.requestId ?? null,
          reference,
          // What the adapter found (an algorithm, a time, a certificate problem), for the operator:
          // only for an answer to a request of this means, and bounded (it may quote the answer).
          ...(request && problem && EXPLAINED_REASONS.has(reason) ? { problem } : {}),
        }),
        trx,
      );
    });
    logger.warn('upstream response refused', { means: meansId, reason, reference });
    // The login can go on (another means, another try) only while its request was not yet answered.
    if (request && request.consumedAt === null) return { kind: 'refused', outward, interactionUid: request.interactionUid, reference };
    return { kind: 'refused', outward: outward === 'invalid_response' ? 'invalid_response' : 'unknown_request', interactionUid: null, reference };
  }
}
