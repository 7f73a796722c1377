import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import { ConfigurationError } from '../config/configuration-error.ts';
import { logger } from '../log/logger.ts';
import { outageLog } from '../log/outage-log.ts';
import { databaseFailureKind, describeDatabaseError, isDatabaseUnavailable } from './database-unavailable.ts';
import { currentRequestWrites, trackWrites, type RequestWrites } from './request-writes.ts';
import { preparedOnce, type SqliteDialectClientClass } from './sqlite-statements.ts';

// PostgreSQL returns BIGINT as a string; every BIGINT we store is an epoch-millisecond time or a
// sequence number, well inside Number's exact range.
pg.types.setTypeParser(20, (value: string) => Number(value));

export type Database = Knex;
export type Transaction = Knex.Transaction;
export type Queryable = Knex | Knex.Transaction;

const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../migrations');

/** Migrations are the only source of the schema; they are plain modules in `migrations/`. */
class MigrationFolder implements Knex.MigrationSource<string> {
  async getMigrations(): Promise<string[]> {
    return fs.readdirSync(MIGRATIONS_DIR).filter((name) => /^\d{3}_[a-z0-9_]+\.ts$/.test(name)).sort();
  }
  getMigrationName(migration: string): string {
    return migration;
  }
  async getMigration(migration: string): Promise<Knex.Migration> {
    return import(pathToFileURL(path.join(MIGRATIONS_DIR, migration)).href) as Promise<Knex.Migration>;
  }
}

export function isPostgres(db: Queryable): boolean {
  return (db.client as { driverName?: string }).driverName === 'pg';
}

/** How a node may use its database: bounded, so that an outage fails requests fast instead of hanging them. */
export interface DatabaseLimits {
  /** Connections to PostgreSQL one node may hold. */
  poolMax: number;
  /**
   * The longest a request waits for the database (BRANA_DB_TIMEOUT_MS): for a free connection, for a
   * new one, or for the answer to a statement. A request that meets an outage waits once: its later
   * calls fail at once (database-use.ts).
   */
  timeoutMs: number;
}

export const DEFAULT_DATABASE_LIMITS: DatabaseLimits = { poolMax: 10, timeoutMs: 5000 };

/**
 * The server's own limit on a statement (and on its wait for a lock), a little under the client's:
 * a server that is up but slow cancels the statement itself, with a clear error, and the connection
 * stays usable; the client's limit is for a server or network that no longer answers at all.
 */
export function serverStatementTimeoutMs(timeoutMs: number): number {
  return timeoutMs - Math.min(500, Math.round(timeoutMs / 10));
}

/** An operational warning of knex (a connection that failed or dropped), as knex words its first line. */
const KNEX_OPERATIONAL = /^(Acquire connection error|Connection Error): (?:\w*Error: )?(.*)$/;

/**
 * knex's own warnings as structured log lines. A failed connection attempt or a dropped connection is
 * an outage, not a bug: one line of its kind per interval, without the stack knex appends to it.
 */
const knexLog = {
  warn: (message: unknown) => {
    const text = String(message);
    const operational = KNEX_OPERATIONAL.exec(text.split('\n', 1)[0] ?? '');
    if (operational) {
      const error = operational[2] ?? '';
      const kind = /operation timed out/.test(error) ? 'database_timeout' : databaseFailureKind(new Error(error));
      outageLog.report('warn', 'database', kind, { detail: `${operational[1]}: ${error}` });
      return;
    }
    logger.warn('database', { detail: text });
  },
  error: (message: unknown) => logger.error('database', { detail: String(message) }),
  deprecate: (method: string, alternative: string) => logger.warn('database: deprecated knex call', { method, alternative }),
  debug: () => undefined,
};

/** A connection as knex's clients hand it around, with what Brána notes on it. */
interface Connection {
  __knexUid?: string;
  /** The client gave up waiting for an answer on it: it may still have a query or a transaction open on the server. */
  __branaStalled?: boolean;
}

interface QueryObject {
  sql: string;
}

interface TarnPool {
  max: number;
  numUsed(): number;
}

/** The part of knex's dialect clients (knex/lib/client.js) that Brána extends. */
interface DialectClient {
  config: Knex.Config;
  pool?: TarnPool;
  acquireConnection(): Promise<Connection>;
  _query(connection: Connection, obj: QueryObject): Promise<unknown>;
}

type DialectClientClass = new (config: Knex.Config) => DialectClient;

const requireModule = createRequire(import.meta.url);
const KnexPostgresClient = requireModule('knex/lib/dialects/postgres/index.js') as DialectClientClass;

/** A later database call of a request the database already failed: not tried (see `waitingOnce`). */
export class DatabaseNotTriedAgain extends Error {
  constructor(first: unknown) {
    super(`not tried again after: ${describeDatabaseError(first).error}`, { cause: first });
    this.name = 'DatabaseNotTriedAgain';
  }
}

function failed(writes: RequestWrites | undefined, err: unknown): void {
  if (!writes || !isDatabaseUnavailable(err)) return;
  writes.failed = err;
  writes.failedAt = Date.now();
}

/**
 * knex's client of a dialect, so that a request waits for a failed database once, not once per call.
 * Once the database failed a request (no answer in time, no connection, refused; recorded in its
 * RequestWrites), the request's later calls (its error path's reads and writes) fail at once, for as
 * long as a request may last (the timeout): work that outlives the request in its async context (a
 * timer it started) is not refused for ever. A connection whose answer never came refuses any further
 * statement (knex's ROLLBACK would wait as long again) and the pool discards it.
 */
function waitingOnce(Base: DialectClientClass): DialectClientClass {
  return class extends Base {
    override async acquireConnection(): Promise<Connection> {
      const writes = currentRequestWrites();
      if (writes?.failed && Date.now() - writes.failedAt < (this.config.acquireConnectionTimeout ?? 0)) throw new DatabaseNotTriedAgain(writes.failed);
      try {
        return await super.acquireConnection();
      } catch (err) {
        // knex says "the pool is probably full" either way: tell a full pool from a database that did not answer.
        if ((err as Error)?.name === 'KnexTimeoutError' && this.pool) (err as { poolExhausted?: boolean }).poolExhausted = this.pool.numUsed() >= this.pool.max;
        failed(writes, err);
        throw err;
      }
    }

    override async _query(connection: Connection, obj: QueryObject): Promise<unknown> {
      if (connection.__branaStalled) throw new Error('the connection gave no answer before (Query read timeout) and is not queryable');
      try {
        return await super._query(connection, obj);
      } catch (err) {
        if (/Query read timeout/.test((err as Error)?.message ?? '')) connection.__branaStalled = true;
        failed(currentRequestWrites(), err);
        throw err;
      }
    }
  };
}

const PostgresClient = waitingOnce(KnexPostgresClient);
// SQLite: each connection's statements are prepared once (sqlite-statements.ts).
const KnexSqliteClient = requireModule('knex/lib/dialects/sqlite3/index.js') as SqliteDialectClientClass;
const SqliteClient = waitingOnce(preparedOnce(KnexSqliteClient) as unknown as DialectClientClass);

/** Held while migrating, so that nodes starting together migrate one after the other. */
const MIGRATION_LOCK_KEY = 4_242_007;

export function openDatabase(databaseUrl: string, limits: Partial<DatabaseLimits> = {}): Database {
  const { poolMax, timeoutMs } = { ...DEFAULT_DATABASE_LIMITS, ...limits };
  if (databaseUrl.startsWith('postgres://') || databaseUrl.startsWith('postgresql://')) {
    const db = knexFactory({
      client: PostgresClient as unknown as typeof Knex.Client,
      log: knexLog,
      // Errors name the SQL but not its values (they may be tokens, secrets or personal data).
      compileSqlOnError: false,
      connection: {
        connectionString: databaseUrl,
        application_name: 'brana',
        connectionTimeoutMillis: timeoutMs,
        // The server stops a statement (or a wait for a lock) that takes too long…
        statement_timeout: serverStatementTimeoutMs(timeoutMs),
        // …and the client gives up on a server or network that no longer answers at all.
        query_timeout: timeoutMs,
        // A transaction left open by a request that died cannot hold its locks for long.
        idle_in_transaction_session_timeout: Math.max(60_000, timeoutMs * 4),
        keepAlive: true,
      },
      pool: {
        min: 0,
        max: poolMax,
        idleTimeoutMillis: 30_000,
        // A connection whose answer never came is never handed out again.
        validate: (connection: Connection) => !connection.__branaStalled,
      },
      acquireConnectionTimeout: timeoutMs,
    });
    trackWrites(db);
    return db;
  }
  if (databaseUrl.startsWith('sqlite:')) {
    const filename = databaseUrl.slice('sqlite:'.length);
    if (!filename) throw new ConfigurationError('environment', 'DATABASE_URL', 'sqlite: needs a file name');
    if (filename !== ':memory:') fs.mkdirSync(path.dirname(filename), { recursive: true });
    const db = knexFactory({
      client: SqliteClient as unknown as typeof Knex.Client,
      log: knexLog,
      compileSqlOnError: false,
      connection: { filename },
      useNullAsDefault: true,
      acquireConnectionTimeout: timeoutMs,
      pool: {
        min: 1,
        max: 1,
        afterCreate(connection: { run(sql: string, cb: (err: Error | null) => void): void }, done: (err: Error | null, c: unknown) => void) {
          // WAL lets readers proceed during a write; foreign keys are off by default in SQLite.
          connection.run('PRAGMA journal_mode = WAL', () =>
            connection.run('PRAGMA foreign_keys = ON', () =>
              connection.run(`PRAGMA busy_timeout = ${timeoutMs}`, (err) => done(err, connection))));
        },
      },
    });
    trackWrites(db);
    return db;
  }
  throw new ConfigurationError('environment', 'DATABASE_URL', 'must start with sqlite: or postgres://');
}

/**
 * Brings the schema up to date. On PostgreSQL, nodes starting at the same time take turns (an advisory
 * lock), and migrations run without the statement timeout that guards requests: building an index on
 * a large table may take longer.
 */
export async function migrate(db: Database): Promise<void> {
  if (!isPostgres(db)) {
    await db.migrate.latest({ migrationSource: new MigrationFolder() });
    return;
  }
  const config = db.client.config as Knex.Config;
  const connection = config.connection as Record<string, unknown>;
  const migrator = knexFactory({
    ...config,
    connection: { ...connection, statement_timeout: 0, query_timeout: undefined, idle_in_transaction_session_timeout: 0 },
    pool: { min: 0, max: 2 },
  });
  try {
    await migrator.transaction(async (trx) => {
      await trx.raw('SELECT pg_advisory_xact_lock(?)', [MIGRATION_LOCK_KEY]);
      await migrator.migrate.latest({ migrationSource: new MigrationFolder() });
    });
  } finally {
    await migrator.destroy();
  }
}

export function now(): number {
  return Date.now();
}
