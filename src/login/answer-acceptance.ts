import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
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
import type { AnswerFinish, LoginResult } from './journey.ts';
import type { Database } from '../store/database.ts';
import { CLOCK_SKEW_MS, UpstreamRejected, type UpstreamIdentity } from '../upstream/contract.ts';
import type { IdentityMeansRegistry } from '../upstream/identity-means-registry.ts';
import type { UpstreamRequest, UpstreamRequestStore } from '../upstream/upstream-request-store.ts';

/** Whether a login's interaction still waits for the answer of its identity means (not yet resumed, not expired). */
export interface PendingInteractions {
  isPending(interactionUid: string): Promise<boolean>;
}

export interface AnswerAcceptanceDependencies {
  interactions: PendingInteractions;
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
  /**
   * Accepted: the browser goes on to its interaction, where its own cookies bind the result to it;
   * or, when the result was stored on its journey with the answer (`resumeAt`), straight there.
   */
  | { kind: 'accepted'; interactionUid: string; requestId: string; login: LoginResult; resumeAt?: string }
  /**
   * The very answer already accepted, sent again while its login still waits for it (a reload or
   * back after a 502): nothing is checked or recorded again. The browser goes to its interaction,
   * where only the browser that began the login goes on; any other is refused there (refuseResent).
   */
  | { kind: 'resent'; interactionUid: string; requestId: string }
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

/**
 * SHA-256 of an answer as the browser carried it (the ACS form's fields, the callback's query), in a
 * fixed order: a re-sent answer is the same bytes, any other answer is not.
 */
export function answerFingerprint(input: Record<string, unknown>): string {
  const fields = Object.keys(input)
    .sort()
    .map((name) => [name, input[name]]);
  return createHash('sha256').update(JSON.stringify(fields)).digest('hex');
}

/**
 * The proof, in the URL the ACS sends a re-sending browser to, that the ACS did see the accepted
 * answer again: that page logs a refusal (replayed_response) only for a re-send that happened, not
 * for anyone who types the URL of a login in.
 */
export function resentCheck(key: Buffer, interactionUid: string, requestId: string): string {
  return createHmac('sha256', key).update(`resent:${interactionUid}:${requestId}`).digest('base64url');
}

export function isResentCheck(key: Buffer, interactionUid: string, requestId: string, given: unknown): boolean {
  const expected = Buffer.from(resentCheck(key, interactionUid, requestId));
  const actual = Buffer.from(typeof given === 'string' ? given : '');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

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

  /** `awaiting`: the login's journey if it waits for this answer, to store the result on it in the answer's transaction. */
  async receive(meansId: string, input: Record<string, unknown>, awaiting?: (uid: string) => Promise<AnswerFinish | undefined>): Promise<AnswerOutcome> {
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
    const fingerprint = answerFingerprint(input);
    if (request.consumedAt !== null) return this.answeredBefore(meansId, request, fingerprint);
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
    let recorded: { login: LoginResult; resumeAt: string | undefined };
    try {
      recorded = await this.record(identity, identified, request, fingerprint, awaiting);
    } catch (err) {
      if (err instanceof LoginRefused) return this.refuse(meansId, err.reason, err.outward, request);
      throw err;
    }
    const { login, resumeAt } = recorded;
    return { kind: 'accepted', interactionUid: request.interactionUid, requestId: request.requestId, login, ...(resumeAt ? { resumeAt } : {}) };
  }

  /**
   * An answer to a request already answered. The very answer that was accepted (the same
   * fingerprint), while the login's interaction still waits for it, is taken for the browser sending
   * it again after its first post got no answer (a node died after the commit, a 502): `resent`,
   * and the browser's own interaction cookie decides (refuseResent). Nothing is logged here: a
   * re-send is not a new answer, and whether it was one is known only there. Anything else is a
   * replay, refused and logged as always — an answer accepted for a login that has gone on or ended
   * (with words that say so, not "could not be verified"), a refused answer, another answer.
   *
   * Copies posted at the same moment as the first do not come here: they find the request still
   * outstanding, and the atomic consume in `record` refuses all but one (replayed_response).
   */
  private async answeredBefore(meansId: string, request: UpstreamRequest, fingerprint: string): Promise<AnswerOutcome> {
    const same = request.outcome === 'success' && request.answerSha256 !== null && request.answerSha256 === fingerprint;
    if (same && (await this.deps.interactions.isPending(request.interactionUid))) {
      logger.info('accepted answer received again while its login waits: its interaction decides', { means: meansId });
      return { kind: 'resent', interactionUid: request.interactionUid, requestId: request.requestId };
    }
    return this.refuse(meansId, 'replayed_response', same ? 'answer_already_used' : 'invalid_response', request);
  }

  /**
   * A re-sent answer its interaction did not take: the browser holds no cookie of that login (it is
   * another browser: whoever captured the answer), or the login went on or ended meanwhile. Refused
   * as the replay it is, with its one log record, after all.
   */
  async refuseResent(requestId: string): Promise<AnswerOutcome> {
    const request = await this.deps.requests.find(requestId);
    return this.refuse(request?.means ?? 'unknown', 'replayed_response', 'answer_already_used', request);
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

  /**
   * Consumes the request with its result, remembers the assertion, records the person and the log
   * records, and stores the login result on the journey that waits for it: all or nothing. The
   * person is known (or created) first, so that the consumption and the result are one statement,
   * and the two records one. The journey is read before the transaction, written in it.
   */
  private async record(
    identity: UpstreamIdentity,
    identified: Identified,
    request: UpstreamRequest,
    fingerprint: string,
    awaiting: ((uid: string) => Promise<AnswerFinish | undefined>) | undefined,
  ): Promise<{ login: LoginResult; resumeAt: string | undefined }> {
    const { deps } = this;
    const [sep, journey] = await Promise.all([deps.seps.find(request.sepId), awaiting?.(request.interactionUid)]);
    return deps.db.transaction(async (trx) => {
      const resolved = await deps.resolution.record(identified, trx);
      const success = { personId: resolved.person.id, acr: identity.acr, authnInstant: identity.instant.getTime(), answerSha256: fingerprint };
      if (!(await deps.requests.consume(request.requestId, request.means, trx, success))) throw new LoginRefused('replayed_response', 'unknown_request');
      if (!(await deps.requests.rememberAssertion(identity.means, identity.assertionId, identity.assertionExpiresAt.getTime(), trx))) {
        throw new LoginRefused('replayed_assertion', 'invalid_response');
      }
      const login: LoginResult = { kind: 'login', accountId: resolved.person.id, acr: identity.acr, means: identity.means, authnInstant: identity.instant.getTime() };
      const resumeAt = journey ? await journey.finish(login, trx) : undefined;
      await deps.log.appendMany(
        [
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
        ],
        trx,
      );
      return { login, resumeAt };
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
    return { kind: 'refused', outward: outward === 'invalid_response' || outward === 'answer_already_used' ? outward : 'unknown_request', interactionUid: null, reference };
  }
}
