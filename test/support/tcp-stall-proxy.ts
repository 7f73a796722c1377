import net from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A TCP relay between Brána and PostgreSQL that can stall: while stalled, nothing passes in either
 * direction and new connections get no answer, as in a network partition where packets are lost
 * rather than refused. Nothing is dropped: when it resumes, the held bytes flow on in order.
 */
export interface StallProxy {
  port: number;
  stall(): void;
  resume(): void;
  close(): Promise<void>;
}

export async function startStallProxy(target: { host: string; port: number }): Promise<StallProxy> {
  let stalled = false;
  let held: Array<() => void> = [];
  const sockets = new Set<net.Socket>();
  const pass = (action: () => void) => (stalled ? held.push(action) : action());

  const server = net.createServer((client) => {
    sockets.add(client);
    const upstream = new net.Socket();
    sockets.add(upstream);
    const early: Buffer[] = [];
    let connected = false;
    client.on('data', (chunk: Buffer) => pass(() => (connected ? upstream.write(chunk) : early.push(chunk))));
    upstream.on('data', (chunk: Buffer) => pass(() => client.write(chunk)));
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', end).on('error', end);
    upstream.on('close', () => pass(end)).on('error', () => pass(end));
    pass(() =>
      upstream.connect(target.port, target.host, () => {
        connected = true;
        for (const chunk of early.splice(0)) upstream.write(chunk);
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    stall() {
      stalled = true;
    },
    resume() {
      stalled = false;
      const actions = held;
      held = [];
      for (const action of actions) action();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
