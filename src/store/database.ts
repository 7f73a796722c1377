import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import { ConfigurationError } from '../config/configuration-error.ts';

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

export function openDatabase(databaseUrl: string): Database {
  if (databaseUrl.startsWith('postgres://') || databaseUrl.startsWith('postgresql://')) {
    return knexFactory({
      client: 'pg',
      connection: databaseUrl,
      pool: { min: 0, max: 10 },
      acquireConnectionTimeout: 10_000,
    });
  }
  if (databaseUrl.startsWith('sqlite:')) {
    const filename = databaseUrl.slice('sqlite:'.length);
    if (!filename) throw new ConfigurationError('environment', 'DATABASE_URL', 'sqlite: needs a file name');
    if (filename !== ':memory:') fs.mkdirSync(path.dirname(filename), { recursive: true });
    return knexFactory({
      client: 'sqlite3',
      connection: { filename },
      useNullAsDefault: true,
      pool: {
        min: 1,
        max: 1,
        afterCreate(connection: { run(sql: string, cb: (err: Error | null) => void): void }, done: (err: Error | null, c: unknown) => void) {
          // WAL lets readers proceed during a write; foreign keys are off by default in SQLite.
          connection.run('PRAGMA journal_mode = WAL', () =>
            connection.run('PRAGMA foreign_keys = ON', () =>
              connection.run('PRAGMA busy_timeout = 5000', (err) => done(err, connection))));
        },
      },
    });
  }
  throw new ConfigurationError('environment', 'DATABASE_URL', 'must start with sqlite: or postgres://');
}

export async function migrate(db: Database): Promise<void> {
  await db.migrate.latest({ migrationSource: new MigrationFolder() });
}

export function now(): number {
  return Date.now();
}

/** True for a unique-key violation on either backend (a lost race, a replay). */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; errno?: number; message?: string };
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT' || /UNIQUE constraint failed/.test(e?.message ?? '');
}
