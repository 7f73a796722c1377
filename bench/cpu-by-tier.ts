/**
 * Where a loaded broker's CPU goes, by thread and by V8 tier, from Linux `perf` (every thread of the
 * process, kernel included; a V8 CPU profile sees the main thread only, and counts the time a thread
 * waits as the time of the function it waits in).
 *
 *   node bench/cpu-by-tier.ts [--warmup 3] [--duration 25] [--flags "--invocation-count-for-turbofan=3000"] [--top 0]
 *
 * It runs `npm run bench -- --no-docs` (one broker, SQLite, c=8) with the broker under
 * `--perf-basic-prof` (so that perf names JavaScript functions, with V8's tier marks: `*` optimized
 * by TurboFan, `^` Sparkplug baseline code), records the broker for 12 s from 12 s into the
 * measured run, and prints the bench's line and the share of each kind of work. `--top N` also lists
 * the N largest functions. Needs `perf` (Debian: linux-perf) and the right to use it.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    warmup: { type: 'string', default: '3' },
    duration: { type: 'string', default: '25' },
    flags: { type: 'string', default: '' },
    top: { type: 'string', default: '0' },
  },
});

const ROOT = path.resolve(import.meta.dirname, '..');
const warmupS = Number(values.warmup);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// The bench saves its result; a run under perf is not a result to keep.
const RESULTS = path.join(ROOT, 'bench/results');
const resultsBefore = new Set(fs.readdirSync(RESULTS));
const bench = spawn(process.execPath, ['bench/run.ts', '--no-docs', '--duration', String(values.duration), '--warmup', String(warmupS)], {
  cwd: ROOT,
  env: { ...process.env, BENCH_BROKER_NODE_FLAGS: `--perf-basic-prof ${values.flags}`.trim() },
  stdio: ['ignore', 'pipe', 'inherit'],
});
let output = '';
bench.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
const finished = new Promise<void>((resolve) => bench.on('exit', () => resolve()));

/** The broker node the bench started: a process running src/main.ts with --perf-basic-prof. */
function brokerPid(): number | undefined {
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (cmdline.includes('--perf-basic-prof') && cmdline.includes('src/main.ts')) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

// The broker starts, makes its first login, warms up; then the measured run starts.
await sleep((warmupS + 12) * 1000);
const pid = brokerPid();
if (!pid) throw new Error('no broker running with --perf-basic-prof found');
const data = path.join(fs.mkdtempSync('/tmp/brana-perf-'), 'perf.data');
const record = spawnSync('perf', ['record', '-F', '499', '-g', '-p', String(pid), '-o', data, '--', 'sleep', '12'], { encoding: 'utf8' });
if (record.status !== 0) throw new Error(`perf record failed: ${record.stderr}`);
await finished;
for (const file of fs.readdirSync(RESULTS)) if (!resultsBefore.has(file)) fs.rmSync(path.join(RESULTS, file));
const benchLine = output.split('\n').find((line) => line.includes('logins/s')) ?? '(the bench printed no result)';

const report = spawnSync('perf', ['report', '-i', data, '--sort', 'comm,dso,sym', '--stdio', '--no-children', '-g', 'none'], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
const shares = new Map<string, number>();
const functions: Array<[number, string]> = [];
const add = (kind: string, pct: number) => shares.set(kind, (shares.get(kind) ?? 0) + pct);
for (const line of report.stdout.split('\n')) {
  const m = /^\s*([\d.]+)%\s+(\S+)\s+(.+?)\s+\[(.)\]\s+(.*)$/.exec(line);
  if (!m) continue;
  const pct = Number(m[1]);
  const [thread, dso, ring, symbol] = [m[2]!, m[3]!.trim(), m[4]!, m[5]!];
  functions.push([pct, `${thread} ${symbol}`]);
  if (thread !== 'node') add(`libuv's pool (${/sqlite/.test(dso) ? 'SQLite' : ring === 'k' ? 'kernel' : 'other'})`, pct);
  else if (symbol.startsWith('JS:*')) add('JavaScript optimized by TurboFan', pct);
  else if (symbol.startsWith('JS:^')) add('JavaScript in Sparkplug baseline code', pct);
  else if (symbol.startsWith('JS:') || symbol.startsWith('RegExp:')) add('JavaScript, other (interpreted, regular expressions)', pct);
  else if (/^Builtins_(LoadIC|StoreIC|KeyedLoadIC|KeyedStoreIC|DefineNamedOwnIC|CallFunction|Call_Receiver|Baseline|Interpreter|CompileLazy|ToBooleanFor)/.test(symbol) || /Handler$/.test(symbol))
    add('V8 builtins unoptimized code calls (inline caches, calls, interpreter)', pct);
  else if (symbol.startsWith('Builtins_')) add('V8 builtins, other (promises, strings, objects)', pct);
  else if (/compiler::|turboshaft/.test(symbol)) add('TurboFan compiling', pct);
  else if (/Scaveng|Marking|Sweep|MarkCompact|Evacuat|ConcurrentMark/.test(symbol)) add('garbage collection', pct);
  else if (ring === 'k') add('kernel (main thread and V8 helpers)', pct);
  else if (/rsa|RSA|bn_|BN_|ossl|sha|SHA|EVP|aes|gcm/.test(symbol)) add('OpenSSL', pct);
  else if (/libc/.test(dso)) add('libc (malloc, memcpy)', pct);
  else add('other native (V8 runtime, Node, napi)', pct);
}
process.stdout.write(`${benchLine}\n\nbroker CPU by kind of work (perf, ${pid}, 12 s):\n`);
for (const [kind, pct] of [...shares].sort((a, b) => b[1] - a[1])) process.stdout.write(`${pct.toFixed(1).padStart(6)} %  ${kind}\n`);
const top = Number(values.top);
if (top > 0) {
  process.stdout.write('\nlargest functions:\n');
  for (const [pct, name] of functions.sort((a, b) => b[0] - a[0]).slice(0, top)) process.stdout.write(`${pct.toFixed(2).padStart(6)} %  ${name.slice(0, 160)}\n`);
}
fs.rmSync(path.dirname(data), { recursive: true, force: true });
for (const file of fs.readdirSync('/tmp')) if (file === `perf-${pid}.map`) fs.rmSync(path.join('/tmp', file), { force: true });
