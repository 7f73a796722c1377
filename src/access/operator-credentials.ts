import { createHash, randomBytes } from 'node:crypto';
import type { Database, Queryable } from '../store/database.ts';

/**
 * The roles of people (and systems) who operate Brána. An administrator manages SePs; an auditor
 * reads the assertion log; a monitor (such as a Prometheus server) reads only aggregate numbers.
 */
export const OPERATOR_ROLES = ['admin', 'auditor', 'monitor'] as const;
export type OperatorRole = (typeof OPERATOR_ROLES)[number];

export interface Operator {
  id: number;
  role: OperatorRole;
  name: string;
  createdAt: number;
  revokedAt: number | null;
}

interface Row {
  id: number;
  role: string;
  name: string;
  created_at: number;
  revoked_at: number | null;
}

function fromRow(row: Row): Operator {
  return { id: Number(row.id), role: row.role as OperatorRole, name: row.name, createdAt: Number(row.created_at), revokedAt: row.revoked_at === null ? null : Number(row.revoked_at) };
}

const TOKEN_FORMAT = new RegExp(`^brana_(${OPERATOR_ROLES.join('|')})_[A-Za-z0-9_-]{43}$`);

function hashOf(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * Bearer credentials of administrators and auditors. Only a hash of each token is stored; the token
 * is shown once, when it is issued.
 */
export class OperatorCredentials {
  private readonly db: Database;

  constructor(db: Database) {
    this.db = db;
  }

  async issue(role: OperatorRole, name: string, trx: Queryable = this.db): Promise<{ operator: Operator; token: string }> {
    const token = `brana_${role}_${randomBytes(32).toString('base64url')}`;
    const row = { role, name, token_hash: hashOf(token), created_at: Date.now() };
    const [inserted] = (await trx('operator_credential').insert(row).returning('id')) as Array<{ id: number } | number>;
    const id = typeof inserted === 'object' ? inserted.id : Number(inserted);
    return { operator: { id, role, name, createdAt: row.created_at, revokedAt: null }, token };
  }

  /** The active operator a presented token belongs to, if any. */
  async authenticate(token: string): Promise<Operator | undefined> {
    if (!TOKEN_FORMAT.test(token)) return undefined;
    const row = (await this.db('operator_credential').where({ token_hash: hashOf(token) }).whereNull('revoked_at').first()) as Row | undefined;
    return row ? fromRow(row) : undefined;
  }

  async list(): Promise<Operator[]> {
    return ((await this.db('operator_credential').orderBy('id')) as Row[]).map(fromRow);
  }

  /** Revokes every active credential with this name; returns how many. */
  async revoke(name: string, trx: Queryable = this.db): Promise<number> {
    return trx('operator_credential').where({ name }).whereNull('revoked_at').update({ revoked_at: Date.now() });
  }
}

export function isOperatorRole(value: unknown): value is OperatorRole {
  return typeof value === 'string' && (OPERATOR_ROLES as readonly string[]).includes(value);
}
