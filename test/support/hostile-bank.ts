import { createHash, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { jwt } from './oidc-attacker.ts';

/**
 * An upstream OpenID Provider written by hand on node:http and node:crypto (no oidc-provider, no
 * jose, no openid-client): it does the code flow correctly, except that the test decides what its
 * token endpoint answers — a forged, expired, misaddressed or replayed ID token.
 */

export interface Authorization {
  code: string;
  state: string;
  nonce: string | undefined;
  codeChallenge: string | undefined;
  redirectUri: string;
}

export type IdTokenForgery = (claims: Record<string, unknown>, bank: HostileBank, authorization: Authorization) => string | undefined;

export class HostileBank {
  readonly clientId = 'brana-hostile-bank';
  readonly clientSecret = `secret-${randomBytes(16).toString('hex')}`;
  readonly kid = 'bank-1';
  readonly privateKey: KeyObject;
  readonly publicJwk: Record<string, unknown>;
  /** Changes the ID token of the next answers; undefined: a correct token. */
  forge: IdTokenForgery | undefined;
  /** Makes the token endpoint answer this instead (an outage, say); undefined: the normal answer. */
  tokenAnswer: { status: number; contentType: string; body: string } | undefined;
  private readonly authorizations = new Map<string, Authorization>();
  private server: http.Server | undefined;
  private port = 0;

  constructor() {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.privateKey = privateKey;
    this.publicJwk = { ...publicKey.export({ format: 'jwk' }), kid: this.kid, alg: 'RS256', use: 'sig' };
  }

  get issuer(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }

  /** The claims a correct ID token for this authorization carries (Jan Novák at substantial). */
  claims(authorization: Authorization): Record<string, unknown> {
    const now = Math.floor(Date.now() / 1000);
    return {
      iss: this.issuer,
      sub: 'bank-subject-jan',
      aud: this.clientId,
      iat: now,
      exp: now + 300,
      auth_time: now,
      nonce: authorization.nonce,
      acr: 'http://eidas.europa.eu/LoA/substantial',
      given_name: 'Jan',
      family_name: 'Novák',
      birthdate: '1980-04-12',
      birthplace: 'Praha',
    };
  }

  sign(claims: Record<string, unknown>): string {
    return jwt({ alg: 'RS256', typ: 'JWT', kid: this.kid }, claims, { rsa: this.privateKey });
  }

  /** The means file that points Brána at this bank. */
  meansFile(secretEnv: string): Record<string, unknown> {
    return {
      name: { cs: 'Nepoctivá banka', en: 'Hostile bank' },
      administrator: { cs: 'Nepoctivá banka, a.s.', en: 'Hostile bank' },
      loa: 'substantial',
      protocol: 'oidc',
      oidc: { issuer: this.issuer, clientId: this.clientId, clientSecretEnv: secretEnv, userinfo: false },
    };
  }

  private json(res: http.ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.issuer);
    if (url.pathname === '/.well-known/openid-configuration') {
      this.json(res, 200, {
        issuer: this.issuer,
        authorization_endpoint: `${this.issuer}/auth`,
        token_endpoint: `${this.issuer}/token`,
        jwks_uri: `${this.issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        code_challenge_methods_supported: ['S256'],
        authorization_response_iss_parameter_supported: true,
      });
      return;
    }
    if (url.pathname === '/jwks') {
      this.json(res, 200, { keys: [this.publicJwk] });
      return;
    }
    if (url.pathname === '/auth') {
      const params = url.searchParams;
      const authorization: Authorization = {
        code: randomBytes(16).toString('hex'),
        state: params.get('state') ?? '',
        nonce: params.get('nonce') ?? undefined,
        codeChallenge: params.get('code_challenge') ?? undefined,
        redirectUri: params.get('redirect_uri') ?? '',
      };
      this.authorizations.set(authorization.code, authorization);
      const back = new URL(authorization.redirectUri);
      back.searchParams.set('code', authorization.code);
      back.searchParams.set('state', authorization.state);
      back.searchParams.set('iss', this.issuer);
      res.writeHead(303, { location: back.href }).end();
      return;
    }
    if (url.pathname === '/token' && req.method === 'POST' && this.tokenAnswer) {
      req.resume();
      res.writeHead(this.tokenAnswer.status, { 'content-type': this.tokenAnswer.contentType, 'cache-control': 'no-store' }).end(this.tokenAnswer.body);
      return;
    }
    if (url.pathname === '/token' && req.method === 'POST') {
      let body = '';
      for await (const chunk of req) body += String(chunk);
      const form = new URLSearchParams(body);
      const authorization = this.authorizations.get(form.get('code') ?? '');
      const verifier = form.get('code_verifier') ?? '';
      if (!authorization || createHash('sha256').update(verifier).digest('base64url') !== authorization.codeChallenge) {
        this.json(res, 400, { error: 'invalid_grant' });
        return;
      }
      this.authorizations.delete(authorization.code);
      const idToken = this.forge ? this.forge(this.claims(authorization), this, authorization) : this.sign(this.claims(authorization));
      this.json(res, 200, { access_token: randomBytes(16).toString('hex'), token_type: 'Bearer', expires_in: 300, ...(idToken === undefined ? {} : { id_token: idToken }) });
      return;
    }
    res.writeHead(404).end();
  }
}
