/**
 * The server measured by bench/stack-floor.ts: the named stack alone (oidc-provider 9 behind
 * Express; knex + sqlite3 through Brána's database layer; node-saml as the SP), none of Brána's own
 * logic. Started by the driver with IPC:
 *   node bench/stack-floor-server.ts memory|sqlite|saml   (forked; sends { ready: port })
 * - memory: oidc-provider's default MemoryAdapter; the interaction is finished in its own request.
 * - sqlite: the same, oidc-provider's models in one SQLite table (OneTableAdapter below).
 * - saml:   sqlite, plus a SAML leg: the authorization request hands the login off to the IdP with a
 *   signed AuthnRequest (redirect binding), and the ACS validates the answer with node-saml's
 *   validatePostResponseAsync, then finishes the interaction and sends the browser to the resume.
 * On `{ snapshot: true }` it answers with its CPU, its SQL statements and each route's CPU so far.
 */
import { createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { SAML, ValidateInResponseTo } from '@node-saml/node-saml';
import express from 'express';
import Provider, { type Adapter, type AdapterPayload, type Configuration } from 'oidc-provider';
import { openDatabase, type Database } from '../src/store/database.ts';

export type FloorVariant = 'memory' | 'sqlite' | 'saml';

/** What the driver tells the server at start: the client it registers, and for `saml` the SAML parties. */
export interface FloorServerSettings {
  variant: FloorVariant;
  /** The one account every login signs in as (the SAML subject, with the SAML leg). */
  accountId: string;
  client: { clientId: string; clientSecret: string; redirectUri: string };
  saml?: {
    sp: { entityId: string; signingKeyPem: string; signingCertificatePem: string; encryptionKeyPem: string };
    idp: { entityId: string; ssoUrl: string; certificatePem: string };
  };
}

/** A server's counters since it started: the driver takes differences. */
export interface FloorSnapshot {
  cpuMicros: number;
  sqlStatements: number;
  /** CPU from each request's arrival to its response's end, by route; exact only when requests do not overlap. */
  routes: Record<string, { micros: number; requests: number }>;
  /** CPU of node-saml's validatePostResponseAsync alone, inside the ACS requests (exact only when they do not overlap). */
  samlValidationMicros: number;
}

export const TABLE = 'oidc_model';

/**
 * oidc-provider's models in one table, the least a knex adapter does: an upsert is one INSERT … ON
 * CONFLICT … DO UPDATE, a consumption one UPDATE … WHERE consumed_at IS NULL.
 */
class OneTableAdapter implements Adapter {
  private readonly db: Database;
  private readonly model: string;

  constructor(db: Database, model: string) {
    this.db = db;
    this.model = model;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    await this.db(TABLE)
      .insert({
        model: this.model,
        id,
        payload: JSON.stringify(payload),
        grant_id: payload.grantId ?? null,
        uid: payload.uid ?? null,
        user_code: payload.userCode ?? null,
        expires_at: expiresIn ? Date.now() + expiresIn * 1000 : null,
      })
      .onConflict(['model', 'id'])
      .merge(['payload', 'grant_id', 'uid', 'user_code', 'expires_at']);
  }

  private async findWhere(column: 'id' | 'uid' | 'user_code', value: string): Promise<AdapterPayload | undefined> {
    const row = (await this.db(TABLE).where({ model: this.model, [column]: value }).first('payload', 'expires_at', 'consumed_at')) as
      | { payload: string; expires_at: number | null; consumed_at: number | null }
      | undefined;
    if (!row || (row.expires_at !== null && row.expires_at <= Date.now())) return undefined;
    const payload = JSON.parse(row.payload) as AdapterPayload;
    return row.consumed_at === null ? payload : { ...payload, consumed: Math.floor(row.consumed_at / 1000) };
  }

  find(id: string) {
    return this.findWhere('id', id);
  }
  findByUid(uid: string) {
    return this.findWhere('uid', uid);
  }
  findByUserCode(userCode: string) {
    return this.findWhere('user_code', userCode);
  }

  async consume(id: string): Promise<void> {
    await this.db(TABLE).where({ model: this.model, id }).whereNull('consumed_at').update({ consumed_at: Date.now() });
  }

  async destroy(id: string): Promise<void> {
    await this.db(TABLE).where({ model: this.model, id }).delete();
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await this.db(TABLE).where({ grant_id: grantId }).delete();
  }
}

async function openFloorDatabase(): Promise<{ db: Database; statements: () => number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stack-floor-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const db = openDatabase(`sqlite:${path.join(dir, 'floor.db')}`, { poolMax: 1 });
  await db.schema.createTable(TABLE, (table) => {
    table.string('model').notNullable();
    table.string('id').notNullable();
    table.text('payload').notNullable();
    table.string('grant_id');
    table.string('uid');
    table.string('user_code');
    table.bigInteger('expires_at');
    table.bigInteger('consumed_at');
    table.primary(['model', 'id']);
    table.index(['model', 'uid']);
    table.index(['grant_id']);
  });
  let statements = 0;
  db.on('query', () => {
    statements += 1;
  });
  return { db, statements: () => statements };
}

function signingJwk() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: 'floor-rs256', alg: 'RS256', use: 'sig' };
}

/** The SP as Brána configures node-saml (saml-adapter.ts), but node-saml also checks the answer. */
function serviceProvider(saml: NonNullable<FloorServerSettings['saml']>, acsUrl: string): SAML {
  return new SAML({
    issuer: saml.sp.entityId,
    callbackUrl: acsUrl,
    audience: saml.sp.entityId,
    entryPoint: saml.idp.ssoUrl,
    idpIssuer: saml.idp.entityId,
    idpCert: saml.idp.certificatePem,
    // KeyObjects parsed once, as Brána does (node-saml patched for the signing key; xml-encryption takes one as it is).
    privateKey: createPrivateKey(saml.sp.signingKeyPem),
    publicCert: saml.sp.signingCertificatePem,
    decryptionPvk: createPrivateKey(saml.sp.encryptionKeyPem) as unknown as string,
    signatureAlgorithm: 'sha256',
    digestAlgorithm: 'sha256',
    authnRequestBinding: 'HTTP-Redirect',
    wantAssertionsSigned: true,
    wantAuthnResponseSigned: true,
    // node-saml's own request-id check, with its default in-memory cache.
    validateInResponseTo: ValidateInResponseTo.always,
    racComparison: 'minimum',
    authnContext: ['http://eidas.europa.eu/LoA/substantial'],
    identifierFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
    acceptedClockSkewMs: 5000,
  });
}

async function start(settings: FloorServerSettings): Promise<void> {
  const database = settings.variant === 'memory' ? undefined : await openFloorDatabase();
  const routes: FloorSnapshot['routes'] = {};
  let samlValidationMicros = 0;
  let app: express.Express | undefined;
  const server = http.createServer((req, res) => {
    const started = process.cpuUsage();
    const route = routeOf(req);
    res.once('finish', () => {
      const used = process.cpuUsage(started);
      const entry = (routes[route] ??= { micros: 0, requests: 0 });
      entry.micros += used.user + used.system;
      entry.requests += 1;
    });
    app!(req, res);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const acsUrl = `${origin}/saml/acs`;
  const sp = settings.saml ? serviceProvider(settings.saml, acsUrl) : undefined;

  const configuration: Configuration = {
    ...(database ? { adapter: (name: string) => new OneTableAdapter(database.db, name) } : {}),
    clients: [
      {
        client_id: settings.client.clientId,
        client_secret: settings.client.clientSecret,
        redirect_uris: [settings.client.redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: 'RS256',
      },
    ],
    jwks: { keys: [signingJwk()] } as Configuration['jwks'],
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    claims: { openid: ['sub'], profile: ['given_name', 'family_name', 'birthdate'] },
    findAccount: async (_ctx, accountId) => ({
      accountId,
      claims: async () => ({ sub: accountId, given_name: 'Jan', family_name: 'Novák', birthdate: '1980-04-12' }),
    }),
    // Brána's lifetimes (oidc-provider only warns about its defaults).
    ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 1800, Session: 8 * 3600, Grant: 8 * 3600 },
    pkce: { required: () => true },
    responseTypes: ['code'],
    features: { devInteractions: { enabled: false }, userinfo: { enabled: true } },
    interactions: {
      // With SAML, the authorization request hands off to the IdP itself (as Brána does with idp_hint).
      url: async (_ctx, interaction) => (sp ? sp.getAuthorizeUrlAsync(interaction.uid, undefined, {}) : `/interaction/${interaction.uid}`),
    },
  };
  const provider = new Provider(origin, configuration);

  /** A grant of what was asked (openid profile) to the one account. */
  const { accountId } = settings;
  const grantFor = (clientId: string, scope: string) => {
    const grant = new provider.Grant({ accountId, clientId });
    grant.addOIDCScope(scope);
    return grant.save();
  };

  app = express();
  app.disable('x-powered-by');
  app.get('/interaction/:uid', async (req, res, next) => {
    try {
      const interaction = await provider.interactionDetails(req, res);
      const grantId = await grantFor(String(interaction.params.client_id), String(interaction.params.scope));
      await provider.interactionFinished(req, res, { login: { accountId }, consent: { grantId } }, { mergeWithLastSubmission: false });
    } catch (err) {
      next(err);
    }
  });
  app.post('/saml/acs', express.urlencoded({ extended: false, limit: '256kb' }), async (req, res, next) => {
    try {
      const body = req.body as Record<string, string>;
      const validating = process.cpuUsage();
      const { profile } = await sp!.validatePostResponseAsync(body);
      const validated = process.cpuUsage(validating);
      samlValidationMicros += validated.user + validated.system;
      if (!profile || profile.nameID !== accountId) throw new Error('unexpected SAML profile');
      // The answer is cross-site (no cookies): the interaction is found by the RelayState the request carried.
      const interaction = await provider.Interaction.find(String(body.RelayState));
      if (!interaction) throw new Error('no interaction for this answer');
      const grantId = await grantFor(String(interaction.params.client_id), String(interaction.params.scope));
      interaction.result = { login: { accountId: profile.nameID }, consent: { grantId } };
      await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
      res.redirect(303, interaction.returnTo);
    } catch (err) {
      next(err);
    }
  });
  app.use(provider.callback());

  process.on('message', (message: { snapshot?: boolean }) => {
    if (!message.snapshot) return;
    const cpu = process.cpuUsage();
    const snapshot: FloorSnapshot = { cpuMicros: cpu.user + cpu.system, sqlStatements: database?.statements() ?? 0, routes: structuredClone(routes), samlValidationMicros };
    process.send!(snapshot);
  });
  process.on('disconnect', () => process.exit(0));
  process.send!({ ready: origin });
}

function routeOf(req: http.IncomingMessage): string {
  const pathname = (req.url ?? '/').split('?', 1)[0]!;
  if (pathname === '/auth') return 'auth';
  if (pathname.startsWith('/auth/')) return 'resume';
  if (pathname.startsWith('/interaction/')) return 'interaction';
  if (pathname === '/saml/acs') return 'acs';
  if (pathname === '/token') return 'token';
  if (pathname === '/me') return 'userinfo';
  return 'other';
}

process.once('message', (settings: FloorServerSettings) => {
  start(settings).catch((err: unknown) => {
    process.stderr.write(`stack-floor server: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
});
