import { createHash } from 'node:crypto';
import type { Database, Queryable } from '../store/database.ts';

/** The key of a token's uses, as the assertion log names the token: the SHA-256 of its value. */
export const tokenSha256 = (token: string) => createHash('sha256').update(token).digest('hex');

/**
 * How many registrations each initial access token may still make. oidc-provider never consumes an
 * initial access token, so without this one token would register any number of SePs until it
 * expires. A registration takes one use in a single conditional update: of two racing for the last
 * use, one gets it.
 */
export class InitialAccessTokenUses {
  private readonly db: Database;

  constructor(db: Database) {
    this.db = db;
  }

  async grant(token: string, uses: number, expiresAt: number, trx: Queryable = this.db): Promise<void> {
    await trx('initial_access_token_use').insert({ token_sha256: tokenSha256(token), uses_left: uses, uses, expires_at: expiresAt });
  }

  /** Takes one use; false when the token has none left (or was issued before uses were counted). */
  async consume(token: string, trx: Queryable = this.db): Promise<boolean> {
    const count = await trx('initial_access_token_use').where({ token_sha256: tokenSha256(token) }).where('uses_left', '>', 0).decrement('uses_left', 1);
    return Number(count) === 1;
  }

  async remaining(token: string): Promise<number> {
    const row = (await this.db('initial_access_token_use').where({ token_sha256: tokenSha256(token) }).first('uses_left')) as { uses_left: number } | undefined;
    return row ? Number(row.uses_left) : 0;
  }

  /** The tokens issued, newest expiry first, by their digest: what an administrator sees of them. */
  async list(limit = 100): Promise<Array<{ tokenSha256: string; usesLeft: number; uses: number; expiresAt: number }>> {
    const rows = (await this.db('initial_access_token_use').orderBy('expires_at', 'desc').limit(limit)) as Array<{ token_sha256: string; uses_left: number; uses: number; expires_at: number }>;
    return rows.map((row) => ({ tokenSha256: row.token_sha256, usesLeft: Number(row.uses_left), uses: Number(row.uses), expiresAt: Number(row.expires_at) }));
  }
}
