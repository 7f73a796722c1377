import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as jose from 'jose';
import Provider, { interactionPolicy, type Adapter, type AdapterPayload, type Configuration } from 'oidc-provider';

/**
 * A third-party OpenID Provider for tests (a bank, as Brána sees one): a real oidc-provider on its
 * own port and issuer, whose behaviour the test sets — who logs in, which acr it signs, an error it
 * answers, a token endpoint that never answers, an auth_time it leaves stale. Nothing of Brána is used.
 */
export interface TestProviderBehaviour {
  account: { sub: string; claims: Record<string, string> };
  acr: string | undefined;
  /** Seconds since the epoch to state as auth_time, instead of now. */
  authTime?: number;
  /** Answer the authorization request with this error instead of logging in. */
  error?: string;
  /** Never answer token requests (until the caller gives up and closes the connection). */
  holdTokenRequests?: boolean;
}

/** Everything kept in memory: a test provider needs no database. */
class MemoryAdapter implements Adapter {
  static readonly stores = new Map<string, Map<string, AdapterPayload>>();
  private readonly store: Map<string, AdapterPayload>;

  constructor(name: string) {
    if (!MemoryAdapter.stores.has(name)) MemoryAdapter.stores.set(name, new Map());
    this.store = MemoryAdapter.stores.get(name)!;
  }

  async upsert(id: string, payload: AdapterPayload): Promise<void> {
    this.store.set(id, payload);
  }
  async find(id: string): Promise<AdapterPayload | undefined> {
    return this.store.get(id);
  }
  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return [...this.store.values()].find((payload) => payload.uid === uid);
  }
  async findByUserCode(): Promise<undefined> {
    return undefined;
  }
  async consume(id: string): Promise<void> {
    const payload = this.store.get(id);
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }
  async destroy(id: string): Promise<void> {
    this.store.delete(id);
  }
  async revokeByGrantId(grantId: string): Promise<void> {
    for (const [id, payload] of this.store) if (payload.grantId === grantId) this.store.delete(id);
  }
}

export class TestOpenIdProvider {
  readonly clientId = 'brana-testbank';
  readonly clientSecret = 'test-bank-client-secret-which-is-long-enough';
  behaviour: TestProviderBehaviour;
  /** The parameters of the last authorization request it received. */
  lastAuthorization: URLSearchParams | undefined;
  private server: http.Server | undefined;
  private provider: Provider | undefined;
  private port = 0;

  constructor(behaviour: TestProviderBehaviour) {
    this.behaviour = behaviour;
  }

  get issuer(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Listens on an ephemeral port (or the one it had, after stop()). */
  async start(): Promise<void> {
    this.server = http.createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    if (!this.provider) this.provider = await this.build();
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
    this.server = undefined;
  }

  /** Registers Brána's redirect URIs (known only once Brána listens). */
  async registerClient(...redirectUris: string[]): Promise<void> {
    await new MemoryAdapter(`Client-${this.issuer}`).upsert(this.clientId, {
      client_id: this.clientId,
      client_secret: this.clientSecret,
      redirect_uris: redirectUris,
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_basic',
    } as AdapterPayload);
  }

  private async build(): Promise<Provider> {
    const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true, modulusLength: 2048 });
    const jwk = await jose.exportJWK(privateKey);
    const policy = interactionPolicy.base();
    // A careless provider: it does not enforce max_age itself (Brána must notice a stale auth_time).
    policy.get('login')!.checks.remove('max_age');
    const configuration: Configuration = {
      adapter: (name: string) => new MemoryAdapter(`${name}-${this.issuer}`),
      jwks: { keys: [{ ...jwk, alg: 'RS256', use: 'sig', kid: 'test-bank' }] } as Configuration['jwks'],
      findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub, ...this.behaviour.account.claims }) }),
      claims: { openid: ['sub', 'acr', 'auth_time'], profile: ['given_name', 'family_name', 'birthdate', 'birthplace'] },
      acrValues: ['http://eidas.europa.eu/LoA/low', 'http://eidas.europa.eu/LoA/substantial', 'http://eidas.europa.eu/LoA/high', 'urn:test:strong'],
      features: { devInteractions: { enabled: false } },
      interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}`, policy },
      loadExistingGrant: async (ctx) => {
        const grant = new ctx.oidc.provider.Grant({ accountId: ctx.oidc.session!.accountId!, clientId: ctx.oidc.client!.clientId });
        grant.addOIDCScope(String(ctx.oidc.params?.scope ?? 'openid'));
        await grant.save();
        return grant;
      },
      pkce: { required: () => true },
      ttl: { AccessToken: 300, AuthorizationCode: 60, IdToken: 300, Interaction: 600, Session: 3600, Grant: 3600 },
      cookies: { keys: ['test-bank-cookie-key'] },
    };
    return new Provider(this.issuer, configuration);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const provider = this.provider!;
    const url = new URL(req.url ?? '/', this.issuer);
    if (url.pathname === '/auth') this.lastAuthorization = url.searchParams;
    const interaction = /^\/interaction\/([^/]+)$/.exec(url.pathname);
    if (interaction && req.method === 'GET') {
      // No login page: the test decides who logs in, or which error the provider answers.
      const { behaviour } = this;
      const result = behaviour.error
        ? { error: behaviour.error, error_description: `test provider: ${behaviour.error}` }
        : { login: { accountId: behaviour.account.sub, ...(behaviour.acr ? { acr: behaviour.acr } : {}), ...(behaviour.authTime ? { ts: behaviour.authTime } : {}) } };
      provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false }).catch((err: unknown) => {
        res.statusCode = 500;
        res.end((err as Error).message);
      });
      return;
    }
    if (url.pathname === '/token' && this.behaviour.holdTokenRequests) {
      // Held until Brána gives up and closes the connection; then simply dropped.
      req.resume();
      return;
    }
    provider.callback()(req, res);
  }
}
