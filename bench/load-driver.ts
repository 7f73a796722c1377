/**
 * The load driver: virtual citizens doing complete brokered logins over HTTP, each with its own
 * cookie jar — authorization request with PKCE and idp_hint, the hand-off to the IdP, the ACS, the
 * return, the resumed authorization (consent already given), code → token → userinfo.
 */
import { createHash, randomBytes } from 'node:crypto';

export interface LoginTarget {
  /** Origins of the broker nodes; requests are spread over them round-robin. */
  nodes: string[];
  /** The issuer's origin, which the broker puts in its redirects. */
  publicOrigin: string;
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  means: string;
  scope: string;
  /** Every HTTP request of a login gives up after this long (a TimeoutError); unset: no limit. */
  timeoutMs?: number;
}

export interface LoadResult {
  completed: number;
  errors: number;
  errorSamples: string[];
  latenciesMs: number[];
  wallMs: number;
}

export class CookieJar {
  private readonly cookies = new Map<string, string>();

  header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  take(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=Thu, 01 Jan 1970/i.test(a));
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
}

/** A step of a login got an answer it did not expect: which step, and the HTTP status. */
export class StepFailed extends Error {
  readonly step: string;
  readonly status: number;
  /** The answer's body, where the step read it (the token endpoint's OAuth error). */
  readonly body: string | undefined;

  constructor(step: string, status: number, body?: string) {
    super(`${step}: HTTP ${status}${body === undefined ? '' : ` ${body}`}`);
    this.name = 'StepFailed';
    this.step = step;
    this.status = status;
    this.body = body;
  }
}

function timeoutSignal(timeoutMs: number | undefined): { signal?: AbortSignal } {
  return timeoutMs === undefined ? {} : { signal: AbortSignal.timeout(timeoutMs) };
}

let roundRobin = 0;

function onNode(target: LoginTarget, location: string): string {
  const url = new URL(location, target.publicOrigin);
  if (url.origin !== target.publicOrigin) return url.href;
  const node = target.nodes[roundRobin++ % target.nodes.length]!;
  return node + url.pathname + url.search;
}

async function send(target: LoginTarget, jar: CookieJar, location: string, init: RequestInit = {}): Promise<Response> {
  const url = onNode(target, location);
  const headers = new Headers(init.headers);
  if (url.startsWith('http://') && target.nodes.some((n) => url.startsWith(n))) headers.set('cookie', jar.header());
  const response = await fetch(url, { ...init, headers, redirect: 'manual', ...timeoutSignal(target.timeoutMs) });
  jar.take(response);
  return response;
}

function expectRedirect(response: Response, step: string): string {
  const location = response.headers.get('location');
  if (response.status < 300 || response.status > 399 || !location) {
    // An error page: its body is not wanted, and an unread body holds the connection.
    void response.body?.cancel().catch(() => undefined);
    throw new StepFailed(step, response.status);
  }
  return location;
}

/** A login in progress, carried from step to step. */
export interface LoginInProgress {
  jar: CookieJar;
  verifier: string;
  state: string;
  /** Where the browser goes next (a Brána URL, or the IdP's). */
  next?: string;
  acs?: string;
  samlResponse?: string;
  code?: string;
  accessToken?: string;
}

/** Step 1: the SeP's authorization request (PKCE, idp_hint) → the IdP (or the interaction page). */
export async function authorize(target: LoginTarget): Promise<LoginInProgress> {
  const login: LoginInProgress = { jar: new CookieJar(), verifier: randomBytes(32).toString('base64url'), state: randomBytes(8).toString('base64url') };
  const query = new URLSearchParams({
    client_id: target.clientId,
    redirect_uri: target.redirectUri,
    response_type: 'code',
    scope: target.scope,
    code_challenge: createHash('sha256').update(login.verifier).digest('base64url'),
    code_challenge_method: 'S256',
    state: login.state,
    nonce: randomBytes(8).toString('base64url'),
    idp_hint: target.means,
  });
  login.next = expectRedirect(await send(target, login.jar, `/auth?${query}`), 'authorize');
  return login;
}

/**
 * Step 2: the AuthnRequest to the IdP. With idp_hint Brána hands the login off at the authorization
 * request itself (its redirect already goes to the IdP); a login sent to its interaction page first
 * (a means reached by a form post) gets it there.
 */
export async function handOff(target: LoginTarget, login: LoginInProgress): Promise<void> {
  if (!isInteractionPage(target, login.next!)) return;
  login.next = expectRedirect(await send(target, login.jar, login.next!), 'interaction');
}

function isInteractionPage(target: LoginTarget, location: string): boolean {
  const url = new URL(location, target.publicOrigin);
  return url.origin === target.publicOrigin && url.pathname.startsWith('/interaction/');
}

/** Step 3 (not Brána): the IdP answers. */
export async function atIdp(login: LoginInProgress, timeoutMs?: number): Promise<void> {
  const idp = await fetch(login.next!, timeoutSignal(timeoutMs));
  if (!idp.ok) {
    void idp.body?.cancel().catch(() => undefined);
    throw new StepFailed('idp', idp.status);
  }
  const answer = (await idp.json()) as { acs: string; SAMLResponse: string };
  login.acs = answer.acs;
  login.samlResponse = answer.SAMLResponse;
}

/** Steps 1–3. */
export async function beginLogin(target: LoginTarget): Promise<LoginInProgress> {
  const login = await authorize(target);
  await handOff(target, login);
  await atIdp(login, target.timeoutMs);
  return login;
}

/** Step 4: the ACS. Returns where Brána sends the browser next. */
export async function postToAcs(target: LoginTarget, login: LoginInProgress): Promise<string> {
  login.next = expectRedirect(
    await send(target, login.jar, login.acs!, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ SAMLResponse: login.samlResponse! }).toString(),
    }),
    'acs',
  );
  return login.next;
}

/** One hop of steps 5–6: follows a Brána redirect (consenting once, permanently, if asked). */
export async function hop(target: LoginTarget, login: LoginInProgress): Promise<void> {
  const response = await send(target, login.jar, login.next!);
  if (response.status === 200) {
    // The consent page, the first time this citizen meets this SeP: agree, permanently.
    const html = await response.text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1];
    const action = /action="(\/interaction\/[^"]+\/consent)"/.exec(html)?.[1];
    if (!csrf || !action) throw new Error('unexpected page during login');
    login.next = expectRedirect(
      await send(target, login.jar, action, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: target.publicOrigin },
        body: new URLSearchParams({ csrf, decision: 'agree', permanent: 'yes' }).toString(),
      }),
      'consent',
    );
    return;
  }
  await response.arrayBuffer();
  login.next = expectRedirect(response, 'resume');
}

/** Steps 5–6: back to the interaction and the resumed authorization, until the code. */
export async function followToCode(target: LoginTarget, login: LoginInProgress, from = login.next!): Promise<string> {
  login.next = from;
  for (let hops = 0; hops < 8 && !login.next!.startsWith(target.redirectUri); hops += 1) await hop(target, login);
  const result = new URL(login.next!).searchParams;
  const code = result.get('code');
  if (!code || result.get('state') !== login.state) throw new Error(`authorization: ${result.get('error') ?? 'no code'}`);
  login.code = code;
  return code;
}

/** Step 7: code → tokens. Returns the access token. */
export async function redeem(target: LoginTarget, login: LoginInProgress): Promise<string> {
  const token = await send(target, login.jar, '/token', {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(target.clientId)}:${encodeURIComponent(target.clientSecret)}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: login.code!, redirect_uri: target.redirectUri, code_verifier: login.verifier }).toString(),
  });
  if (token.status !== 200) throw new StepFailed('token', token.status, await token.text());
  const { access_token: accessToken, id_token: idToken } = (await token.json()) as { access_token: string; id_token: string };
  if (!idToken) throw new Error('token: no ID token');
  login.accessToken = accessToken;
  return accessToken;
}

/** Step 8: userinfo. */
export async function fetchUserinfo(target: LoginTarget, login: LoginInProgress): Promise<void> {
  const userinfo = await send(target, login.jar, '/me', { headers: { authorization: `Bearer ${login.accessToken!}` } });
  if (userinfo.status !== 200) {
    void userinfo.body?.cancel().catch(() => undefined);
    throw new StepFailed('userinfo', userinfo.status);
  }
  await userinfo.arrayBuffer();
}

/** One complete login; throws with the step that failed. */
export async function oneLogin(target: LoginTarget): Promise<void> {
  const login = await beginLogin(target);
  await followToCode(target, login, await postToAcs(target, login));
  await redeem(target, login);
  await fetchUserinfo(target, login);
}

/** Runs an async step for every item with at most `concurrency` at once. */
export async function withConcurrency<T>(items: T[], concurrency: number, step: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await step(items[next++]!);
    }),
  );
}

/** Runs `concurrency` virtual citizens for `durationMs`. */
export async function runLoad(target: LoginTarget, concurrency: number, durationMs: number): Promise<LoadResult> {
  const result: LoadResult = { completed: 0, errors: 0, errorSamples: [], latenciesMs: [], wallMs: 0 };
  const started = performance.now();
  const deadline = started + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        try {
          await oneLogin(target);
          result.latenciesMs.push(performance.now() - t0);
          result.completed += 1;
        } catch (err) {
          result.errors += 1;
          if (result.errorSamples.length < 5) result.errorSamples.push((err as Error).message);
        }
      }
    }),
  );
  result.wallMs = performance.now() - started;
  return result;
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * `count` logins in flight at once: every one is started (authorization request, hand-off, the IdP's
 * answer) before any is finished, so that the broker holds all their interactions and sessions at the
 * same moment; then all are finished. Latencies are those of the finishing half (ACS → userinfo).
 */
export async function runInFlight(target: LoginTarget, count: number, concurrency: number): Promise<LoadResult> {
  const result: LoadResult = { completed: 0, errors: 0, errorSamples: [], latenciesMs: [], wallMs: 0 };
  const started = performance.now();
  const fail = (err: unknown) => {
    result.errors += 1;
    if (result.errorSamples.length < 5) result.errorSamples.push((err as Error).message);
  };
  const begun: LoginInProgress[] = [];
  await withConcurrency(Array.from({ length: count }, (_, i) => i), concurrency, async () => {
    try {
      begun.push(await beginLogin(target));
    } catch (err) {
      fail(err);
    }
  });
  await withConcurrency(begun, concurrency, async (login) => {
    const t0 = performance.now();
    try {
      await followToCode(target, login, await postToAcs(target, login));
      await redeem(target, login);
      await fetchUserinfo(target, login);
      result.latenciesMs.push(performance.now() - t0);
      result.completed += 1;
    } catch (err) {
      fail(err);
    }
  });
  result.wallMs = performance.now() - started;
  return result;
}
