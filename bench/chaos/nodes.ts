/**
 * The Brána nodes of the chaos suite: real processes (`node src/main.ts`) on fixed ports (nginx's
 * upstream names them), which the suite kills, terminates, freezes and starts again.
 */
import type { ChildProcess } from 'node:child_process';
import { startProcess } from '../cluster.ts';
import { BROKER_NODE_FLAGS } from '../../src/node-flags.ts';

export class ChaosNode {
  /** Every node process started, so that none outlives the suite. */
  private static readonly children = new Set<ChildProcess>();
  /** Set when the suite is ending: no node starts any more (a fault script may still be running). */
  static closed = false;

  /** SIGKILL to every node still running (synchronous: for process.on('exit')). */
  static killAll(): void {
    for (const child of ChaosNode.children) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGCONT');
        child.kill('SIGKILL');
      }
    }
  }

  readonly name: string;
  readonly port: number;
  private readonly logFile: string;
  private env: NodeJS.ProcessEnv = {};
  private child: ChildProcess | undefined;
  private exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> = Promise.resolve({ code: null, signal: null });
  private stopped = false;

  constructor(name: string, port: number, logFile: string) {
    this.name = name;
    this.port = port;
    this.logFile = logFile;
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.alive ? this.child!.pid : undefined;
  }

  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the node with this environment (kept for restarts); resolves once it listens. */
  async start(env?: NodeJS.ProcessEnv): Promise<void> {
    if (env) this.env = env;
    if (ChaosNode.closed) throw new Error(`node ${this.name} not started: the suite is ending`);
    if (this.alive) throw new Error(`node ${this.name} is already running`);
    const { child } = await startProcess([process.execPath, ...BROKER_NODE_FLAGS, 'src/main.ts'], { ...this.env, BRANA_PORT: String(this.port) }, /is listening at/, `node ${this.name}`, {
      logFile: this.logFile,
    });
    this.child = child;
    ChaosNode.children.add(child);
    child.once('exit', () => ChaosNode.children.delete(child));
    this.stopped = false;
    this.exit = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
      else child.once('exit', (code, signal) => resolve({ code, signal }));
    });
  }

  signal(signal: NodeJS.Signals): void {
    if (this.alive) this.child!.kill(signal);
  }

  /** SIGKILL, resolved once the process is gone. */
  async kill(): Promise<void> {
    this.signal('SIGCONT');
    this.signal('SIGKILL');
    await this.exit;
  }

  /** SIGTERM: Brána drains and exits by itself. Resolves with how it ended; SIGKILL after `limitMs`. */
  async terminate(limitMs = 40_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; forced: boolean }> {
    this.signal('SIGTERM');
    let forced = false;
    const timer = setTimeout(() => {
      forced = true;
      this.signal('SIGKILL');
    }, limitMs);
    const outcome = await this.exit;
    clearTimeout(timer);
    return { ...outcome, forced };
  }

  /** Whether the node answers /readyz with 200 within `timeoutMs`. */
  async ready(timeoutMs = 1000): Promise<boolean> {
    try {
      const response = await fetch(`${this.origin}/readyz`, { signal: AbortSignal.timeout(timeoutMs) });
      await response.arrayBuffer();
      return response.status === 200;
    } catch {
      return false;
    }
  }

  /** Polls /readyz every 100 ms until it is 200; resolves with the time it took, or null after `limitMs`. */
  async waitReady(limitMs = 60_000): Promise<number | null> {
    const started = performance.now();
    while (performance.now() - started < limitMs) {
      if (await this.ready()) return performance.now() - started;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return null;
  }

  /** Stops the node for good (end of a scenario): SIGTERM, SIGKILL after 10 s. */
  async stop(): Promise<void> {
    if (this.stopped || !this.alive) return;
    this.stopped = true;
    this.signal('SIGCONT');
    await this.terminate(10_000);
  }
}
