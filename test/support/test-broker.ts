import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { createBroker, type Broker } from '../../src/broker.ts';
import { readEnvironment } from '../../src/config/environment.ts';

/** Keys are generated once per test run: RSA key generation is slow and not what the tests test. */
export const SHARED_KEYS = path.join(os.tmpdir(), `brana-test-keys-${process.pid}`);

export interface TestBroker {
  broker: Broker;
  url: URL;
  dir: string;
  keysDir: string;
  registerSep(overrides?: Record<string, unknown>): Promise<{ clientId: string; clientSecret: string; redirectUri: string }>;
  /** The HTTP server the broker's app listens on (bench/sql-trace.ts wraps its requests). */
  server: http.Server;
  close(): Promise<void>;
}

let sepCounter = 0;

export function sepDocument(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  sepCounter += 1;
  return {
    clientId: `test-sep-${process.pid}-${sepCounter}`,
    name: { cs: `Testovací portál ${sepCounter}`, en: `Test portal ${sepCounter}` },
    organisation: { id: '00268810', name: 'Statutární město Hradec Králové' },
    description: 'Portál pro testy',
    infoUrl: 'https://www.example.cz/',
    group: 'hradec-kralove',
    spType: 'public',
    minimumLoa: 'substantial',
    allowedAttributes: ['CurrentGivenName', 'CurrentFamilyName', 'DateOfBirth', 'eMail'],
    redirectUris: [`https://sep${sepCounter}.example.cz/callback`],
    postLogoutRedirectUris: [`https://sep${sepCounter}.example.cz/`],
    ...overrides,
  };
}

export async function startTestBroker(options: { databaseUrl?: string; env?: Record<string, string> } = {}): Promise<TestBroker> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-test-'));
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const env = readEnvironment({
    BRANA_MODE: 'development',
    BRANA_PORT: String(port),
    BRANA_PUBLIC_URL: `http://localhost:${port}`,
    BRANA_DATA_DIR: path.join(dir, 'data'),
    BRANA_KEYS_DIR: SHARED_KEYS,
    ...(options.databaseUrl ? { DATABASE_URL: options.databaseUrl } : {}),
    ...options.env,
  });
  let broker: Awaited<ReturnType<typeof createBroker>>;
  try {
    broker = await createBroker(env);
  } catch (err) {
    // A broker that refuses to start (the point of some tests) must not leave its port listening.
    await new Promise((resolve) => server.close(resolve));
    throw err;
  }
  server.on('request', broker.app);
  const registration = broker.registration;
  return {
    broker,
    url: env.publicUrl,
    dir,
    keysDir: SHARED_KEYS,
    server,
    async registerSep(overrides = {}) {
      const document = sepDocument(overrides);
      const registered = await registration.register(document, 'active', 'test');
      return { clientId: registered.sep.clientId, clientSecret: registered.clientSecret, redirectUri: registered.sep.redirectUris[0]! };
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await broker.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
