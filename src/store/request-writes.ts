import { AsyncLocalStorage } from 'node:async_hooks';
import type { Database } from './database.ts';

/**
 * What one request (or one CLI command) may have left in the database, so that a failure can be
 * told truthfully: "nothing was changed" only when no write of it was committed or sent to commit.
 *
 * It errs on the side of caution: a write counts from the moment it is sent (a statement outside a
 * transaction), or from the moment its transaction's COMMIT is sent, whether or not the database
 * then confirmed it. A transaction that rolled back, or failed before its COMMIT, counts for nothing.
 */
export class RequestWrites {
  /** Something this request wrote may be in the database. */
  mayHaveChanged = false;
  /** Connections in a transaction of this request (from BEGIN to COMMIT or ROLLBACK). */
  readonly open = new Set<string>();
  /** Connections whose open transaction has written. */
  readonly writing = new Set<string>();
}

const storage = new AsyncLocalStorage<RequestWrites>();

/** Runs `fn` (and everything it starts) as one request whose writes are counted in `writes`. */
export function withRequestWrites<T>(writes: RequestWrites, fn: () => T): T {
  return storage.run(writes, fn);
}

export function currentRequestWrites(): RequestWrites | undefined {
  return storage.getStore();
}

/**
 * Writes that the requests before this point of a command (migrations, opening the audit trail) made
 * are not the command's own: counting starts afresh.
 */
export function forgetWritesSoFar(): void {
  const writes = storage.getStore();
  if (!writes) return;
  writes.mayHaveChanged = false;
  writes.open.clear();
  writes.writing.clear();
}

interface QueryEvent {
  __knexUid?: string;
  __knexTxId?: string;
  sql?: string;
}

const WRITE = /^\s*(insert|update|delete|create|alter|drop|truncate|replace|merge)\b/i;
const WRITING_CTE = /^\s*with\b[\s\S]*\b(insert|update|delete)\b/i;

/** Whether a statement writes (reads, locks and transaction control do not). */
export function isWriteStatement(sql: string): boolean {
  return WRITE.test(sql) || WRITING_CTE.test(sql);
}

/**
 * Counts the writes made through `db` in the request they belong to. knex announces every statement
 * (transaction control included) before sending it, in the caller's async context.
 */
export function trackWrites(db: Database): void {
  db.on('query', (query: QueryEvent) => {
    const writes = storage.getStore();
    if (!writes || typeof query.sql !== 'string') return;
    const connection = query.__knexUid ?? '';
    const sql = query.sql.trimStart();
    if (/^BEGIN\b/i.test(sql)) {
      writes.open.add(connection);
      writes.writing.delete(connection);
    } else if (/^COMMIT\b/i.test(sql)) {
      writes.open.delete(connection);
      if (writes.writing.delete(connection)) writes.mayHaveChanged = true;
    } else if (/^ROLLBACK\b(?!\s+TO\b)/i.test(sql)) {
      writes.open.delete(connection);
      writes.writing.delete(connection);
    } else if (isWriteStatement(sql)) {
      if (query.__knexTxId || writes.open.has(connection)) writes.writing.add(connection);
      else writes.mayHaveChanged = true;
    }
  });
}
