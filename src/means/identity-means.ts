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
export interface IdentityMeans {
  id: string;
  order: number;
  name: { cs: string; en: string };
  description: { cs: string; en: string };
  administrator: { cs: string; en: string };
  /** The highest LoA this means is registered for: an assertion can never claim more. */
  loa: Loa;
  /** Absolute path of the logo (SVG), if any. */
  logoFile: string | null;
  protocol: 'saml';
  saml: SamlMeansSettings;
  /** The file it was read from, for messages to the operator. */
  source: string;
}

export interface SamlMeansSettings {
  /** Absolute file path or https URL of the IdP's metadata; null: the embedded development IdP. */
  metadata: string | null;
  entityId: string | null;
  requestedAttributes: AttributeId[];
  requireSignedResponse: boolean;
}

const localized = z.object({ cs: z.string().trim().min(1), en: z.string().trim().min(1) }).strict();

const fileSchema = z
  .object({
    id: z.string().regex(/^[a-z][a-z0-9-]{1,39}$/, 'must be 2 to 40 lower-case letters, digits or dashes'),
    order: z.number().int().min(0).default(100),
    name: localized,
    description: localized.optional(),
    administrator: localized,
    loa: z.enum(LOA_LEVELS),
    logo: z.string().min(1).nullable().default(null),
    protocol: z.literal('saml'),
    saml: z
      .object({
        metadata: z.string().min(1).nullable().default(null),
        entityId: z.string().min(1).nullable().default(null),
        requestedAttributes: z.array(z.enum(ATTRIBUTE_IDS as [AttributeId, ...AttributeId[]])).default(['CurrentGivenName', 'CurrentFamilyName', 'DateOfBirth', 'PlaceOfBirth']),
        requireSignedResponse: z.boolean().default(true),
      })
      .strict(),
  })
  .strict();

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
  return {
    id: value.id,
    order: value.order,
    name: value.name,
    description: value.description ?? value.name,
    administrator: value.administrator,
    loa: value.loa,
    logoFile,
    protocol: value.protocol,
    saml: { ...value.saml, metadata: resolveMetadataLocation(value.saml.metadata, dir, source) },
    source,
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
