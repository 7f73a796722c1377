/**
 * The chaos suite's load: virtual citizens doing complete brokered logins (the steps of
 * bench/load-driver.ts) through nginx, while faults are injected, and an account of what each
 * citizen and SeP saw.
 *
 * A citizen's browser does not retry: a step that fails ends that login (a *lost* login; the
 * citizen would start again). The SeP's server does retry its back-channel calls (token, userinfo)
 * on a network error, a timeout or a 5xx, for up to `backChannelRetryMs`: a code that still cannot
 * be exchanged then, or that a failed attempt consumed (the retry is answered `invalid_grant`), is
 * a *lost code*.
 */
import { createHash } from 'node:crypto';
import { requestIdOf } from '../../src/audit/request-id.ts';
import {
  atIdp,
  authorize,
  fetchUserinfo,
  followToCode,
  handOff,
  percentile,
  postToAcs,
  redeem,
  StepFailed,
  type LoginInProgress,
  type LoginTarget,
} from '../load-driver.ts';

export interface DriverOptions {
  concurrency: number;
  /** How long the SeP keeps retrying a token or userinfo request that failed transiently. */
  backChannelRetryMs: number;
}

/** How a lost code was lost. */
export type CodeLoss = 'consumed_by_failed_attempt' | 'refused' | 'retries_exhausted';

export interface LoadTally {
  /** Logins begun and ended (the ones still in flight when the load stops are waited for). */
  attempted: number;
  completed: number;
  /** Logins that ended in an error, by "<step> <status>" of the error that ended them. */
  lost: Record<string, number>;
  /** Every failed back-channel attempt the SeP retried, by "<step> <status>". */
  backChannelRetried: Record<string, number>;
  codesObtained: number;
  /** Codes exchanged only thanks to a retry. */
  codesSavedByRetry: number;
  codesLost: Record<CodeLoss, number>;
  /** The login of each lost code, by the id the assertion log knows it by (to see whether a token was issued for it). */
  lostCodes: Array<{ requestId: string; code: string; how: CodeLoss }>;
  /** performance.now() of every completed login. */
  completions: number[];
  /** performance.now() and key of every lost login. */
  losses: Array<{ at: number; key: string }>;
  latenciesMs: number[];
}

function emptyTally(): LoadTally {
  return {
    attempted: 0,
    completed: 0,
    lost: {},
    backChannelRetried: {},
    codesObtained: 0,
    codesSavedByRetry: 0,
    codesLost: { consumed_by_failed_attempt: 0, refused: 0, retries_exhausted: 0 },
    lostCodes: [],
    completions: [],
    losses: [],
    latenciesMs: [],
  };
}

/** "<step> <status>": the HTTP status, or timeout / the network error's code. */
export function describeFailure(step: string, err: unknown): string {
  if (err instanceof StepFailed) {
    const oauth = err.body ? /"error"\s*:\s*"([^"]+)"/.exec(err.body)?.[1] : undefined;
    return `${err.step} ${err.status}${oauth ? ` ${oauth}` : ''}`;
  }
  const error = err as Error & { cause?: { code?: string; message?: string } };
  if (error?.name === 'TimeoutError' || error?.name === 'AbortError') return `${step} timeout`;
  if (error?.name === 'TypeError' && error.message === 'fetch failed') return `${step} network:${error.cause?.code ?? error.cause?.message ?? 'error'}`;
  const authorization = /^authorization: (.+)$/.exec(error?.message ?? '');
  if (authorization) return `return authorization_error:${authorization[1]}`;
  return `${step} ${error?.message ?? String(err)}`.slice(0, 120);
}

/** Whether the SeP would try a failed back-channel call again. */
function transient(err: unknown): boolean {
  if (err instanceof StepFailed) return err.status >= 500;
  const name = (err as Error)?.name;
  return name === 'TimeoutError' || name === 'AbortError' || name === 'TypeError';
}

class LoginLost extends Error {
  readonly key: string;
  constructor(key: string) {
    super(key);
    this.key = key;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class ChaosLoad {
  readonly tally: LoadTally = emptyTally();
  private running = false;
  private workers: Promise<void>[] = [];
  private readonly target: LoginTarget;
  private readonly options: DriverOptions;

  constructor(target: LoginTarget, options: DriverOptions) {
    this.target = target;
    this.options = options;
  }

  start(): void {
    this.running = true;
    this.workers = Array.from({ length: this.options.concurrency }, () => this.citizen());
  }

  /** No new logins; resolves when the ones in flight have ended. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.workers);
  }

  private async citizen(): Promise<void> {
    while (this.running) {
      const t0 = performance.now();
      this.tally.attempted += 1;
      try {
        await this.oneLogin();
        const now = performance.now();
        this.tally.completed += 1;
        this.tally.completions.push(now);
        this.tally.latenciesMs.push(now - t0);
      } catch (err) {
        const key = err instanceof LoginLost ? err.key : describeFailure('driver', err);
        this.tally.lost[key] = (this.tally.lost[key] ?? 0) + 1;
        this.tally.losses.push({ at: performance.now(), key });
        // A citizen who just saw an error page does not click again within the same millisecond.
        await sleep(200);
      }
    }
  }

  private async step<T>(name: string, action: () => Promise<T>): Promise<T> {
    try {
      return await action();
    } catch (err) {
      throw new LoginLost(describeFailure(name, err));
    }
  }

  private async oneLogin(): Promise<void> {
    const t = this.target;
    const login = await this.step('authorize', () => authorize(t));
    await this.step('interaction', () => handOff(t, login));
    await this.step('idp', () => atIdp(login, t.timeoutMs));
    const back = await this.step('acs', () => postToAcs(t, login));
    await this.step('return', () => followToCode(t, login, back));
    this.tally.codesObtained += 1;
    await this.exchange(login);
    await this.backChannel('userinfo', () => fetchUserinfo(t, login));
  }

  /** The SeP redeems the code, retrying transient failures; a code it cannot redeem is lost. */
  private async exchange(login: LoginInProgress): Promise<void> {
    let failedBefore = false;
    try {
      await this.backChannel(
        'token',
        async () => void (await redeem(this.target, login)),
        () => (failedBefore = true),
      );
      if (failedBefore) this.tally.codesSavedByRetry += 1;
    } catch (err) {
      const lost = err as LoginLost;
      const refused = /^token 400 invalid_grant/.test(lost.key);
      const how: CodeLoss = refused ? (failedBefore ? 'consumed_by_failed_attempt' : 'refused') : 'retries_exhausted';
      this.tally.codesLost[how] += 1;
      this.tally.lostCodes.push({ requestId: requestIdOf(createHash('sha256').update(login.verifier).digest('base64url'))!, code: login.code!, how });
      throw err;
    }
  }

  private async backChannel(name: string, call: () => Promise<void>, onRetry?: () => void): Promise<void> {
    const started = performance.now();
    let wait = 250;
    for (;;) {
      try {
        await call();
        return;
      } catch (err) {
        const key = describeFailure(name, err);
        if (!transient(err) || performance.now() - started + wait > this.options.backChannelRetryMs) throw new LoginLost(key);
        this.tally.backChannelRetried[key] = (this.tally.backChannelRetried[key] ?? 0) + 1;
        onRetry?.();
        await sleep(wait);
        wait = Math.min(wait * 2, 4000);
      }
    }
  }
}

/** The longest stretch of [from, to] without a completed login. */
export function longestGap(completions: number[], from: number, to: number): { ms: number; startsAt: number } {
  const points = [from, ...completions.filter((t) => t > from && t < to).sort((a, b) => a - b), to];
  let best = { ms: 0, startsAt: from };
  for (let i = 1; i < points.length; i += 1) {
    const gap = points[i]! - points[i - 1]!;
    if (gap > best.ms) best = { ms: gap, startsAt: points[i - 1]! };
  }
  return best;
}

export function latencySummary(latencies: number[]): { p50: number; p95: number; p99: number; max: number } {
  const sorted = [...latencies].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99), max: sorted.at(-1) ?? Number.NaN };
}
