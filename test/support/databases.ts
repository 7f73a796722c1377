import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import knexFactory from 'knex';
import { isPostgres, migrate, openDatabase, type Database } from '../../src/store/database.ts';

/** PostgreSQL of the development machine and CI (`.ci/run` starts it). */
export const POSTGRES_SERVER = process.env.BRANA_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432';

/** A fresh, migrated database of one backend, and how to remove it. */
export interface TestDatabase {
  backend: 'sqlite' | 'postgres';
  url: string;
  db: Database;
  drop(): Promise<void>;
}

export const BACKENDS = ['sqlite', 'postgres'] as const;

export async function createTestDatabase(backend: 'sqlite' | 'postgres'): Promise<TestDatabase> {
  if (backend === 'sqlite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-db-'));
    const url = `sqlite:${path.join(dir, 'brana.sqlite')}`;
    const db = openDatabase(url);
    await migrate(db);
    return {
      backend,
      url,
      db,
      async drop() {
        await db.destroy();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const name = `brana_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: `${POSTGRES_SERVER}/postgres`, pool: { min: 0, max: 1 } });
  try {
    await admin.raw(`CREATE DATABASE ${name}`);
  } finally {
    await admin.destroy();
  }
  const url = `${POSTGRES_SERVER}/${name}`;
  const db = openDatabase(url);
  await migrate(db);
  return {
    backend,
    url,
    db,
    async drop() {
      await db.destroy();
      const again = knexFactory({ client: 'pg', connection: `${POSTGRES_SERVER}/postgres`, pool: { min: 0, max: 1 } });
      try {
        await again.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await again.destroy();
      }
    },
  };
}

/**
 * Runs `change` as an operator with full database access would: with the append-only triggers out
 * of the way, and back in place afterwards.
 */
export async function asDatabaseOperator<T>(db: Database, change: (db: Database) => Promise<T>): Promise<T> {
  if (isPostgres(db)) {
    const tables = ['assertion_log', 'audit_checkpoint', 'audit_purge'];
    for (const table of tables) await db.raw(`ALTER TABLE ${table} DISABLE TRIGGER USER`);
    try {
      return await change(db);
    } finally {
      for (const table of tables) await db.raw(`ALTER TABLE ${table} ENABLE TRIGGER USER`);
    }
  }
  const triggers = (await db('sqlite_master').where({ type: 'trigger' }).select('name', 'sql')) as Array<{ name: string; sql: string }>;
  for (const trigger of triggers) await db.raw(`DROP TRIGGER ${trigger.name}`);
  try {
    return await change(db);
  } finally {
    for (const trigger of triggers) await db.raw(trigger.sql);
  }
}
