/**
 * Where the CPU of a code's redemption (POST /token) and of a userinfo request (GET /me) goes, by
 * phase. Logins are driven up to their code first (development IdP, SQLite, consent already given);
 * then only the token requests run, one at a time, then only the userinfo requests, twice:
 * - unprofiled: each request's CPU (process.cpuUsage from its arrival to its response's end), and
 *   what the other threads did meanwhile (/proc/self/task/<tid>/schedstat): libuv's pool
 *   (node-sqlite3's statements, WebCrypto's RS256 signature) and V8's helpers (GC); the rest of the
 *   request's CPU is the main thread's;
 * - under the CPU profiler: the main thread's samples inside the requests' windows, each given to
 *   the phase of the innermost frame that names one; the shares scale the unprofiled main thread.
 * The pool's part is split with an RS256 signature measured alone (one per token request).
 *   node bench/token-cost.ts [codes per pass and broker, ≤ 40] [brokers] [prefix to keep profiles]
 */
import { spawnSync } from 'node:child_process';
import { webcrypto } from 'node:crypto';
import fs from 'node:fs';
import { Session } from 'node:inspector/promises';
import { fileURLToPath } from 'node:url';
import { BROKER_NODE_FLAGS, runsWithBrokerNodeFlags } from '../src/node-flags.ts';
import { authorizationResponse, chooseMeans, decideConsent, loginAtIdp, redeemCode, returnToBrana, startLogin, userinfo, type Sep } from '../test/support/login-driver.ts';
import { startTestBroker, type TestBroker } from '../test/support/test-broker.ts';

// Measured as a broker node runs (AsyncLocalStorage without promise hooks, above all).
if (!runsWithBrokerNodeFlags()) {
  const run = spawnSync(process.execPath, [...BROKER_NODE_FLAGS, ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(run.status ?? 1);
}

// Two passes' codes and a few to warm up per broker: the login rate limit allows ~90.
const codesPerPass = Math.min(Number(process.argv[2] ?? 40), 40);
const brokers = Number(process.argv[3] ?? 3);
const keepProfile = process.argv[4];

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/**
 * The phases, tried from the sampled function outwards: the innermost frame that names one decides
 * (SQL sent from the log's code is SQL; a hash computed by the log is the log's).
 */
const PHASES: Array<[string, (frame: ProfileNode['callFrame']) => boolean]> = [
  ['SQL: knex + node-sqlite3, main thread', (f) => /node_modules\/(knex|sqlite3|tarn)\//.test(f.url) || /sqlite-statements|database\.ts|database-unavailable/.test(f.url)],
  ['ID token: JWT and RS256 signature (jose)', (f) => /node_modules\/jose\//.test(f.url) || /oidc-provider\/lib\/(models\/id_token|helpers\/jwt)/.test(f.url)],
  ['token_issued record: content, chain hash, seal', (f) => /src\/audit\//.test(f.url) || /src\/oidc\/audit-hooks/.test(f.url)],
  ['claims and pseudonyms (account.ts, pseudonym.ts, register)', (f) => /src\/(oidc\/account|pseudonym|identity)\//.test(f.url) || /src\/oidc\/account\.ts/.test(f.url)],
  ['model store: rows to models (oidc-model-store, request-writes)', (f) => /src\/store\/(oidc-model-store|request-writes)/.test(f.url)],
  ['SeP lookup (sep-store, client adapter, client metadata)', (f) => /src\/(sep\/|oidc\/sep-client-adapter|oidc\/client-metadata)/.test(f.url)],
  ['client authentication (oidc-provider client_auth, secret compare)', (f) => /oidc-provider\/lib\/shared\/(client_auth|token_auth)/.test(f.url)],
  ['oidc-provider: token, grant, models, checks', (f) => /node_modules\/(oidc-provider|@koa|koa|koa-compose|raw-body|co-body|http-errors|statuses|cookies|keygrip|content-type|mime-types|accepts|type-is|quick-lru|lru-cache)\//.test(f.url)],
  ['Brána around oidc-provider (transaction, audit, timing, 503, metrics)', (f) => /src\/(oidc|metrics|store|http)\//.test(f.url)],
  ['Express, helmet, rate limit', (f) => /node_modules\/(express|router|helmet|express-rate-limit|finalhandler|send|serve-static|body-parser|on-finished|depd|debug|qs|parseurl)\//.test(f.url)],
  ['HTTP server: parse and write (node:http, net)', (f) => /^node:(_http|http|net|stream|internal\/(http|streams|stream_base))/.test(f.url)],
];
const GC = '(garbage collector)';

function categorise(profile: Profile): (id: number) => string {
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const cache = new Map<number, string>();
  return (id) => {
    const known = cache.get(id);
    if (known) return known;
    let phase: string | undefined;
    const leaf = byId.get(id)!;
    if (leaf.callFrame.functionName === GC) phase = 'garbage collection (main thread)';
    for (let at: number | undefined = id; !phase && at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)!.callFrame;
      phase = PHASES.find(([, test]) => test(frame))?.[0];
    }
    phase ??= 'other (node internals, promises, timers)';
    cache.set(id, phase);
    return phase;
  };
}

interface Window {
  start: bigint;
  end: bigint;
  cpuUs: number;
  statements: number;
  /** CPU ns of the libuv pool's threads and of V8's (and Node's other) helper threads meanwhile. */
  pool: number;
  v8: number;
}

/** CPU nanoseconds so far of this process's threads, by kind. */
function threadCpu(): { main: number; pool: number; v8: number } {
  const totals = { main: 0, pool: 0, v8: 0 };
  // (schedstat: nanoseconds on a CPU; comm: the thread's name, libuv-worker for the pool.)
  for (const tid of fs.readdirSync('/proc/self/task')) {
    let ns: number;
    let name: string;
    try {
      ns = Number(fs.readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      name = fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
    } catch {
      continue; // a thread that ended meanwhile
    }
    if (tid === String(process.pid)) totals.main += ns;
    else if (name === 'libuv-worker') totals.pool += ns;
    else totals.v8 += ns;
  }
  return totals;
}

/** Wraps the broker's request listener: each request's window, CPU and SQL statements. */
function watchRequests(brana: TestBroker, windows: Window[]): void {
  let statements = 0;
  brana.broker.db.on('query', () => (statements += 1));
  const listeners = brana.server.listeners('request') as Array<(...args: unknown[]) => void>;
  brana.server.removeAllListeners('request');
  brana.server.on('request', (req: unknown, res: { once(event: string, listener: () => void): void }) => {
    // The threads are read outside the cpuUsage window, so that reading them is not counted.
    const threads = threadCpu();
    const started = process.cpuUsage();
    const start = process.hrtime.bigint();
    const before = statements;
    res.once('finish', () => {
      const used = process.cpuUsage(started);
      const end = process.hrtime.bigint();
      const after = threadCpu();
      windows.push({ start, end, cpuUs: used.user + used.system, statements: statements - before, pool: after.pool - threads.pool, v8: after.v8 - threads.v8 });
    });
    for (const listener of listeners) listener(req, res);
  });
}

/** Logins up to their code: the code and its verifier, ready to redeem. */
async function codesAt(brana: TestBroker, sep: Sep, count: number): Promise<Array<{ code: string; verifier: string }>> {
  const codes = [];
  for (let i = 0; i < count; i += 1) {
    const started = await startLogin(brana.url.origin, sep, { scope: 'openid profile' });
    let response = started.response;
    if (response.status === 200 && /name="means"/.test(response.text)) response = await chooseMeans(started.citizen, response, 'eobcanka');
    let next = await returnToBrana(started.citizen, await loginAtIdp(started.citizen, response, '100000001'));
    if (next.status === 200 && /name="decision"/.test(next.text)) next = await decideConsent(started.citizen, next, 'agree', true);
    codes.push({ code: authorizationResponse(next, sep).get('code')!, verifier: started.codeVerifier });
  }
  return codes;
}

const session = new Session();
session.connect();
await session.post('Profiler.enable');
await session.post('Profiler.setSamplingInterval', { interval: 100 });

interface Measured {
  windows: Window[];
  profiled: Window[];
  phases: Map<string, number>;
  sampledUs: number;
}
const empty = (): Measured => ({ windows: [], profiled: [], phases: new Map(), sampledUs: 0 });
const results = { token: empty(), userinfo: empty() };

/** Runs requests one at a time; their windows go to `into`. */
async function unprofiled(into: Measured, requests: Array<() => Promise<unknown>>, seen: Window[]): Promise<void> {
  const mark = seen.length;
  for (const request of requests) await request();
  into.windows.push(...seen.slice(mark));
}

/** Runs requests one at a time under the profiler; their windows' samples go to the phases. */
async function profiled(into: Measured, requests: Array<() => Promise<unknown>>, seen: Window[]): Promise<void> {
  const mark = seen.length;
  await session.post('Profiler.start');
  for (const request of requests) await request();
  const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: Profile };
  const windows = seen.slice(mark);
  if (keepProfile) fs.writeFileSync(`${keepProfile}-${into === results.token ? 'token' : 'userinfo'}-${into.profiled.length}.cpuprofile`, JSON.stringify(profile));
  const phaseOf = categorise(profile);
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  // Profile timestamps are CLOCK_MONOTONIC microseconds, as process.hrtime.
  let at = profile.startTime;
  let w = 0;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    const ns = BigInt(Math.round(at * 1000));
    while (w < windows.length && windows[w]!.end < ns) w += 1;
    const window = windows[w];
    if (!window || window.start > ns) return;
    if (byId.get(id)?.callFrame.functionName === '(idle)') return;
    // A sample stands for the time since the previous one.
    into.sampledUs += delta;
    const phase = phaseOf(id);
    into.phases.set(phase, (into.phases.get(phase) ?? 0) + delta);
  });
  into.profiled.push(...windows);
}

for (let b = 0; b < brokers; b += 1) {
  const brana = await startTestBroker();
  const sep = await brana.registerSep();
  const seen: Window[] = [];
  watchRequests(brana, seen);
  const origin = brana.url.origin;
  // Warm: consent, JIT, caches, a few tokens and userinfo requests.
  for (const { code, verifier } of await codesAt(brana, sep, 8)) {
    const token = await redeemCode(origin, sep, code, verifier);
    await userinfo(origin, (token.body as { access_token: string }).access_token);
  }
  for (const run of [unprofiled, profiled]) {
    const codes = await codesAt(brana, sep, codesPerPass);
    const tokens: string[] = [];
    await run(
      results.token,
      codes.map(({ code, verifier }) => async () => {
        const answer = await redeemCode(origin, sep, code, verifier);
        if (answer.status !== 200) throw new Error(`token endpoint answered ${answer.status}: ${answer.text}`);
        tokens.push((answer.body as { access_token: string }).access_token);
      }),
      seen,
    );
    await run(
      results.userinfo,
      tokens.map((token) => async () => {
        const answer = await userinfo(origin, token);
        if (answer.status !== 200) throw new Error(`userinfo answered ${answer.status}: ${answer.text}`);
      }),
      seen,
    );
  }
  await brana.close();
}
session.disconnect();

/** One RS256 signature through WebCrypto, as jose makes it: the pool's CPU-ms, alone. */
async function rs256PoolMs(): Promise<number> {
  const { privateKey } = await webcrypto.subtle.generateKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, false, ['sign']);
  const data = new Uint8Array(900);
  for (let i = 0; i < 50; i += 1) await webcrypto.subtle.sign('RSASSA-PKCS1-v1_5', privateKey, data);
  const count = 400;
  const before = threadCpu();
  for (let i = 0; i < count; i += 1) await webcrypto.subtle.sign('RSASSA-PKCS1-v1_5', privateKey, data);
  return (threadCpu().pool - before.pool) / count / 1e6;
}
const signatureMs = await rs256PoolMs();

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const ms = (value: number) => value.toFixed(2);
for (const [name, measured] of Object.entries(results)) {
  const n = measured.windows.length;
  const totalMs = measured.windows.reduce((sum, w) => sum + w.cpuUs, 0) / n / 1000;
  const wallMs = measured.windows.reduce((sum, w) => sum + Number(w.end - w.start) / 1e6, 0) / n;
  const statements = measured.windows.reduce((sum, w) => sum + w.statements, 0) / n;
  const poolMs = measured.windows.reduce((sum, w) => sum + w.pool, 0) / n / 1e6;
  const v8Ms = measured.windows.reduce((sum, w) => sum + w.v8, 0) / n / 1e6;
  // The main thread's part of the requests: their total less what the other threads did meanwhile.
  const mainMs = totalMs - poolMs - v8Ms;
  const signed = name === 'token' ? signatureMs : 0;
  process.stdout.write(
    `\n${name === 'token' ? 'POST /token' : 'GET /me'}: ${n} requests (and ${measured.profiled.length} profiled), ${ms(totalMs)} CPU-ms each (median ${ms(median(measured.windows.map((w) => w.cpuUs)) / 1000)}), ${ms(wallMs)} ms wall, ${statements.toFixed(1)} SQL statements\n\n| phase | CPU-ms | share |\n|---|---|---|\n`,
  );
  const rows: Array<[string, number]> = [...measured.phases].sort((a, b) => b[1] - a[1]).map(([phase, us]) => [`main thread: ${phase}`, (us / measured.sampledUs) * mainMs]);
  if (signed) rows.push(['libuv pool: RS256 signature (WebCrypto, measured alone)', signed]);
  rows.push([`libuv pool: SQLite statements${signed ? ' (the rest of the pool)' : ''}`, poolMs - signed]);
  rows.push(['V8 helper threads (GC, compiler)', v8Ms]);
  for (const [phase, value] of rows) process.stdout.write(`| ${phase} | ${ms(value)} | ${((value / totalMs) * 100).toFixed(0)} % |\n`);
  process.stdout.write(`| **total** (process.cpuUsage) | **${ms(totalMs)}** | |\n`);
  process.stdout.write(`\nMain thread ${ms(mainMs)} CPU-ms, split by the profile's shares (under the profiler it was ${ms(measured.sampledUs / measured.profiled.length / 1000)}, sampling included).\n`);
}
