/**
 * The floor of the named stack (issue 14): what oidc-provider 9, Express, knex + sqlite3 and node-saml
 * cost for one full brokered login with none of Brána's own logic (no audit log, pseudonyms, consent,
 * SeP register, rate limiting). Each variant is a server process of its own (bench/stack-floor-server.ts,
 * started once, with the broker's Node flags); its CPU (all threads: process.cpuUsage) is read over IPC
 * before and after a window of logins. The driver and the IdP's signing run here and are not counted.
 *
 *   node bench/stack-floor.ts [logins] [rounds]      (defaults 300 and 3; 100 warm-up logins first)
 *
 * A login: authorization request (PKCE S256) → [interaction finished in its own request | SAML hand-off
 * to the IdP, the IdP's signed Response with a signed, encrypted Assertion posted to the ACS] → the
 * resumed authorization → code → /token (client_secret_basic, RS256 ID token) → /me.
 * (a) memory: oidc-provider with its MemoryAdapter; (b) sqlite: its models in one SQLite table
 * (Brána's openDatabase: statements prepared once, one connection, WAL); (c) saml: (b) with the SAML leg.
 * Variants alternate in rounds (a b c a b c …), each sequentially and at concurrency 4.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import os from 'node:os';
import { inflateRawSync } from 'node:zlib';
import { buildSamlResponse } from '../src/devidp/saml-response-builder.ts';
import { generateSelfSignedCertificate } from '../src/keys/certificate.ts';
import { BROKER_NODE_FLAGS } from '../src/node-flags.ts';
import { CookieJar } from './load-driver.ts';
import type { FloorServerSettings, FloorSnapshot, FloorVariant } from './stack-floor-server.ts';

const logins = Number(process.argv[2] ?? 300);
const rounds = Number(process.argv[3] ?? 3);
const WARM_UP = 100;
const CONCURRENCY = [1, 4] as const;
const VARIANTS: Array<{ variant: FloorVariant; label: string }> = [
  { variant: 'memory', label: '(a) oidc-provider, MemoryAdapter' },
  { variant: 'sqlite', label: '(b) oidc-provider, knex + sqlite3' },
  { variant: 'saml', label: '(c) (b) + node-saml SP leg' },
];

const ACCOUNT_ID = 'floor-account';
const client = { clientId: 'floor-sep', clientSecret: randomBytes(24).toString('base64url'), redirectUri: 'https://sep.example/callback' };
const basicAuth = `Basic ${Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`).toString('base64')}`;

// The SAML parties: the IdP's key signs here, in the driver; the SP's keys go to the server.
const idpKeys = generateSelfSignedCertificate('stack-floor IdP');
const spSigning = generateSelfSignedCertificate('stack-floor SP signing');
const spEncryption = generateSelfSignedCertificate('stack-floor SP encryption');
const IDP_ENTITY_ID = 'https://idp.stack-floor.example/metadata';
const SP_ENTITY_ID = 'https://broker.stack-floor.example/saml/metadata';
const IDP_SSO_URL = 'https://idp.stack-floor.example/sso';

interface FloorServer {
  variant: FloorVariant;
  child: ChildProcess;
  origin: string;
  snapshot(): Promise<FloorSnapshot>;
}

async function startServer(variant: FloorVariant): Promise<FloorServer> {
  const child = fork(new URL('./stack-floor-server.ts', import.meta.url), [variant], { execArgv: [...BROKER_NODE_FLAGS], env: { ...process.env, LOG_LEVEL: 'error' } });
  const settings: FloorServerSettings = {
    variant,
    accountId: ACCOUNT_ID,
    client,
    ...(variant === 'saml'
      ? {
          saml: {
            sp: { entityId: SP_ENTITY_ID, signingKeyPem: spSigning.privateKeyPem, signingCertificatePem: spSigning.certificatePem, encryptionKeyPem: spEncryption.privateKeyPem },
            idp: { entityId: IDP_ENTITY_ID, ssoUrl: IDP_SSO_URL, certificatePem: idpKeys.certificatePem },
          },
        }
      : {}),
  };
  const origin = await new Promise<string>((resolve, reject) => {
    child.once('message', (message: { ready?: string }) => (message.ready ? resolve(message.ready) : reject(new Error('no ready message'))));
    child.once('exit', (code) => reject(new Error(`${variant} server exited with ${code}`)));
    child.send(settings);
  });
  return {
    variant,
    child,
    origin,
    snapshot: () =>
      new Promise<FloorSnapshot>((resolve) => {
        child.once('message', (message: FloorSnapshot) => resolve(message));
        child.send({ snapshot: true });
      }),
  };
}

async function send(server: FloorServer, jar: CookieJar, location: string, init: RequestInit = {}): Promise<Response> {
  const url = new URL(location, server.origin);
  if (url.origin !== server.origin) throw new Error(`unexpected redirect to ${url.origin}`);
  const headers = new Headers(init.headers);
  headers.set('cookie', jar.header());
  const response = await fetch(url, { ...init, headers, redirect: 'manual' });
  jar.take(response);
  return response;
}

async function redirectOf(response: Response, step: string): Promise<string> {
  const location = response.headers.get('location');
  const body = await response.text();
  if (response.status !== 302 && response.status !== 303) throw new Error(`${step}: HTTP ${response.status} ${body.slice(0, 200)}`);
  return location!;
}

/** The IdP (not counted): answers the AuthnRequest in the redirect with a signed Response, its Assertion signed and encrypted. */
async function idpAnswer(redirect: URL, acsUrl: string): Promise<URLSearchParams> {
  const request = inflateRawSync(Buffer.from(redirect.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
  const requestId = /\sID="([^"]+)"/.exec(request)![1]!;
  const xml = await buildSamlResponse({
    idp: { entityId: IDP_ENTITY_ID, privateKeyPem: idpKeys.privateKeyPem, certificatePem: idpKeys.certificatePem },
    sp: { entityId: SP_ENTITY_ID, acsUrl, encryptionCertificatePem: spEncryption.certificatePem },
    inResponseTo: requestId,
    subject: ACCOUNT_ID,
    loa: 'high',
    attributes: [
      { name: 'http://eidas.europa.eu/attributes/naturalperson/CurrentGivenName', values: ['Jan'] },
      { name: 'http://eidas.europa.eu/attributes/naturalperson/CurrentFamilyName', values: ['Novák'] },
      { name: 'http://eidas.europa.eu/attributes/naturalperson/DateOfBirth', values: ['1980-04-12'] },
    ],
  });
  return new URLSearchParams({ SAMLResponse: Buffer.from(xml).toString('base64'), RelayState: redirect.searchParams.get('RelayState')! });
}

/** One full login through the server; throws on any unexpected answer. */
async function login(server: FloorServer): Promise<void> {
  const jar = new CookieJar();
  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(8).toString('base64url');
  const query = new URLSearchParams({
    client_id: client.clientId,
    redirect_uri: client.redirectUri,
    response_type: 'code',
    scope: 'openid profile',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    state,
    nonce: randomBytes(8).toString('base64url'),
  });
  let next = await redirectOf(await send(server, jar, `/auth?${query}`), 'authorize');
  if (server.variant === 'saml') {
    const acsUrl = `${server.origin}/saml/acs`;
    const answer = await idpAnswer(new URL(next), acsUrl);
    next = await redirectOf(await send(server, jar, acsUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: answer.toString() }), 'acs');
  } else {
    next = await redirectOf(await send(server, jar, next), 'interaction');
  }
  const callback = new URL(await redirectOf(await send(server, jar, next), 'resume'));
  const code = callback.searchParams.get('code');
  if (!code || callback.searchParams.get('state') !== state) throw new Error(`resume: no code (${callback.search.slice(0, 200)})`);
  const tokenResponse = await fetch(`${server.origin}/token`, {
    method: 'POST',
    headers: { authorization: basicAuth, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: client.redirectUri, code_verifier: verifier }).toString(),
  });
  const tokens = (await tokenResponse.json()) as { access_token?: string; id_token?: string };
  if (!tokens.access_token || tokens.id_token?.split('.').length !== 3) throw new Error(`token: HTTP ${tokenResponse.status}`);
  const userinfo = await fetch(`${server.origin}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  const claims = (await userinfo.json()) as { sub?: string; given_name?: string };
  if (claims.sub !== ACCOUNT_ID || claims.given_name !== 'Jan') throw new Error(`userinfo: HTTP ${userinfo.status}`);
}

async function drive(server: FloorServer, count: number, concurrency: number): Promise<void> {
  let left = count;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (left > 0) {
        left -= 1;
        await login(server);
      }
    }),
  );
}

interface Window {
  cpuMs: number;
  sql: number;
  /** CPU-ms per login of each route, from its requests' own brackets (sequential windows only). */
  routes: Record<string, number>;
  /** CPU-ms per login of node-saml's validatePostResponseAsync (sequential windows only). */
  samlValidation: number;
  wallMs: number;
}

async function measure(server: FloorServer, concurrency: number): Promise<Window> {
  const before = await server.snapshot();
  const t0 = performance.now();
  await drive(server, logins, concurrency);
  const wallMs = performance.now() - t0;
  const after = await server.snapshot();
  const routes: Record<string, number> = {};
  for (const [route, { micros }] of Object.entries(after.routes)) routes[route] = (micros - (before.routes[route]?.micros ?? 0)) / 1000 / logins;
  return { cpuMs: (after.cpuMicros - before.cpuMicros) / 1000 / logins, sql: (after.sqlStatements - before.sqlStatements) / logins,
    routes,
    samlValidation: (after.samlValidationMicros - before.samlValidationMicros) / 1000 / logins,
    wallMs,
  };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

const loadAverage = () => os.loadavg().map((load) => load.toFixed(2)).join(' ');
const servers: FloorServer[] = [];
try {
  process.stdout.write(`load average at start: ${loadAverage()}\n`);
  for (const { variant } of VARIANTS) servers.push(await startServer(variant));
  for (const server of servers) await drive(server, WARM_UP, 1);
  const results = new Map<string, Window[]>();
  for (let round = 1; round <= rounds; round += 1) {
    for (const server of servers) {
      for (const concurrency of CONCURRENCY) {
        const window = await measure(server, concurrency);
        const key = `${server.variant}/${concurrency}`;
        results.set(key, [...(results.get(key) ?? []), window]);
        process.stdout.write(
          `round ${round} ${server.variant.padEnd(6)} c=${concurrency}: ${window.cpuMs.toFixed(2)} CPU-ms/login, ${window.sql.toFixed(1)} SQL/login, ${(logins / (window.wallMs / 1000)).toFixed(0)} logins/s\n`,
        );
      }
    }
  }
  process.stdout.write(`load average at end: ${loadAverage()}\n`);
  process.stdout.write(`\nserver CPU-ms per login, median of ${rounds} rounds of ${logins} logins (after ${WARM_UP} warm-up); ${process.version}, Express in front\n`);
  process.stdout.write(`${'variant'.padEnd(36)} ${'c=1'.padStart(6)} ${'c=4'.padStart(6)}  SQL/login\n`);
  for (const { variant, label } of VARIANTS) {
    const sequential = results.get(`${variant}/1`)!;
    const loaded = results.get(`${variant}/4`)!;
    process.stdout.write(
      `${label.padEnd(36)} ${median(sequential.map((w) => w.cpuMs)).toFixed(2).padStart(6)} ${median(loaded.map((w) => w.cpuMs)).toFixed(2).padStart(6)}  ${median(sequential.map((w) => w.sql)).toFixed(1)}\n`,
    );
  }
  process.stdout.write('\nc=1, CPU-ms per login by route (each request bracketed; the rest is work between requests):\n');
  for (const { variant } of VARIANTS) {
    const sequential = results.get(`${variant}/1`)!;
    const names = Object.keys(sequential[0]!.routes);
    const byRoute = names.map((name) => [name, median(sequential.map((w) => w.routes[name] ?? 0))] as const);
    const bracketed = byRoute.reduce((sum, [, ms]) => sum + ms, 0);
    const total = median(sequential.map((w) => w.cpuMs));
    process.stdout.write(`${variant.padEnd(6)} ${byRoute.map(([name, ms]) => `${name} ${ms.toFixed(2)}`).join(', ')}, outside requests ${(total - bracketed).toFixed(2)}\n`);
  }
  const saml = results.get('saml/1')!;
  const acs = median(saml.map((w) => w.routes.acs ?? 0));
  const samlTotal = median(saml.map((w) => w.cpuMs));
  const validation = median(saml.map((w) => w.samlValidation));
  process.stdout.write(
    `\n(c) split, c=1: ACS request ${acs.toFixed(2)} CPU-ms (of which node-saml's validatePostResponseAsync ${validation.toFixed(2)}), oidc-provider's requests and the rest ${(samlTotal - acs).toFixed(2)} CPU-ms\n`,
  );
} finally {
  for (const server of servers) server.child.disconnect();
}
