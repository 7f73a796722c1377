import { createHmac, createSign, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import supertest from 'supertest';
import { decodeEntities } from './html.ts';
import { authorizationResponse, chooseMeans, decideConsent, loginAtIdp, postToAcs, startLogin, type AuthorizationOptions, type Citizen, type Sep, type StartedLogin } from './login-driver.ts';

/**
 * An OIDC client (or an attacker) without an OIDC library: JWTs are written and signed with
 * node:crypto, so a forged client assertion or id_token_hint is not made by the library that checks it.
 */

const b64url = (value: Buffer | string) => Buffer.from(value).toString('base64url');

export type JwtKey = { rsa: KeyObject } | { hmac: Buffer | string } | 'none';

export function jwt(header: Record<string, unknown>, payload: Record<string, unknown>, key: JwtKey): string {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  if (key === 'none') return `${input}.`;
  if ('hmac' in key) return `${input}.${b64url(createHmac('sha256', key.hmac).update(input).digest())}`;
  return `${input}.${b64url(createSign('RSA-SHA256').update(input).sign(key.rsa))}`;
}

export interface ClientKeys {
  privateKey: KeyObject;
  publicJwk: Record<string, unknown>;
  publicPem: string;
}

export function clientKeys(kid = `k${randomBytes(4).toString('hex')}`): ClientKeys {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { privateKey, publicJwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' }, publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString() };
}

/** An RFC 7523 client assertion, correct unless the caller changes a claim. */
export function clientAssertionClaims(clientId: string, audience: string, change: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return { iss: clientId, sub: clientId, aud: audience, jti: randomBytes(16).toString('hex'), iat: now, exp: now + 60, ...change };
}

export interface Code {
  citizen: Citizen;
  code: string;
  codeVerifier: string;
  started: StartedLogin;
}

/** The hidden inputs of oidc-provider's own self-submitting forms (`<input type="hidden" name=… value=…/>`). */
function hiddenInputs(html: string): Record<string, string> {
  return Object.fromEntries([...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\/>/g)].map((m) => [m[1]!, decodeEntities(m[2]!)]));
}

/** A citizen logs in at a SeP (development IdP, consent given); the SeP receives a code. */
export async function codeFor(origin: string, sep: Sep, options: AuthorizationOptions & { means?: string; login?: string; citizen?: Citizen } = {}): Promise<Code> {
  const started = await startLogin(origin, sep, { scope: 'openid profile', ...options }, options.citizen);
  let response = started.response;
  if (response.status === 200 && /name="means"/.test(response.text)) response = await chooseMeans(started.citizen, response, options.means ?? 'eobcanka');
  if (!(response.status === 303 && String(response.headers.location).startsWith(sep.redirectUri))) {
    const idp = await loginAtIdp(started.citizen, response, options.login ?? '100000001');
    response = await postToAcs(started.citizen, idp.acs, idp.fields);
    // Another person logging in over an existing session: oidc-provider first ends that session
    // with a self-submitting form (its script allowed by hash in the CSP).
    const endSession = /<form method="post" action="([^"]+\/session\/end\/confirm)">/.exec(response.text);
    if (response.status === 200 && endSession) response = await started.citizen.follow(await started.citizen.post(decodeEntities(endSession[1]!), hiddenInputs(response.text)));
    if (response.status === 200 && /name="decision"/.test(response.text)) response = await decideConsent(started.citizen, response, 'agree');
  }
  const params = authorizationResponse(response, sep);
  const code = params.get('code');
  if (!code) throw new Error(`no code: ${params.toString()}`);
  return { citizen: started.citizen, code, codeVerifier: started.codeVerifier, started };
}

/** A raw token request: the grant, and whatever authentication the test chooses. */
export function tokenRequest(origin: string, form: Record<string, string>, basic?: { id: string; secret: string }): supertest.Test {
  const request = supertest(origin).post('/token').type('form');
  if (basic) request.auth(basic.id, basic.secret);
  return request.send(form);
}

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
