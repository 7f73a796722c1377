import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import { ConfigurationError } from '../config/configuration-error.ts';
import { logger } from '../log/logger.ts';
import { trackWrites } from './request-writes.ts';

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
  return db.client.config.client === 'pg';
}

/** How a node may use its database: bounded, so that an outage fails requests fast instead of hanging them. */
export interface DatabaseLimits {
  /** Connections to PostgreSQL one node may hold. */
  poolMax: number;
  /** How long a statement, a connection attempt or the wait for a free connection may take. */
  timeoutMs: number;
}

export const DEFAULT_DATABASE_LIMITS: DatabaseLimits = { poolMax: 10, timeoutMs: 5000 };

/** knex's own warnings (a dropped connection, a failed connection attempt) as structured log lines. */
const knexLog = {
  warn: (message: unknown) => logger.warn('database', { detail: String(message) }),
  error: (message: unknown) => logger.error('database', { detail: String(message) }),
  deprecate: (method: string, alternative: string) => logger.warn('database: deprecated knex call', { method, alternative }),
  debug: () => undefined,
};

/** Held while migrating, so that nodes starting together migrate one after the other. */
const MIGRATION_LOCK_KEY = 4_242_007;

export function openDatabase(databaseUrl: string, limits: Partial<DatabaseLimits> = {}): Database {
  const { poolMax, timeoutMs } = { ...DEFAULT_DATABASE_LIMITS, ...limits };
  if (databaseUrl.startsWith('postgres://') || databaseUrl.startsWith('postgresql://')) {
    // A connection whose query the client gave up on (no answer from the server or the network) may
    // still have that query, or a transaction, open on the server: it is never handed out again.
    const stalled = new Set<string>();
    const db = knexFactory({
      client: 'pg',
      log: knexLog,
      connection: {
        connectionString: databaseUrl,
        application_name: 'brana',
        connectionTimeoutMillis: timeoutMs,
        // The server stops a statement (or a wait for a lock) that takes too long…
        statement_timeout: timeoutMs,
        // …and the client gives up on a server or network that no longer answers at all.
        query_timeout: timeoutMs + 2000,
        // A transaction left open by a request that died cannot hold its locks for long.
        idle_in_transaction_session_timeout: Math.max(60_000, timeoutMs * 4),
        keepAlive: true,
      },
      pool: {
        min: 0,
        max: poolMax,
        idleTimeoutMillis: 30_000,
        validate: (connection: { __knexUid?: string }) => !stalled.delete(connection.__knexUid ?? ''),
      },
      acquireConnectionTimeout: timeoutMs,
    });
    db.on('query-error', (err: unknown, query: { __knexUid?: string }) => {
      if (/Query read timeout/.test((err as Error)?.message ?? '') && query?.__knexUid) stalled.add(query.__knexUid);
    });
    trackWrites(db);
    return db;
  }
  if (databaseUrl.startsWith('sqlite:')) {
    const filename = databaseUrl.slice('sqlite:'.length);
    if (!filename) throw new ConfigurationError('environment', 'DATABASE_URL', 'sqlite: needs a file name');
    if (filename !== ':memory:') fs.mkdirSync(path.dirname(filename), { recursive: true });
    const db = knexFactory({
      client: 'sqlite3',
      log: knexLog,
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
