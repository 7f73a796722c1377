/**
 * The SQL one brokered login sends, statement by statement, grouped by the HTTP request that sent
 * it (development IdP, SQLite, permanent consent already given): where issue 14's "SQL per login"
 * goes. Not a benchmark: a trace.
 *   node bench/sql-trace.ts
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { completeLogin } from '../test/support/login-driver.ts';
import { startTestBroker } from '../test/support/test-broker.ts';

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
await completeLogin(brana.url.origin, sep, { scope: 'openid profile', means: 'eobcanka', login: '100000001' });
let total = 0;
for (const [request, statements] of byRequest) {
  total += statements.length;
  process.stdout.write(`\n${request}: ${statements.length}\n${statements.map((sql) => `  ${sql}`).join('\n')}\n`);
}
process.stdout.write(`\n${total} statements\n`);
await brana.close();
