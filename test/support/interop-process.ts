import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';

/**
 * What the interop suites need of the machine: real IdP software run as child processes. A missing
 * piece fails the suite with the Debian package to install (`.ci/run` installs them), never skips it.
 */
export interface Prerequisite {
  /** What is checked, as a reader of the failure wants to see it. */
  what: string;
  /** The Debian package that provides it. */
  debianPackage: string;
  command: string;
  args: string[];
}

export function requirePrerequisites(prerequisites: Prerequisite[]): void {
  const missing = prerequisites.filter(({ command, args }) => {
    try {
      execFileSync(command, args, { stdio: 'ignore', timeout: 15_000 });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length) {
    throw new Error(
      `the interop tests need real IdP software that is not installed: ${missing.map((m) => `${m.what} (Debian package ${m.debianPackage})`).join('; ')}. ` +
        `Run .ci/run, or: apt-get install -y ${[...new Set(missing.map((m) => m.debianPackage))].join(' ')}`,
    );
  }
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A server run as a child process; its output is kept for the error when it does not come up. */
export interface ServerProcess {
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Starts a server and waits until `readyUrl` answers 200 (or the process dies, or 15 s pass). */
export async function startServerProcess(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; readyUrl: string }): Promise<ServerProcess> {
  const child = spawn(command, args, { env: { ...process.env, ...options.env }, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  // A test run that ends without its after() hooks (an uncaught error, --bail) must not leave the IdP running.
  const killOnExit = () => child.kill('SIGTERM');
  process.once('exit', killOnExit);
  const exited = new Promise<void>((resolve) => child.once('exit', () => {
    process.removeListener('exit', killOnExit);
    resolve();
  }));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${command} exited with ${child.exitCode}: ${output}`);
    try {
      const answer = await fetch(options.readyUrl);
      if (answer.status === 200) return { child, output: () => output, stop };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${command} did not answer ${options.readyUrl} within 15 s: ${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
