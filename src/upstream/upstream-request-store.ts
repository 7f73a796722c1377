import { sepAlong } from '../sep/sep-store.ts';
import type { Database, Queryable } from '../store/database.ts';
import { readAlongMark } from '../store/request-writes.ts';
import type { Loa } from '../domain/loa.ts';

/** A request Brána sent to an identity means, found again when the answer comes back. */
export interface UpstreamRequest {
  requestId: string;
  means: string;
  interactionUid: string;
  sepId: string;
  sepRequestId: string | null;
  minimumLoa: Loa;
  forceAuthn: boolean;
  createdAt: number;
  expiresAt: number;
  consumedAt: number | null;
  outcome: 'success' | 'failure' | null;
  personId: string | null;
  acr: Loa | null;
  authnInstant: number | null;
  /**
   * SHA-256 of the accepted answer as the browser carried it (the ACS form, the callback's query):
   * the very same answer re-sent is recognised by it (see AnswerAcceptance). Null until accepted.
   */
  answerSha256: string | null;
}

/** What an accepted answer established: the person, and the level and time of the authentication. */
export interface AnswerSuccess {
  personId: string;
  acr: Loa;
  authnInstant: number;
  answerSha256?: string;
}

interface Row {
  request_id: string;
  means: string;
  interaction_uid: string;
  sep_id: string;
  sep_request_id: string | null;
  min_loa: string;
  force_authn: boolean | number;
  created_at: number;
  expires_at: number;
  consumed_at: number | null;
  outcome: string | null;
  person_id: string | null;
  acr: string | null;
  authn_instant: number | null;
  answer_sha256: string | null;
}

function fromRow(row: Row): UpstreamRequest {
  return {
    requestId: row.request_id,
    means: row.means,
    interactionUid: row.interaction_uid,
    sepId: row.sep_id,
    sepRequestId: row.sep_request_id,
    minimumLoa: row.min_loa as Loa,
    forceAuthn: Boolean(row.force_authn),
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    consumedAt: row.consumed_at === null ? null : Number(row.consumed_at),
    outcome: row.outcome as UpstreamRequest['outcome'],
    personId: row.person_id,
    acr: row.acr as Loa | null,
    authnInstant: row.authn_instant === null ? null : Number(row.authn_instant),
    answerSha256: row.answer_sha256 ?? null,
  };
}

/** How long a citizen may spend at the identity means before the request expires. */
export const UPSTREAM_REQUEST_TTL_MS = 15 * 60 * 1000;
/** How long an expired or answered request stays for support questions before it is removed. */
export const REQUEST_RETENTION_MS = 24 * 3600 * 1000;

/**
 * Outstanding upstream requests and the assertion ids already seen, in the database (not in memory)
 * so that any node may receive the answer and a replay is caught on every node.
 */
export class UpstreamRequestStore {
  private readonly db: Database;

  constructor(db: Database) {
    this.db = db;
  }

  async record(request: Omit<UpstreamRequest, 'createdAt' | 'expiresAt' | 'consumedAt' | 'outcome' | 'personId' | 'acr' | 'authnInstant' | 'answerSha256'>, trx: Queryable = this.db): Promise<void> {
    const at = Date.now();
    await trx('upstream_request').insert({
      request_id: request.requestId,
      means: request.means,
      interaction_uid: request.interactionUid,
      sep_id: request.sepId,
      sep_request_id: request.sepRequestId,
      min_loa: request.minimumLoa,
      force_authn: request.forceAuthn,
      created_at: at,
      expires_at: at + UPSTREAM_REQUEST_TTL_MS,
    });
  }

  async find(requestId: string, trx: Queryable = this.db): Promise<UpstreamRequest | undefined> {
    if (trx !== this.db) {
      const row = (await trx('upstream_request').where({ request_id: requestId }).first()) as Row | undefined;
      return row ? fromRow(row) : undefined;
    }
    // An answer's request is read with its SeP, which the answer's checks read next (sepAlong).
    const mark = readAlongMark();
    const row = (await this.db('upstream_request as r')
      .leftJoin('sep as s', 's.client_id', 'r.sep_id')
      .where('r.request_id', requestId)
      .first(this.db.raw(`r.*, ${sepAlong.columns('s')}`))) as (Row & Record<string, unknown>) | undefined;
    if (!row) return undefined;
    sepAlong.remember(row, mark);
    return fromRow(row);
  }

  /** An outstanding request of this means, neither answered nor expired. */
  async findOutstanding(requestId: string, means: string): Promise<UpstreamRequest | undefined> {
    const row = (await this.db('upstream_request')
      .where({ request_id: requestId, means })
      .whereNull('consumed_at')
      .where('expires_at', '>', Date.now())
      .first()) as Row | undefined;
    return row ? fromRow(row) : undefined;
  }

  /**
   * Marks the request answered, atomically: of two answers racing for one request, exactly one
   * gets true. With `success`, the same statement records the accepted answer's result.
   */
  async consume(requestId: string, means: string, trx: Queryable, success?: AnswerSuccess): Promise<boolean> {
    const count = await trx('upstream_request')
      .where({ request_id: requestId, means })
      .whereNull('consumed_at')
      .where('expires_at', '>', Date.now())
      .update({
        consumed_at: Date.now(),
        ...(success ? { outcome: 'success', person_id: success.personId, acr: success.acr, authn_instant: success.authnInstant, answer_sha256: success.answerSha256 ?? null } : {}),
      });
    return count === 1;
  }

  /** Marks an unanswered request failed; an accepted one stays accepted. */
  async recordFailure(requestId: string, trx: Queryable = this.db): Promise<void> {
    await trx('upstream_request')
      .where({ request_id: requestId })
      .whereNull('outcome')
      .update({ outcome: 'failure', consumed_at: trx.raw('COALESCE(consumed_at, ?)', [Date.now()]) });
  }

  /** The successful answer for an interaction that has not yet been taken up. */
  async successfulAnswerFor(interactionUid: string, requestId: string): Promise<UpstreamRequest | undefined> {
    const row = (await this.db('upstream_request')
      .where({ interaction_uid: interactionUid, request_id: requestId, outcome: 'success' })
      .first()) as Row | undefined;
    return row ? fromRow(row) : undefined;
  }

  /**
   * Remembers an assertion id; false if it was seen before (a replay). The unique key makes this
   * atomic across nodes; a racing insert waits for the other and does nothing, leaving the caller's
   * transaction usable. One statement: the insert returns no row for an id already there.
   */
  async rememberAssertion(means: string, assertionId: string, expiresAt: number, trx: Queryable): Promise<boolean> {
    const inserted = await trx('upstream_assertion')
      .insert({ means, assertion_id: assertionId, expires_at: expiresAt })
      .onConflict(['means', 'assertion_id'])
      .ignore()
      .returning('assertion_id');
    return inserted.length === 1;
  }

  /**
   * Deletes up to `limit` assertion ids past their validity (a replay of them fails the time checks
   * anyway) and up to `limit` requests a day past expiry (kept that long for support questions).
   */
  async removeExpired(trx: Queryable = this.db, now = Date.now(), limit = 5000): Promise<number> {
    const assertions = trx('upstream_assertion').select('means', 'assertion_id').where('expires_at', '<', now).limit(limit);
    const removedAssertions = await trx('upstream_assertion').whereIn(['means', 'assertion_id'], assertions).delete();
    const requests = trx('upstream_request').select('request_id').where('expires_at', '<', now - REQUEST_RETENTION_MS).limit(limit);
    const removedRequests = await trx('upstream_request').whereIn('request_id', requests).delete();
    return removedAssertions + removedRequests;
  }
}
