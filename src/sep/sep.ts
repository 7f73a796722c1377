import { z } from 'zod';
import { ATTRIBUTE_IDS, type AttributeId } from '../domain/attributes.ts';
import { LOA_LEVELS, type Loa } from '../domain/loa.ts';
import { SEP_ENVIRONMENTS, type SepEnvironment } from '../domain/sep-environment.ts';

/** A registered service provider (SeP): what a municipal portal or ministry registers with Brána. */
export interface Sep {
  clientId: string;
  status: SepStatus;
  /** How the SeP speaks to Brána: OpenID Connect, or SAML 2.0 (its SP metadata is in sep_saml). */
  protocol: SepProtocol;
  environment: SepEnvironment;
  name: { cs: string; en: string };
  organisation: { id: string; name: string };
  description: string;
  infoUrl: string;
  group: string;
  spType: 'public' | 'private';
  legalBasis: string | null;
  minimumLoa: Loa;
  allowedAttributes: AttributeId[];
  allowedMeans: string[] | null;
  eidasEnabled: boolean;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  /** OIDC Front-Channel Logout: loaded in a hidden frame (with iss and sid) when the citizen's Brána session ends. */
  frontchannelLogoutUri: string | null;
  tokenEndpointAuthMethod: TokenEndpointAuthMethod;
  /** The SeP's public keys, for private_key_jwt client authentication. */
  jwks: PublicJwks | null;
  /** Where the SeP publishes its public keys (private_key_jwt, encrypted ID tokens). */
  jwksUri: string | null;
  /** How the SeP wants its ID tokens encrypted (NIA encrypts them), or null for signed only. */
  idTokenEncryption: IdTokenEncryption | null;
  /** How its ID tokens are signed: RSA (RS256, the default) or ECDSA P-256 (ES256). */
  idTokenSignedResponseAlg: IdTokenSigningAlg;
  /** A change of the registration the SeP asked for and an administrator has not approved yet. */
  requestedRegistration: SepRegistration | null;
  /** The operator turned on logging of attribute values (not only names) for this SeP. */
  logAttributeValues: boolean;
  createdAt: number;
  updatedAt: number;
}

export type SepStatus = 'active' | 'pending' | 'disabled';
export const SEP_PROTOCOLS = ['oidc', 'saml'] as const;
export type SepProtocol = (typeof SEP_PROTOCOLS)[number];

export interface PublicJwks {
  keys: Array<Record<string, unknown>>;
}
export const TOKEN_ENDPOINT_AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt'] as const;
export type TokenEndpointAuthMethod = (typeof TOKEN_ENDPOINT_AUTH_METHODS)[number];

/** Asymmetric key management only: a SeP on private_key_jwt has no shared secret to derive a key from. */
export const ID_TOKEN_SIGNING_ALGS = ['RS256', 'ES256'] as const;
export type IdTokenSigningAlg = (typeof ID_TOKEN_SIGNING_ALGS)[number];
export const ID_TOKEN_ENCRYPTION_ALGS = ['RSA-OAEP-256', 'RSA-OAEP', 'ECDH-ES', 'ECDH-ES+A256KW'] as const;
export const ID_TOKEN_ENCRYPTION_ENCS = ['A256GCM', 'A128GCM', 'A256CBC-HS512', 'A128CBC-HS256'] as const;
export interface IdTokenEncryption {
  alg: (typeof ID_TOKEN_ENCRYPTION_ALGS)[number];
  enc: (typeof ID_TOKEN_ENCRYPTION_ENCS)[number];
}

/** Client ids and SeP groups that begin with this belong to Brána's own applications (My account). */
export const RESERVED_PREFIX = 'brana-';

/** IČO: eight digits, the last a mod-11 check digit over the first seven. */
export function isValidIco(ico: string): boolean {
  if (!/^\d{8}$/.test(ico)) return false;
  const digits = [...ico].map(Number);
  const sum = digits.slice(0, 7).reduce((acc, digit, i) => acc + digit * (8 - i), 0);
  return (11 - (sum % 11)) % 10 === digits[7];
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * A return URL must be an absolute https URL without fragment, user info or wildcard; plain http is
 * tolerated only for loopback hosts in development mode (the demo SeP on localhost).
 */
function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}

export function returnUrl(allowLoopbackHttp: boolean) {
  return z.string().max(2000).superRefine((value, ctx) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be an absolute URL' });
      return;
    }
    if (url.protocol === 'http:' && !(allowLoopbackHttp && LOOPBACK_HOSTS.has(url.hostname))) {
      ctx.addIssue({ code: 'custom', message: 'must use https' });
    } else if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      ctx.addIssue({ code: 'custom', message: 'must use https' });
    }
    if (url.hash || value.includes('#')) ctx.addIssue({ code: 'custom', message: 'must not contain a fragment' });
    if (url.username || url.password) ctx.addIssue({ code: 'custom', message: 'must not contain user information' });
    if (value.includes('*')) ctx.addIssue({ code: 'custom', message: 'must not contain wildcards' });
  });
}

/** Members that only a private or symmetric JWK has: a SeP registers public keys only. */
const SECRET_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

const publicJwks = z
  .object({
    keys: z
      .array(
        z
          .object({ kty: z.enum(['RSA', 'EC', 'OKP']), kid: z.string().min(1).max(200).optional() })
          .loose()
          .refine((key) => SECRET_JWK_MEMBERS.every((member) => !(member in key)), 'must hold public keys only'),
      )
      .min(1)
      .max(10),
  })
  .strict();

export interface RegistrationContext {
  allowLoopbackHttp: boolean;
  knownMeans: readonly string[];
  /**
   * The SeP environment this Brána instance serves (`BRANA_SEP_ENVIRONMENT`): a registration is for
   * it by default and may not name the other one. Absent, any environment is accepted.
   */
  environment?: SepEnvironment;
  /** Only Brána itself registers the client ids and groups that begin with `brana-`. */
  allowReserved?: boolean;
}

/** The registration document (`brana sep register --file sep.json`), validated field by field. */
export function registrationSchema(context: RegistrationContext) {
  const text = (max: number) => z.string().trim().min(1).max(max);
  return z
    .object({
      clientId: z
        .string()
        .regex(/^[A-Za-z0-9._-]{8,64}$/, 'must be 8 to 64 letters, digits, dots, dashes or underscores')
        .refine((id) => context.allowReserved || !id.startsWith(RESERVED_PREFIX), `must not begin with ${RESERVED_PREFIX} (reserved for Brána)`)
        .optional(),
      environment: z
        .enum(SEP_ENVIRONMENTS)
        .default(context.environment ?? 'production')
        .refine((value) => !context.environment || value === context.environment, `this Brána instance serves only ${context.environment ?? ''} SePs`),
      name: z.object({ cs: text(200), en: text(200) }).strict(),
      organisation: z.object({ id: z.string().refine(isValidIco, 'must be a valid IČO (8 digits with a correct check digit)'), name: text(200) }).strict(),
      description: text(2000),
      infoUrl: returnUrl(false),
      group: z
        .string()
        .regex(/^[a-z0-9][a-z0-9-]{1,99}$/, 'must be 2 to 100 lower-case letters, digits or dashes')
        .refine((group) => context.allowReserved || !group.startsWith(RESERVED_PREFIX), `must not begin with ${RESERVED_PREFIX} (reserved for Brána)`),
      spType: z.enum(['public', 'private']),
      legalBasis: z.string().trim().min(1).max(2000).nullable().default(null),
      minimumLoa: z.enum(LOA_LEVELS).default('substantial'),
      allowedAttributes: z.array(z.enum(ATTRIBUTE_IDS as [AttributeId, ...AttributeId[]])).max(ATTRIBUTE_IDS.length).default([]),
      allowedMeans: z
        .array(z.string().refine((id) => context.knownMeans.includes(id), 'is not a configured identity means'))
        .min(1)
        .nullable()
        .default(null),
      eidasEnabled: z.boolean().default(false),
      redirectUris: z.array(returnUrl(context.allowLoopbackHttp)).min(1).max(20),
      postLogoutRedirectUris: z.array(returnUrl(context.allowLoopbackHttp)).max(20).default([]),
      frontchannelLogoutUri: returnUrl(context.allowLoopbackHttp).nullable().default(null),
      tokenEndpointAuthMethod: z.enum(TOKEN_ENDPOINT_AUTH_METHODS).default('client_secret_basic'),
      jwks: publicJwks.nullable().default(null),
      jwksUri: returnUrl(context.allowLoopbackHttp).nullable().default(null),
      idTokenEncryption: z.object({ alg: z.enum(ID_TOKEN_ENCRYPTION_ALGS), enc: z.enum(ID_TOKEN_ENCRYPTION_ENCS) }).strict().nullable().default(null),
      idTokenSignedResponseAlg: z.enum(ID_TOKEN_SIGNING_ALGS).default('RS256'),
    })
    .strict()
    .superRefine((value, ctx) => {
      if (value.spType === 'private' && !value.legalBasis) {
        ctx.addIssue({ code: 'custom', path: ['legalBasis'], message: 'a private-sector SeP must state the law that obliges it to identify people' });
      }
      if (value.tokenEndpointAuthMethod === 'private_key_jwt' && !value.jwks && !value.jwksUri) {
        ctx.addIssue({ code: 'custom', path: ['jwks'], message: 'private_key_jwt needs the SeP\'s public keys (a JWK Set)' });
      }
      if (value.jwks && value.jwksUri) {
        ctx.addIssue({ code: 'custom', path: ['jwksUri'], message: 'give the SeP\'s public keys either as a JWK Set (jwks) or by URL (jwksUri), not both' });
      }
      if (value.idTokenEncryption && !value.jwks && !value.jwksUri) {
        ctx.addIssue({ code: 'custom', path: ['jwksUri'], message: 'encrypted ID tokens need the SeP\'s public keys (a JWK Set, or the URL of one in jwksUri)' });
      }
      // As the Front-Channel Logout spec demands: the SeP's own site, never a page of anyone else's
      // that Brána would make every citizen's browser load.
      if (value.frontchannelLogoutUri && !value.redirectUris.some((uri) => sameOrigin(uri, value.frontchannelLogoutUri!))) {
        ctx.addIssue({ code: 'custom', path: ['frontchannelLogoutUri'], message: 'must have the scheme, host and port of one of the redirect URIs' });
      }
      if (new Set(value.redirectUris).size !== value.redirectUris.length) {
        ctx.addIssue({ code: 'custom', path: ['redirectUris'], message: 'must not repeat a URL' });
      }
    });
}

export type SepRegistration = z.output<ReturnType<typeof registrationSchema>>;

/** The registration document that is in force for a SeP (the shape `brana sep register` reads). */
export function registrationOf(sep: Sep): SepRegistration {
  return {
    clientId: sep.clientId,
    environment: sep.environment,
    name: sep.name,
    organisation: sep.organisation,
    description: sep.description,
    infoUrl: sep.infoUrl,
    group: sep.group,
    spType: sep.spType,
    legalBasis: sep.legalBasis,
    minimumLoa: sep.minimumLoa,
    allowedAttributes: sep.allowedAttributes,
    allowedMeans: sep.allowedMeans,
    eidasEnabled: sep.eidasEnabled,
    redirectUris: sep.redirectUris,
    postLogoutRedirectUris: sep.postLogoutRedirectUris,
    frontchannelLogoutUri: sep.frontchannelLogoutUri,
    tokenEndpointAuthMethod: sep.tokenEndpointAuthMethod,
    jwks: sep.jwks as SepRegistration['jwks'],
    jwksUri: sep.jwksUri,
    idTokenEncryption: sep.idTokenEncryption,
    idTokenSignedResponseAlg: sep.idTokenSignedResponseAlg,
  };
}

/** A SeP as it would stand with this document in force (a preview of a registration or an update). */
export function sepOf(clientId: string, document: SepRegistration, state: Pick<Sep, 'status' | 'requestedRegistration' | 'logAttributeValues' | 'createdAt' | 'updatedAt'> & { protocol?: SepProtocol }): Sep {
  return {
    clientId,
    protocol: 'oidc',
    environment: document.environment,
    name: document.name,
    organisation: document.organisation,
    description: document.description,
    infoUrl: document.infoUrl,
    group: document.group,
    spType: document.spType,
    legalBasis: document.legalBasis,
    minimumLoa: document.minimumLoa,
    allowedAttributes: [...new Set(document.allowedAttributes)],
    allowedMeans: document.allowedMeans === null ? null : [...new Set(document.allowedMeans)],
    eidasEnabled: document.eidasEnabled,
    redirectUris: document.redirectUris,
    postLogoutRedirectUris: document.postLogoutRedirectUris,
    frontchannelLogoutUri: document.frontchannelLogoutUri,
    tokenEndpointAuthMethod: document.tokenEndpointAuthMethod,
    jwks: document.jwks,
    jwksUri: document.jwksUri,
    idTokenEncryption: document.idTokenEncryption,
    idTokenSignedResponseAlg: document.idTokenSignedResponseAlg,
    ...state,
  };
}
