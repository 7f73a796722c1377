/**
 * What one brokered login allocates on Brána's heap, garbage included: V8's sampling heap profiler
 * (objects collected by minor and major GCs kept in the profile) over sequential logins in one
 * process (development IdP, SQLite, consent already given). Allocations whose stack passes through
 * the test driver or the development IdP are counted apart: the rest is the broker's. Where issue
 * 14's "GC and RSS: measure heap allocation per login" stands, and which code allocates most.
 *   node bench/alloc-per-login.ts [logins] [profile.json]
 * It runs with the broker's own flags (src/node-flags.ts): without them AsyncLocalStorage runs on
 * promise hooks, whose allocation (≈ 0.5 MiB per login) a broker node does not have. With a second
 * argument the raw profile is written there too, for bench/alloc-sites.ts.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import inspector from 'node:inspector/promises';
import { fileURLToPath } from 'node:url';
import { BROKER_NODE_FLAGS, runsWithBrokerNodeFlags } from '../src/node-flags.ts';
import { HARNESS, packageOf, type SamplingNode } from './heap-profile.ts';
import { completeLogin } from '../test/support/login-driver.ts';
import { startTestBroker } from '../test/support/test-broker.ts';

if (!runsWithBrokerNodeFlags()) {
  const run = spawnSync(process.execPath, [...BROKER_NODE_FLAGS, ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(run.status ?? 1);
}

const logins = Number(process.argv[2] ?? 60);
const brana = await startTestBroker();
const sep = await brana.registerSep();
const login = () => completeLogin(brana.url.origin, sep, { scope: 'openid profile', means: 'eobcanka', login: '100000001', permanent: true });
for (let i = 0; i < 10; i += 1) await login(); // consent, JIT, caches


const session = new inspector.Session();
session.connect();
await session.post('HeapProfiler.enable');
// Every 4 KiB allocated, on average; `includeObjectsCollectedBy…` keeps the garbage in the profile.
await session.post('HeapProfiler.startSampling', {
  samplingInterval: 4096,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
} as inspector.HeapProfiler.StartSamplingParameterType);
for (let i = 0; i < logins; i += 1) await login();
const { profile } = (await session.post('HeapProfiler.stopSampling')) as { profile: { head: SamplingNode } };
if (process.argv[3]) fs.writeFileSync(process.argv[3], JSON.stringify({ logins, ...profile }));
await brana.close();

const by = { broker: 0, harness: 0 };
const brokerByPackage = new Map<string, number>();
const brokerByFunction = new Map<string, number>();


function walk(node: SamplingNode, inHarness: boolean): void {
  const harness = inHarness || HARNESS.test(node.callFrame.url);
  if (node.selfSize) {
    if (harness) by.harness += node.selfSize;
    else {
      by.broker += node.selfSize;
      const pkg = packageOf(node.callFrame.url);
      brokerByPackage.set(pkg, (brokerByPackage.get(pkg) ?? 0) + node.selfSize);
      const key = `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.replace(/^.*\/(src|node_modules)\//, '$1/')}:${node.callFrame.lineNumber}`;
      brokerByFunction.set(key, (brokerByFunction.get(key) ?? 0) + node.selfSize);
    }
  }
  for (const child of node.children) walk(child, harness);
}
walk(profile.head, false);

const kb = (bytes: number) => `${(bytes / logins / 1024).toFixed(0).padStart(6)} KiB`;
process.stdout.write(`${logins} sequential logins; heap allocated per login, garbage included (sampled every 4 KiB)\n\n`);
process.stdout.write(`broker:                          ${kb(by.broker)}\n`);
process.stdout.write(`test driver and development IdP: ${kb(by.harness)}\n\n`);
process.stdout.write('broker, by package:\n');
for (const [pkg, bytes] of [...brokerByPackage].sort((a, b) => b[1] - a[1]).slice(0, 15)) process.stdout.write(`  ${kb(bytes)}  ${pkg}\n`);
process.stdout.write('\nbroker, by function:\n');
for (const [fn, bytes] of [...brokerByFunction].sort((a, b) => b[1] - a[1]).slice(0, 20)) process.stdout.write(`  ${kb(bytes)}  ${fn}\n`);
