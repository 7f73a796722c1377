/**
 * What each HTTP request of a brokered login costs Brána, in CPU and SQL, averaged over sequential
 * logins in one process (development IdP, SQLite, consent already given): where issue 14's time
 * goes by step. The development IdP's own requests run in the same process and are listed apart.
 *   node bench/request-cost.ts [logins] [--idp-hint]
 * With --idp-hint the SeP names the means (the bench's flow): the login is handed off at `/auth`.
 */
import { completeLogin } from '../test/support/login-driver.ts';
import { startTestBroker } from '../test/support/test-broker.ts';

const logins = Number(process.argv.slice(2).find((arg) => /^\d+$/.test(arg)) ?? 60);
const idpHint = process.argv.includes('--idp-hint') ? { idpHint: 'eobcanka' } : {};
const brana = await startTestBroker();
const sep = await brana.registerSep();
const login = () => completeLogin(brana.url.origin, sep, { scope: 'openid profile', means: 'eobcanka', login: '100000001', permanent: true, ...idpHint });
for (let i = 0; i < 10; i += 1) await login(); // consent, JIT, caches

interface Cost {
  count: number;
  cpuUs: number;
  statements: number;
}
const costs = new Map<string, Cost>();
let statements = 0;
brana.broker.db.on('query', () => (statements += 1));
const listeners = brana.server.listeners('request') as Array<(...args: unknown[]) => void>;
brana.server.removeAllListeners('request');
brana.server.on('request', (req: { method: string; url: string }, res: { once(event: string, listener: () => void): void }) => {
  const name = `${req.method} ${req.url.split('?')[0]!.replace(/\/[A-Za-z0-9_-]{16,}/g, '/…')}`;
  const started = process.cpuUsage();
  const statementsBefore = statements;
  res.once('finish', () => {
    const used = process.cpuUsage(started);
    const cost = costs.get(name) ?? { count: 0, cpuUs: 0, statements: 0 };
    cost.count += 1;
    cost.cpuUs += used.user + used.system;
    cost.statements += statements - statementsBefore;
    costs.set(name, cost);
  });
  for (const listener of listeners) listener(req, res);
});
for (let i = 0; i < logins; i += 1) await login();
let total = 0;
const rows = [...costs].map(([name, cost]) => ({ name, perLogin: cost.count / logins, cpuMs: cost.cpuUs / cost.count / 1000, statements: cost.statements / cost.count }));
process.stdout.write(`${logins} sequential logins; CPU-ms and SQL statements per request (the request's own work until its response finished)\n\n| request | per login | CPU-ms | SQL |\n|---|---|---|---|\n`);
for (const row of rows) {
  total += row.cpuMs * row.perLogin;
  process.stdout.write(`| ${row.name} | ${row.perLogin.toFixed(1)} | ${row.cpuMs.toFixed(2)} | ${row.statements.toFixed(1)} |\n`);
}
process.stdout.write(`\n${total.toFixed(1)} CPU-ms per login in these requests (including the development IdP's)\n`);
await brana.close();
