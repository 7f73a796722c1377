/**
 * Starting and stopping the processes of one benchmark variant: the fast IdP, one or two broker nodes
 * on SQLite or PostgreSQL, and the benchmark SeP registered through the CLI.
 */
import { execSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { BROKER_NODE_FLAGS } from '../src/node-flags.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The commit a result was measured on (`+dirty` with uncommitted changes to tracked files). */
export function commit(): string {
  try {
    const hash = execSync('git rev-parse --short HEAD', { cwd: ROOT }).toString().trim();
    const dirty = execSync('git status --porcelain --untracked-files=no', { cwd: ROOT }).toString().trim() ? '+dirty' : '';
    return hash + dirty;
  } catch {
    return 'unknown';
  }
}
export const BENCH_MEANS = 'bench-idp';
const POSTGRES_ADMIN = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface VariantSettings {
  database: 'sqlite' | 'postgres';
  nodes: 1 | 2;
  encrypted: boolean;
  idTokenAlg: 'RS256' | 'ES256';
}

export interface RunningVariant {
  nodes: string[];
  publicOrigin: string;
  brokerPids: number[];
  /** RSS of the broker node(s) right after they started, before any login (MB, summed). */
  startRssMb: number;
  /** V8 heap in use in the broker node(s), from their Prometheus metrics (MB, summed). */
  heapUsedMb(): Promise<number>;
  /** HTTP requests received and SQL statements sent so far by the broker node(s), summed (their metrics). */
  workDone(): Promise<{ requests: number; statements: number }>;
  sep: { clientId: string; clientSecret: string; redirectUri: string };
  dir: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/**
 * Spawns a process from the repository's root and resolves once its output matches `ready` (within
 * 30 s). With `logFile`, everything it prints is also appended there (the chaos suite keeps each
 * node's log as evidence).
 */
export function startProcess(
  command: string[],
  env: NodeJS.ProcessEnv,
  ready: RegExp,
  label: string,
  options: { logFile?: string } = {},
): Promise<{ child: ChildProcess; match: RegExpMatchArray }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command[0]!, command.slice(1), { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const log = options.logFile ? fs.createWriteStream(options.logFile, { flags: 'a' }) : undefined;
    if (log) {
      child.stdout!.on('data', (chunk: Buffer) => log.write(chunk));
      child.stderr!.on('data', (chunk: Buffer) => log.write(chunk));
      child.once('exit', () => log.end());
    }
    let output = '';
    const timer = setTimeout(() => reject(new Error(`${label} did not start:\n${output}`)), 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = ready.exec(output);
      if (match) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        child.stderr!.resume();
        resolve({ child, match });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${label} exited with ${code}:\n${output}`));
    });
  });
}

export function stopProcess(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    // Ended already (by itself, or by a signal: then exitCode is null and signalCode is set).
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve();
      return;
    }
    child.removeAllListeners('exit');
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  });
}

/** What `brana <args>` printed and how it ended. */
export interface CliOutcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `brana <args>` (src/cli/brana.ts) with this environment to its end, whatever its exit code. */
export function runCliToEnd(args: string[], env: NodeJS.ProcessEnv): Promise<CliOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['src/cli/brana.ts', ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs `brana <args>`; resolves with what it printed, rejects unless it exits 0. */
export async function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const outcome = await runCliToEnd(args, env);
  if (outcome.code !== 0) throw new Error(`brana ${args.join(' ')}: ${outcome.stderr}`);
  return outcome.stdout;
}

export interface FastIdp {
  origin: string;
  child: ChildProcess;
  /** The providers folder for the broker: the benchmark means and the IdP's metadata. */
  providersDir: string;
  /** Where the IdP reads the broker's SP metadata from, at its first request: write it before the first login. */
  spMetadataFile: string;
  stop(): Promise<void>;
}

/**
 * The fast SAML IdP (bench/fast-idp.ts) in its own process, and a providers folder in `dir` naming
 * it as the benchmark means `bench-idp`.
 */
export async function startFastIdp(dir: string, options: { encrypted: boolean }): Promise<FastIdp> {
  const providersDir = path.join(dir, 'providers');
  fs.mkdirSync(providersDir, { recursive: true });
  const spMetadataFile = path.join(dir, 'sp-metadata.xml');
  const idp = await startProcess(
    [process.execPath, 'bench/fast-idp.ts', '--keys', path.join(dir, 'idp-keys'), '--sp-metadata', spMetadataFile, ...(options.encrypted ? [] : ['--plain'])],
    {},
    /ready (\d+)/,
    'fast IdP',
  );
  const origin = `http://127.0.0.1:${idp.match[1]}`;
  try {
    fs.writeFileSync(path.join(providersDir, 'bench-idp.xml'), await (await fetch(`${origin}/metadata`)).text());
  } catch (err) {
    await stopProcess(idp.child);
    throw err;
  }
  fs.writeFileSync(
    path.join(providersDir, `${BENCH_MEANS}.json`),
    JSON.stringify({
      id: BENCH_MEANS,
      name: { cs: 'Měřicí poskytovatel identity', en: 'Benchmark identity provider' },
      administrator: { cs: 'Brána', en: 'Brána' },
      loa: 'high',
      protocol: 'saml',
      saml: { metadata: 'bench-idp.xml', requestedAttributes: ['CurrentGivenName', 'CurrentFamilyName', 'DateOfBirth', 'PlaceOfBirth'] },
    }),
  );
  return { origin, child: idp.child, providersDir, spMetadataFile, stop: () => stopProcess(idp.child) };
}

/** The environment of a benchmark broker node (and of the CLI run against its database). */
export function benchBrokerEnvironment(settings: { publicOrigin: string; providersDir: string; dir: string; databaseUrl: string }): NodeJS.ProcessEnv {
  return {
    BRANA_MODE: 'development',
    BRANA_PUBLIC_URL: settings.publicOrigin,
    BRANA_PROVIDERS_DIR: settings.providersDir,
    BRANA_KEYS_DIR: path.join(settings.dir, 'keys'),
    BRANA_DATA_DIR: path.join(settings.dir, 'data'),
    BRANA_DEMO_SEP_PORT: '0',
    DATABASE_URL: settings.databaseUrl,
    LOG_LEVEL: 'error',
    // Every virtual citizen comes from 127.0.0.1: per-IP rate limits would measure themselves.
    BRANA_RATE_LIMIT_LOGIN: '1000000000',
    BRANA_RATE_LIMIT_ACS: '1000000000',
    BRANA_RATE_LIMIT_TOKEN_FAILURES: '1000000000',
  };
}

export interface BenchSep {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
}

/** Registers the benchmark SeP through the CLI (`brana sep register`), which also migrates the database. */
export async function registerBenchSep(env: NodeJS.ProcessEnv, dir: string, idTokenAlg: 'RS256' | 'ES256'): Promise<BenchSep> {
  const redirectUri = 'https://sep.bench.example.cz/callback';
  const sepFile = path.join(dir, 'sep.json');
  fs.writeFileSync(
    sepFile,
    JSON.stringify({
      name: { cs: 'Měřicí SeP', en: 'Benchmark SeP' },
      organisation: { id: '00268810', name: 'Statutární město Hradec Králové' },
      description: 'SeP pro měření výkonu',
      infoUrl: 'https://sep.bench.example.cz/',
      group: 'bench',
      spType: 'public',
      minimumLoa: 'substantial',
      allowedAttributes: ['CurrentGivenName', 'CurrentFamilyName', 'DateOfBirth'],
      redirectUris: [redirectUri],
      ...(idTokenAlg === 'ES256' ? { idTokenSignedResponseAlg: 'ES256' } : {}),
    }),
  );
  const registered = JSON.parse(await runCli(['sep', 'register', '--file', sepFile], env)) as { clientId: string; clientSecret: string };
  return { clientId: registered.clientId, clientSecret: registered.clientSecret, redirectUri };
}

export async function startVariant(settings: VariantSettings): Promise<RunningVariant> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-bench-'));
  const stops: Array<() => Promise<void>> = [];
  try {
    const idp = await startFastIdp(dir, { encrypted: settings.encrypted });
    stops.push(() => idp.stop());

    let databaseUrl = `sqlite:${path.join(dir, 'data', 'brana.sqlite')}`;
    if (settings.database === 'postgres') {
      const name = `brana_bench_${Date.now()}_${process.pid}`;
      const admin = new pg.Client({ connectionString: POSTGRES_ADMIN });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${name}`);
      await admin.end();
      databaseUrl = POSTGRES_ADMIN.replace(/\/[^/]*$/, `/${name}`);
      stops.push(async () => {
        const cleanup = new pg.Client({ connectionString: POSTGRES_ADMIN });
        await cleanup.connect();
        await cleanup.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await cleanup.end();
      });
    }

    const ports = await Promise.all(Array.from({ length: settings.nodes }, freePort));
    const publicOrigin = `http://127.0.0.1:${ports[0]}`;
    const env = benchBrokerEnvironment({ publicOrigin, providersDir: idp.providersDir, dir, databaseUrl });
    const sep = await registerBenchSep(env, dir, settings.idTokenAlg);
    const monitor = JSON.parse(await runCli(['operator', 'add', '--role', 'monitor', '--name', 'bench'], env)) as { token: string };

    const nodes: string[] = [];
    const brokerPids: number[] = [];
    for (const port of ports) {
      // BENCH_CPU_PROF=<dir> writes a V8 CPU profile of each broker node there when it stops.
      const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(process.env.BENCH_CPU_PROF)}`] : [];
      // BENCH_BROKER_NODE_FLAGS: V8 flags for the broker nodes only, e.g. "--max-semi-space-size=4".
      const flags = (process.env.BENCH_BROKER_NODE_FLAGS ?? '').split(' ').filter(Boolean);
      const node = await startProcess([process.execPath, ...profile, ...BROKER_NODE_FLAGS, ...flags, 'src/main.ts'], { ...env, BRANA_PORT: String(port) }, /is listening at/, `broker on ${port}`);
      stops.unshift(() => stopProcess(node.child));
      nodes.push(`http://127.0.0.1:${port}`);
      brokerPids.push(node.child.pid!);
    }
    fs.writeFileSync(idp.spMetadataFile, await (await fetch(`${nodes[0]}/saml/${BENCH_MEANS}/metadata`)).text());

    return {
      nodes,
      publicOrigin,
      brokerPids,
      startRssMb: Math.round(brokerPids.map(currentRssMb).reduce((a, b) => a + b, 0)),
      async heapUsedMb() {
        let bytes = 0;
        for (const origin of nodes) {
          const text = await (await fetch(`${origin}/metrics`, { headers: { authorization: `Bearer ${monitor.token}` } })).text();
          bytes += Number(/^brana_nodejs_heap_size_used_bytes (\S+)$/m.exec(text)?.[1] ?? Number.NaN);
        }
        return Math.round(bytes / 2 ** 20);
      },
      async workDone() {
        let requests = 0;
        let statements = 0;
        for (const origin of nodes) {
          const text = await (await fetch(`${origin}/metrics`, { headers: { authorization: `Bearer ${monitor.token}` } })).text();
          requests += Number(/^brana_http_requests_total (\S+)$/m.exec(text)?.[1] ?? Number.NaN);
          statements += Number(/^brana_database_statements_total (\S+)$/m.exec(text)?.[1] ?? Number.NaN);
        }
        return { requests, statements };
      },
      sep,
      dir,
      async stop() {
        for (const stop of stops) await stop();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const stop of stops) await stop().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

const CLOCK_TICKS_PER_SECOND = 100;

/** CPU milliseconds a process has used so far (user + system), from /proc. */
export function cpuMs(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
}

/** The peak resident set size of a process so far, in MB. */
export function peakRssMb(pid: number): number {
  const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmHWM:'))!;
  return Number(line.replace(/\D+/g, '')) / 1024;
}

export function currentRssMb(pid: number): number {
  const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!;
  return Number(line.replace(/\D+/g, '')) / 1024;
}
