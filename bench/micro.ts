/**
 * Micro-benchmarks on the same processes as the full logins: the broker CPU each step of a login
 * costs on its own, measured by taking many logins to that step and then sending only that step's
 * requests while reading the broker's CPU time. "ACS validation alone" and "token endpoint alone" are
 * two of the rows; the others show where the rest of a login's CPU goes.
 */
import { execSync } from 'node:child_process';
import { BENCH_MEANS, cpuMs, startVariant } from './cluster.ts';
import { atIdp, authorize, fetchUserinfo, handOff, hop, oneLogin, postToAcs, redeem, withConcurrency, type LoginInProgress, type LoginTarget } from './load-driver.ts';

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
    for (let i = 0; i < 30; i += 1) await oneLogin(target); // consent once, then warm up

    const logins: LoginInProgress[] = [];
    const results: MicroResult[] = [];
    results.push(
      // With idp_hint the login is handed off here: the signed AuthnRequest and its record.
      await measure('step 1: authorization request → signed AuthnRequest (idp_hint)', pid, Array.from({ length: count }, () => ({}) as LoginInProgress), concurrency, async (slot) => {
        const login = Object.assign(slot, await authorize(target));
        await handOff(target, login);
        logins.push(login);
      }),
    );
    await withConcurrency(logins, concurrency, atIdp);
    // The ACS also finishes the login stage: the browser goes straight to the resumed authorization.
    results.push(await measure('step 4: ACS validation (SAML response, encrypted assertion) and the login result', pid, logins, concurrency, async (login) => void (await postToAcs(target, login))));
    results.push(
      await measure('step 6: resumed authorization → code (permanent consent)', pid, logins, concurrency, async (login) => {
        await hop(target, login);
        login.code = new URL(login.next!).searchParams.get('code') ?? undefined;
        if (!login.code) throw new Error('no code after resume');
      }),
    );
    results.push(await measure('step 7: token endpoint (code → ID token RS256 + access token)', pid, logins, concurrency, async (login) => void (await redeem(target, login))));
    results.push(await measure('step 8: userinfo', pid, logins, concurrency, (login) => fetchUserinfo(target, login)));
    return results;
  } finally {
    await running.stop();
  }
}
