import type http from 'node:http';
import type { Readiness } from './readiness.ts';

/**
 * Stops a node without cutting off a login in flight: it reports itself not ready (the load balancer
 * stops sending it new requests), stops accepting connections, closes idle keep-alive connections,
 * and waits for every request in flight to be answered. After `graceMs` the connections still open
 * are closed. Resolves 'clean' or 'forced'.
 */
export async function shutDownGracefully(servers: http.Server[], options: { graceMs: number; readiness: Readiness }): Promise<'clean' | 'forced'> {
  options.readiness.drain();
  const closed = Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'forced'>((resolve) => {
    timer = setTimeout(() => resolve('forced'), options.graceMs);
  });
  const outcome = await Promise.race([closed.then(() => 'clean' as const), deadline]);
  clearTimeout(timer);
  if (outcome === 'forced') {
    for (const server of servers) server.closeAllConnections();
    await closed;
  }
  return outcome;
}
