import { createHash, randomBytes } from 'node:crypto';
import type { Database, Queryable } from '../store/database.ts';

export interface PendingSignIn {
  state: string;
  codeVerifier: string;
}

export interface SignInSession {
  personId: string;
  means: string | null;
  loa: string | null;
  expiresAt: number;
}

interface Row {
  id_hash: string;
  person_id: string | null;
  state: string | null;
  code_verifier: string | null;
  means: string | null;
  loa: string | null;
  created_at: number;
  expires_at: number;
}

const hashOf = (id: string) => createHash('sha256').update(id).digest('hex');

/**
 * The server side of a page of Brána's own that a person signs in to through Brána (My account,
 * the consoles): a random id in the browser's cookie, only its hash in the store. A row first holds
 * the login in progress (state and PKCE verifier), then the person it opened for; opening gives a
 * new id, so an id seen before the login is worth nothing after it.
 */
export class SignInSessions {
  private readonly db: Database;
  private readonly table: string;
  private readonly sessionTtlMs: number;
  private readonly loginTtlMs: number;

  constructor(db: Database, settings: { table: string; sessionTtlMs: number; loginTtlMs: number }) {
    this.db = db;
    this.table = settings.table;
    this.sessionTtlMs = settings.sessionTtlMs;
    this.loginTtlMs = settings.loginTtlMs;
  }

  async startLogin(): Promise<{ id: string; login: PendingSignIn }> {
    const id = randomBytes(32).toString('base64url');
    const login = { state: randomBytes(16).toString('base64url'), codeVerifier: randomBytes(32).toString('base64url') };
    const at = Date.now();
    await this.db(this.table).insert({ id_hash: hashOf(id), person_id: null, state: login.state, code_verifier: login.codeVerifier, created_at: at, expires_at: at + this.loginTtlMs });
    return { id, login };
  }

  async pendingLogin(id: string): Promise<PendingSignIn | undefined> {
    const row = await this.row(id);
    return row && row.person_id === null && row.state && row.code_verifier ? { state: row.state, codeVerifier: row.code_verifier } : undefined;
  }

  /** Ends the login in progress and opens the page under a new id; returns it. */
  async open(loginId: string, session: Omit<SignInSession, 'expiresAt'>): Promise<string> {
    const id = randomBytes(32).toString('base64url');
    const at = Date.now();
    await this.db.transaction(async (trx) => {
      const removed = await trx(this.table).where({ id_hash: hashOf(loginId) }).whereNull('person_id').delete();
      if (removed !== 1) throw new Error(`the login of ${this.table} was already used`);
      await trx(this.table).insert({ id_hash: hashOf(id), person_id: session.personId, state: null, code_verifier: null, means: session.means, loa: session.loa, created_at: at, expires_at: at + this.sessionTtlMs });
    });
    return id;
  }

  async find(id: string): Promise<SignInSession | undefined> {
    const row = await this.row(id);
    return row?.person_id ? { personId: row.person_id, means: row.means, loa: row.loa, expiresAt: Number(row.expires_at) } : undefined;
  }

  async close(id: string): Promise<void> {
    await this.db(this.table).where({ id_hash: hashOf(id) }).delete();
  }

  async removeExpired(now = Date.now(), trx: Queryable = this.db, limit = 5000): Promise<number> {
    const expired = trx(this.table).select('id_hash').where('expires_at', '<', now).limit(limit);
    return trx(this.table).whereIn('id_hash', expired).delete();
  }

  private async row(id: string): Promise<Row | undefined> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(id)) return undefined;
    const row = (await this.db(this.table).where({ id_hash: hashOf(id) }).first()) as Row | undefined;
    return row && Number(row.expires_at) > Date.now() ? row : undefined;
  }
}
