import type { Loa } from '../domain/loa.ts';
import type { Database, Queryable } from '../store/database.ts';
import type { RequestedAttribute } from './authn-request.ts';

/** How long a SAML login may take, from the AuthnRequest to the Response (oidc-provider's interaction: the same). */
export const SAML_JOURNEY_LIFETIME_MS = 30 * 60_000;

/** One SAML SeP's login in progress: the request it answers and, after the means answered, who logged in. */
export interface SamlJourneyRecord {
  uid: string;
  sepId: string;
  authnRequestId: string;
  sepRequestId: string;
  acsUrl: string;
  relayState: string | null;
  requestedAttributes: RequestedAttribute[];
  requestedLoa: Loa | null;
  forceAuthn: boolean;
  /** The SeP asked `IsPassive`: the citizen is never shown a page; the session answers, or NoPassive. */
  isPassive: boolean;
  nameIdFormat: 'persistent' | 'transient';
  stage: 'login' | 'consent' | 'done';
  personId: string | null;
  acr: Loa | null;
  means: string | null;
  authnInstant: number | null;
  createdAt: number;
  expiresAt: number;
}

interface Row {
  uid: string;
  sep_id: string;
  authn_request_id: string;
  sep_request_id: string;
  acs_url: string;
  relay_state: string | null;
  requested_attributes: string;
  min_loa: string | null;
  force_authn: boolean | number;
  is_passive: boolean | number;
  name_id_format: string;
  stage: string;
  person_id: string | null;
  acr: string | null;
  means: string | null;
  authn_instant: number | string | null;
  created_at: number | string;
  expires_at: number | string;
}

function fromRow(row: Row): SamlJourneyRecord {
  return {
    uid: row.uid,
    sepId: row.sep_id,
    authnRequestId: row.authn_request_id,
    sepRequestId: row.sep_request_id,
    acsUrl: row.acs_url,
    relayState: row.relay_state,
    requestedAttributes: JSON.parse(row.requested_attributes) as RequestedAttribute[],
    requestedLoa: row.min_loa as Loa | null,
    forceAuthn: Boolean(row.force_authn),
    isPassive: Boolean(row.is_passive),
    nameIdFormat: row.name_id_format === 'transient' ? 'transient' : 'persistent',
    stage: row.stage as SamlJourneyRecord['stage'],
    personId: row.person_id,
    acr: row.acr as Loa | null,
    means: row.means,
    authnInstant: row.authn_instant === null ? null : Number(row.authn_instant),
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
  };
}

/** SAML journeys on knex: the only module that reads or writes `saml_journey`. */
export class SamlJourneyStore {
  private readonly db: Database;

  constructor(db: Database) {
    this.db = db;
  }

  /**
   * Records a new journey; false if the SeP sent a request with this ID before (a replay). The
   * unique key makes that atomic across nodes; rows stay until well after a request is too old to
   * be accepted anyway.
   */
  async begin(journey: Omit<SamlJourneyRecord, 'stage' | 'personId' | 'acr' | 'means' | 'authnInstant'>, trx: Queryable): Promise<boolean> {
    const inserted = await trx('saml_journey')
      .insert({
        uid: journey.uid,
        sep_id: journey.sepId,
        authn_request_id: journey.authnRequestId,
        sep_request_id: journey.sepRequestId,
        acs_url: journey.acsUrl,
        relay_state: journey.relayState,
        requested_attributes: JSON.stringify(journey.requestedAttributes),
        min_loa: journey.requestedLoa,
        force_authn: journey.forceAuthn,
        is_passive: journey.isPassive,
        name_id_format: journey.nameIdFormat,
        stage: 'login',
        created_at: journey.createdAt,
        expires_at: journey.expiresAt,
      })
      .onConflict(['sep_id', 'authn_request_id'])
      .ignore()
      .returning('uid');
    return (inserted as unknown[]).length === 1;
  }

  async find(uid: string, trx: Queryable = this.db): Promise<SamlJourneyRecord | undefined> {
    const row = (await trx('saml_journey').where({ uid }).first()) as Row | undefined;
    return row ? fromRow(row) : undefined;
  }

  /** The login result: on to consent. False if the journey was not waiting for it. */
  async recordLogin(uid: string, login: { personId: string; acr: Loa; means: string; authnInstant: number }, trx: Queryable = this.db): Promise<boolean> {
    const count = await trx('saml_journey')
      .where({ uid, stage: 'login' })
      .update({ stage: 'consent', person_id: login.personId, acr: login.acr, means: login.means, authn_instant: login.authnInstant });
    return count === 1;
  }

  /** Ends the journey; false if it had ended already (so only one Response is ever issued for it). */
  async end(uid: string, from: 'login' | 'consent', trx: Queryable): Promise<boolean> {
    const count = await trx('saml_journey').where({ uid, stage: from }).update({ stage: 'done' });
    return count === 1;
  }

  /**
   * Deletes up to `limit` journeys past their time. A journey lives longer than an AuthnRequest may
   * be old (MAX_REQUEST_AGE_MS), so a request whose id is forgotten here is refused as stale.
   */
  async removeExpired(trx: Queryable, now: number, limit: number): Promise<number> {
    const expired = trx('saml_journey').select('uid').where('expires_at', '<', now).limit(limit);
    return Number(await trx('saml_journey').whereIn('uid', expired).delete());
  }

  /** Whether a journey still waits for its means' answer (a re-sent answer may then continue it). */
  async isPending(uid: string): Promise<boolean> {
    const row = (await this.db('saml_journey').where({ uid, stage: 'login' }).andWhere('expires_at', '>', Date.now()).first('uid')) as { uid: string } | undefined;
    return row !== undefined;
  }
}
