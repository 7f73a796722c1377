import type { Database, Queryable } from '../store/database.ts';

/**
 * The roles of people who use the consoles (issue 17), held by a person as the population register
 * knows them: an auditor reads the assertion log, an administrator decides on SeP registrations, an
 * operator watches the federation's health. They are not the bearer credentials of
 * `operator-credentials.ts` (for automation): a role is used only by its holder, signed in through
 * Brána at LoA high.
 */
export const STAFF_ROLES = ['auditor', 'administrator', 'operator'] as const;
export type StaffRole = (typeof STAFF_ROLES)[number];

export function isStaffRole(value: unknown): value is StaffRole {
  return typeof value === 'string' && (STAFF_ROLES as readonly string[]).includes(value);
}

export interface StaffGrant {
  registerId: string;
  role: StaffRole;
  /** How the assertion log names this person as the actor of a console action. */
  name: string;
  grantedAt: number;
  grantedBy: string;
}

interface Row {
  register_id: string;
  role: string;
  name: string;
  granted_at: number;
  granted_by: string;
}

const fromRow = (row: Row): StaffGrant => ({ registerId: row.register_id, role: row.role as StaffRole, name: row.name, grantedAt: Number(row.granted_at), grantedBy: row.granted_by });

/** Who holds which role. Read on every console request, so a revocation takes effect at the next click. */
export class StaffRoles {
  private readonly db: Database;

  constructor(db: Database) {
    this.db = db;
  }

  /** Grants a role; false when the person already holds it (nothing changes). */
  async grant(grant: Omit<StaffGrant, 'grantedAt'>, trx: Queryable = this.db): Promise<boolean> {
    const inserted = await trx('staff_role')
      .insert({ register_id: grant.registerId, role: grant.role, name: grant.name, granted_at: Date.now(), granted_by: grant.grantedBy })
      .onConflict(['register_id', 'role'])
      .ignore()
      .returning('role');
    return inserted.length === 1;
  }

  /** Revokes a role; false when the person did not hold it. */
  async revoke(registerId: string, role: StaffRole, trx: Queryable = this.db): Promise<StaffGrant | undefined> {
    const row = (await trx('staff_role').where({ register_id: registerId, role }).first()) as Row | undefined;
    if (!row) return undefined;
    await trx('staff_role').where({ register_id: registerId, role }).delete();
    return fromRow(row);
  }

  async of(registerId: string, trx: Queryable = this.db): Promise<StaffGrant[]> {
    return ((await trx('staff_role').where({ register_id: registerId }).orderBy('role')) as Row[]).map(fromRow);
  }

  async list(): Promise<StaffGrant[]> {
    return ((await this.db('staff_role').orderBy(['register_id', 'role'])) as Row[]).map(fromRow);
  }
}
