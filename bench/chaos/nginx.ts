/**
 * nginx in front of the chaos suite's nodes, configured with Brána's recommended configuration
 * (deploy/nginx/brana.conf.template, rendered here) inside a minimal main configuration that keeps
 * everything — pid, logs, temporary files — in the suite's folder. No root needed: it listens on a
 * free port above 1024.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../cluster.ts';
import type { ServiceUser } from './service-user.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const NGINX_TEMPLATE = path.join(ROOT, 'deploy', 'nginx', 'brana.conf.template');

export interface TemplateValues {
  nodes: string[];
  listen: string;
  serverName: string;
  publicHost: string;
  accessLog: string;
}

/** The recommended configuration with its placeholders filled in; a line naming {{NODE}} is repeated per node. */
export function renderBranaConf(template: string, values: TemplateValues): string {
  const lines: string[] = [];
  for (const line of template.split('\n')) {
    if (line.includes('{{NODE}}') && !line.trimStart().startsWith('#')) {
      for (const node of values.nodes) lines.push(line.replaceAll('{{NODE}}', node));
      continue;
    }
    lines.push(line);
  }
  const rendered = lines
    .join('\n')
    .replaceAll('{{LISTEN}}', values.listen)
    .replaceAll('{{SERVER_NAME}}', values.serverName)
    .replaceAll('{{PUBLIC_HOST}}', values.publicHost)
    .replaceAll('{{ACCESS_LOG}}', values.accessLog);
  const left = rendered
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join('\n')
    .match(/\{\{[A-Z_]+\}\}/);
  if (left) throw new Error(`${NGINX_TEMPLATE}: no value for ${left[0]}`);
  return rendered;
}

export interface RunningNginx {
  origin: string;
  port: number;
  dir: string;
  accessLog: string;
  errorLog: string;
  /** The byte length of the access log now: pass it to `readAccessLog` to read what came after. */
  accessLogOffset(): number;
  stop(): Promise<void>;
  /** Fast shutdown without waiting (synchronous: for process.on('exit')). */
  abandon(): void;
}

export async function startNginx(options: { dir: string; nodes: string[]; port?: number; user: ServiceUser; binary?: string; template?: string }): Promise<RunningNginx> {
  const binary = options.binary ?? process.env.BRANA_CHAOS_NGINX ?? '/usr/sbin/nginx';
  if (!fs.existsSync(binary)) throw new Error(`no nginx at ${binary} (install nginx-light, or set BRANA_CHAOS_NGINX)`);
  const dir = options.dir;
  fs.mkdirSync(dir, { recursive: true });
  const port = options.port ?? (await freePort());
  const accessLog = path.join(dir, 'access.log');
  const errorLog = path.join(dir, 'error.log');
  const branaConf = path.join(dir, 'brana.conf');
  fs.writeFileSync(
    branaConf,
    renderBranaConf(fs.readFileSync(options.template ?? NGINX_TEMPLATE, 'utf8'), { nodes: options.nodes, listen: `127.0.0.1:${port}`, serverName: '127.0.0.1', publicHost: `127.0.0.1:${port}`, accessLog }),
  );
  const temp = (name: string) => path.join(dir, 'temp', name);
  for (const name of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) fs.mkdirSync(temp(name), { recursive: true });
  // The suite's own frame around the recommendation: everything in `dir`, in the foreground.
  fs.writeFileSync(
    path.join(dir, 'nginx.conf'),
    [
      'daemon off;',
      'worker_processes 1;',
      `pid ${path.join(dir, 'nginx.pid')};`,
      `error_log ${errorLog} warn;`,
      'events { worker_connections 1024; }',
      'http {',
      `    client_body_temp_path ${temp('client_body')};`,
      `    proxy_temp_path ${temp('proxy')};`,
      `    fastcgi_temp_path ${temp('fastcgi')};`,
      `    uwsgi_temp_path ${temp('uwsgi')};`,
      `    scgi_temp_path ${temp('scgi')};`,
      `    include ${branaConf};`,
      '}',
      '',
    ].join('\n'),
  );
  options.user.own(dir);
  const args = ['-p', dir, '-e', errorLog, '-c', path.join(dir, 'nginx.conf')];
  await checkConfiguration(binary, args, options.user);
  const child: ChildProcess = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'], ...options.user.spawnOptions });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const origin = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`nginx ended at once:\n${stderr}${fs.existsSync(errorLog) ? fs.readFileSync(errorLog, 'utf8') : ''}`);
    // Listening is enough: a request through it now would find the nodes down and take them out of
    // rotation for fail_timeout.
    if (await accepts(port)) break;
    if (Date.now() > deadline) throw new Error(`nginx does not listen at ${origin}:\n${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    origin,
    port,
    dir,
    accessLog,
    errorLog,
    accessLogOffset: () => (fs.existsSync(accessLog) ? fs.statSync(accessLog).size : 0),
    abandon() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM'); // fast shutdown
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function checkConfiguration(binary: string, args: string[], user: ServiceUser): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, ['-t', ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...user.spawnOptions });
    let output = '';
    child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`nginx -t refused the configuration:\n${output}`))));
  });
}

/** One line of the access log (log_format brana_proxy). */
export interface AccessLogLine {
  /** Epoch ms. */
  at: number;
  method: string;
  uri: string;
  status: number;
  requestTimeS: number;
  /** Every node nginx tried, in order ("127.0.0.1:1234"); several: nginx moved the request on. */
  upstreams: string[];
  upstreamStatuses: string[];
}

const LINE = /^\S+ (\d+\.\d+) \S+ "(\S+) ([^"]*)" (\d{3}) (\S+) upstream="([^"]*)" upstream_status="([^"]*)"/;

export function readAccessLog(file: string, fromOffset = 0): AccessLogLine[] {
  if (!fs.existsSync(file)) return [];
  const fd = fs.openSync(file, 'r');
  try {
    const length = fs.fstatSync(fd).size - fromOffset;
    if (length <= 0) return [];
    const buffer = Buffer.alloc(length);
    fs.readSync(fd, buffer, 0, length, fromOffset);
    const lines: AccessLogLine[] = [];
    for (const text of buffer.toString('utf8').split('\n')) {
      const m = LINE.exec(text);
      if (!m) continue;
      const list = (value: string) => (value === '-' || value === '' ? [] : value.split(/\s*[,:]\s+/));
      lines.push({
        at: Number(m[1]) * 1000,
        method: m[2]!,
        uri: m[3]!,
        status: Number(m[4]),
        requestTimeS: Number(m[5]),
        upstreams: list(m[6]!),
        upstreamStatuses: list(m[7]!),
      });
    }
    return lines;
  } finally {
    fs.closeSync(fd);
  }
}
