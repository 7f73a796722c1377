import { createHash, randomBytes } from 'node:crypto';
import type { Database, Queryable } from '../store/database.ts';

/** A console stays open this long after sign-in, whatever is done in it: then the person signs in again at LoA high. */
export const CONSOLE_SESSION_TTL_MS = 15 * 60 * 1000;
/** How long a person has to finish the login that opens the console. */
const LOGIN_TTL_MS = 15 * 60 * 1000;

export interface PendingConsoleLogin {
  state: string;
  codeVerifier: string;
}

export interface ConsoleSession {
  personId: string;
  registerId: string;
  means: string | null;
  loa: string | null;
  expiresAt: number;
}

interface Row {
  id_hash: string;
  person_id: string | null;
  register_id: string | null;
  state: string | null;
  code_verifier: string | null;
  means: string | null;
  loa: string | null;
  expires_at: number;
}

const hashOf = (id: string) => createHash('sha256').update(id).digest('hex');

/**
 * Console sign-ins, after `account-sessions.ts`: a random id in the cookie, only its hash stored; a
 * row first holds the login in progress, then the person it opened for, under a new id. The roles
 * are not kept here: they are read at every request, so a revoked role ends the console at once.
 */
export class ConsoleSessions {
  private readonly db: Database;

  constructor(db: Database) {
    this.db = db;
  }

  async startLogin(): Promise<{ id: string; login: PendingConsoleLogin }> {
    const id = randomBytes(32).toString('base64url');
    const login = { state: randomBytes(16).toString('base64url'), codeVerifier: randomBytes(32).toString('base64url') };
    const at = Date.now();
    await this.db('console_session').insert({ id_hash: hashOf(id), person_id: null, register_id: null, state: login.state, code_verifier: login.codeVerifier, created_at: at, expires_at: at + LOGIN_TTL_MS });
    return { id, login };
  }

  async pendingLogin(id: string): Promise<PendingConsoleLogin | undefined> {
    const row = await this.row(id);
    return row && row.person_id === null && row.state && row.code_verifier ? { state: row.state, codeVerifier: row.code_verifier } : undefined;
  }

  /** Ends the login in progress and opens the console under a new id; returns it. */
  async open(loginId: string, session: Omit<ConsoleSession, 'expiresAt'>): Promise<string> {
    const id = randomBytes(32).toString('base64url');
    const at = Date.now();
    await this.db.transaction(async (trx) => {
      const removed = await trx('console_session').where({ id_hash: hashOf(loginId) }).whereNull('person_id').delete();
      if (removed !== 1) throw new Error('the console login was already used');
      await trx('console_session').insert({
        id_hash: hashOf(id),
        person_id: session.personId,
        register_id: session.registerId,
        state: null,
        code_verifier: null,
        means: session.means,
        loa: session.loa,
        created_at: at,
        expires_at: at + CONSOLE_SESSION_TTL_MS,
      });
    });
    return id;
  }

  async find(id: string): Promise<ConsoleSession | undefined> {
    const row = await this.row(id);
    return row?.person_id && row.register_id ? { personId: row.person_id, registerId: row.register_id, means: row.means, loa: row.loa, expiresAt: Number(row.expires_at) } : undefined;
  }

  async close(id: string): Promise<void> {
    await this.db('console_session').where({ id_hash: hashOf(id) }).delete();
  }

  async removeExpired(now = Date.now(), trx: Queryable = this.db, limit = 5000): Promise<number> {
    const expired = trx('console_session').select('id_hash').where('expires_at', '<', now).limit(limit);
    return trx('console_session').whereIn('id_hash', expired).delete();
  }

  private async row(id: string): Promise<Row | undefined> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(id)) return undefined;
    const row = (await this.db('console_session').where({ id_hash: hashOf(id) }).first()) as Row | undefined;
    return row && Number(row.expires_at) > Date.now() ? row : undefined;
  }
}
