import { randomBytes } from 'node:crypto';
import type { Database, Queryable } from '../store/database.ts';
import type { AttributeId } from '../domain/attributes.ts';
import type { Loa } from '../domain/loa.ts';
import type { PublicJwks, Sep, SepRegistration, SepStatus, TokenEndpointAuthMethod } from './sep.ts';

interface SepRow {
  client_id: string;
  client_secret: string | null;
  status: string;
  environment: string;
  name_cs: string;
  name_en: string;
  organisation_id: string;
  organisation_name: string;
  description: string;
  info_url: string;
  sep_group: string;
  sp_type: string;
  legal_basis: string | null;
  min_loa: string;
  allowed_attributes: string;
  allowed_means: string | null;
  eidas_enabled: boolean | number;
  redirect_uris: string;
  post_logout_redirect_uris: string;
  token_endpoint_auth_method: string;
  jwks: string | null;
  log_attribute_values: boolean | number;
  created_at: number;
  updated_at: number;
}

function fromRow(row: SepRow): Sep {
  return {
    clientId: row.client_id,
    status: row.status as SepStatus,
    environment: row.environment as Sep['environment'],
    name: { cs: row.name_cs, en: row.name_en },
    organisation: { id: row.organisation_id, name: row.organisation_name },
    description: row.description,
    infoUrl: row.info_url,
    group: row.sep_group,
    spType: row.sp_type as Sep['spType'],
    legalBasis: row.legal_basis,
    minimumLoa: row.min_loa as Loa,
    allowedAttributes: JSON.parse(row.allowed_attributes) as AttributeId[],
    allowedMeans: row.allowed_means === null ? null : (JSON.parse(row.allowed_means) as string[]),
    eidasEnabled: Boolean(row.eidas_enabled),
    redirectUris: JSON.parse(row.redirect_uris) as string[],
    postLogoutRedirectUris: JSON.parse(row.post_logout_redirect_uris) as string[],
    tokenEndpointAuthMethod: row.token_endpoint_auth_method as TokenEndpointAuthMethod,
    jwks: row.jwks === null || row.jwks === undefined ? null : (JSON.parse(row.jwks) as PublicJwks),
    logAttributeValues: Boolean(row.log_attribute_values),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

export interface RegisteredSep {
  sep: Sep;
  clientSecret: string;
}

export class SepAlreadyRegistered extends Error {}

/** The SeP registrations, on knex. The only module that reads or writes the `sep` table. */
export class SepStore {
  private readonly db: Database;

  constructor(db: Database) {
    this.db = db;
  }

  async register(registration: SepRegistration, status: SepStatus, trx: Queryable = this.db): Promise<RegisteredSep> {
    const clientId = registration.clientId ?? `sep-${randomBytes(12).toString('base64url')}`;
    const clientSecret = randomBytes(32).toString('base64url');
    const at = Date.now();
    const row: SepRow = {
      client_id: clientId,
      client_secret: clientSecret,
      status,
      environment: registration.environment,
      name_cs: registration.name.cs,
      name_en: registration.name.en,
      organisation_id: registration.organisation.id,
      organisation_name: registration.organisation.name,
      description: registration.description,
      info_url: registration.infoUrl,
      sep_group: registration.group,
      sp_type: registration.spType,
      legal_basis: registration.legalBasis,
      min_loa: registration.minimumLoa,
      allowed_attributes: JSON.stringify([...new Set(registration.allowedAttributes)]),
      allowed_means: registration.allowedMeans === null ? null : JSON.stringify([...new Set(registration.allowedMeans)]),
      eidas_enabled: registration.eidasEnabled,
      redirect_uris: JSON.stringify(registration.redirectUris),
      post_logout_redirect_uris: JSON.stringify(registration.postLogoutRedirectUris),
      token_endpoint_auth_method: registration.tokenEndpointAuthMethod,
      jwks: registration.jwks === null ? null : JSON.stringify(registration.jwks),
      log_attribute_values: false,
      created_at: at,
      updated_at: at,
    };
    const existing = await trx('sep').where({ client_id: clientId }).first('client_id');
    if (existing) throw new SepAlreadyRegistered(`a SeP with client id ${clientId} is already registered`);
    await trx('sep').insert(row);
    return { sep: fromRow(row), clientSecret };
  }

  async find(clientId: string, trx: Queryable = this.db): Promise<Sep | undefined> {
    const row = (await trx('sep').where({ client_id: clientId }).first()) as SepRow | undefined;
    return row ? fromRow(row) : undefined;
  }

  /** The secret oidc-provider compares at the token endpoint. */
  async findWithSecret(clientId: string): Promise<{ sep: Sep; clientSecret: string | null } | undefined> {
    const row = (await this.db('sep').where({ client_id: clientId }).first()) as SepRow | undefined;
    return row ? { sep: fromRow(row), clientSecret: row.client_secret } : undefined;
  }

  async list(): Promise<Sep[]> {
    const rows = (await this.db('sep').orderBy('created_at', 'asc')) as SepRow[];
    return rows.map(fromRow);
  }

  async listGroup(group: string): Promise<Sep[]> {
    const rows = (await this.db('sep').where({ sep_group: group }).orderBy('created_at', 'asc')) as SepRow[];
    return rows.map(fromRow);
  }

  async setLogAttributeValues(clientId: string, on: boolean, trx: Queryable = this.db): Promise<boolean> {
    const count = await trx('sep').where({ client_id: clientId }).update({ log_attribute_values: on, updated_at: Date.now() });
    return count === 1;
  }

  async setStatus(clientId: string, status: SepStatus, trx: Queryable = this.db): Promise<boolean> {
    const count = await trx('sep').where({ client_id: clientId }).update({ status, updated_at: Date.now() });
    return count === 1;
  }
}
