import { createHash, randomBytes } from 'node:crypto';
import supertest from 'supertest';
import { hiddenFields, formAction } from './html.ts';

type Agent = ReturnType<typeof supertest.agent>;
type Response = supertest.Response;

export interface Sep {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
}

export interface AuthorizationOptions {
  scope?: string;
  claims?: unknown;
  acrValues?: string;
  idpHint?: string;
  prompt?: string;
  maxAge?: number;
  extra?: Record<string, string>;
}

function pathOf(location: string, origin: string): string {
  const url = new URL(location, origin);
  if (url.origin !== origin) throw new Error(`redirect leaves Brána: ${location}`);
  return url.pathname + url.search;
}

/**
 * A citizen's browser, without the rendering: follows Brána's redirects, keeps its cookies, fills in
 * the forms of the selection, development IdP and consent pages. Each step returns the raw response
 * so that tests can assert on any of them.
 */
export class Citizen {
  readonly agent: Agent;
  readonly origin: string;

  constructor(origin: string) {
    this.origin = origin;
    this.agent = supertest.agent(origin);
  }

  async get(location: string): Promise<Response> {
    return this.agent.get(pathOf(location, this.origin)).redirects(0);
  }

  async post(location: string, form: Record<string, string>): Promise<Response> {
    return this.agent.post(pathOf(location, this.origin)).type('form').send(form).redirects(0);
  }

  /**
   * A GET Brána receives and answers but whose answer never reaches this browser (a node died, the
   * load balancer said 502): it carries the browser's cookies, and nothing of the answer — no
   * redirect, no cookie — is kept. Returns the lost answer, for comparing with a later one.
   */
  async getLost(location: string): Promise<Response> {
    return supertest(this.origin).get(pathOf(location, this.origin)).set('Cookie', this.cookiesFor(location)).redirects(0);
  }

  /** The Cookie header this browser sends to a location (`name=value; …`). */
  cookiesFor(location: string): string {
    const url = new URL(location, this.origin);
    const jar = (this.agent as unknown as { jar: { getCookies(access: object): { toValueString(): string } } }).jar;
    return jar.getCookies({ domain: url.hostname, path: url.pathname, secure: url.protocol === 'https:', script: false }).toValueString();
  }

  /**
   * Follows redirects within Brána until a page, or a redirect out of Brána. The development IdPs
   * live on Brána's origin but stand for other sites: a redirect to one is returned, not followed.
   */
  async follow(response: Response): Promise<Response> {
    let current = response;
    for (let hops = 0; hops < 15 && current.status >= 300 && current.status < 400; hops += 1) {
      const location = current.headers.location as string;
      const target = new URL(location, this.origin);
      if (target.origin !== this.origin || target.pathname.startsWith('/dev-idp/') || target.pathname.startsWith('/dev-oidc/')) return current;
      current = await this.get(location);
    }
    return current;
  }
}

export interface StartedLogin {
  citizen: Citizen;
  codeVerifier: string;
  state: string;
  nonce: string;
  /** The first page the citizen sees (selection) or the redirect to the IdP. */
  response: Response;
  /** Brána's answer to the authorization request itself, before any redirect was followed. */
  authorization: Response;
}

export async function startLogin(origin: string, sep: Sep, options: AuthorizationOptions = {}, citizen = new Citizen(origin)): Promise<StartedLogin> {
  const codeVerifier = randomBytes(32).toString('base64url');
  const state = randomBytes(12).toString('base64url');
  const nonce = randomBytes(12).toString('base64url');
  const params = new URLSearchParams({
    client_id: sep.clientId,
    redirect_uri: sep.redirectUri,
    response_type: 'code',
    scope: options.scope ?? 'openid profile',
    code_challenge: createHash('sha256').update(codeVerifier).digest('base64url'),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...(options.claims ? { claims: JSON.stringify(options.claims) } : {}),
    ...(options.acrValues ? { acr_values: options.acrValues } : {}),
    ...(options.idpHint ? { idp_hint: options.idpHint } : {}),
    ...(options.prompt ? { prompt: options.prompt } : {}),
    ...(options.maxAge !== undefined ? { max_age: String(options.maxAge) } : {}),
    ...options.extra,
  });
  const authorization = await citizen.get(`/auth?${params.toString()}`);
  const response = await citizen.follow(authorization);
  return { citizen, codeVerifier, state, nonce, response, authorization };
}

/** On the selection page: choose a means; returns the redirect to the identity means. */
export async function chooseMeans(citizen: Citizen, selectionPage: Response, means: string): Promise<Response> {
  return citizen.post(formAction(selectionPage.text), { means });
}

/** Whether a location is one of the embedded development identity providers (SAML or OIDC). */
function atDevelopmentIdp(location: string, origin: string): boolean {
  const url = new URL(location, origin);
  return url.origin === origin && (url.pathname.startsWith('/dev-idp/') || url.pathname.startsWith('/dev-oidc/'));
}

/** The answer a development IdP gives the browser to carry back: a form to post (SAML) or a redirect (OIDC). */
export interface IdpAnswer {
  acs: string;
  fields: Record<string, string>;
  sealedRequest: string;
  method: 'post' | 'get';
}

/**
 * At the development IdP: log in as one of its test citizens (or cancel, or make it fail); returns
 * what the browser carries back to Brána. A development OpenID Provider that still has a session
 * sends the browser straight back, without its login page.
 */
export async function loginAtIdp(citizen: Citizen, toIdp: Response, login: string | 'cancel' | 'fail'): Promise<IdpAnswer> {
  let page = toIdp;
  for (let hops = 0; hops < 10 && page.status >= 300 && page.status < 400; hops += 1) {
    const location = page.headers.location as string;
    if (!atDevelopmentIdp(location, citizen.origin)) return { acs: location, fields: {}, sealedRequest: '', method: 'get' };
    page = await citizen.get(location);
  }
  if (page.status !== 200) throw new Error(`development IdP answered ${page.status}: ${page.text}`);
  const { request } = hiddenFields(page.text);
  const action = login === 'cancel' || login === 'fail' ? login : 'login';
  let answer = await citizen.post(formAction(page.text), { ...(request ? { request } : {}), login: action === 'login' ? login : '', action });
  // A development OpenID Provider answers with redirects (to its resume endpoint, then to Brána).
  for (let hops = 0; hops < 10 && answer.status >= 300 && answer.status < 400; hops += 1) {
    const location = answer.headers.location as string;
    if (!atDevelopmentIdp(location, citizen.origin)) return { acs: location, fields: {}, sealedRequest: request ?? '', method: 'get' };
    answer = await citizen.get(location);
  }
  if (answer.status !== 200) throw new Error(`development IdP login answered ${answer.status}: ${answer.text}`);
  return { acs: formAction(answer.text), fields: hiddenFields(answer.text), sealedRequest: request!, method: 'post' };
}

/** Carries the IdP's answer back to Brána (the SAML ACS form, or the OIDC redirect) and follows Brána's redirects. */
export async function returnToBrana(citizen: Citizen, answer: IdpAnswer): Promise<Response> {
  if (answer.method === 'get') return citizen.follow(await citizen.get(answer.acs));
  return postToAcs(citizen, answer.acs, answer.fields);
}

/** The AuthnRequest id the development IdP is answering (from its sealed login form). */
export function authnRequestIdOf(sealedRequest: string): string {
  return (JSON.parse(Buffer.from(sealedRequest.split('.')[0]!, 'base64url').toString('utf8')) as { id: string }).id;
}

/** Posts a SAML response to Brána's ACS as the browser would, and follows Brána's redirects. */
export async function postToAcs(citizen: Citizen, acs: string, fields: Record<string, string>): Promise<Response> {
  return citizen.follow(await citizen.post(acs, fields));
}

/** On the consent page: agree (optionally permanently) or refuse; follows on to the SeP redirect. */
export async function decideConsent(citizen: Citizen, consentPage: Response, decision: 'agree' | 'refuse', permanent = false): Promise<Response> {
  const { csrf } = hiddenFields(consentPage.text);
  return citizen.follow(
    await citizen.post(formAction(consentPage.text), { csrf: csrf!, decision, ...(permanent ? { permanent: 'yes' } : {}) }),
  );
}

/** The authorization response at the SeP's redirect URI. */
export function authorizationResponse(response: Response, sep: Sep): URLSearchParams {
  const location = response.headers.location as string | undefined;
  if (response.status !== 303 && response.status !== 302) throw new Error(`expected a redirect to the SeP, got ${response.status}: ${response.text.slice(0, 300)}`);
  if (!location?.startsWith(sep.redirectUri)) throw new Error(`redirect does not go to the SeP: ${location}`);
  return new URL(location).searchParams;
}

export interface Tokens {
  access_token: string;
  id_token: string;
  token_type: string;
  expires_in: number;
}

export async function redeemCode(origin: string, sep: Sep, code: string, codeVerifier: string): Promise<Response> {
  return supertest(origin)
    .post('/token')
    .auth(sep.clientId, sep.clientSecret)
    .type('form')
    .send({ grant_type: 'authorization_code', code, redirect_uri: sep.redirectUri, code_verifier: codeVerifier });
}

export function decodeJwt(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

export async function userinfo(origin: string, accessToken: string): Promise<Response> {
  return supertest(origin).get('/me').set('Authorization', `Bearer ${accessToken}`);
}

export interface CompletedLogin {
  citizen: Citizen;
  code: string;
  tokens: Tokens;
  idToken: Record<string, unknown>;
  userinfo: Record<string, unknown>;
}

/** A whole login: authorization request, means, IdP, consent, code, token, userinfo. */
export async function completeLogin(
  origin: string,
  sep: Sep,
  options: AuthorizationOptions & { means: string; login: string; permanent?: boolean; citizen?: Citizen },
): Promise<CompletedLogin> {
  const started = await startLogin(origin, sep, options, options.citizen);
  let response = started.response;
  if (response.status === 200 && /name="means"/.test(response.text)) response = await chooseMeans(started.citizen, response, options.means);
  const idp = await loginAtIdp(started.citizen, response, options.login);
  let next = await returnToBrana(started.citizen, idp);
  if (next.status === 200 && /name="decision"/.test(next.text)) next = await decideConsent(started.citizen, next, 'agree', options.permanent);
  const params = authorizationResponse(next, sep);
  if (params.get('state') !== started.state) throw new Error('state was not echoed');
  const code = params.get('code');
  if (!code) throw new Error(`no code: ${params.toString()}`);
  const token = await redeemCode(origin, sep, code, started.codeVerifier);
  if (token.status !== 200) throw new Error(`token endpoint answered ${token.status}: ${token.text}`);
  const tokens = token.body as Tokens;
  const info = await userinfo(origin, tokens.access_token);
  if (info.status !== 200) throw new Error(`userinfo answered ${info.status}: ${info.text}`);
  return { citizen: started.citizen, code, tokens, idToken: decodeJwt(tokens.id_token), userinfo: info.body as Record<string, unknown> };
}
