import { z } from 'zod';
import { ATTRIBUTE_IDS, type AttributeId } from '../domain/attributes.ts';
import { LOA_LEVELS, type Loa } from '../domain/loa.ts';

/** A registered service provider (SeP): what a municipal portal or ministry registers with Brána. */
export interface Sep {
  clientId: string;
  status: SepStatus;
  environment: 'test' | 'production';
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
  tokenEndpointAuthMethod: TokenEndpointAuthMethod;
  /** The SeP's public keys, for private_key_jwt client authentication. */
  jwks: PublicJwks | null;
  /** The operator turned on logging of attribute values (not only names) for this SeP. */
  logAttributeValues: boolean;
  createdAt: number;
  updatedAt: number;
}

export type SepStatus = 'active' | 'pending' | 'disabled';
export interface PublicJwks {
  keys: Array<Record<string, unknown>>;
}
export const TOKEN_ENDPOINT_AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt'] as const;
export type TokenEndpointAuthMethod = (typeof TOKEN_ENDPOINT_AUTH_METHODS)[number];

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
function returnUrl(allowLoopbackHttp: boolean) {
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
}

/** The registration document (`brana sep register --file sep.json`), validated field by field. */
export function registrationSchema(context: RegistrationContext) {
  const text = (max: number) => z.string().trim().min(1).max(max);
  return z
    .object({
      clientId: z.string().regex(/^[A-Za-z0-9._-]{8,64}$/, 'must be 8 to 64 letters, digits, dots, dashes or underscores').optional(),
      environment: z.enum(['test', 'production']).default('production'),
      name: z.object({ cs: text(200), en: text(200) }).strict(),
      organisation: z.object({ id: z.string().refine(isValidIco, 'must be a valid IČO (8 digits with a correct check digit)'), name: text(200) }).strict(),
      description: text(2000),
      infoUrl: returnUrl(false),
      group: z.string().regex(/^[a-z0-9][a-z0-9-]{1,99}$/, 'must be 2 to 100 lower-case letters, digits or dashes'),
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
      tokenEndpointAuthMethod: z.enum(TOKEN_ENDPOINT_AUTH_METHODS).default('client_secret_basic'),
      jwks: publicJwks.nullable().default(null),
    })
    .strict()
    .superRefine((value, ctx) => {
      if (value.spType === 'private' && !value.legalBasis) {
        ctx.addIssue({ code: 'custom', path: ['legalBasis'], message: 'a private-sector SeP must state the law that obliges it to identify people' });
      }
      if (value.tokenEndpointAuthMethod === 'private_key_jwt' && !value.jwks) {
        ctx.addIssue({ code: 'custom', path: ['jwks'], message: 'private_key_jwt needs the SeP\'s public keys (a JWK Set)' });
      }
      if (new Set(value.redirectUris).size !== value.redirectUris.length) {
        ctx.addIssue({ code: 'custom', path: ['redirectUris'], message: 'must not repeat a URL' });
      }
    });
}

export type SepRegistration = z.output<ReturnType<typeof registrationSchema>>;
