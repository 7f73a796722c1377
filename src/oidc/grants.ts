import type Provider from 'oidc-provider';
import type { Grant } from 'oidc-provider';
import { attributeOfClaim } from '../domain/attributes.ts';
import { claimsOfAttributes, type ReleaseDecision } from '../consent/release-policy.ts';

/** Scopes Brána understands: the OIDC ones and NIA's LoA scopes. */
export const LOA_SCOPES = ['loalow', 'loasubstantial', 'loahigh'];

/**
 * A grant for exactly what one request may release: the requested scopes, with every attribute claim
 * the citizen did not consent to (or the SeP may not have) rejected. oidc-provider then releases only
 * requested ∩ granted claims in the ID token and at userinfo.
 */
export function buildGrant(provider: Provider, accountId: string, clientId: string, decision: ReleaseDecision, requestedScope: unknown): Grant {
  const grant = new provider.Grant({ accountId, clientId });
  const requested = typeof requestedScope === 'string' ? requestedScope.split(' ') : [];
  const scopes = requested.filter((scope) => decision.scopes.includes(scope) || LOA_SCOPES.includes(scope));
  grant.addOIDCScope(scopes.join(' '));
  const released = new Set(claimsOfAttributes(decision.consentable));
  // Withheld claims are recorded as rejected, so oidc-provider knows they were decided on and does
  // not ask for consent again.
  const withheld = decision.requestedClaims.filter((claim) => attributeOfClaim(claim) && !released.has(claim));
  if (withheld.length) grant.rejectOIDCClaims(withheld);
  const fromParameter = decision.claimsParameter.filter((claim) => released.has(claim) || !attributeOfClaim(claim));
  if (fromParameter.length) grant.addOIDCClaims(fromParameter);
  return grant;
}
