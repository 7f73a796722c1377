import type { Database, Queryable } from '../store/database.ts';

/** What a foreign person's eID asserted, as far as a SeP may ask for it: the eIDAS minimum data set. */
export interface ForeignPersonFacts {
  givenName: string;
  familyName: string;
  dateOfBirth: string;
  placeOfBirth?: string;
  /** The country whose eID scheme identified the person. */
  issuingCountry: string;
}

/**
 * As long as the facts may serve a login: an SSO session (8 h) and the tokens issued at its end.
 * Afterwards they are deleted; the next login brings them again from the person's own eID.
 */
export const FOREIGN_FACTS_TTL_MS = 8.5 * 3600 * 1000;

/**
 * The attributes of foreign persons (eIDAS), who are in no Czech register Brána could read them
 * from: kept per person only while a login may need them. The only module on `foreign_person`.
 */
export class ForeignPersonStore {
  private readonly db: Database;

  constructor(db: Database) {
    this.db = db;
  }

  async save(personId: string, facts: ForeignPersonFacts, trx: Queryable, now = Date.now()): Promise<void> {
    await trx('foreign_person')
      .insert({ person_id: personId, attributes: JSON.stringify(facts), expires_at: now + FOREIGN_FACTS_TTL_MS })
      .onConflict('person_id')
      .merge(['attributes', 'expires_at']);
  }

  async find(personId: string, now = Date.now()): Promise<ForeignPersonFacts | undefined> {
    const row = (await this.db('foreign_person').where({ person_id: personId }).where('expires_at', '>', now).first('attributes')) as { attributes: string } | undefined;
    return row ? (JSON.parse(row.attributes) as ForeignPersonFacts) : undefined;
  }

  /** Deletes up to `limit` expired rows (in `trx`, when the sweep of expired rows gives one). */
  async removeExpired(now = Date.now(), trx: Queryable = this.db, limit = 5000): Promise<number> {
    const expired = trx('foreign_person').select('person_id').where('expires_at', '<=', now).limit(limit);
    return trx('foreign_person').whereIn('person_id', expired).delete();
  }
}
