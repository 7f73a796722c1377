/**
 * Telling an outage from a bug: an error that says the database cannot be reached or cannot answer in
 * time. Such a request fails with 503 and may simply be tried again; any transaction it had open was
 * rolled back by the database, so nothing of it stays half-written.
 */

/** The network or the server went away. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/** PostgreSQL SQLSTATEs of a server that is shutting down, overloaded, or refuses this connection. */
const POSTGRES_CODES = new Set([
  '57P01', // admin_shutdown (also pg_terminate_backend)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, recovering)
  '57014', // query_canceled (statement_timeout)
  '55P03', // lock_not_available (lock_timeout)
  '25006', // read_only_sql_transaction (a standby, or a primary demoted by a failover)
  '3D000', // the database does not exist (dropped, or not yet created)
  '28000', // invalid_authorization_specification
  '28P01', // invalid_password
]);

const SQLITE_CODES = new Set(['SQLITE_BUSY', 'SQLITE_IOERR', 'SQLITE_CANTOPEN', 'SQLITE_FULL', 'SQLITE_READONLY']);

/** Also matched by message, for an error another module wrapped without its code. */
const MESSAGES = [
  /Connection terminated/,
  /terminating connection due to administrator command/,
  /the database system is (starting up|shutting down|in recovery mode|not yet accepting connections)/,
  /canceling statement due to statement timeout/,
  /server closed the connection unexpectedly/,
  /too many clients already/,
  /Connection ended unexpectedly/,
  /Query read timeout/,
  /not queryable/,
  /is not currently accepting connections/,
  /permission denied for database/,
  /Knex: Timeout acquiring a connection/,
  // pg's own connection timeout (connectionTimeoutMillis), as pg and pg-pool word it.
  /^timeout expired$/,
  /Connection terminated due to connection timeout/,
  /timeout exceeded when trying to connect/,
];

interface ErrorShape {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  cause?: unknown;
}

export function isDatabaseUnavailable(err: unknown, depth = 0): boolean {
  if (!err || typeof err !== 'object' || depth > 3) return false;
  const e = err as ErrorShape;
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' ? e.message : '';
  if (e.name === 'KnexTimeoutError') return true;
  if (NETWORK_CODES.has(code) || SQLITE_CODES.has(code) || POSTGRES_CODES.has(code)) return true;
  // connection_exception (08…) and insufficient_resources (53…: too many connections, disk full).
  if (/^(08|53)[0-9A-Z]{3}$/.test(code)) return true;
  if (MESSAGES.some((pattern) => pattern.test(message))) return true;
  return isDatabaseUnavailable(e.cause, depth + 1);
}

/**
 * What may be logged or shown of a database error: its code (SQLSTATE, or the driver's) and the
 * driver's own words, without the SQL and bound values that knex puts in front of them (they may
 * hold tokens, secrets or personal data). The code is `databaseCode`, not `code`: the logger redacts
 * any field named `code` (an authorization code), and an operator needs to read this one.
 */
export function describeDatabaseError(err: unknown): { databaseCode: string | null; error: string } {
  const e = err as ErrorShape;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  const cut = message.lastIndexOf(' - ');
  return { databaseCode: typeof e?.code === 'string' ? e.code : null, error: (cut >= 0 ? message.slice(cut + 3) : message).slice(0, 300) };
}

/**
 * The kind of an outage, in a few words an operator can act on: the log says one line per kind and
 * interval (outage-log.ts), and /readyz names it.
 *
 * - `pool_exhausted`: every connection of the node's pool is busy, none came free in time.
 * - `database_timeout`: no answer in time (a statement, a connection attempt, a database that hangs).
 * - `database_unreachable`: the database cannot be reached or refuses this node (refused, reset,
 *   terminated, not accepting connections, wrong credentials).
 * - `database_shutdown`: the server is stopping (or a connection was terminated by an administrator).
 * - `database_unwritable`: the server answers but cannot take a write now (a lock not granted in
 *   time, read-only after a failover, disk full).
 * - `database_overloaded`: too many connections, out of memory.
 */
export type DatabaseFailureKind = 'pool_exhausted' | 'database_timeout' | 'database_unreachable' | 'database_shutdown' | 'database_unwritable' | 'database_overloaded' | 'database_unavailable';

const TIMEOUT_MESSAGES = [/Query read timeout/, /^timeout expired$/, /connection timeout/, /timeout exceeded when trying to connect/, /statement timeout/];

export function databaseFailureKind(err: unknown, depth = 0): DatabaseFailureKind {
  if (!err || typeof err !== 'object' || depth > 3) return 'database_unavailable';
  const e = err as ErrorShape & { poolExhausted?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' ? e.message : '';
  if (e.name === 'KnexTimeoutError' || /Knex: Timeout acquiring a connection/.test(message)) return e.poolExhausted === false ? 'database_timeout' : 'pool_exhausted';
  if (code === '57014' || code === 'ETIMEDOUT' || code === 'SQLITE_BUSY' || TIMEOUT_MESSAGES.some((pattern) => pattern.test(message))) return 'database_timeout';
  if (code === '57P01' || code === '57P02' || /administrator command|shutting down/.test(message)) return 'database_shutdown';
  if (code === '55P03' || code === '25006' || code === '53100' || code === 'SQLITE_READONLY' || code === 'SQLITE_FULL') return 'database_unwritable';
  if (/^53/.test(code) || /too many clients/.test(message)) return 'database_overloaded';
  if (code || MESSAGES.some((pattern) => pattern.test(message))) return isDatabaseUnavailable(err) ? 'database_unreachable' : 'database_unavailable';
  return e.cause ? databaseFailureKind(e.cause, depth + 1) : 'database_unavailable';
}
