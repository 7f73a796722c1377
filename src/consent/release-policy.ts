import { ALWAYS_RELEASED, attribute, attributeOfClaim, scopeClaims, type AttributeId } from '../domain/attributes.ts';

const SCOPE_CLAIMS = scopeClaims();
export const OIDC_SCOPES = Object.keys(SCOPE_CLAIMS);

export interface ReleaseRequest {
  scope?: unknown;
  claims?: unknown;
}

/** The claim names a request asks for, through its scopes and its `claims` parameter. */
export function requestedClaims(params: ReleaseRequest): { fromScopes: Set<string>; fromClaimsParameter: Set<string>; scopes: string[] } {
  const scopes = typeof params.scope === 'string' ? params.scope.split(' ').filter((scope) => SCOPE_CLAIMS[scope]) : [];
  const fromScopes = new Set(scopes.flatMap((scope) => SCOPE_CLAIMS[scope] ?? []));
  const fromClaimsParameter = new Set<string>();
  if (typeof params.claims === 'string') {
    try {
      const parsed = JSON.parse(params.claims) as { id_token?: Record<string, unknown>; userinfo?: Record<string, unknown> };
      for (const part of [parsed.id_token, parsed.userinfo]) {
        if (part && typeof part === 'object') for (const name of Object.keys(part)) fromClaimsParameter.add(name);
      }
    } catch {
      // oidc-provider has already refused a malformed claims parameter.
    }
  }
  return { fromScopes, fromClaimsParameter, scopes };
}

export interface ReleaseDecision {
  /** Attributes the SeP may have and asked for: what the citizen is asked to consent to. */
  consentable: AttributeId[];
  /** Attributes the SeP asked for but is not registered for: never released, never asked. */
  refused: AttributeId[];
  scopes: string[];
  claimsParameter: string[];
  /** Every claim name asked for, through scopes and the claims parameter. */
  requestedClaims: string[];
}

/**
 * What one request may release: the attributes asked for that the SeP is registered for. The
 * pseudonym (PersonIdentifier) is always released and needs no consent.
 */
export function releaseDecision(params: ReleaseRequest, allowed: readonly AttributeId[]): ReleaseDecision {
  const { fromScopes, fromClaimsParameter, scopes } = requestedClaims(params);
  const asked = new Set<AttributeId>();
  for (const claim of [...fromScopes, ...fromClaimsParameter]) {
    const id = attributeOfClaim(claim);
    if (id && !ALWAYS_RELEASED.includes(id)) asked.add(id);
  }
  const consentable = [...asked].filter((id) => allowed.includes(id)).sort();
  const refused = [...asked].filter((id) => !allowed.includes(id)).sort();
  return { consentable, refused, scopes, claimsParameter: [...fromClaimsParameter], requestedClaims: [...new Set([...fromScopes, ...fromClaimsParameter])] };
}

/** The claims that carry these attributes (both vocabularies), plus the pseudonym's. */
export function claimsOfAttributes(attributes: readonly AttributeId[]): string[] {
  return [...new Set([...ALWAYS_RELEASED, ...attributes].flatMap((id) => attribute(id).claims))];
}

/** Every claim any of these scopes stands for. */
export function claimsOfScopes(scopes: readonly string[]): string[] {
  return [...new Set(scopes.flatMap((scope) => SCOPE_CLAIMS[scope] ?? []))];
}

/**
 * What one request may release when the SeP names attributes directly (SAML
 * `eidas:RequestedAttributes`): the same rule as `releaseDecision`, asked ∩ allowed.
 */
export function releaseDecisionOfAttributes(asked: readonly AttributeId[], allowed: readonly AttributeId[]): ReleaseDecision {
  const wanted = [...new Set(asked)].filter((id) => !ALWAYS_RELEASED.includes(id));
  return {
    consentable: wanted.filter((id) => allowed.includes(id)).sort(),
    refused: wanted.filter((id) => !allowed.includes(id)).sort(),
    scopes: [],
    claimsParameter: [],
    requestedClaims: wanted.map((id) => attribute(id).claims[0]!),
  };
}
