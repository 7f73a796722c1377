import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ATTRIBUTE_IDS, type AttributeId } from '../domain/attributes.ts';
import { LOA_LEVELS, type Loa } from '../domain/loa.ts';
import { ConfigurationError, describeIssues } from '../config/configuration-error.ts';

/**
 * An identity means (prostředek pro elektronickou identifikaci) as configured in `providers/`:
 * data only. Which protocol adapter serves it follows from `protocol`; nothing else in Brána
 * depends on which means it is.
 */
export type IdentityMeans = SamlMeans | OidcMeans;

interface MeansCommon {
  id: string;
  order: number;
  name: { cs: string; en: string };
  description: { cs: string; en: string };
  administrator: { cs: string; en: string };
  /** The highest LoA this means is registered for: an assertion can never claim more. */
  loa: Loa;
  /** Absolute path of the logo (SVG), if any. */
  logoFile: string | null;
  /**
   * A foreign eID through the eIDAS node: offered only to SePs registered with `eidasEnabled`, and
   * its people are resolved by their eIDAS PersonIdentifier, not in the Czech population register.
   */
  crossBorder: boolean;
  /** What the embedded development identity provider of this means says it stands for. */
  development: { loginHint: { cs: string; en: string } | null };
  /** The file it was read from, for messages to the operator. */
  source: string;
}

export interface SamlMeans extends MeansCommon {
  protocol: 'saml';
  saml: SamlMeansSettings;
}

export interface OidcMeans extends MeansCommon {
  protocol: 'oidc';
  oidc: OidcMeansSettings;
}

export interface SamlMeansSettings {
  /** Absolute file path or https URL of the IdP's metadata; null: the embedded development IdP. */
  metadata: string | null;
  entityId: string | null;
  /** Certificates (PEM) of which one must have signed the metadata; empty: signature not required. */
  metadataTrustAnchors: string[];
  requestedAttributes: AttributeId[];
  /** The Response itself must carry a valid signature (NIA's profile); by default it may be unsigned. */
  requireSignedResponse: boolean;
  /** The Assertion itself must carry a valid signature (NIA's profile); by default the Response's may cover it. */
  requireSignedAssertion: boolean;
  /** The means' own AuthnContextClassRef URIs and the eIDAS LoA each stands for (eIDAS URIs need no entry). */
  authnContextMap: Record<string, Loa>;
}

export interface OidcMeansSettings {
  /** The OpenID Provider's issuer; null: the embedded development OpenID Provider. */
  issuer: string | null;
  clientId: string | null;
  /** The environment variable that holds the client secret (never the secret itself in the file). */
  clientSecretEnv: string | null;
  scope: string;
  /** Which claim of the provider carries each attribute. */
  claims: Partial<Record<AttributeId, string>>;
  /** Upstream `acr` values that stand for an eIDAS LoA, besides the eIDAS URIs themselves. */
  acr: Record<string, Loa>;
  /** Whether the attributes come from the userinfo endpoint (else from the ID token). */
  userinfo: boolean;
  /** How long Brána waits for the provider's back channel (token, userinfo, keys). */
  timeoutSeconds: number;
}

const localized = z.object({ cs: z.string().trim().min(1), en: z.string().trim().min(1) }).strict();
const attributeId = z.enum(ATTRIBUTE_IDS as [AttributeId, ...AttributeId[]]);

const samlSchema = z
  .object({
    metadata: z.string().min(1).nullable().default(null),
    entityId: z.string().min(1).nullable().default(null),
    metadataTrustAnchor: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).nullable().default(null),
    requestedAttributes: z.array(attributeId).default(['CurrentGivenName', 'CurrentFamilyName', 'DateOfBirth', 'PlaceOfBirth']),
    // Defaults that interoperate: a valid signature of the means must cover the Assertion, whichever
    // element carries it (SimpleSAMLphp signs the Assertion, Shibboleth the Response). NIA's means
    // require both, in their files.
    requireSignedResponse: z.boolean().default(false),
    requireSignedAssertion: z.boolean().default(false),
    authnContextMap: z.record(z.string().url('must be a URI'), z.enum(LOA_LEVELS)).default({}),
  })
  .strict();

const DEFAULT_OIDC_CLAIMS: Partial<Record<AttributeId, string>> = {
  CurrentGivenName: 'given_name',
  CurrentFamilyName: 'family_name',
  DateOfBirth: 'birthdate',
  PlaceOfBirth: 'birthplace',
};

const oidcSchema = z
  .object({
    issuer: z.string().url().nullable().default(null),
    clientId: z.string().min(1).nullable().default(null),
    clientSecretEnv: z.string().regex(/^[A-Z][A-Z0-9_]*$/, 'must be the name of an environment variable').nullable().default(null),
    scope: z.string().regex(/^openid( [\x21\x23-\x5b\x5d-\x7e]+)*$/, 'must start with openid and list scopes separated by single spaces').default('openid profile'),
    claims: z.partialRecord(attributeId, z.string().min(1)).default(DEFAULT_OIDC_CLAIMS),
    acr: z.record(z.string().min(1), z.enum(LOA_LEVELS)).default({}),
    userinfo: z.boolean().default(true),
    timeoutSeconds: z.number().int().min(1).max(60).default(10),
  })
  .strict();

const fileSchema = z
  .object({
    id: z.string().regex(/^[a-z][a-z0-9-]{1,39}$/, 'must be 2 to 40 lower-case letters, digits or dashes'),
    order: z.number().int().min(0).default(100),
    name: localized,
    description: localized.optional(),
    administrator: localized,
    loa: z.enum(LOA_LEVELS),
    logo: z.string().min(1).nullable().default(null),
    crossBorder: z.boolean().default(false),
    protocol: z.enum(['saml', 'oidc']),
    saml: samlSchema.optional(),
    oidc: oidcSchema.optional(),
    development: z.object({ loginHint: localized.nullable().default(null) }).strict().default({ loginHint: null }),
  })
  .strict()
  .superRefine((value, ctx) => {
    const other = value.protocol === 'saml' ? 'oidc' : 'saml';
    if (value[other] !== undefined) ctx.addIssue({ code: 'custom', path: [other], message: `must not be set for a means with protocol ${value.protocol}` });
    if (value.protocol === 'oidc' && value.oidc === undefined) ctx.addIssue({ code: 'custom', path: ['oidc'], message: 'is required for a means with protocol oidc' });
    if (value.oidc?.issuer && (!value.oidc.clientId || !value.oidc.clientSecretEnv)) {
      ctx.addIssue({ code: 'custom', path: ['oidc', value.oidc.clientId ? 'clientSecretEnv' : 'clientId'], message: 'is required when an issuer is given' });
    }
  });

function resolveMetadataLocation(value: string | null, dir: string, source: string): string | null {
  if (value === null) return null;
  if (/^https?:\/\//.test(value)) {
    if (!value.startsWith('https://')) throw new ConfigurationError(source, 'saml.metadata', 'a metadata URL must use https');
    return value;
  }
  const file = path.resolve(dir, value);
  if (!fs.existsSync(file)) throw new ConfigurationError(source, 'saml.metadata', `file ${file} does not exist`);
  return file;
}

function readTrustAnchors(value: string | string[] | null, dir: string, source: string): string[] {
  const files = value === null ? [] : Array.isArray(value) ? value : [value];
  return files.map((name, index) => {
    const field = Array.isArray(value) ? `saml.metadataTrustAnchor.${index}` : 'saml.metadataTrustAnchor';
    const file = path.resolve(dir, name);
    if (!fs.existsSync(file)) throw new ConfigurationError(source, field, `file ${file} does not exist`);
    const pem = fs.readFileSync(file, 'utf8');
    if (!/-----BEGIN CERTIFICATE-----/.test(pem)) throw new ConfigurationError(source, field, `file ${file} holds no PEM certificate`);
    return pem;
  });
}

/**
 * An https issuer; plain http only for a loopback host, and only where development mode allows it
 * (checked again by the OIDC adapter when it is built).
 */
function checkIssuer(value: string | null, source: string): void {
  if (value === null) return;
  const url = new URL(value);
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) throw new ConfigurationError(source, 'oidc.issuer', 'must use https');
  if (url.search || url.hash) throw new ConfigurationError(source, 'oidc.issuer', 'must not carry a query or fragment');
}

export function readIdentityMeansFile(file: string): IdentityMeans {
  const source = file;
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigurationError(source, '(document)', `is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    const [first = '(root): invalid'] = describeIssues(parsed.error.issues);
    const cut = first.indexOf(': ');
    throw new ConfigurationError(source, first.slice(0, cut), first.slice(cut + 2));
  }
  const value = parsed.data;
  if (path.basename(file, '.json') !== value.id) {
    throw new ConfigurationError(source, 'id', `must match the file name (${path.basename(file, '.json')})`);
  }
  const dir = path.dirname(file);
  const logoFile = value.logo ? path.resolve(dir, value.logo) : null;
  if (logoFile && !fs.existsSync(logoFile)) throw new ConfigurationError(source, 'logo', `file ${logoFile} does not exist`);
  const common: MeansCommon = {
    id: value.id,
    order: value.order,
    name: value.name,
    description: value.description ?? value.name,
    administrator: value.administrator,
    loa: value.loa,
    logoFile,
    crossBorder: value.crossBorder,
    development: value.development,
    source,
  };
  if (value.protocol === 'oidc') {
    const oidc = value.oidc!;
    checkIssuer(oidc.issuer, source);
    return { ...common, protocol: 'oidc', oidc: { ...oidc, issuer: oidc.issuer?.replace(/\/$/, '') ?? null } };
  }
  const saml = value.saml ?? samlSchema.parse({});
  return {
    ...common,
    protocol: 'saml',
    saml: {
      metadata: resolveMetadataLocation(saml.metadata, dir, source),
      entityId: saml.entityId,
      metadataTrustAnchors: readTrustAnchors(saml.metadataTrustAnchor, dir, source),
      requestedAttributes: saml.requestedAttributes,
      requireSignedResponse: saml.requireSignedResponse,
      requireSignedAssertion: saml.requireSignedAssertion,
      authnContextMap: saml.authnContextMap,
    },
  };
}

/** Every means in the providers folder, in display order. */
export function readIdentityMeansFolder(dir: string): IdentityMeans[] {
  if (!fs.existsSync(dir)) throw new ConfigurationError('environment', 'BRANA_PROVIDERS_DIR', `folder ${dir} does not exist`);
  const files = fs.readdirSync(dir).filter((name) => name.endsWith('.json')).sort();
  if (!files.length) throw new ConfigurationError(dir, '(folder)', 'holds no identity means (*.json)');
  const means = files.map((name) => readIdentityMeansFile(path.join(dir, name)));
  return means.sort((a, b) => a.order - b.order || a.id.localeCompare(b.id));
}
