/**
 * Readiness (`/readyz`): may a load balancer send this node traffic? It is a list of named checks,
 * each answering for one thing the node needs (the database, its keys, …). Another check is one
 * line where the broker is wired: `readiness.add('metadata', async () => ({ ok, detail }))`; a
 * check may report per-part detail (e.g. per identity means) and is ready only when `ok`.
 */
export interface CheckResult {
  ok: boolean;
  /** What anyone may read at the public `/readyz`: never secrets, file paths, addresses or raw errors. */
  detail?: unknown;
  /** The raw error, for the node's log only: it may name hosts, addresses or files. */
  error?: string;
}

export type ReadinessCheck = () => Promise<CheckResult> | CheckResult;

export interface ReadinessReport {
  ready: boolean;
  status: 'ready' | 'not_ready' | 'draining';
  checks: Record<string, CheckResult>;
}

/** A check that does not answer in time counts as failed, so /readyz itself never hangs. */
export const CHECK_TIMEOUT_MS = 2000;

async function bounded(check: ReadinessCheck): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<CheckResult>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, detail: `no answer within ${CHECK_TIMEOUT_MS} ms` }), CHECK_TIMEOUT_MS);
  });
  try {
    return await Promise.race([Promise.resolve().then(check), timeout]);
  } catch (err) {
    return { ok: false, detail: 'the check failed', error: (err as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

export class Readiness {
  private readonly checks = new Map<string, ReadinessCheck>();
  private draining = false;

  add(name: string, check: ReadinessCheck): this {
    if (this.checks.has(name)) throw new Error(`readiness check ${name} is already registered`);
    this.checks.set(name, check);
    return this;
  }

  names(): string[] {
    return [...this.checks.keys()];
  }

  /** From SIGTERM on the node reports itself not ready, so that the load balancer stops sending it new logins. */
  drain(): void {
    this.draining = true;
  }

  async report(): Promise<ReadinessReport> {
    const entries = await Promise.all([...this.checks].map(async ([name, check]) => [name, await bounded(check)] as const));
    const checks = Object.fromEntries(entries);
    const allOk = entries.every(([, result]) => result.ok);
    const status = this.draining ? 'draining' : allOk ? 'ready' : 'not_ready';
    return { ready: status === 'ready', status, checks };
  }
}
