import type { AllClientMetadata, Client } from 'oidc-provider';
import type { AttributeId } from '../domain/attributes.ts';
import type { Loa } from '../domain/loa.ts';
import { BRANA_REGISTRATION, requestOfDocument } from '../sep/registration-metadata.ts';
import { registrationOf, type Sep } from '../sep/sep.ts';

/**
 * Brána's own client metadata, set only from the SeP registration (never by a client): the SeP
 * group its pseudonyms are computed for, its minimum LoA, the means and attributes it may use.
 */
export const SEP_GROUP_METADATA = 'sep_group';
export const SEP_STATUS_METADATA = 'sep_status';
export const SEP_METADATA = [SEP_GROUP_METADATA, 'sep_minimum_loa', 'sep_allowed_means', 'sep_allowed_attributes', 'sep_eidas_enabled', SEP_STATUS_METADATA, 'sep_change_pending'] as const;

/**
 * Client metadata only Brána sets. A SeP may echo them in a registration update (RFC 7592 clients
 * send back what they read) but never change them: the `sep_*` values are what an administrator
 * approved, the rest is how Brána serves every SeP.
 */
export const SERVER_SET_METADATA = [...SEP_METADATA, 'response_types', 'grant_types', 'subject_type', 'sector_identifier_uri', 'client_name', 'client_uri'] as const;

/**
 * OIDC Front-Channel Logout 1.0, which oidc-provider does not implement: kept as client metadata
 * (validated by the registration schema) and used by Brána's own logout page (saml-idp/session-logout.ts).
 */
export const FRONTCHANNEL_LOGOUT_URI = 'frontchannel_logout_uri';

/** Every custom metadata property oidc-provider must keep for a client. */
export const EXTRA_CLIENT_METADATA = [...SEP_METADATA, BRANA_REGISTRATION, FRONTCHANNEL_LOGOUT_URI] as const;

/**
 * The sector a SeP group forms. Brána is the authority for which SeP belongs to which group, so this
 * URI names Brána's own document of the group (served at /sep-groups/<group>) and oidc-provider is
 * told not to fetch it. It is always written https, as the client schema demands, even on a
 * development instance on plain http.
 */
export function sectorIdentifierUri(publicUrl: URL, group: string): string {
  return `https://${publicUrl.host}/sep-groups/${encodeURIComponent(group)}`;
}

/** A registered SeP as oidc-provider's client: code flow, PKCE, pairwise subject per SeP group. */
export function clientMetadataOf(sep: Sep, clientSecret: string | null, publicUrl: URL): AllClientMetadata {
  return {
    client_id: sep.clientId,
    client_id_issued_at: Math.floor(sep.createdAt / 1000),
    ...(clientSecret ? { client_secret: clientSecret, client_secret_expires_at: 0 } : {}),
    client_name: sep.name.cs,
    client_uri: sep.infoUrl,
    redirect_uris: sep.redirectUris,
    post_logout_redirect_uris: sep.postLogoutRedirectUris,
    ...(sep.frontchannelLogoutUri ? { frontchannel_logout_uri: sep.frontchannelLogoutUri } : {}),
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: sep.tokenEndpointAuthMethod,
    ...(sep.jwks ? { jwks: sep.jwks as AllClientMetadata['jwks'] } : {}),
    ...(sep.jwksUri ? { jwks_uri: sep.jwksUri } : {}),
    ...(sep.idTokenEncryption ? { id_token_encrypted_response_alg: sep.idTokenEncryption.alg, id_token_encrypted_response_enc: sep.idTokenEncryption.enc } : {}),
    subject_type: 'pairwise',
    sector_identifier_uri: sectorIdentifierUri(publicUrl, sep.group),
    id_token_signed_response_alg: sep.idTokenSignedResponseAlg,
    [SEP_GROUP_METADATA]: sep.group,
    sep_minimum_loa: sep.minimumLoa,
    sep_allowed_means: sep.allowedMeans,
    sep_allowed_attributes: sep.allowedAttributes,
    sep_eidas_enabled: sep.eidasEnabled,
    [SEP_STATUS_METADATA]: sep.status,
    sep_change_pending: sep.requestedRegistration !== null,
    // What the SeP asked for last: the change waiting for approval, else what is in force.
    [BRANA_REGISTRATION]: requestOfDocument(sep.requestedRegistration ?? registrationOf(sep)),
  };
}

function extra(client: Client, snake: string): unknown {
  const record = client as unknown as Record<string, unknown>;
  return record[snake] ?? record[snake.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase())];
}

/** What the policy checks need of a SeP, read from its client metadata (no database round trip). */
export function sepPolicyOf(client: Client): { minimumLoa: Loa; allowedMeans: string[] | null; allowedAttributes: AttributeId[]; eidasEnabled: boolean } {
  return {
    minimumLoa: (extra(client, 'sep_minimum_loa') as Loa | undefined) ?? 'high',
    allowedMeans: (extra(client, 'sep_allowed_means') as string[] | null | undefined) ?? null,
    allowedAttributes: (extra(client, 'sep_allowed_attributes') as AttributeId[] | undefined) ?? [],
    eidasEnabled: extra(client, 'sep_eidas_enabled') === true,
  };
}

export function groupOfClient(client: Client): string {
  const group = extra(client, SEP_GROUP_METADATA);
  if (typeof group !== 'string' || !group) throw new Error(`client ${client.clientId} has no SeP group`);
  return group;
}
