import { createHash } from 'node:crypto';
import type Provider from 'oidc-provider';
import { loaFromUri } from '../domain/loa.ts';

/** A code that cannot open Brána's own page (My account, the consoles); the reason is for the node's log only. */
export class OwnLoginFailed extends Error {}

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
