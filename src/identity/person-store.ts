import { randomUUID } from 'node:crypto';
import type { Database, Queryable } from '../store/database.ts';

/** Brána's own record of a person: an opaque id and the register's id for them, nothing more. */
export interface Person {
  id: string;
  registerId: string;
}

export class PersonStore {
  private readonly db: Database;

  constructor(db: Database) {
    this.db = db;
  }

  /**
   * The person for a register id, created on first sight; `created` marks a first-time resolution.
   * When two nodes resolve the same person at the same moment, the insert that loses waits for the
   * winner and does nothing (no unique-key error, which on PostgreSQL would break the caller's
   * transaction), and both read the one row.
   */
  async findOrCreate(registerId: string, trx: Queryable): Promise<{ person: Person; created: boolean }> {
    const existing = (await trx('person').where({ register_id: registerId }).first('id')) as { id: string } | undefined;
    if (existing) return { person: { id: existing.id, registerId }, created: false };
    const id = randomUUID();
    const inserted = await trx('person').insert({ id, register_id: registerId, created_at: Date.now() }).onConflict('register_id').ignore().returning('id');
    if (inserted.length === 1) return { person: { id, registerId }, created: true };
    const row = (await trx('person').where({ register_id: registerId }).first('id')) as { id: string };
    return { person: { id: row.id, registerId }, created: false };
  }

  async find(personId: string, trx: Queryable = this.db): Promise<Person | undefined> {
    const row = (await trx('person').where({ id: personId }).first('id', 'register_id')) as { id: string; register_id: string } | undefined;
    return row ? { id: row.id, registerId: row.register_id } : undefined;
  }
}
