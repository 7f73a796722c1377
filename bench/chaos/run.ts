/**
 * `npm run chaos` — Brána as a cluster under faults: two nodes on a private PostgreSQL behind nginx
 * (deploy/nginx/brana.conf.template), complete brokered logins through nginx, and per scenario a
 * fault injected mid-load — a node killed, terminated or frozen, the database stopped or frozen, a
 * slow population register. Reports what citizens and SePs saw, how long the cluster completed no
 * login, how long recovery took, and whether the database Brána left behind is consistent (the
 * assertion log verified by `brana audit verify`, rows one step should have written together).
 *
 *   npm run chaos                                   every scenario, about 6 minutes
 *   npm run chaos -- --scenarios kill,freeze        some of them (baseline, kill, term, rolling,
 *                                                   freeze, db-stop, db-freeze, register-latency)
 *   npm run chaos -- --duration 60 --concurrency 6 --kills 5 --freeze-seconds 15 --seed 42
 *   npm run chaos -- --help
 *
 * A script, not a test: it asserts nothing (exit 1 only if the suite itself could not run, or
 * --strict and a scenario lost logins, codes, or left the log not intact). Needs nginx
 * (/usr/sbin/nginx, BRANA_CHAOS_NGINX) and PostgreSQL's server binaries (/usr/lib/postgresql/15/bin,
 * BRANA_CHAOS_PG_BIN). Writes bench/results/chaos-<time>.json.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { RegisterService } from '../../test/support/register-service.ts';
import { BENCH_MEANS, benchBrokerEnvironment, commit, freePort, registerBenchSep, startFastIdp, type FastIdp } from '../cluster.ts';
import { oneLogin, type LoginTarget } from '../load-driver.ts';
import { findHalfWrittenRows, HALF_WRITTEN_CHECKS, logSummary, lostCodeFates, verifyAuditLog, type AuditVerification } from './checks.ts';
import { ChaosLoad, latencySummary, longestGap, type LoadTally } from './driver.ts';
import { NGINX_TEMPLATE, readAccessLog, startNginx, type RunningNginx } from './nginx.ts';
import { ChaosNode } from './nodes.ts';
import { PrivatePostgres, summarizePostgresLog } from './private-postgres.ts';
import { DESCRIPTIONS, runFaults, SCENARIOS, seededRandom, type FaultRecord, type ScenarioName, type ScenarioSettings } from './scenarios.ts';
import { serviceUser } from './service-user.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RESULTS = path.join(ROOT, 'bench', 'results');

const USAGE = `npm run chaos -- [options]
  --scenarios LIST          comma-separated: ${SCENARIOS.join(', ')} (default: all)
  --duration S              seconds of load per scenario (default 40)
  --concurrency N           virtual citizens (default 3)
  --kills N                 SIGKILLs in the kill scenario (default 3)
  --terms N                 SIGTERMs in the term scenario (default 2)
  --freezes N               SIGSTOPs in the freeze scenario (default 2)
  --freeze-seconds S        how long a node stays frozen (default 10)
  --db-stop-seconds S       how long the database stays stopped (default 5)
  --db-freeze-seconds S     how long the database stays frozen (default 10: longer than Brána's 5 s database timeout)
  --restart-delay S         a killed or terminated node is started again after this (default 1)
  --rolling-pause S         rolling restart: wait this long after a node is ready before stopping the next
                            (default 0: at once, as a naive deploy script does)
  --register-latency MS     the register's latency in register-latency (default 200)
  --register-concurrency L  the concurrencies register-latency compares (default 1,6)
  --request-timeout S       the driver gives up on one HTTP request after this (default 30)
  --back-channel-retry S    how long the SeP retries a failing token / userinfo call (default 15)
  --nginx-template FILE     another nginx configuration to measure (default: deploy/nginx/brana.conf.template)
  --seed N                  the moments and nodes of the faults (default: random, printed)
  --report FILE             print the results of an earlier run again, from its JSON, and nothing else
  --keep                    keep the temporary folder (logs, nginx config, the database) for inspection
  --strict                  exit 1 if a fault scenario lost logins or codes or left the log not intact`;

const { values } = parseArgs({
  options: {
    scenarios: { type: 'string', default: SCENARIOS.join(',') },
    duration: { type: 'string', default: '40' },
    concurrency: { type: 'string', default: '3' },
    kills: { type: 'string', default: '3' },
    terms: { type: 'string', default: '2' },
    freezes: { type: 'string', default: '2' },
    'freeze-seconds': { type: 'string', default: '10' },
    'db-stop-seconds': { type: 'string', default: '5' },
    'db-freeze-seconds': { type: 'string', default: '10' },
    'restart-delay': { type: 'string', default: '1' },
    'rolling-pause': { type: 'string', default: '0' },
    'register-latency': { type: 'string', default: '200' },
    'register-concurrency': { type: 'string', default: '1,6' },
    'request-timeout': { type: 'string', default: '30' },
    'back-channel-retry': { type: 'string', default: '15' },
    'nginx-template': { type: 'string' },
    seed: { type: 'string' },
    report: { type: 'string' },
    keep: { type: 'boolean', default: false },
    strict: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});

function positive(name: string, value: string | undefined, allowZero = false): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || (!allowZero && n === 0)) {
    process.stderr.write(`--${name}: must be a ${allowZero ? 'non-negative' : 'positive'} number (got ${value})\n${USAGE}\n`);
    process.exit(2);
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// Cleaning up: everything the suite starts is registered here and stopped on every way out.

const cleanups: Array<{ name: string; run: () => Promise<void> | void }> = [];
let cleaningUp: Promise<void> | undefined;
/** Interrupted (Ctrl-C): stop everything at once rather than gracefully. */
let interrupted = false;

function onCleanup(name: string, run: () => Promise<void> | void): void {
  cleanups.push({ name, run });
}

/** Last resort, synchronous: signals to whatever is still running when the process exits. */
const abandons: Array<() => void> = [() => ChaosNode.killAll()];
process.on('exit', () => {
  for (const abandon of abandons) {
    try {
      abandon();
    } catch {
      // already gone
    }
  }
});

function cleanUp(): Promise<void> {
  ChaosNode.closed = true;
  cleaningUp ??= (async () => {
    for (const { name, run } of cleanups.reverse()) {
      let timer: NodeJS.Timeout | undefined;
      try {
        // No step may keep the suite from ending.
        await Promise.race([
          Promise.resolve().then(run),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error('no end within 30 s')), 30_000);
          }),
        ]);
      } catch (err) {
        process.stderr.write(`cleanup of ${name} failed: ${(err as Error).message}\n`);
      } finally {
        clearTimeout(timer);
      }
    }
  })();
  return cleaningUp;
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\n${signal}: stopping the nodes, nginx and PostgreSQL, removing the temporary folder…\n`);
    interrupted = true;
    // A second Ctrl-C while cleaning up ends at once.
    process.once(signal, () => process.exit(130));
    void cleanUp().finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------------------------------------

interface ScenarioResult {
  scenario: ScenarioName;
  description: string;
  durationS: number;
  concurrency: number;
  attempted: number;
  completed: number;
  lost: number;
  /** The error that ended each lost login, by "<step> <status>". */
  lostBy: Record<string, number>;
  backChannelRetried: Record<string, number>;
  codesObtained: number;
  codesSavedByRetry: number;
  codesLost: number;
  codesLostBy: LoadTally['codesLost'];
  /**
   * What became of the lost codes, by "<token issued or not>, code <consumed|unconsumed|gone>": a
   * token issued whose answer never reached the SeP; or no token, and the code consumed (the
   * exchange half-done), unconsumed (never reached a node in time), or gone (its grant revoked when
   * the SeP's retry was taken for a replay).
   */
  codesLostFate: Record<string, number>;
  loginsPerS: number;
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  /** The longest stretch without a completed login anywhere in the cluster, and when it began (s since the load started). */
  longestGapS: number;
  longestGapAtS: number;
  faults: Array<FaultRecord & { firstLoginAfterEndMs: number | null }>;
  /** The worst of the faults: fault end → first completed login, fault end → /readyz 200. */
  recoveryToLoginS: number | null;
  recoveryToReadyS: number | null;
  phases?: Array<{ concurrency: number; registerLatencyMs: number; durationS: number; completed: number; lost: number; loginsPerS: number; latencyMs: { p50: number; p95: number } }>;
  nginx: NginxSummary;
  audit: AuditVerification;
  halfWritten: Record<string, number>;
  log: { byEvent: Record<string, number>; failures: Record<string, number> };
  nodeLogs: Record<string, { errors: number; warnings: number; top: Array<{ message: string; count: number }> }>;
  /** What PostgreSQL logged meanwhile: errors with the statement they cut off, transactions cut off. */
  postgresLog: Record<string, number>;
}

interface NginxSummary {
  requests: number;
  byStatus: Record<string, number>;
  /** Requests nginx moved on to another node (a second upstream address in the access log). */
  movedOn: number;
  movedOnBy: Record<string, number>;
  /** 502/504 nginx answered itself (no node answered). */
  answeredByNginx: Record<string, number>;
  byNode: Record<string, number>;
  errorLog: Record<string, number>;
}

function summarizeNginx(nginx: RunningNginx, accessOffset: number, errorOffset: number, nodeNames: Map<string, string>): NginxSummary {
  const lines = readAccessLog(nginx.accessLog, accessOffset);
  const summary: NginxSummary = { requests: lines.length, byStatus: {}, movedOn: 0, movedOnBy: {}, answeredByNginx: {}, byNode: {}, errorLog: {} };
  const count = (map: Record<string, number>, key: string) => (map[key] = (map[key] ?? 0) + 1);
  for (const line of lines) {
    count(summary.byStatus, String(line.status));
    for (const upstream of line.upstreams) count(summary.byNode, nodeNames.get(upstream) ?? upstream);
    if (line.upstreams.length > 1) {
      summary.movedOn += 1;
      count(summary.movedOnBy, `${line.method} ${line.uri.replace(/\/interaction\/[^/]+/, '/interaction/…').replace(/\/saml\/[^/]+/, '/saml/…')} (${line.upstreamStatuses.join(' → ')})`);
    }
    // Brána itself never answers 502 or 504: these are nginx's own (no node reachable, or none answered in time).
    if (line.status === 502 || line.status === 504) count(summary.answeredByNginx, String(line.status));
  }
  if (fs.existsSync(nginx.errorLog)) {
    const text = fs.readFileSync(nginx.errorLog, 'utf8').slice(errorOffset);
    for (const [key, pattern] of Object.entries({
      'connect() failed (refused)': /connect\(\) failed \(111/g,
      'upstream timed out': /upstream timed out/g,
      'upstream prematurely closed': /upstream prematurely closed/g,
      'no live upstreams': /no live upstreams/g,
      'upstream server temporarily disabled': /upstream server temporarily disabled/g,
      'recv() failed (reset)': /recv\(\) failed \(104/g,
      'too big header': /too big header/g,
    })) {
      const n = text.match(pattern)?.length ?? 0;
      if (n) summary.errorLog[key] = n;
    }
  }
  return summary;
}

function summarizeNodeLog(file: string): { errors: number; warnings: number; top: Array<{ message: string; count: number }> } {
  if (!fs.existsSync(file)) return { errors: 0, warnings: 0, top: [] };
  let errors = 0;
  let warnings = 0;
  const messages = new Map<string, number>();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as { level?: string; message?: string; error?: unknown; detail?: unknown; databaseCode?: unknown };
      if (entry.level === 'error') errors += 1;
      else if (entry.level === 'warn') warnings += 1;
      else continue;
      const cause = typeof entry.error === 'string' ? entry.error : typeof entry.detail === 'string' ? entry.detail : entry.databaseCode ? String(entry.databaseCode) : '';
      const key = `${entry.level} ${entry.message}${cause ? `: ${cause.replace(/\d+/g, 'N').slice(0, 100)}` : ''}`;
      messages.set(key, (messages.get(key) ?? 0) + 1);
    } catch {
      // a line that is not a log entry
    }
  }
  const top = [...messages].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([message, count]) => ({ message, count }));
  return { errors, warnings, top };
}


const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const round = (value: number, digits = 1) => (Number.isFinite(value) ? Number(value.toFixed(digits)) : null);

function say(message: string): void {
  process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

async function main(): Promise<void> {
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (values.report) {
    // Prints a run's results again from its JSON (e.g. for docs/OPERATIONS.md).
    const run = JSON.parse(fs.readFileSync(values.report, 'utf8')) as { commit: string; seed: number; settings: ScenarioSettings & { concurrency: number }; scenarios: ScenarioResult[] };
    for (const result of run.scenarios) {
      process.stdout.write(`${result.scenario}\n`);
      printScenario(result);
    }
    printTable(run.scenarios, { sha: run.commit, seed: run.seed, concurrency: run.settings.concurrency, settings: run.settings });
    return;
  }
  const scenarios = values.scenarios!.split(',').map((s) => s.trim()).filter(Boolean) as ScenarioName[];
  for (const scenario of scenarios) {
    if (!(SCENARIOS as readonly string[]).includes(scenario)) {
      process.stderr.write(`--scenarios: no scenario ${scenario}\n${USAGE}\n`);
      process.exit(2);
    }
  }
  const concurrency = positive('concurrency', values.concurrency);
  const settings: ScenarioSettings = {
    durationMs: positive('duration', values.duration) * 1000,
    kills: positive('kills', values.kills),
    terms: positive('terms', values.terms),
    freezes: positive('freezes', values.freezes),
    freezeMs: positive('freeze-seconds', values['freeze-seconds']) * 1000,
    dbStopMs: positive('db-stop-seconds', values['db-stop-seconds']) * 1000,
    dbFreezeMs: positive('db-freeze-seconds', values['db-freeze-seconds']) * 1000,
    restartDelayMs: positive('restart-delay', values['restart-delay'], true) * 1000,
    rollingPauseMs: positive('rolling-pause', values['rolling-pause'], true) * 1000,
  };
  const registerLatencyMs = positive('register-latency', values['register-latency'], true);
  const registerConcurrencies = values['register-concurrency']!.split(',').map((v) => positive('register-concurrency', v));
  const requestTimeoutMs = positive('request-timeout', values['request-timeout']) * 1000;
  const backChannelRetryMs = positive('back-channel-retry', values['back-channel-retry'], true) * 1000;
  const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
  const random = seededRandom(seed);
  const started = new Date();
  const sha = commit();

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-chaos-'));
  // PostgreSQL and nginx run as another user when the suite runs as root: they must reach their folders.
  fs.chmodSync(dir, 0o755);
  onCleanup('the temporary folder', () => {
    if (values.keep) process.stdout.write(`kept ${dir}\n`);
    else fs.rmSync(dir, { recursive: true, force: true });
  });
  say(`chaos suite on ${sha}, seed ${seed}, ${os.cpus().length} cores; working in ${dir}`);

  const user = serviceUser();
  const postgres = await PrivatePostgres.create({ dir: path.join(dir, 'postgres'), user });
  onCleanup('PostgreSQL', () => (values.keep ? postgres.stop('fast') : postgres.destroy()));
  abandons.push(() => postgres.abandon());
  await postgres.start();
  say(`private PostgreSQL on 127.0.0.1:${postgres.port} (as ${user.name})`);

  const idp: FastIdp = await startFastIdp(path.join(dir, 'idp'), { encrypted: true });
  onCleanup('the fast IdP', () => idp.stop());
  abandons.push(() => idp.child.kill('SIGKILL'));
  const register = await RegisterService.start();
  onCleanup('the register service', () => register.close());

  fs.mkdirSync(path.join(dir, 'logs'));
  const ports = [await freePort(), await freePort()];
  const nodes = ports.map((port, i) => ({ name: String.fromCharCode(65 + i), port }));
  const template = values['nginx-template'] ? path.resolve(values['nginx-template']) : NGINX_TEMPLATE;
  const nginx = await startNginx({ dir: path.join(dir, 'nginx'), nodes: ports.map((port) => `127.0.0.1:${port}`), user, template });
  onCleanup('nginx', () => nginx.stop());
  abandons.push(() => nginx.abandon());
  const nodeNames = new Map(nodes.map((node) => [`127.0.0.1:${node.port}`, node.name]));
  say(`nginx at ${nginx.origin} → nodes ${nodes.map((n) => `${n.name} :${n.port}`).join(', ')}`);

  const results: ScenarioResult[] = [];
  const outFile = path.join(RESULTS, `chaos-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  const save = () => {
    fs.mkdirSync(RESULTS, { recursive: true });
    fs.writeFileSync(
      outFile,
      `${JSON.stringify(
        {
          kind: 'chaos',
          commit: sha,
          at: started.toISOString(),
          seed,
          machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, memoryGb: Math.round(os.totalmem() / 2 ** 30), node: process.version, loadAverage: os.loadavg().map((l) => round(l, 2)) },
          settings: { ...settings, concurrency, registerLatencyMs, registerConcurrencies, requestTimeoutMs, backChannelRetryMs },
          nginxTemplate: path.relative(ROOT, template),
          halfWrittenChecks: HALF_WRITTEN_CHECKS,
          scenarios: results,
        },
        null,
        2,
      )}\n`,
    );
  };

  for (const scenario of scenarios) {
    say(`— ${scenario}: ${DESCRIPTIONS[scenario]}`);
    const database = `brana_${scenario.replace(/-/g, '_')}`;
    const databaseUrl = await postgres.createDatabase(database);
    const env: NodeJS.ProcessEnv = {
      ...benchBrokerEnvironment({ publicOrigin: nginx.origin, providersDir: idp.providersDir, dir, databaseUrl }),
      BRANA_TRUST_PROXY: 'true',
      BRANA_POPULATION_REGISTER_URL: register.url.href,
      LOG_LEVEL: 'warn',
    };
    register.reset();
    const sep = await registerBenchSep(env, dir, 'RS256');
    const scenarioNodes = nodes.map((node) => new ChaosNode(node.name, node.port, path.join(dir, 'logs', `${scenario}-${node.name}.log`)));
    const stopNodes = async () => {
      for (const node of scenarioNodes) await (interrupted ? node.kill() : node.stop());
    };
    onCleanup(`the nodes of ${scenario}`, stopNodes);
    await Promise.all(scenarioNodes.map((node) => node.start(env)));
    for (const node of scenarioNodes) if ((await node.waitReady(30_000)) === null) throw new Error(`node ${node.name} did not become ready`);
    if (!fs.existsSync(idp.spMetadataFile)) fs.writeFileSync(idp.spMetadataFile, await (await fetch(`${nginx.origin}/saml/${BENCH_MEANS}/metadata`)).text());

    const target: LoginTarget = { nodes: [nginx.origin], publicOrigin: nginx.origin, ...sep, means: BENCH_MEANS, scope: 'openid profile', timeoutMs: requestTimeoutMs };
    // The first login gives the permanent consent; a few more warm both nodes up (JIT, pools).
    for (let i = 0; i < 6; i += 1) await oneLogin(target);

    const accessOffset = nginx.accessLogOffset();
    const errorOffset = fs.existsSync(nginx.errorLog) ? fs.statSync(nginx.errorLog).size : 0;
    const postgresOffset = fs.existsSync(postgres.logFile) ? fs.statSync(postgres.logFile).size : 0;
    const phases: NonNullable<ScenarioResult['phases']> = [];
    let load: ChaosLoad;
    let loadStart: number;
    let loadEnd: number;
    let faults: FaultRecord[] = [];

    if (scenario === 'register-latency') {
      register.always = { delayMs: registerLatencyMs };
      const perPhase = settings.durationMs / registerConcurrencies.length;
      loadStart = performance.now();
      const combined = new ChaosLoad(target, { concurrency: 0, backChannelRetryMs });
      for (const c of registerConcurrencies) {
        const phase = new ChaosLoad(target, { concurrency: c, backChannelRetryMs });
        const t0 = performance.now();
        phase.start();
        await sleep(perPhase);
        await phase.stop();
        const wall = performance.now() - t0;
        const lat = latencySummary(phase.tally.latenciesMs);
        phases.push({
          concurrency: c,
          registerLatencyMs,
          durationS: round(wall / 1000)!,
          completed: phase.tally.completed,
          lost: phase.tally.attempted - phase.tally.completed,
          loginsPerS: round((phase.tally.completed / wall) * 1000, 2)!,
          latencyMs: { p50: round(lat.p50, 0)!, p95: round(lat.p95, 0)! },
        });
        say(`register latency ${registerLatencyMs} ms, c=${c}: ${phases.at(-1)!.loginsPerS} logins/s`);
        mergeTally(combined.tally, phase.tally);
      }
      register.always = null;
      loadEnd = performance.now();
      load = combined;
    } else {
      load = new ChaosLoad(target, { concurrency, backChannelRetryMs });
      loadStart = performance.now();
      load.start();
      try {
        faults = await runFaults(scenario, {
          nodes: scenarioNodes,
          postgres,
          settings,
          random,
          now: () => performance.now() - loadStart,
          until: async (ms) => {
            const wait = loadStart + ms - performance.now();
            if (wait > 0) await sleep(wait);
          },
          say,
        });
      } finally {
        loadEnd = performance.now();
        await load.stop();
      }
    }

    // Every node up and ready again before the database is examined.
    for (const node of scenarioNodes) {
      if (!node.alive) await node.start();
      await node.waitReady(30_000);
    }
    const tally = load.tally;
    const gap = longestGap(tally.completions, loadStart, loadEnd);
    const firstAfter = (ms: number) => {
      const end = loadStart + ms;
      const first = tally.completions.filter((t) => t >= end).sort((a, b) => a - b)[0];
      return first === undefined ? null : first - end;
    };
    const faultResults = faults.map((fault) => ({ ...fault, firstLoginAfterEndMs: firstAfter(fault.endedAt) }));
    const worst = (values: Array<number | null>) => (values.length === 0 ? null : values.some((v) => v === null) ? Number.POSITIVE_INFINITY : Math.max(...(values as number[])));
    const toLogin = worst(faultResults.map((f) => f.firstLoginAfterEndMs));
    const toReady = worst(faultResults.flatMap((f) => Object.values(f.readyAfterEndMs)));
    const wall = loadEnd - loadStart;

    say('verifying the assertion log (brana audit verify) and looking for half-written rows');
    const audit = await verifyAuditLog(env);
    const halfWritten = await findHalfWrittenRows(databaseUrl);
    const log = await logSummary(databaseUrl);
    const fates = await lostCodeFates(databaseUrl, tally.lostCodes);
    await stopNodes();
    const result: ScenarioResult = {
      scenario,
      description: DESCRIPTIONS[scenario],
      durationS: round(wall / 1000)!,
      concurrency: scenario === 'register-latency' ? Math.max(...registerConcurrencies) : concurrency,
      attempted: tally.attempted,
      completed: tally.completed,
      lost: tally.attempted - tally.completed,
      lostBy: tally.lost,
      backChannelRetried: tally.backChannelRetried,
      codesObtained: tally.codesObtained,
      codesSavedByRetry: tally.codesSavedByRetry,
      codesLost: Object.values(tally.codesLost).reduce((a, b) => a + b, 0),
      codesLostBy: tally.codesLost,
      codesLostFate: fates.reduce<Record<string, number>>((count, fate) => {
        const key = `${fate.tokenIssued ? 'token issued' : 'no token issued'}, code ${fate.code}`;
        count[key] = (count[key] ?? 0) + 1;
        return count;
      }, {}),
      loginsPerS: round((tally.completed / wall) * 1000, 2)!,
      latencyMs: Object.fromEntries(Object.entries(latencySummary(tally.latenciesMs)).map(([k, v]) => [k, round(v, 0)])) as ScenarioResult['latencyMs'],
      longestGapS: round(gap.ms / 1000, 2)!,
      longestGapAtS: round((gap.startsAt - loadStart) / 1000, 1)!,
      faults: faultResults.map((f) => ({
        ...f,
        injectedAt: round(f.injectedAt, 0)!,
        endedAt: round(f.endedAt, 0)!,
        ...(f.drainMs !== undefined ? { drainMs: round(f.drainMs, 0)! } : {}),
        ...(f.listeningAfterRestartMs !== undefined ? { listeningAfterRestartMs: round(f.listeningAfterRestartMs, 0)! } : {}),
        readyAfterEndMs: Object.fromEntries(Object.entries(f.readyAfterEndMs).map(([k, v]) => [k, v === null ? null : round(v, 0)])),
        firstLoginAfterEndMs: f.firstLoginAfterEndMs === null ? null : round(f.firstLoginAfterEndMs, 0),
      })),
      recoveryToLoginS: toLogin === null ? null : round(toLogin / 1000, 2),
      recoveryToReadyS: toReady === null ? null : round(toReady / 1000, 2),
      ...(phases.length ? { phases } : {}),
      nginx: summarizeNginx(nginx, accessOffset, errorOffset, nodeNames),
      audit,
      halfWritten,
      log,
      nodeLogs: Object.fromEntries(scenarioNodes.map((node) => [node.name, summarizeNodeLog(path.join(dir, 'logs', `${scenario}-${node.name}.log`))])),
      postgresLog: summarizePostgresLog(postgres.logFile, postgresOffset),
    };
    results.push(result);
    save();
    printScenario(result);
  }

  printTable(results, { sha, seed, concurrency, settings });
  say(`results: ${path.relative(ROOT, outFile)}`);
  if (values.strict && results.some((r) => r.scenario !== 'register-latency' && (r.lost > 0 || r.codesLost > 0 || !r.audit.intact || Object.values(r.halfWritten).some(Boolean)))) {
    process.exitCode = 1;
  }
}

function mergeTally(into: LoadTally, from: LoadTally): void {
  into.attempted += from.attempted;
  into.completed += from.completed;
  into.codesObtained += from.codesObtained;
  into.codesSavedByRetry += from.codesSavedByRetry;
  for (const [k, v] of Object.entries(from.lost)) into.lost[k] = (into.lost[k] ?? 0) + v;
  for (const [k, v] of Object.entries(from.backChannelRetried)) into.backChannelRetried[k] = (into.backChannelRetried[k] ?? 0) + v;
  for (const k of Object.keys(from.codesLost) as Array<keyof LoadTally['codesLost']>) into.codesLost[k] += from.codesLost[k];
  into.lostCodes.push(...from.lostCodes);
  into.completions.push(...from.completions);
  into.losses.push(...from.losses);
  into.latenciesMs.push(...from.latenciesMs);
}

const s = (value: number | null | undefined, unit = ' s') => (value === null || value === undefined ? '–' : Number.isFinite(value) ? `${value}${unit}` : 'never');
const entries = (map: Record<string, number>, separator = ', ') =>
  Object.entries(map)
    .filter(([, v]) => v > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ×${v}`)
    .join(separator) || 'none';

function printScenario(r: ScenarioResult): void {
  const lines = [
    `  logins: ${r.completed}/${r.attempted} completed, ${r.lost} lost${r.lost ? ` (${entries(r.lostBy)})` : ''}; ${r.loginsPerS} logins/s; latency p50 ${r.latencyMs.p50} ms, p95 ${r.latencyMs.p95} ms, max ${r.latencyMs.max} ms`,
    `  codes: ${r.codesObtained} obtained, ${r.codesLost} lost${r.codesLost ? ` (${entries(r.codesLostBy as unknown as Record<string, number>)}; ${entries(r.codesLostFate, '; ')})` : ''}, ${r.codesSavedByRetry} exchanged only on a retry; back-channel retries: ${entries(r.backChannelRetried)}`,
    `  longest window without a completed login: ${r.longestGapS} s (from ${r.longestGapAtS} s)`,
    ...r.faults.map(
      (f) =>
        `  ${f.kind}${f.node ? ` node ${f.node}` : ''} at ${(f.injectedAt / 1000).toFixed(1)} s, ended ${(f.endedAt / 1000).toFixed(1)} s` +
        `${f.drainMs !== undefined ? `, drained in ${(f.drainMs / 1000).toFixed(1)} s (${f.exit})` : ''}` +
        `; first login after ${s(f.firstLoginAfterEndMs, ' ms')}, ready after ${Object.entries(f.readyAfterEndMs).map(([n, v]) => `${n} ${s(v, ' ms')}`).join(', ')}`,
    ),
    ...(r.phases ?? []).map((p) => `  c=${p.concurrency}, register ${p.registerLatencyMs} ms: ${p.completed} logins in ${p.durationS} s = ${p.loginsPerS} logins/s (p50 ${p.latencyMs.p50} ms, p95 ${p.latencyMs.p95} ms), ${p.lost} lost`),
    `  nginx: ${r.nginx.requests} requests (${entries(r.nginx.byStatus)}); moved on to the other node: ${r.nginx.movedOn}${r.nginx.movedOn ? ` (${entries(r.nginx.movedOnBy)})` : ''}; error log: ${entries(r.nginx.errorLog)}`,
    `  audit verify: ${r.audit.intact ? 'intact' : `NOT INTACT (exit ${r.audit.exitCode}: ${r.audit.message ?? JSON.stringify(r.audit.firstBad)})`}, ${r.audit.records} records; half-written rows: ${entries(Object.fromEntries(Object.entries(r.halfWritten).filter(([, v]) => v > 0)))}`,
    `  log failures: ${entries(r.log.failures)}`,
    `  PostgreSQL log: ${entries(r.postgresLog)}`,
    ...Object.entries(r.nodeLogs).map(([name, l]) => `  node ${name} log: ${l.errors} errors, ${l.warnings} warnings${l.top.length ? ` (${l.top.map((t) => `${t.message} ×${t.count}`).join('; ')})` : ''}`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

function printTable(results: ScenarioResult[], run: { sha: string; seed: number; concurrency: number; settings: ScenarioSettings }): void {
  const header = ['scenario', 'logins ok/attempted', 'lost (step status)', 'codes lost (fate)', 'longest no-login window', 'recovery → login', 'recovery → /readyz', 'logins/s', 'audit verify', 'half-written rows'];
  const rows = results.map((r) => [
    r.scenario,
    `${r.completed}/${r.attempted}`,
    r.lost ? `${r.lost}: ${entries(r.lostBy)}` : '0',
    r.codesLost ? `${r.codesLost}: ${entries(r.codesLostFate, '; ')}` : '0',
    `${r.longestGapS} s`,
    s(r.recoveryToLoginS),
    s(r.recoveryToReadyS),
    r.phases ? r.phases.map((p) => `${p.loginsPerS} (c=${p.concurrency})`).join(' / ') : String(r.loginsPerS),
    r.audit.intact ? 'intact' : 'NOT INTACT',
    String(Object.values(r.halfWritten).reduce((a, b) => a + b, 0)),
  ]);
  const table = [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
  process.stdout.write(
    `\nBrána chaos results, commit ${run.sha}, seed ${run.seed}, c=${run.concurrency}, ${run.settings.durationMs / 1000} s per scenario, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'})\n\n${table}\n\n`,
  );
}

try {
  await main();
} catch (err) {
  process.stderr.write(`chaos suite failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
} finally {
  await cleanUp();
}
