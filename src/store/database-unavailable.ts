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
