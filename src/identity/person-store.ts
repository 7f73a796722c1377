import { randomUUID } from 'node:crypto';
import type { Database, Queryable } from '../store/database.ts';

/** Brána's own record of a person: an opaque id and the register's id for them, nothing more. */
export interface Person {
  id: string;
  registerId: string;
}

/** How many persons' id → register id pairs a node keeps in memory (the pair never changes). */
const KNOWN_PERSONS = 10_000;

export class PersonStore {
  private readonly db: Database;
  private readonly known = new Map<string, string>();

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

  /**
   * A person by Brána's id. A person row is never changed once written, so committed rows are kept
   * in a bounded memory map: findAccount asks for the same person at every step of a login.
   */
  async find(personId: string, trx: Queryable = this.db): Promise<Person | undefined> {
    const registerId = this.known.get(personId);
    if (registerId !== undefined) return { id: personId, registerId };
    const row = (await trx('person').where({ id: personId }).first('id', 'register_id')) as { id: string; register_id: string } | undefined;
    if (!row) return undefined;
    // Only what another transaction cannot still roll back is remembered.
    if (trx === this.db) {
      if (this.known.size >= KNOWN_PERSONS) this.known.delete(this.known.keys().next().value!);
      this.known.set(row.id, row.register_id);
    }
    return { id: row.id, registerId: row.register_id };
  }

  /** A person by the register's id, if Brána has ever known them (never creates one: an auditor's search). */
  async findByRegisterId(registerId: string, trx: Queryable = this.db): Promise<Person | undefined> {
    const row = (await trx('person').where({ register_id: registerId }).first('id')) as { id: string } | undefined;
    return row ? { id: row.id, registerId } : undefined;
  }
}
