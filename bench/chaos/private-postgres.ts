/**
 * A private PostgreSQL cluster for the chaos suite: initdb into a temporary folder, one postmaster
 * on a free loopback port, trust authentication. The suite stops it, freezes it and starts it again
 * under running Brána nodes; the machine's shared server (5432) is never touched.
 *
 * initdb and postgres refuse to run as root: run by root, the cluster belongs to an unprivileged
 * user (`postgres` by default) and its processes are started as that user.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { freePort } from '../cluster.ts';
import { serviceUser, type ServiceUser } from './service-user.ts';

export interface PrivatePostgresOptions {
  /** Where initdb, pg_ctl and postgres are (BRANA_CHAOS_PG_BIN; default: the Debian PostgreSQL 15 packages). */
  binDir: string;
  /** The cluster's folder (created; owned by the service user). */
  dir: string;
  user: ServiceUser;
}

export class PrivatePostgres {
  readonly port: number;
  private readonly options: PrivatePostgresOptions;
  private postmaster: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private frozen: number[] = [];

  private constructor(options: PrivatePostgresOptions, port: number) {
    this.options = options;
    this.port = port;
  }

  /** initdb (about a second), not yet started. */
  static async create(options: Partial<PrivatePostgresOptions> & { dir: string }): Promise<PrivatePostgres> {
    const full: PrivatePostgresOptions = {
      binDir: options.binDir ?? process.env.BRANA_CHAOS_PG_BIN ?? '/usr/lib/postgresql/15/bin',
      dir: options.dir,
      user: options.user ?? serviceUser(),
    };
    if (!fs.existsSync(path.join(full.binDir, 'initdb'))) throw new Error(`no initdb in ${full.binDir} (set BRANA_CHAOS_PG_BIN to PostgreSQL's bin folder)`);
    fs.mkdirSync(full.dir, { recursive: true });
    full.user.own(full.dir);
    const postgres = new PrivatePostgres(full, await freePort());
    await postgres.run('initdb', ['-D', postgres.dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    return postgres;
  }

  get dataDir(): string {
    return path.join(this.options.dir, 'data');
  }

  get logFile(): string {
    return path.join(this.options.dir, 'postgres.log');
  }

  /** DATABASE_URL of one of its databases. */
  url(database = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  get running(): boolean {
    return this.postmaster !== undefined && this.postmaster.exitCode === null && this.postmaster.signalCode === null;
  }

  /** Starts the postmaster and resolves once it accepts connections. */
  async start(): Promise<void> {
    if (this.running) return;
    const log = fs.openSync(this.logFile, 'a');
    const child = spawn(
      path.join(this.options.binDir, 'postgres'),
      [
        '-D', this.dataDir,
        '-p', String(this.port),
        '-k', this.options.dir,
        '-c', 'listen_addresses=127.0.0.1',
        // Nothing here must survive a crash of the machine: spare the shared disk. (synchronous_commit
        // stays on: a commit Brána saw is a commit the database has, as in production.)
        '-c', 'fsync=off',
        '-c', 'full_page_writes=off',
        '-c', 'max_connections=100',
      ],
      { stdio: ['ignore', log, log], ...this.options.user.spawnOptions },
    );
    fs.closeSync(log);
    this.postmaster = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (!this.running) throw new Error(`PostgreSQL did not start (see ${this.logFile}):\n${fs.readFileSync(this.logFile, 'utf8').slice(-2000)}`);
      if (await this.accepts()) return;
      if (Date.now() > deadline) throw new Error(`PostgreSQL did not accept connections within 30 s (see ${this.logFile})`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Whether a connection and `SELECT 1` succeed within a second. */
  async accepts(): Promise<boolean> {
    const client = new pg.Client({ connectionString: this.url(), connectionTimeoutMillis: 1000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /**
   * Stops the server. `fast` (SIGINT): open transactions are rolled back, connections closed, a clean
   * shutdown; `immediate` (SIGQUIT): the processes quit at once, recovery on the next start.
   */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    if (!this.running) return;
    this.thaw();
    this.postmaster!.kill(mode === 'fast' ? 'SIGINT' : 'SIGQUIT');
    const timer = setTimeout(() => this.postmaster?.kill('SIGKILL'), 20_000);
    await this.exited;
    clearTimeout(timer);
  }

  /** Immediate shutdown without waiting (synchronous: for process.on('exit')). */
  abandon(): void {
    if (!this.running) return;
    this.thaw();
    this.postmaster!.kill('SIGQUIT');
  }

  /** Every process of the cluster stops where it is (SIGSTOP): connections stay open, nothing answers. */
  freeze(): void {
    if (!this.running) return;
    const pids = [this.postmaster!.pid!, ...childrenOf(this.postmaster!.pid!)];
    for (const pid of pids) process.kill(pid, 'SIGSTOP');
    this.frozen = pids;
  }

  thaw(): void {
    for (const pid of this.frozen) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone meanwhile
      }
    }
    this.frozen = [];
  }

  async createDatabase(name: string): Promise<string> {
    await this.admin(`CREATE DATABASE "${name}"`);
    return this.url(name);
  }

  async dropDatabase(name: string): Promise<void> {
    await this.admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  }

  /** Stops the server at once and removes its folder. */
  async destroy(): Promise<void> {
    await this.stop('immediate').catch(() => undefined);
    fs.rmSync(this.options.dir, { recursive: true, force: true });
  }

  private async admin(sql: string): Promise<void> {
    const client = new pg.Client({ connectionString: this.url(), connectionTimeoutMillis: 5000 });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  }

  private run(tool: string, args: string[]): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawn(path.join(this.options.binDir, tool), args, { stdio: ['ignore', 'pipe', 'pipe'], ...this.options.user.spawnOptions });
      let output = '';
      child.stdout.on('data', (c: Buffer) => (output += c.toString()));
      child.stderr.on('data', (c: Buffer) => (output += c.toString()));
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${tool} exited with ${code}:\n${output}`))));
    });
  }
}

/**
 * What the server logged from `fromOffset` on: errors and fatal errors with the statement they
 * interrupted (a statement timeout on `pg_advisory_xact_lock` is a node waiting for a lock another
 * holds), and transactions cut off by a client that went away.
 */
export function summarizePostgresLog(file: string, fromOffset = 0): Record<string, number> {
  if (!fs.existsSync(file)) return {};
  const lines = fs.readFileSync(file, 'utf8').slice(fromOffset).split('\n');
  const found: Record<string, number> = {};
  const count = (key: string) => (found[key] = (found[key] ?? 0) + 1);
  for (let i = 0; i < lines.length; i += 1) {
    const m = /\[(\d+)\] (ERROR|FATAL|LOG):\s+(.*)$/.exec(lines[i]!);
    if (!m) continue;
    const [, pid, level, message] = m;
    if (level === 'LOG') {
      if (/open transaction|terminating|shutdown|ready to accept/.test(message!)) count(`LOG ${message}`);
      continue;
    }
    const statement = /\[(\d+)\] STATEMENT:\s+(.*)$/.exec(lines[i + 1] ?? '');
    const about = statement && statement[1] === pid ? ` — ${statement[2]!.replace(/\s+/g, ' ').slice(0, 90)}` : '';
    count(`${level} ${message}${about}`);
  }
  return found;
}

/** The processes whose parent is `pid` (the postmaster's backends and helpers), from /proc. */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (parent === pid) children.push(Number(entry));
    } catch {
      // ended meanwhile
    }
  }
  return children;
}
