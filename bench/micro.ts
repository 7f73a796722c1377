/**
 * Micro-benchmarks on the same processes as the full logins: the broker CPU that the ACS alone and the
 * token endpoint alone cost, measured by preparing many logins up to that step and then sending only
 * that step's requests while reading the broker's CPU time.
 */
import { execSync } from 'node:child_process';
import { BENCH_MEANS, cpuMs, startVariant } from './cluster.ts';
import { beginLogin, followToCode, postToAcs, redeem, withConcurrency, type LoginInProgress, type LoginTarget } from './load-driver.ts';

export interface MicroResult {
  kind: 'micro';
  variant: string;
  operations: number;
  opsPerS: number;
  medianMs: number;
  cpuMsPerOp: number;
  commit: string;
  at: string;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

function commit(): string {
  try {
    return execSync('git rev-parse --short HEAD').toString().trim();
  } catch {
    return 'unknown';
  }
}

async function measure(name: string, pid: number, items: LoginInProgress[], concurrency: number, step: (login: LoginInProgress) => Promise<void>): Promise<MicroResult> {
  const latencies: number[] = [];
  const cpuBefore = cpuMs(pid);
  const started = performance.now();
  await withConcurrency(items, concurrency, async (login) => {
    const t0 = performance.now();
    await step(login);
    latencies.push(performance.now() - t0);
  });
  const wall = performance.now() - started;
  return {
    kind: 'micro',
    variant: name,
    operations: items.length,
    opsPerS: (items.length / wall) * 1000,
    medianMs: median(latencies),
    cpuMsPerOp: (cpuMs(pid) - cpuBefore) / items.length,
    commit: commit(),
    at: new Date().toISOString(),
  };
}

export async function runMicroBenchmarks(count = 400, concurrency = 8): Promise<MicroResult[]> {
  const running = await startVariant({ database: 'sqlite', nodes: 1, encrypted: true, idTokenAlg: 'RS256' });
  try {
    const target: LoginTarget = { nodes: running.nodes, publicOrigin: running.publicOrigin, ...running.sep, means: BENCH_MEANS, scope: 'openid profile' };
    const pid = running.brokerPids[0]!;
    const warm = await beginLogin(target);
    await followToCode(target, warm, await postToAcs(target, warm));
    await redeem(target, warm);

    const atAcs: LoginInProgress[] = [];
    await withConcurrency(Array.from({ length: count }, (_, i) => i), concurrency, async () => {
      atAcs.push(await beginLogin(target));
    });
    const next = new Map<LoginInProgress, string>();
    const acs = await measure('acs-validation (SAML ACS request, encrypted assertion)', pid, atAcs, concurrency, async (login) => {
      next.set(login, await postToAcs(target, login));
    });

    await withConcurrency(atAcs, concurrency, async (login) => {
      await followToCode(target, login, next.get(login)!);
    });
    const token = await measure('token-endpoint (code → ID token + access token, RS256)', pid, atAcs, concurrency, async (login) => {
      await redeem(target, login);
    });
    return [acs, token];
  } finally {
    await running.stop();
  }
}
