/**
 * The faults the chaos suite injects while the load runs. Each scenario gets the running cluster
 * and a clock, injects its faults at (seeded) random moments, and returns what it did and when, so
 * that recovery can be measured against the completed logins afterwards.
 */
import type { ChaosNode } from './nodes.ts';
import type { PrivatePostgres } from './private-postgres.ts';

export const SCENARIOS = ['baseline', 'kill', 'term', 'rolling', 'freeze', 'db-stop', 'db-freeze', 'register-latency'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export const DESCRIPTIONS: Record<ScenarioName, string> = {
  baseline: 'no fault: the reference',
  kill: 'SIGKILL a node at random moments; restarted after the restart delay (a supervisor)',
  term: 'SIGTERM a node (graceful drain); restarted after it exits and the restart delay',
  rolling: 'a rolling restart: each node in turn SIGTERMed and restarted; the next one once /readyz is 200 and the rolling pause is over',
  freeze: 'SIGSTOP a node for the freeze time, then SIGCONT (a frozen process / paused VM)',
  'db-stop': 'stop the PostgreSQL server (fast shutdown), start it again after the stop time',
  'db-freeze': 'SIGSTOP every PostgreSQL process for the freeze time, then SIGCONT (a hung database)',
  'register-latency': 'the population register answers after the register latency: throughput at two concurrencies',
};

export interface ScenarioSettings {
  durationMs: number;
  kills: number;
  terms: number;
  freezes: number;
  freezeMs: number;
  dbStopMs: number;
  dbFreezeMs: number;
  restartDelayMs: number;
  /** Rolling restart: the wait after a restarted node is ready before the next node is stopped. */
  rollingPauseMs: number;
}

/** One injected fault. Times are ms since the load started. */
export interface FaultRecord {
  kind: 'SIGKILL' | 'SIGTERM' | 'SIGSTOP' | 'db-stop' | 'db-freeze';
  node?: string;
  injectedAt: number;
  /** When the fault ended: the restart began, SIGCONT was sent, the database accepted connections again. */
  endedAt: number;
  /** SIGTERM: how long the node took to drain and exit, and how it exited. */
  drainMs?: number;
  exit?: string;
  /** Fault end → /readyz 200, per node concerned (null: not within 60 s). */
  readyAfterEndMs: Record<string, number | null>;
  /** Restart → the node listening again. */
  listeningAfterRestartMs?: number;
}

export interface FaultContext {
  nodes: ChaosNode[];
  postgres: PrivatePostgres;
  settings: ScenarioSettings;
  random: () => number;
  /** ms since the load started. */
  now(): number;
  /** Resolves at that many ms since the load started (at once if past). */
  until(ms: number): Promise<void>;
  /** Something worth saying while it runs. */
  say(message: string): void;
}

/**
 * `count` moments, one in each of `count` equal slots of the scenario, early enough in its slot
 * (the first `share` of it) for the fault and the recovery to fit before the next.
 */
function moments(ctx: FaultContext, count: number, share = 0.5): number[] {
  const start = ctx.settings.durationMs * 0.1;
  const slot = (ctx.settings.durationMs * 0.9) / Math.max(1, count);
  return Array.from({ length: count }, (_, i) => Math.round(start + i * slot + ctx.random() * slot * share));
}

function pick<T>(ctx: FaultContext, items: T[]): T {
  return items[Math.floor(ctx.random() * items.length)]!;
}

async function restart(ctx: FaultContext, node: ChaosNode, fault: FaultRecord): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ctx.settings.restartDelayMs));
  fault.endedAt = ctx.now();
  await node.start();
  fault.listeningAfterRestartMs = ctx.now() - fault.endedAt;
  const ready = await node.waitReady();
  fault.readyAfterEndMs[node.name] = ready === null ? null : ctx.now() - fault.endedAt;
}

export async function runFaults(name: ScenarioName, ctx: FaultContext): Promise<FaultRecord[]> {
  const faults: FaultRecord[] = [];
  const { settings } = ctx;
  switch (name) {
    case 'baseline':
    case 'register-latency':
      break;
    case 'kill':
      for (const at of moments(ctx, settings.kills)) {
        await ctx.until(at);
        const node = pick(ctx, ctx.nodes);
        const fault: FaultRecord = { kind: 'SIGKILL', node: node.name, injectedAt: ctx.now(), endedAt: Number.NaN, readyAfterEndMs: {} };
        faults.push(fault);
        ctx.say(`SIGKILL node ${node.name}`);
        await node.kill();
        await restart(ctx, node, fault);
      }
      break;
    case 'term':
      for (const at of moments(ctx, settings.terms)) {
        await ctx.until(at);
        const node = pick(ctx, ctx.nodes);
        const fault: FaultRecord = { kind: 'SIGTERM', node: node.name, injectedAt: ctx.now(), endedAt: Number.NaN, readyAfterEndMs: {} };
        faults.push(fault);
        ctx.say(`SIGTERM node ${node.name}`);
        const exit = await node.terminate();
        fault.drainMs = ctx.now() - fault.injectedAt;
        fault.exit = exit.forced ? 'killed after 40 s' : exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
        await restart(ctx, node, fault);
      }
      break;
    case 'rolling': {
      const [at] = moments(ctx, 1, 0.3);
      await ctx.until(at!);
      for (const [i, node] of ctx.nodes.entries()) {
        if (i > 0) await ctx.until(ctx.now() + settings.rollingPauseMs);
        const fault: FaultRecord = { kind: 'SIGTERM', node: node.name, injectedAt: ctx.now(), endedAt: Number.NaN, readyAfterEndMs: {} };
        faults.push(fault);
        ctx.say(`rolling restart: SIGTERM node ${node.name}`);
        const exit = await node.terminate();
        fault.drainMs = ctx.now() - fault.injectedAt;
        fault.exit = exit.forced ? 'killed after 40 s' : exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
        await restart(ctx, node, fault);
      }
      break;
    }
    case 'freeze':
      for (const at of moments(ctx, settings.freezes, 0.3)) {
        await ctx.until(at);
        const node = pick(ctx, ctx.nodes);
        const fault: FaultRecord = { kind: 'SIGSTOP', node: node.name, injectedAt: ctx.now(), endedAt: Number.NaN, readyAfterEndMs: {} };
        faults.push(fault);
        ctx.say(`SIGSTOP node ${node.name} for ${settings.freezeMs / 1000} s`);
        node.signal('SIGSTOP');
        await ctx.until(fault.injectedAt + settings.freezeMs);
        node.signal('SIGCONT');
        fault.endedAt = ctx.now();
        const ready = await node.waitReady();
        fault.readyAfterEndMs[node.name] = ready === null ? null : ctx.now() - fault.endedAt;
      }
      break;
    case 'db-stop':
    case 'db-freeze': {
      const [at] = moments(ctx, 1, 0.4);
      await ctx.until(at!);
      const fault: FaultRecord = { kind: name, injectedAt: ctx.now(), endedAt: Number.NaN, readyAfterEndMs: {} };
      faults.push(fault);
      if (name === 'db-stop') {
        ctx.say(`stopping PostgreSQL for ${settings.dbStopMs / 1000} s`);
        await ctx.postgres.stop('fast');
        await ctx.until(ctx.now() + settings.dbStopMs);
        await ctx.postgres.start();
      } else {
        ctx.say(`freezing PostgreSQL for ${settings.dbFreezeMs / 1000} s`);
        ctx.postgres.freeze();
        await ctx.until(fault.injectedAt + settings.dbFreezeMs);
        ctx.postgres.thaw();
      }
      fault.endedAt = ctx.now();
      await Promise.all(
        ctx.nodes.map(async (node) => {
          const ready = await node.waitReady();
          fault.readyAfterEndMs[node.name] = ready === null ? null : ctx.now() - fault.endedAt;
        }),
      );
      break;
    }
  }
  await ctx.until(settings.durationMs);
  return faults;
}

/** A small seeded generator (mulberry32), so that a run's moments can be repeated with --seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
