/**
 * SQLite statements prepared once per connection and reused, as Python's sqlite3 module and most
 * SQLite drivers do by default.
 *
 * knex's sqlite3 client sends each query as `connection.all(sql, bindings)` (or `run`), which
 * node-sqlite3 turns into three trips through libuv's thread pool: prepare, step, finalize. A login
 * sends the same few dozen statements every time, so here each connection keeps its statements
 * prepared (by SQL text, at most STATEMENTS_PER_CONNECTION, least recently used dropped first) and a
 * query is one trip: bind, step to the end, and the statement is reset at its next use.
 *
 * Only queries and transaction control are kept; anything else (PRAGMA, DDL in migrations) is sent
 * as knex sends it. A statement whose preparation fails is not kept, and the query fails with that
 * error. A connection finalizes its statements before it closes (SQLite refuses to close otherwise).
 */

/** node-sqlite3's Statement, as far as it is used here. */
interface Statement {
  lastID?: number;
  changes?: number;
  all(bindings: unknown[], callback: (this: Statement, err: Error | null, rows: unknown[]) => void): Statement;
  run(bindings: unknown[], callback: (this: Statement, err: Error | null) => void): Statement;
  finalize(callback?: (err: Error | null) => void): void;
}

/** node-sqlite3's Database, as far as it is used here. */
interface SqliteConnection {
  prepare(sql: string, callback: (err: Error | null) => void): Statement;
  [STATEMENTS]?: Map<string, Statement>;
}

interface QueryObject {
  sql: string;
  bindings?: unknown[];
  method?: string;
  returning?: unknown;
  response?: unknown;
  context?: unknown;
}

/** The part of knex's sqlite3 client (knex/lib/dialects/sqlite3/index.js) this replaces. */
interface SqliteDialectClient {
  _query(connection: unknown, obj: QueryObject): Promise<unknown>;
  destroyRawConnection(connection: unknown): Promise<void>;
}

export type SqliteDialectClientClass = new (...args: any[]) => SqliteDialectClient;

const STATEMENTS = Symbol('brana.preparedStatements');

/** Enough for every statement of a login and of the background work, with room to spare. */
export const STATEMENTS_PER_CONNECTION = 200;

const KEPT = /^\s*(?:select|insert|update|delete|with|begin|commit|rollback|savepoint|release)\b/i;

/** knex's choice between node-sqlite3's `all` (rows) and `run` (lastID, changes), as knex makes it. */
function callMethodOf(obj: QueryObject): 'all' | 'run' {
  switch (obj.method) {
    case 'insert':
    case 'update':
      return obj.returning ? 'all' : 'run';
    case 'counter':
    case 'del':
      return 'run';
    default:
      return 'all';
  }
}

function statementsOf(connection: SqliteConnection): Map<string, Statement> {
  let statements = connection[STATEMENTS];
  if (!statements) {
    statements = new Map();
    connection[STATEMENTS] = statements;
  }
  return statements;
}

/** The connection's prepared statement for `sql`, prepared now if it has none. */
function preparedStatement(connection: SqliteConnection, sql: string): Statement | Promise<Statement> {
  const statements = statementsOf(connection);
  const kept = statements.get(sql);
  if (kept) {
    // Most recently used last: a Map iterates in insertion order.
    statements.delete(sql);
    statements.set(sql, kept);
    return kept;
  }
  return new Promise((resolve, reject) => {
    const statement = connection.prepare(sql, (err) => {
      if (err) {
        reject(err);
        return;
      }
      statements.set(sql, statement);
      if (statements.size > STATEMENTS_PER_CONNECTION) {
        const [oldestSql, oldest] = statements.entries().next().value as [string, Statement];
        statements.delete(oldestSql);
        oldest.finalize();
      }
      resolve(statement);
    });
  });
}

function execute(statement: Statement, obj: QueryObject): Promise<QueryObject> {
  return new Promise((resolve, reject) => {
    const done = function (this: Statement, err: Error | null, rows?: unknown[]) {
      if (err) {
        reject(err);
        return;
      }
      obj.response = rows;
      // knex reads lastID and changes from here later; the statement itself may have run again by then.
      obj.context = { lastID: this.lastID, changes: this.changes };
      resolve(obj);
    };
    if (callMethodOf(obj) === 'all') statement.all(obj.bindings ?? [], done);
    else statement.run(obj.bindings ?? [], done);
  });
}

/** The number of statements a connection keeps prepared (for tests). */
export function preparedStatementCount(connection: unknown): number {
  return (connection as SqliteConnection)[STATEMENTS]?.size ?? 0;
}

/** knex's sqlite3 client with each connection's statements prepared once. */
export function preparedOnce<T extends SqliteDialectClientClass>(Base: T): T {
  return class extends Base {
    override async _query(connection: unknown, obj: QueryObject): Promise<unknown> {
      if (!obj.sql || !KEPT.test(obj.sql)) return super._query(connection, obj);
      const statement = preparedStatement(connection as SqliteConnection, obj.sql);
      return execute(statement instanceof Promise ? await statement : statement, obj);
    }

    override async destroyRawConnection(connection: unknown): Promise<void> {
      const statements = (connection as SqliteConnection)[STATEMENTS];
      if (statements) {
        await Promise.all([...statements.values()].map((statement) => new Promise<void>((resolve) => statement.finalize(() => resolve()))));
        statements.clear();
      }
      return super.destroyRawConnection(connection);
    }
  };
}
