/**
 * `npm run bench` — complete brokered logins on loopback, measured.
 *
 *   npm run bench                          the default variant (SQLite, one node, RS256, encrypted)
 *   npm run bench -- --all                 every variant of the matrix, then the micro-benchmarks
 *   npm run bench -- --database postgres --nodes 2 --plain --alg ES256
 *   npm run bench -- --concurrency 16 --duration 30
 *   npm run bench -- --warmup 120          unmeasured logins for 120 s first (default 3 s): the broker's steady state
 *   npm run bench -- --rate 100            open loop: logins started at a fixed rate per second
 *   npm run bench -- --in-flight 1000      peak RSS with this many logins in flight
 *   npm run bench -- --soak 600            RSS sampled over a soak of this many seconds
 *   npm run bench -- --targets             the issue's targets in one go: peak (c=16), open loop at 70 %
 *                                          of that peak, 1,000 logins in flight, a 10-minute soak
 *   npm run bench -- --side-by-side        ../shared/peers/perf/side_by_side.py (Brána beside a SimpleSAMLphp
 *                                          hub behind the same IdP); its last line recorded
 *   npm run bench -- --side-by-side-line "side by side (c=2, 2 x 15s): Brana … ratio …"   record a run made by hand
 *
 * Each run writes JSON to bench/results/ and rewrites docs/BENCHMARKS.md from the latest result of
 * every variant. This is a benchmark, not a test: it asserts nothing but "no errors".
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BENCH_MEANS, commit, cpuMs, currentRssMb, peakRssMb, startVariant, type RunningVariant, type VariantSettings } from './cluster.ts';
import { measureCryptoFloor, type CryptoFloor } from './crypto-floor.ts';
import { oneLogin, percentile, runInFlight, runLoad, type LoadResult, type LoginTarget } from './load-driver.ts';
import { runMicroBenchmarks, type MicroResult } from './micro.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = path.join(ROOT, 'bench', 'results');

const { values } = parseArgs({
  options: {
    all: { type: 'boolean', default: false },
    database: { type: 'string', default: 'sqlite' },
    nodes: { type: 'string', default: '1' },
    plain: { type: 'boolean', default: false },
    alg: { type: 'string', default: 'RS256' },
    concurrency: { type: 'string', default: '8' },
    duration: { type: 'string', default: '20' },
    // Seconds of unmeasured logins before the measured run: JIT tiers, pools, caches (see docs/BENCHMARKS.md, "Warm-up").
    warmup: { type: 'string', default: '3' },
    rate: { type: 'string' },
    'in-flight': { type: 'string' },
    soak: { type: 'string' },
    targets: { type: 'boolean', default: false },
    micro: { type: 'boolean', default: false },
    'no-docs': { type: 'boolean', default: false },
    // Runs ../shared/peers/perf/side_by_side.py (a SimpleSAMLphp hub behind the same IdP) and records its last line.
    'side-by-side': { type: 'boolean', default: false },
    // Records the last line of a side_by_side.py run made by hand.
    'side-by-side-line': { type: 'string' },
  },
});

export interface VariantResult {
  kind: 'full-login';
  variant: string;
  settings: VariantSettings & { concurrency: number; durationS: number; mode: 'closed' | 'open' | 'in-flight'; ratePerS?: number; inFlight?: number };
  loginsPerS: number;
  latencyMs: { p50: number; p95: number; p99: number };
  brokerCpuMsPerLogin: number;
  /** HTTP requests Brána served, and SQL statements it sent, per completed login (absent in older results). */
  requestsPerLogin?: number;
  statementsPerLogin?: number;
  loginsPerBrokerCoreS: number;
  cryptoFloorMs: number;
  cpuToFloor: number;
  peakRssMb: number;
  /** RSS of the broker right after it started, before the first login. */
  startRssMb: number;
  completed: number;
  errors: number;
  errorSamples: string[];
  floor: CryptoFloor;
  rssSamplesMb?: number[];
  /** V8 heap in use, sampled with the RSS (a growing heap is a leak; a grown RSS may be V8's reserve). */
  heapUsedSamplesMb?: number[];
  machine: MachineInfo;
  commit: string;
  at: string;
}

interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGb: number;
  node: string;
  os: string;
}

function machine(): MachineInfo {
  return { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, memoryGb: Math.round(os.totalmem() / 2 ** 30), node: process.version, os: `${os.type()} ${os.release()}` };
}


function variantName(s: VariantSettings): string {
  const flags = process.env.BENCH_BROKER_NODE_FLAGS?.trim();
  return `${s.database}-${s.nodes}node-${s.idTokenAlg}-${s.encrypted ? 'encrypted' : 'plain'}${flags ? ` [${flags}]` : ''}`;
}

function target(running: RunningVariant): LoginTarget {
  return { nodes: running.nodes, publicOrigin: running.publicOrigin, ...running.sep, means: BENCH_MEANS, scope: 'openid profile' };
}

/** Open loop: a login starts every 1/rate seconds whether or not earlier ones finished. */
async function runOpenLoop(t: LoginTarget, ratePerS: number, durationMs: number): Promise<LoadResult> {
  const result: LoadResult = { completed: 0, errors: 0, errorSamples: [], latenciesMs: [], wallMs: 0 };
  const started = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; performance.now() - started < durationMs; i += 1) {
    const due = started + (i * 1000) / ratePerS;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const t0 = performance.now();
    pending.push(
      oneLogin(t).then(
        () => {
          result.latenciesMs.push(performance.now() - t0);
          result.completed += 1;
        },
        (err: unknown) => {
          result.errors += 1;
          if (result.errorSamples.length < 5) result.errorSamples.push((err as Error).message);
        },
      ),
    );
  }
  await Promise.all(pending);
  result.wallMs = performance.now() - started;
  return result;
}

interface LoadSettings {
  concurrency: number;
  durationS: number;
  ratePerS?: number;
  soakS?: number;
  /** This many logins started before any is finished (see runInFlight). */
  inFlight?: number;
  /** A suffix for the variant's name, so that a special run does not replace the plain row. */
  label?: string;
  /** Seconds of unmeasured logins first. */
  warmupS?: number;
}

async function measureVariant(settings: VariantSettings, load: LoadSettings): Promise<VariantResult> {
  const running = await startVariant(settings);
  try {
    const t = target(running);
    await oneLogin(t); // the first login meets the consent page and gives a permanent consent
    await runLoad(t, Math.min(load.concurrency, 8), (load.warmupS ?? 3) * 1000); // warm-up: JIT, pools, caches
    const cpuBefore = running.brokerPids.map(cpuMs);
    const workBefore = await running.workDone();
    let rssSamplesMb: number[] | undefined;
    let heapUsedSamplesMb: number[] | undefined;
    let sampler: NodeJS.Timeout | undefined;
    if (load.soakS) {
      const rss: number[] = (rssSamplesMb = []);
      const heap: number[] = (heapUsedSamplesMb = []);
      sampler = setInterval(() => {
        rss.push(Math.round(running.brokerPids.map(currentRssMb).reduce((a, b) => a + b, 0)));
        running.heapUsedMb().then(
          (mb) => heap.push(mb),
          () => heap.push(Number.NaN),
        );
      }, 30_000);
    }
    const durationMs = (load.soakS ?? load.durationS) * 1000;
    const result = load.inFlight
      ? await runInFlight(t, load.inFlight, load.concurrency)
      : load.ratePerS
        ? await runOpenLoop(t, load.ratePerS, durationMs)
        : await runLoad(t, load.concurrency, durationMs);
    if (sampler) clearInterval(sampler);
    const cpuUsed = running.brokerPids.map(cpuMs).reduce((sum, after, i) => sum + after - cpuBefore[i]!, 0);
    const workAfter = await running.workDone();
    // The two /metrics reads are requests too: not the logins'.
    const requestsPerLogin = result.completed ? (workAfter.requests - workBefore.requests - running.nodes.length) / result.completed : Number.NaN;
    const statementsPerLogin = result.completed ? (workAfter.statements - workBefore.statements) / result.completed : Number.NaN;
    const sorted = [...result.latenciesMs].sort((a, b) => a - b);
    const floor = measureCryptoFloor({ encrypted: settings.encrypted, idTokenAlg: settings.idTokenAlg });
    const perLogin = result.completed ? cpuUsed / result.completed : Number.NaN;
    return {
      kind: 'full-login',
      variant: variantName(settings) + (load.label ?? (load.ratePerS ? `@${load.ratePerS}/s` : load.soakS ? '-soak' : '')),
      settings: {
        ...settings,
        concurrency: load.concurrency,
        durationS: Math.round(load.inFlight ? result.wallMs / 1000 : (load.soakS ?? load.durationS)),
        mode: load.inFlight ? 'in-flight' : load.ratePerS ? 'open' : 'closed',
        ...(load.ratePerS ? { ratePerS: load.ratePerS } : {}),
        ...(load.inFlight ? { inFlight: load.inFlight } : {}),
      },
      loginsPerS: (result.completed / result.wallMs) * 1000,
      latencyMs: { p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99) },
      brokerCpuMsPerLogin: perLogin,
      requestsPerLogin,
      statementsPerLogin,
      loginsPerBrokerCoreS: 1000 / perLogin,
      cryptoFloorMs: floor.perLoginMs,
      cpuToFloor: perLogin / floor.perLoginMs,
      peakRssMb: running.brokerPids.map(peakRssMb).reduce((a, b) => Math.max(a, b), 0),
      startRssMb: running.startRssMb,
      completed: result.completed,
      errors: result.errors,
      errorSamples: result.errorSamples,
      floor,
      ...(rssSamplesMb ? { rssSamplesMb } : {}),
      ...(heapUsedSamplesMb ? { heapUsedSamplesMb } : {}),
      machine: machine(),
      commit: commit(),
      at: new Date().toISOString(),
    };
  } finally {
    await running.stop();
  }
}

function save(result: VariantResult | MicroResult | SideBySideResult): void {
  fs.mkdirSync(RESULTS, { recursive: true });
  const file = path.join(RESULTS, `${result.at.replace(/[:.]/g, '-')}-${result.variant.replace(/[^a-zA-Z0-9@=-]/g, '_')}.json`);
  fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
}

const f = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '–');

function printFull(r: VariantResult): void {
  process.stdout.write(
    `${r.variant}: ${f(r.loginsPerS)} logins/s, p50 ${f(r.latencyMs.p50)} ms, p95 ${f(r.latencyMs.p95)} ms, p99 ${f(r.latencyMs.p99)} ms, ` +
      `broker CPU ${f(r.brokerCpuMsPerLogin, 2)} ms/login, ${f(r.requestsPerLogin ?? Number.NaN)} requests and ${f(r.statementsPerLogin ?? Number.NaN)} SQL statements per login (${f(r.loginsPerBrokerCoreS, 0)} logins/s per core), floor ${f(r.cryptoFloorMs, 2)} ms, ` +
      `CPU/floor ${f(r.cpuToFloor, 2)}, peak RSS ${f(r.peakRssMb, 0)} MB, ${r.completed} logins, ${r.errors} errors${r.errorSamples.length ? ` (${r.errorSamples.join('; ')})` : ''}\n`,
  );
}

/** One run of the peer tool: Brána and a SimpleSAMLphp hub behind the same IdP, in the same run. */
export interface SideBySideResult {
  kind: 'side-by-side';
  variant: 'side-by-side';
  line: string;
  concurrency: number;
  rounds: number;
  durationS: number;
  branaCpuMsPerLogin: number;
  hubCpuMsPerLogin: number;
  ratio: number;
  errors: number;
  machine: ReturnType<typeof machine>;
  commit: string;
  at: string;
}

const SIDE_BY_SIDE = /side by side \(c=(\d+), (\d+) x (\d+)s\): Brana ([\d.]+) CPU-ms\/login, SimpleSAMLphp hub ([\d.]+) CPU-ms\/login, ratio ([\d.]+), errors (\d+)/;

function sideBySideOf(line: string): SideBySideResult {
  const match = SIDE_BY_SIDE.exec(line);
  if (!match) throw new Error(`not the last line of side_by_side.py: ${line}`);
  const [, concurrency, rounds, durationS, brana, hub, ratio, errors] = match.map(Number) as number[];
  return { kind: 'side-by-side', variant: 'side-by-side', line: match[0], concurrency: concurrency!, rounds: rounds!, durationS: durationS!, branaCpuMsPerLogin: brana!, hubCpuMsPerLogin: hub!, ratio: ratio!, errors: errors!, machine: machine(), commit: commit(), at: new Date().toISOString() };
}

/** Runs the peer tool from the project's root, its output passed through; its last line recorded. */
function runSideBySide(): SideBySideResult {
  const tool = path.resolve(ROOT, '..', 'shared', 'peers', 'perf', 'side_by_side.py');
  if (!fs.existsSync(tool)) throw new Error(`the peer tool is not at ${tool} (see ../shared/peers/README.md)`);
  const run = spawnSync('python3', [tool, '--rounds', '2', '--duration', '15'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  process.stdout.write(run.stdout ?? '');
  const last = (run.stdout ?? '').trim().split('\n').pop() ?? '';
  if (run.status !== 0) throw new Error(`side_by_side.py exited with ${run.status}`);
  return sideBySideOf(last);
}

/** Everything in docs/BENCHMARKS.md from this line on is written by hand and kept by `writeDocs`. */
const HAND_WRITTEN = '<!-- Written by hand from here on: npm run bench keeps it. -->';

/** docs/BENCHMARKS.md from the latest result of every variant in bench/results/. */
function writeDocs(): void {
  if (!fs.existsSync(RESULTS)) return;
  const docsFile = path.join(ROOT, 'docs', 'BENCHMARKS.md');
  const previous = fs.existsSync(docsFile) ? fs.readFileSync(docsFile, 'utf8') : '';
  const kept = previous.includes(HAND_WRITTEN) ? previous.slice(previous.indexOf(HAND_WRITTEN)) : '';
  const latest = new Map<string, VariantResult | MicroResult>();
  const sideBySide: SideBySideResult[] = [];
  for (const file of fs.readdirSync(RESULTS).filter((name) => name.endsWith('.json')).sort()) {
    const result = JSON.parse(fs.readFileSync(path.join(RESULTS, file), 'utf8')) as VariantResult | MicroResult | SideBySideResult | { kind: string; variant?: string };
    if (result.kind === 'side-by-side') sideBySide.push(result as SideBySideResult);
    else if (result.kind === 'full-login' || result.kind === 'micro') latest.set(result.variant!, result as VariantResult | MicroResult);
  }
  const full = [...latest.values()].filter((r): r is VariantResult => r.kind === 'full-login');
  const micro = [...latest.values()].filter((r): r is MicroResult => r.kind === 'micro');
  const lines = [
    '# Benchmarks',
    '',
    'Produced by `npm run bench` (see `bench/run.ts`); regenerated from the latest JSON of each variant in',
    '`bench/results/`. A *full login* is: SeP authorization request with PKCE and `idp_hint` → signed',
    'AuthnRequest → a fast SAML IdP in a separate process answering with a signed (and encrypted) assertion →',
    'ACS → consent already given (permanent) → code → token → userinfo. *Broker CPU* is user+system time of',
    'the broker process(es) per completed login; the *crypto floor* is the public-key operations one login',
    'cannot avoid, timed on the same machine in the same run. The load driver and the IdP share the same 2',
    'cores, so wall-clock throughput is bounded by the machine, not only by the broker: read *logins/s per',
    'broker core* (1000 / broker CPU ms per login) for the broker\'s own cost.',
    '',
    '## Full logins',
    '',
    '| variant | mode | logins/s | p50 ms | p95 ms | p99 ms | broker CPU ms/login | requests per login | SQL per login | logins/s per core | floor ms | CPU/floor | peak RSS MB | errors | commit | machine |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...full.map(
      (r) =>
        `| ${r.variant} | ${r.settings.mode === 'open' ? `open ${r.settings.ratePerS}/s` : r.settings.mode === 'in-flight' ? `${r.settings.inFlight} in flight, c=${r.settings.concurrency}` : `closed c=${r.settings.concurrency}`}, ${r.settings.durationS} s | ${f(r.loginsPerS)} | ${f(r.latencyMs.p50)} | ${f(r.latencyMs.p95)} | ${f(r.latencyMs.p99)} | ${f(r.brokerCpuMsPerLogin, 2)} | ${f(r.requestsPerLogin ?? Number.NaN)} | ${f(r.statementsPerLogin ?? Number.NaN)} | ${f(r.loginsPerBrokerCoreS, 0)} | ${f(r.cryptoFloorMs, 2)} | ${f(r.cpuToFloor, 2)} | ${f(r.peakRssMb, 0)} | ${r.errors} | ${r.commit} | ${r.machine.cores}× ${r.machine.cpu}, ${r.machine.node} |`,
    ),
    '',
    '## Side by side with a SimpleSAMLphp hub',
    '',
    'Every recorded run of `../shared/peers/perf/side_by_side.py` (`npm run bench -- --side-by-side`): Brána and',
    'a SimpleSAMLphp 1.19 hub (php-fpm + nginx, OPcache) behind the same fast IdP (signed, unencrypted',
    'assertion), each broker\'s own CPU per full login in the same run. Track the ratio.',
    '',
    '| at | commit | Brána CPU-ms/login | hub CPU-ms/login | ratio | errors | load |',
    '|---|---|---|---|---|---|---|',
    ...sideBySide.map((r) => `| ${r.at.slice(0, 16).replace('T', ' ')} | ${r.commit} | ${f(r.branaCpuMsPerLogin, 2)} | ${f(r.hubCpuMsPerLogin, 2)} | **${f(r.ratio, 2)}** | ${r.errors} | c=${r.concurrency}, ${r.rounds} × ${r.durationS} s |`),
    '',
    '## Micro-benchmarks',
    '',
    '| what | ops/s | median ms/op | CPU ms/op | commit |',
    '|---|---|---|---|---|',
    ...micro.map((r) => `| ${r.variant} | ${f(r.opsPerS)} | ${f(r.medianMs, 2)} | ${f(r.cpuMsPerOp, 2)} | ${r.commit} |`),
    '',
  ];
  const soak = full.find((r) => r.rssSamplesMb);
  if (soak) {
    lines.push('## Soak', '', `RSS of the broker sampled every 30 s during ${soak.settings.durationS} s at c=${soak.settings.concurrency} (${soak.completed} logins): ${soak.rssSamplesMb!.join(', ')} MB.`, '');
    if (soak.heapUsedSamplesMb) lines.push(`V8 heap in use at the same moments: ${soak.heapUsedSamplesMb.join(', ')} MB.`, '');
  }
  const started = full.find((r) => r.variant === 'sqlite-1node-RS256-encrypted' && r.startRssMb);
  if (started) lines.push(`RSS of one broker node right after it started, before its first login: ${started.startRssMb} MB.`, '');
  if (kept) lines.push(kept);
  fs.mkdirSync(path.dirname(docsFile), { recursive: true });
  fs.writeFileSync(docsFile, lines.join('\n'));
}

async function main(): Promise<void> {
  const concurrency = Number(values.concurrency);
  const durationS = Number(values.duration);
  const base: VariantSettings = {
    database: values.database === 'postgres' ? 'postgres' : 'sqlite',
    nodes: values.nodes === '2' ? 2 : 1,
    encrypted: !values.plain,
    idTokenAlg: values.alg === 'ES256' ? 'ES256' : 'RS256',
  };
  const runs: Array<{ settings: VariantSettings; load: LoadSettings }> = [];
  if (values.all) {
    for (const settings of [
      base,
      { ...base, encrypted: false },
      { ...base, idTokenAlg: 'ES256' as const },
      { ...base, database: 'postgres' as const },
      { ...base, database: 'postgres' as const, nodes: 2 as const },
    ]) {
      runs.push({ settings, load: { concurrency, durationS } });
    }
  } else if (values['side-by-side'] || values['side-by-side-line']) {
    const result = values['side-by-side-line'] ? sideBySideOf(values['side-by-side-line']) : runSideBySide();
    save(result);
    process.stdout.write(`recorded: ${result.line}\n`);
  } else if (!values.micro && !values.targets) {
    const inFlight = values['in-flight'] ? Number(values['in-flight']) : undefined;
    runs.push({
      settings: base,
      load: {
        concurrency,
        durationS,
        ...(inFlight ? { inFlight } : {}),
        ...(values.rate ? { ratePerS: Number(values.rate) } : {}),
        ...(values.soak ? { soakS: Number(values.soak) } : {}),
        ...(inFlight ? { label: `-${inFlight}-in-flight` } : {}),
      },
    });
  }
  let failed = false;
  const record = (result: VariantResult) => {
    printFull(result);
    save(result);
    if (result.errors) failed = true;
  };
  const warmupS = Number(values.warmup);
  // A run after a longer warm-up is another row, not a replacement of the plain one.
  const warmed = (load: LoadSettings): LoadSettings => (warmupS === 3 ? load : { ...load, warmupS, label: `${load.label ?? (load.ratePerS ? `@${load.ratePerS}/s` : load.soakS ? '-soak' : '')}-warm-${warmupS}s` });
  for (const run of runs) record(await measureVariant(run.settings, warmed(run.load)));
  if (values.targets) {
    // The issue's targets, each on the default variant: the peak closed-loop throughput, the latency
    // of an open loop at 70 % of that peak, RSS with 1,000 logins in flight, RSS over a 10-minute soak.
    const peak = await measureVariant(base, warmed({ concurrency: 16, durationS, label: '-peak' }));
    record(peak);
    const rate = Math.max(1, Math.round(peak.loginsPerS * 0.7));
    record(await measureVariant(base, warmed({ concurrency: 16, durationS, ratePerS: rate, label: `@${rate}/s (70 % of peak)` })));
    record(await measureVariant(base, { concurrency: 16, durationS, inFlight: 1000, label: '-1000-in-flight' }));
    record(await measureVariant(base, { concurrency: 8, durationS, soakS: values.soak ? Number(values.soak) : 600 }));
  }
  if (values.all || values.micro) {
    for (const result of await runMicroBenchmarks()) {
      process.stdout.write(`${result.variant}: ${f(result.opsPerS)} ops/s, median ${f(result.medianMs, 2)} ms, CPU ${f(result.cpuMsPerOp, 2)} ms/op\n`);
      save(result);
    }
  }
  if (!values['no-docs']) writeDocs();
  if (failed) {
    process.stderr.write('some logins failed: see the error samples above\n');
    process.exitCode = 1;
  }
}

await main();
