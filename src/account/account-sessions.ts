import { SignInSessions, type PendingSignIn, type SignInSession } from '../access/sign-in-sessions.ts';
import type { Database } from '../store/database.ts';

/** How long "My account" stays open without logging in again. */
export const ACCOUNT_SESSION_TTL_MS = 20 * 60 * 1000;

export type PendingAccountLogin = PendingSignIn;
export type AccountSession = SignInSession;

/** The citizens' open "My account" pages; a citizen has 30 minutes to finish the login that opens it. */
export class AccountSessions extends SignInSessions {
  constructor(db: Database) {
    super(db, { table: 'account_session', sessionTtlMs: ACCOUNT_SESSION_TTL_MS, loginTtlMs: 30 * 60 * 1000 });
  }
}
