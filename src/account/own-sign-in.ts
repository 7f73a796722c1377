import { createHash, timingSafeEqual } from 'node:crypto';
import type Provider from 'oidc-provider';
import type { Request, Response } from 'express';
import type { SignInSessions } from '../access/sign-in-sessions.ts';
import { logger } from '../log/logger.ts';
import { showCitizenError } from '../pages/citizen-errors.ts';
import { loaFromUri } from '../domain/loa.ts';

/** A code that cannot open Brána's own page (My account, the consoles); the reason is for the node's log only. */
export class OwnLoginFailed extends Error {}

/**
 * The authorization request that signs a person in to one of Brána's own SePs: the code flow with
 * PKCE S256, and always `prompt=login` — these pages show personal data or act for staff, so the
 * person authenticates anew even inside a Brána session (`acrValues`: the level they need).
 */
export function ownAuthorizationUrl(request: { clientId: string; redirectUri: string; state: string; codeVerifier: string; locale: string; acrValues?: string }): string {
  const params = new URLSearchParams({
    client_id: request.clientId,
    redirect_uri: request.redirectUri,
    response_type: 'code',
    scope: 'openid',
    state: request.state,
    code_challenge: createHash('sha256').update(request.codeVerifier).digest('base64url'),
    code_challenge_method: 'S256',
    prompt: 'login',
    ...(request.acrValues ? { acr_values: request.acrValues } : {}),
    ui_locales: request.locale,
  });
  return `/auth?${params.toString()}`;
}

/**
 * The back channel of the code flow of one of Brána's own SePs, in-process: the code is redeemed
 * through oidc-provider's own AuthorizationCode model (single use, PKCE S256, bound to this client
 * and return URL), so no request to Brána's public URL is needed from inside Brána.
 */
export async function redeemOwnCode(provider: Provider, expected: { clientId: string; redirectUri: string }, code: string, codeVerifier: string) {
  const found = await provider.AuthorizationCode.find(code);
  if (!found || found.clientId !== expected.clientId || found.redirectUri !== expected.redirectUri || (found as { consumed?: unknown }).consumed || found.isExpired) throw new OwnLoginFailed('unusable code');
  const challenge = createHash('sha256').update(codeVerifier).digest('base64url');
  if (found.codeChallengeMethod !== 'S256' || found.codeChallenge !== challenge) throw new OwnLoginFailed('PKCE verifier does not match');
  await found.consume();
  if (!found.accountId) throw new OwnLoginFailed('code without a person');
  return { personId: found.accountId, loa: loaFromUri(found.acr) ?? null, means: Array.isArray(found.amr) ? (found.amr[0] ?? null) : null, codeChallenge: found.codeChallenge! };
}

/** How the return of a sign-in to one of Brána's own pages ended. */
export type OwnSignIn =
  | { outcome: 'no_login' }
  | { outcome: 'refused'; reason: string }
  | { outcome: 'cancelled'; loginId: string }
  | { outcome: 'signed_in'; loginId: string; login: Awaited<ReturnType<typeof redeemOwnCode>> };

/**
 * The callback of a sign-in to one of Brána's own pages: the login this browser began (its cookie),
 * the state it was sent with (compared in constant time), then the person's cancellation or the
 * code, redeemed in-process. A cancelled login is closed here.
 */
export async function returnOfOwnSignIn(
  query: Record<string, unknown>,
  loginId: string,
  sessions: SignInSessions,
  provider: Provider,
  expected: { clientId: string; redirectUri: string },
): Promise<OwnSignIn> {
  const pending = loginId ? await sessions.pendingLogin(loginId) : undefined;
  if (!pending) return { outcome: 'no_login' };
  const state = Buffer.from(typeof query.state === 'string' ? query.state : '');
  const wanted = Buffer.from(pending.state);
  if (state.length !== wanted.length || !timingSafeEqual(state, wanted)) return { outcome: 'refused', reason: 'state does not match' };
  if (typeof query.error === 'string') {
    await sessions.close(loginId);
    return { outcome: 'cancelled', loginId };
  }
  try {
    return { outcome: 'signed_in', loginId, login: await redeemOwnCode(provider, expected, typeof query.code === 'string' ? query.code : '', pending.codeVerifier) };
  } catch (err) {
    if (err instanceof OwnLoginFailed) return { outcome: 'refused', reason: err.message };
    throw err;
  }
}

/**
 * The callback of a sign-in, answered where it cannot go on: a login this browser never began (or
 * that expired) and a refused one end on the citizen's error page, a cancelled one goes back to
 * `cancelledPath`. Returns the person signed in otherwise; the caller opens its page for them.
 */
export async function signedInOrAnswered(
  req: Request,
  res: Response,
  loginId: string,
  sessions: SignInSessions,
  provider: Provider,
  expected: { clientId: string; redirectUri: string; cancelledPath: string },
): Promise<Extract<OwnSignIn, { outcome: 'signed_in' }> | undefined> {
  const signIn = await returnOfOwnSignIn(req.query, loginId, sessions, provider, expected);
  if (signIn.outcome === 'no_login') showCitizenError(req, res, 'session_expired');
  else if (signIn.outcome === 'refused') {
    logger.warn('sign-in to a page of Brána refused', { client: expected.clientId, reason: signIn.reason });
    showCitizenError(req, res, 'bad_request');
  } else if (signIn.outcome === 'cancelled') res.redirect(303, expected.cancelledPath);
  else return signIn;
  return undefined;
}
