import type { Database, Queryable } from '../store/database.ts';
import type { AttributeId } from '../domain/attributes.ts';

/** A permanent consent: this person lets this SeP have exactly this set of attributes. */
export interface ConsentRecord {
  id: number;
  personId: string;
  sepId: string;
  attributes: AttributeId[];
  createdAt: number;
  revokedAt: number | null;
}

interface Row {
  id: number;
  person_id: string;
  sep_id: string;
  attributes: string;
  created_at: number;
  revoked_at: number | null;
}

function fromRow(row: Row): ConsentRecord {
  return {
    id: Number(row.id),
    personId: row.person_id,
    sepId: row.sep_id,
    attributes: JSON.parse(row.attributes) as AttributeId[],
    createdAt: Number(row.created_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
  };
}

/** The set as stored and compared: sorted, without repeats. */
export function attributeSetKey(attributes: readonly AttributeId[]): string {
  return JSON.stringify([...new Set(attributes)].sort());
}

/**
 * Permanent consents. One-time consents are not stored (they live only in the grant of that login
 * and in the assertion log).
 */
export class ConsentStore {
  private readonly db: Database;

  constructor(db: Database) {
    this.db = db;
  }

  /** The active permanent consent for exactly this set, if the citizen gave one. */
  async findPermanent(personId: string, sepId: string, attributes: readonly AttributeId[]): Promise<ConsentRecord | undefined> {
    const row = (await this.db('consent')
      .where({ person_id: personId, sep_id: sepId, attributes: attributeSetKey(attributes) })
      .whereNull('revoked_at')
      .first()) as Row | undefined;
    return row ? fromRow(row) : undefined;
  }

  /** Records a permanent consent; it replaces any earlier one for this SeP. */
  async grantPermanent(personId: string, sepId: string, attributes: readonly AttributeId[], trx: Queryable): Promise<void> {
    const at = Date.now();
    await trx('consent').where({ person_id: personId, sep_id: sepId }).whereNull('revoked_at').update({ revoked_at: at });
    await trx('consent').insert({ person_id: personId, sep_id: sepId, attributes: attributeSetKey(attributes), created_at: at });
  }

  async listActive(personId: string, trx: Queryable = this.db): Promise<ConsentRecord[]> {
    const rows = (await trx('consent').where({ person_id: personId }).whereNull('revoked_at').orderBy('created_at', 'desc')) as Row[];
    return rows.map(fromRow);
  }

  /** Revokes one consent of this person (or all of them when `id` is undefined); returns how many. */
  async revoke(personId: string, id: number | undefined, trx: Queryable = this.db): Promise<number> {
    const query = trx('consent').where({ person_id: personId }).whereNull('revoked_at');
    if (id !== undefined) query.andWhere({ id });
    return query.update({ revoked_at: Date.now() });
  }
}
