/**
 * The fixed price of one HTTP request before it does anything: the server-side CPU of a bare Node
 * HTTP server, of a bare Express app, and of Brána's own stack (security headers, the request's
 * write tracking, metrics, Express) answering /healthz, from the request event to the response's
 * finish. A login pays Brána's price once per request (7 with idp_hint).
 *   node bench/http-overhead.ts [requests per round]
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { startTestBroker } from '../test/support/test-broker.ts';

const count = Number(process.argv[2] ?? 1500);
const brana = await startTestBroker();
const bare = http.createServer((_req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end('{"status":"ok"}');
});
const app = express();
app.get('/healthz', (_req, res) => {
  res.json({ status: 'ok' });
});
const plain = http.createServer(app);
await Promise.all([bare, plain].map((server) => new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))));

/** CPU of each request from its `request` event to its response's `finish`, averaged. */
function meter(server: http.Server): () => number {
  let micros = 0;
  let requests = 0;
  server.prependListener('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
    const started = process.cpuUsage();
    res.once('finish', () => {
      const used = process.cpuUsage(started);
      micros += used.user + used.system;
      requests += 1;
    });
  });
  return () => {
    const perRequest = micros / requests / 1000;
    micros = 0;
    requests = 0;
    return perRequest;
  };
}

const agent = new http.Agent({ keepAlive: true });
const get = (url: string) =>
  new Promise<void>((resolve, reject) => {
    http.get(url, { agent }, (res) => res.resume().on('end', resolve)).on('error', reject);
  });
const servers = [
  ['bare node:http', bare, `http://127.0.0.1:${(bare.address() as AddressInfo).port}/healthz`],
  ['bare Express', plain, `http://127.0.0.1:${(plain.address() as AddressInfo).port}/healthz`],
  ['Brána /healthz', brana.server, `${brana.url.origin}/healthz`],
] as const;
const meters = servers.map(([, server]) => meter(server));
const rounds: number[][] = [];
for (let round = 0; round < 4; round += 1) {
  rounds.push(
    await (async () => {
      const row: number[] = [];
      for (const [index, [, , url]] of servers.entries()) {
        for (let i = 0; i < count; i += 1) await get(url);
        row.push(meters[index]!());
      }
      return row;
    })(),
  );
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
process.stdout.write(`server-side CPU-ms per request, median of ${rounds.length - 1} rounds of ${count} (after one warm-up round)\n`);
for (const [index, [name]] of servers.entries()) process.stdout.write(`${name.padEnd(16)} ${median(rounds.slice(1).map((row) => row[index]!)).toFixed(3)}\n`);
agent.destroy();
await Promise.all([bare, plain].map((server) => new Promise((resolve) => server.close(resolve))));
await brana.close();
