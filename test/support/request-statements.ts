import { AsyncLocalStorage } from 'node:async_hooks';
import type { TestBroker } from './test-broker.ts';

/**
 * The SQL of the last HTTP request whose URL begins with `prefix`, as it was sent (not another
 * request's, nor the background's): each request runs in its own async context (as in bench/sql-trace.ts).
 * Call once, before the requests; `last()` gives the request's own statements (withoutSequencer).
 */
export function requestStatements(brana: TestBroker, prefix: string): { last(): string[] } {
  const counted = new AsyncLocalStorage<string[]>();
  let last: string[] = [];
  brana.broker.db.on('query', (query: { sql: string }) => counted.getStore()?.push(query.sql.trimStart()));
  const listeners = brana.server.listeners('request') as Array<(...args: unknown[]) => void>;
  brana.server.removeAllListeners('request');
  brana.server.on('request', (req: { url?: string }, ...rest: unknown[]) => {
    const statements: string[] = [];
    if (req.url?.startsWith(prefix)) last = statements;
    counted.run(statements, () => listeners.forEach((listener) => listener(req, ...rest)));
  });
  return { last: () => withoutSequencer(last) };
}

/** Without the log sequencer's transactions: on PostgreSQL it may chain staged records in a request's time, in a transaction of its own. */
function withoutSequencer(statements: string[]): string[] {
  const own: string[] = [];
  let transaction: string[] | undefined;
  for (const sql of statements) {
    if (/^BEGIN\b/i.test(sql)) transaction = [];
    if (!transaction) {
      own.push(sql);
      continue;
    }
    transaction.push(sql);
    if (/^(COMMIT|ROLLBACK)\b/i.test(sql)) {
      if (!transaction.some((statement) => /pg_try_advisory_xact_lock/i.test(statement))) own.push(...transaction);
      transaction = undefined;
    }
  }
  // A transaction still open when the request has answered is not the request's.
  return own;
}

/** Whether statement `at` is inside a transaction. */
export function inTransaction(statements: string[], at: number): boolean {
  const control = statements.slice(0, at).findLast((sql) => /^(BEGIN|COMMIT|ROLLBACK)\b/i.test(sql));
  return control !== undefined && /^BEGIN/i.test(control);
}
