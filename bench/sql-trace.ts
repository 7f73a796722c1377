/**
 * The SQL one brokered login sends, statement by statement, grouped by the HTTP request that sent
 * it (development IdP, SQLite, permanent consent already given): where issue 14's "SQL per login"
 * goes. Not a benchmark: a trace.
 *   node bench/sql-trace.ts [--idp-hint]
 * With --idp-hint the SeP names the means (the bench's flow): the login is handed off at `/auth`.
 * Each request's line counts its statements and its commits (COMMIT, and writes outside a transaction).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { completeLogin } from '../test/support/login-driver.ts';
import { startTestBroker } from '../test/support/test-broker.ts';
import { isWriteStatement } from '../src/store/request-writes.ts';

const idpHint = process.argv.includes('--idp-hint') ? { idpHint: 'eobcanka' } : {};

const brana = await startTestBroker();
const sep = await brana.registerSep();
await completeLogin(brana.url.origin, sep, { scope: 'openid profile', means: 'eobcanka', login: '100000001', permanent: true });

const current = new AsyncLocalStorage<string>();
const byRequest = new Map<string, string[]>();
brana.broker.db.on('query', (query: { sql: string }) => {
  const request = current.getStore() ?? '(outside a request)';
  const list = byRequest.get(request) ?? [];
  list.push(query.sql.replace(/\s+/g, ' ').slice(0, 160));
  byRequest.set(request, list);
});
// Each request's statements: the request event runs in its own async context.
const listeners = brana.server.listeners('request') as Array<(...args: unknown[]) => void>;
brana.server.removeAllListeners('request');
brana.server.on('request', (req: { method: string; url: string }, res: unknown) =>
  current.run(`${req.method} ${req.url.split('?')[0]!.replace(/\/[A-Za-z0-9_-]{16,}/g, '/…')}`, () => listeners.forEach((listener) => listener(req, res))),
);
await completeLogin(brana.url.origin, sep, { scope: 'openid profile', means: 'eobcanka', login: '100000001', ...idpHint });
let total = 0;
let totalCommits = 0;
for (const [request, statements] of byRequest) {
  total += statements.length;
  const commits = commitsOf(statements);
  totalCommits += commits;
  process.stdout.write(`\n${request}: ${statements.length} statements, ${commits} commits\n${statements.map((sql) => `  ${sql}`).join('\n')}\n`);
}
process.stdout.write(`\n${total} statements, ${totalCommits} commits\n`);
await brana.close();

/** COMMITs, and writes made outside a transaction (each its own commit). */
function commitsOf(statements: readonly string[]): number {
  let commits = 0;
  let open = false;
  for (const sql of statements) {
    if (/^BEGIN\b/i.test(sql)) open = true;
    else if (/^(COMMIT|ROLLBACK)\b(?!\s+TO\b)/i.test(sql)) {
      if (/^COMMIT/i.test(sql)) commits += 1;
      open = false;
    } else if (!open && isWriteStatement(sql)) commits += 1;
  }
  return commits;
}
