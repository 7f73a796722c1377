import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BROKER_NODE_FLAGS } from '../../src/node-flags.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** A Brána node as a real process (`node src/main.ts`), as a cluster runs it. */
export interface BrokerProcess {
  name: string;
  /** Where it listens (plain http; a proxy in front adds TLS). */
  port: number;
  origin: string;
  child: ChildProcess;
  /** Everything it printed, for the failure message of a test. */
  output(): string;
  /** Resolves when the process has ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  alive(): boolean;
  signal(signal: NodeJS.Signals): void;
  /** SIGKILL, and wait until it is gone. */
  kill(): Promise<void>;
}

export async function startBrokerProcess(name: string, env: Record<string, string>): Promise<BrokerProcess> {
  const child = spawn(process.execPath, [...BROKER_NODE_FLAGS, 'src/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn', BRANA_PORT: '0', BRANA_BIND_HOST: '127.0.0.1', BRANA_DEMO_SEP_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const port = await new Promise<number>((resolve, reject) => {
    const look = () => {
      const match = /bound to [^\s;]+:(\d+);/.exec(output);
      if (match) {
        child.stdout!.off('data', look);
        resolve(Number(match[1]));
      }
    };
    child.stdout!.on('data', look);
    void exited.then(({ code, signal }) => reject(new Error(`node ${name} ended before listening (code ${code}, signal ${signal}):\n${output}`)));
  });
  let ended = false;
  void exited.then(() => (ended = true));
  return {
    name,
    port,
    origin: `http://127.0.0.1:${port}`,
    child,
    output: () => output,
    exited,
    alive: () => !ended,
    signal(signal) {
      child.kill(signal);
    },
    async kill() {
      if (!ended) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Runs `node src/main.ts` to its end (for a start that must fail), returning what it printed. */
export async function runBrokerToEnd(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['src/main.ts'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, stdout, stderr };
}
