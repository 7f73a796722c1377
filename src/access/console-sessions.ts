import type { Database } from '../store/database.ts';
import { SignInSessions } from './sign-in-sessions.ts';

/** A console stays open this long after sign-in, whatever is done in it: then the person signs in again at LoA high. */
export const CONSOLE_SESSION_TTL_MS = 15 * 60 * 1000;

/**
 * Staff signed in to the consoles. The roles are not kept here: they are read at every request,
 * so a revoked role ends the console at the next click.
 */
export class ConsoleSessions extends SignInSessions {
  constructor(db: Database) {
    super(db, { table: 'console_session', sessionTtlMs: CONSOLE_SESSION_TTL_MS, loginTtlMs: 15 * 60 * 1000 });
  }
}
