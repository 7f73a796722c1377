import type { SepRegistration } from './sep.ts';

/**
 * A SeP's registration as RFC 7591 client metadata. The OAuth settings travel under their standard
 * names; everything an administrator reviews travels in one object, `brana_registration`, which is
 * the same document `brana sep register --file` reads (without the OAuth settings) and is validated
 * by the same schema with the same messages.
 */
export const BRANA_REGISTRATION = 'brana_registration';

/** Document field → the standard metadata that carries it. */
const STANDARD_NAMES: Record<string, string> = {
  redirectUris: 'redirect_uris',
  postLogoutRedirectUris: 'post_logout_redirect_uris',
  frontchannelLogoutUri: 'frontchannel_logout_uri',
  tokenEndpointAuthMethod: 'token_endpoint_auth_method',
  jwks: 'jwks',
  jwksUri: 'jwks_uri',
  'idTokenEncryption.alg': 'id_token_encrypted_response_alg',
  'idTokenEncryption.enc': 'id_token_encrypted_response_enc',
  idTokenEncryption: 'id_token_encrypted_response_alg',
  idTokenSignedResponseAlg: 'id_token_signed_response_alg',
};
const CARRIED_BY_STANDARD = ['redirectUris', 'postLogoutRedirectUris', 'frontchannelLogoutUri', 'tokenEndpointAuthMethod', 'jwks', 'jwksUri', 'idTokenEncryption', 'idTokenSignedResponseAlg'];

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The registration document a metadata set stands for, before validation, and the problems that
 * show already in its shape (named by the metadata the SeP sent).
 */
export function documentFromMetadata(metadata: Record<string, unknown>): { document: Record<string, unknown>; problems: string[] } {
  const problems: string[] = [];
  const requested = metadata[BRANA_REGISTRATION];
  if (!isObject(requested)) problems.push(`${BRANA_REGISTRATION}: is required: an object with the SeP's name, organisation, group, sector and what it asks for`);
  const brana = isObject(requested) ? requested : {};
  if ('clientId' in brana) problems.push(`${BRANA_REGISTRATION}.clientId: is assigned by Brána`);
  for (const field of CARRIED_BY_STANDARD) {
    if (field in brana) problems.push(`${BRANA_REGISTRATION}.${field}: send it as ${STANDARD_NAMES[field]}`);
  }
  const alg = metadata.id_token_encrypted_response_alg;
  const enc = metadata.id_token_encrypted_response_enc;
  const document: Record<string, unknown> = {
    ...Object.fromEntries(Object.entries(brana).filter(([key]) => key !== 'clientId' && !CARRIED_BY_STANDARD.includes(key))),
    redirectUris: metadata.redirect_uris,
    postLogoutRedirectUris: metadata.post_logout_redirect_uris ?? [],
    frontchannelLogoutUri: metadata.frontchannel_logout_uri ?? null,
    tokenEndpointAuthMethod: metadata.token_endpoint_auth_method ?? 'client_secret_basic',
    jwks: metadata.jwks ?? null,
    jwksUri: metadata.jwks_uri ?? null,
    idTokenEncryption: alg === undefined && enc === undefined ? null : { alg, enc: enc ?? 'A128CBC-HS256' },
    idTokenSignedResponseAlg: metadata.id_token_signed_response_alg ?? 'RS256',
  };
  return { document, problems };
}

/** A validation problem of the document (`field.path: message`), named by the metadata the SeP sent. */
export function metadataProblem(problem: string): string {
  const colon = problem.indexOf(': ');
  const path = colon < 0 ? problem : problem.slice(0, colon);
  const message = colon < 0 ? '' : problem.slice(colon);
  const [head = '', ...rest] = path.split('.');
  const twoPart = `${head}.${rest[0] ?? ''}`;
  if (STANDARD_NAMES[twoPart]) return `${STANDARD_NAMES[twoPart]}${message}`;
  if (STANDARD_NAMES[head]) return `${[STANDARD_NAMES[head], ...rest].join('.')}${message}`;
  if (path === '(root)') return `${BRANA_REGISTRATION}${message}`;
  return `${BRANA_REGISTRATION}.${path}${message}`;
}

/** The `brana_registration` object of a registration: what an administrator reviews. */
export function requestOfDocument(document: SepRegistration): Record<string, unknown> {
  return Object.fromEntries(Object.entries(document).filter(([key]) => key !== 'clientId' && !CARRIED_BY_STANDARD.includes(key)));
}
