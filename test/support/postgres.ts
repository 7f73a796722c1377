import { randomBytes } from 'node:crypto';
import knexFactory, { type Knex } from 'knex';
import { POSTGRES_SERVER } from './databases.ts';

/** The server's own `postgres` database, from which test databases are created, cut off and dropped. */
export const POSTGRES_ADMIN_URL = `${POSTGRES_SERVER}/postgres`;

/**
 * A fresh, empty PostgreSQL database that a test can take away from under a running node and give
 * back, for the cluster and outage tests. The shared server itself is never stopped: other people's
 * tests use it too. (databases.ts gives a migrated database of either backend for store tests.)
 */
export interface PostgresDatabase {
  name: string;
  /** DATABASE_URL for Brána. */
  url: string;
  /** A connection to the server's `postgres` database, for what a test does to this database from outside. */
  admin: Knex;
  /** The database goes out of reach: new connections are refused, open ones are terminated. */
  cutOff(): Promise<void>;
  /** It comes back. */
  restore(): Promise<void>;
  /** Terminates the open connections of this database (as a restart or a failover does). */
  terminateConnections(): Promise<number>;
  /**
   * Takes a lock on a table from outside, in a transaction of its own, so that a writer of that table
   * waits at that point of its own transaction; `waiters()` tells when it does. `ACCESS EXCLUSIVE`
   * stops readers of the table too (the default, `EXCLUSIVE`, only writers).
   */
  lockTable(table: string, mode?: 'EXCLUSIVE' | 'ACCESS EXCLUSIVE'): Promise<{ waiters(): Promise<number>; release(): Promise<void> }>;
  drop(): Promise<void>;
}

function urlFor(database: string): string {
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${database}`;
  return url.toString();
}

export async function createPostgresDatabase(label: string): Promise<PostgresDatabase> {
  const name = `brana_test_${label.replace(/[^a-z0-9]/g, '')}_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: POSTGRES_ADMIN_URL, pool: { min: 0, max: 2 } });
  try {
    await admin.raw(`CREATE DATABASE "${name}"`);
  } catch (err) {
    await admin.destroy();
    throw new Error(`PostgreSQL is needed at ${POSTGRES_SERVER} (set BRANA_TEST_POSTGRES; .ci/run starts it): ${(err as Error).message}`);
  }
  const terminateConnections = async () => {
    const result = (await admin.raw('SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE datname = ? AND pid <> pg_backend_pid()', [name])) as { rows: Array<{ n: string }> };
    return Number(result.rows[0]?.n ?? 0);
  };
  return {
    name,
    url: urlFor(name),
    admin,
    async cutOff() {
      await admin.raw(`ALTER DATABASE "${name}" WITH ALLOW_CONNECTIONS false`);
      await terminateConnections();
    },
    async restore() {
      await admin.raw(`ALTER DATABASE "${name}" WITH ALLOW_CONNECTIONS true`);
    },
    terminateConnections,
    async lockTable(table: string, mode: 'EXCLUSIVE' | 'ACCESS EXCLUSIVE' = 'EXCLUSIVE') {
      const holder = knexFactory({ client: 'pg', connection: urlFor(name), pool: { min: 0, max: 1 } });
      const trx = await holder.transaction();
      await trx.raw(`LOCK TABLE "${table}" IN ${mode} MODE`);
      return {
        async waiters() {
          const result = (await admin.raw(
            "SELECT count(*) AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE a.datname = ? AND NOT l.granted",
            [name],
          )) as { rows: Array<{ n: string }> };
          return Number(result.rows[0]?.n ?? 0);
        },
        async release() {
          await trx.rollback().catch(() => undefined);
          await holder.destroy();
        },
      };
    },
    async drop() {
      try {
        await admin.raw(`ALTER DATABASE "${name}" WITH ALLOW_CONNECTIONS true`);
        await terminateConnections();
        await admin.raw(`DROP DATABASE IF EXISTS "${name}"`);
      } finally {
        await admin.destroy();
      }
    },
  };
}
