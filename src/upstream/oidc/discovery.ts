import { z } from 'zod';
import { ConfigurationError, describeIssues } from '../../config/configuration-error.ts';
import type { ParsedMetadata } from '../metadata/metadata-source.ts';

/** What Brána takes from an OpenID Provider's discovery document. */
export interface OpenIdProviderMetadata {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  jwks_uri: string;
  userinfo_endpoint?: string;
  /** RFC 9207: the provider names itself in every authorization response (mix-up defence). */
  authorization_response_iss_parameter_supported?: boolean;
  code_challenge_methods_supported?: string[];
  id_token_signing_alg_values_supported?: string[];
  acr_values_supported?: string[];
}

/** An https URL; plain http only on a loopback host, and only if the issuer itself is such a host. */
function endpoint(allowLoopbackHttp: boolean) {
  return z.string().refine((value) => {
    try {
      const url = new URL(value);
      if (url.hash || url.username) return false;
      if (url.protocol === 'https:') return true;
      return allowLoopbackHttp && url.protocol === 'http:' && ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
    } catch {
      return false;
    }
  }, 'must be an https URL');
}

/**
 * Reads and checks a discovery document (OpenID Connect Discovery 1.0): the issuer must be exactly the
 * configured one (else the provider is impersonating another), the endpoints https, the code flow and
 * PKCE S256 supported.
 */
export function parseDiscovery(text: string, options: { source: string; issuer: string }): ParsedMetadata<OpenIdProviderMetadata> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigurationError(options.source, '(document)', `is not JSON: ${(err as Error).message}`);
  }
  const loopback = new URL(options.issuer).protocol === 'http:';
  const schema = z
    .object({
      issuer: z.string(),
      authorization_endpoint: endpoint(loopback),
      token_endpoint: endpoint(loopback),
      jwks_uri: endpoint(loopback),
      userinfo_endpoint: endpoint(loopback).optional(),
      response_types_supported: z.array(z.string()).refine((types) => types.includes('code'), 'must include code'),
      authorization_response_iss_parameter_supported: z.boolean().optional(),
      code_challenge_methods_supported: z.array(z.string()).refine((methods) => methods.includes('S256'), 'must include S256').optional(),
      id_token_signing_alg_values_supported: z.array(z.string()).optional(),
      acr_values_supported: z.array(z.string()).optional(),
    })
    .loose();
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const [first = '(root): invalid'] = describeIssues(parsed.error.issues);
    const cut = first.indexOf(': ');
    throw new ConfigurationError(options.source, first.slice(0, cut), first.slice(cut + 2));
  }
  const value = parsed.data;
  if (value.issuer !== options.issuer && value.issuer !== `${options.issuer}/`) {
    throw new ConfigurationError(options.source, 'issuer', `is ${value.issuer}, expected ${options.issuer}`);
  }
  const metadata: OpenIdProviderMetadata = {
    issuer: value.issuer,
    authorization_endpoint: value.authorization_endpoint,
    token_endpoint: value.token_endpoint,
    jwks_uri: value.jwks_uri,
    ...(value.userinfo_endpoint ? { userinfo_endpoint: value.userinfo_endpoint } : {}),
    ...(value.authorization_response_iss_parameter_supported !== undefined ? { authorization_response_iss_parameter_supported: value.authorization_response_iss_parameter_supported } : {}),
    ...(value.code_challenge_methods_supported ? { code_challenge_methods_supported: value.code_challenge_methods_supported } : {}),
    ...(value.id_token_signing_alg_values_supported ? { id_token_signing_alg_values_supported: value.id_token_signing_alg_values_supported } : {}),
    ...(value.acr_values_supported ? { acr_values_supported: value.acr_values_supported } : {}),
  };
  return { value: metadata, summary: { issuer: metadata.issuer, issParameter: metadata.authorization_response_iss_parameter_supported === true } };
}

/** Where an issuer publishes its discovery document. */
export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
}
