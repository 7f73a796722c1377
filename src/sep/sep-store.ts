import { randomBytes } from 'node:crypto';
import { isPostgres, type Database, type Queryable } from '../store/database.ts';
import { rememberAlong, rememberedOr, rememberedRead } from '../store/request-writes.ts';
import type { AttributeId } from '../domain/attributes.ts';
import type { Loa } from '../domain/loa.ts';
import type { IdTokenEncryption, IdTokenSigningAlg, PublicJwks, Sep, SepProtocol, SepRegistration, SepStatus, TokenEndpointAuthMethod } from './sep.ts';

interface SepRow {
  client_id: string;
  client_secret: string | null;
  status: string;
  protocol?: string;
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
  frontchannel_logout_uri: string | null;
  token_endpoint_auth_method: string;
  jwks: string | null;
  jwks_uri: string | null;
  id_token_encrypted_response_alg: string | null;
  id_token_encrypted_response_enc: string | null;
  id_token_signed_response_alg: string;
  requested_registration: string | null;
  log_attribute_values: boolean | number;
  created_at: number;
  updated_at: number;
}

/** Every column of the sep table (a test holds it to the schema the migrations make). */
export const SEP_COLUMNS = [
  'client_id', 'client_secret', 'status', 'protocol', 'environment', 'name_cs', 'name_en', 'organisation_id', 'organisation_name',
  'description', 'info_url', 'sep_group', 'sp_type', 'legal_basis', 'min_loa', 'allowed_attributes', 'allowed_means', 'eidas_enabled',
  'redirect_uris', 'post_logout_redirect_uris', 'frontchannel_logout_uri', 'token_endpoint_auth_method', 'jwks', 'jwks_uri',
  'id_token_encrypted_response_alg', 'id_token_encrypted_response_enc', 'id_token_signed_response_alg', 'requested_registration',
  'log_attribute_values', 'created_at', 'updated_at',
] as const satisfies ReadonlyArray<keyof SepRow>;

const ALONG = 'sep__';

/**
 * A SeP's row read along with another table's row, in the same statement (`left join sep <alias> on
 * <alias>.client_id = …`): a request that goes on to check its SeP then asks the database one time
 * fewer (rememberAlong). `columns` selects the SeP's columns under names of their own; `nulls` is the
 * same list as NULLs, for the other parts of a UNION; `remember` keeps the row found for the rest of
 * the request, as SepStore's own read of it would have found it.
 */
export const sepAlong = {
  columns: (alias: string): string => SEP_COLUMNS.map((column) => `${alias}.${column} as ${ALONG}${column}`).join(', '),
  nulls: (): string => SEP_COLUMNS.map((column) => `null as ${ALONG}${column}`).join(', '),
  remember(row: Record<string, unknown>, mark: number | undefined): void {
    // No SeP found: nothing is remembered, and the SeP's own read asks the database (an error path).
    const clientId = row[`${ALONG}client_id`];
    if (typeof clientId !== 'string') return;
    rememberAlong('sep', clientId, Object.fromEntries(SEP_COLUMNS.map((column) => [column, row[`${ALONG}${column}`]])), mark);
  },
};

/** The columns a registration document sets (everything but identity, status and times). */
type DocumentColumns = Omit<SepRow, 'client_id' | 'client_secret' | 'status' | 'protocol' | 'requested_registration' | 'log_attribute_values' | 'created_at' | 'updated_at'>;

function columnsOf(registration: SepRegistration): DocumentColumns {
  return {
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
    frontchannel_logout_uri: registration.frontchannelLogoutUri,
    token_endpoint_auth_method: registration.tokenEndpointAuthMethod,
    jwks: registration.jwks === null ? null : JSON.stringify(registration.jwks),
    jwks_uri: registration.jwksUri,
    id_token_encrypted_response_alg: registration.idTokenEncryption?.alg ?? null,
    id_token_encrypted_response_enc: registration.idTokenEncryption?.enc ?? null,
    id_token_signed_response_alg: registration.idTokenSignedResponseAlg,
  };
}

/** What a SeP changes for itself without an administrator: where its tokens go and how they are protected. */
export interface TechnicalSettings {
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  frontchannelLogoutUri: string | null;
  tokenEndpointAuthMethod: TokenEndpointAuthMethod;
  jwks: SepRegistration['jwks'];
  jwksUri: string | null;
  idTokenEncryption: IdTokenEncryption | null;
  idTokenSignedResponseAlg: IdTokenSigningAlg;
}

const newSecret = () => randomBytes(32).toString('base64url');

function fromRow(row: SepRow): Sep {
  return {
    clientId: row.client_id,
    status: row.status as SepStatus,
    protocol: row.protocol === 'saml' ? 'saml' : 'oidc',
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
    frontchannelLogoutUri: row.frontchannel_logout_uri ?? null,
    tokenEndpointAuthMethod: row.token_endpoint_auth_method as TokenEndpointAuthMethod,
    jwks: row.jwks === null || row.jwks === undefined ? null : (JSON.parse(row.jwks) as PublicJwks),
    jwksUri: row.jwks_uri,
    idTokenEncryption:
      row.id_token_encrypted_response_alg && row.id_token_encrypted_response_enc
        ? ({ alg: row.id_token_encrypted_response_alg, enc: row.id_token_encrypted_response_enc } as IdTokenEncryption)
        : null,
    idTokenSignedResponseAlg: (row.id_token_signed_response_alg ?? 'RS256') as IdTokenSigningAlg,
    requestedRegistration: row.requested_registration === null ? null : (JSON.parse(row.requested_registration) as SepRegistration),
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

/** The organisation a SeP group belongs to, as an administrator established it. */
export interface GroupOwner {
  group: string;
  organisation: { id: string; name: string };
  establishedBy: string;
  establishedAt: number;
}

/** The SeP registrations, on knex. The only module that reads or writes the `sep` table. */
export class SepStore {
  private readonly db: Database;

  constructor(db: Database) {
    this.db = db;
  }

  /** Writes a new registration; the secret is generated unless the caller (oidc-provider's registration) made one. */
  async register(registration: SepRegistration, status: SepStatus, trx: Queryable = this.db, options: { clientId?: string; clientSecret?: string; protocol?: SepProtocol } = {}): Promise<RegisteredSep> {
    const clientId = options.clientId ?? registration.clientId ?? `sep-${randomBytes(12).toString('base64url')}`;
    const clientSecret = options.clientSecret ?? newSecret();
    const at = Date.now();
    const row: SepRow = {
      client_id: clientId,
      client_secret: clientSecret,
      status,
      protocol: options.protocol ?? 'oidc',
      ...columnsOf(registration),
      requested_registration: null,
      log_attribute_values: false,
      created_at: at,
      updated_at: at,
    };
    const existing = await trx('sep').where({ client_id: clientId }).first('client_id');
    if (existing) throw new SepAlreadyRegistered(`a SeP with client id ${clientId} is already registered`);
    await trx('sep').insert(row);
    return { sep: fromRow(row), clientSecret };
  }

  /** Puts a whole registration document in force (a pending SeP's update, an approved change). */
  async replaceRegistration(clientId: string, registration: SepRegistration, trx: Queryable): Promise<void> {
    await trx('sep').where({ client_id: clientId }).update({ ...columnsOf(registration), requested_registration: null, updated_at: Date.now() });
  }

  /** Records (or clears) the change a SeP asked for, leaving what is in force untouched. */
  async setRequestedRegistration(clientId: string, registration: SepRegistration | null, trx: Queryable): Promise<void> {
    await trx('sep').where({ client_id: clientId }).update({ requested_registration: registration === null ? null : JSON.stringify(registration), updated_at: Date.now() });
  }

  async updateTechnicalSettings(clientId: string, settings: TechnicalSettings, trx: Queryable): Promise<void> {
    await trx('sep')
      .where({ client_id: clientId })
      .update({
        redirect_uris: JSON.stringify(settings.redirectUris),
        post_logout_redirect_uris: JSON.stringify(settings.postLogoutRedirectUris),
        frontchannel_logout_uri: settings.frontchannelLogoutUri,
        token_endpoint_auth_method: settings.tokenEndpointAuthMethod,
        jwks: settings.jwks === null ? null : JSON.stringify(settings.jwks),
        jwks_uri: settings.jwksUri,
        id_token_encrypted_response_alg: settings.idTokenEncryption?.alg ?? null,
        id_token_encrypted_response_enc: settings.idTokenEncryption?.enc ?? null,
        id_token_signed_response_alg: settings.idTokenSignedResponseAlg,
        updated_at: Date.now(),
      });
  }

  /** A new client secret; the old one stops working at once. */
  async rotateSecret(clientId: string, trx: Queryable = this.db): Promise<string | undefined> {
    const clientSecret = newSecret();
    const count = await trx('sep').where({ client_id: clientId }).update({ client_secret: clientSecret, updated_at: Date.now() });
    return count === 1 ? clientSecret : undefined;
  }

  async setSecret(clientId: string, clientSecret: string, trx: Queryable): Promise<void> {
    await trx('sep').where({ client_id: clientId }).update({ client_secret: clientSecret, updated_at: Date.now() });
  }

  /**
   * Every SeP group where a citizen's pseudonyms can be: a group with a SeP that is or was allowed
   * to log people in (active or disabled; a pending SeP never issued anything). Only an
   * administrator's act makes a group count here, not a registration.
   */
  async listGroups(): Promise<string[]> {
    const rows = (await this.db('sep').whereIn('status', ['active', 'disabled']).distinct('sep_group').orderBy('sep_group')) as Array<{ sep_group: string }>;
    return rows.map((row) => row.sep_group);
  }

  async find(clientId: string, trx: Queryable = this.db): Promise<Sep | undefined> {
    const row = await this.row(clientId, trx);
    return row ? fromRow(row) : undefined;
  }

  /**
   * The SeP as this request already read it, else as `trx` sees it: for a record written inside a
   * transaction of a request that has checked the SeP before.
   */
  async findAsReadIn(clientId: string, trx: Queryable): Promise<Sep | undefined> {
    const row = await rememberedOr('sep', clientId, () => this.row(clientId, trx));
    return row ? fromRow(row) : undefined;
  }

  /**
   * A SeP read to change it in this transaction: on PostgreSQL its row stays locked until the
   * transaction ends, so a decision and a SeP's own update never act on each other's stale read
   * (an approval always puts in force exactly the version it checked). SQLite runs one writer at a time.
   */
  async findForChange(clientId: string, trx: Queryable): Promise<{ sep: Sep; clientSecret: string | null } | undefined> {
    const query = trx('sep').where({ client_id: clientId }).first();
    if (isPostgres(trx)) query.forUpdate();
    const row = (await query) as SepRow | undefined;
    return row ? { sep: fromRow(row), clientSecret: row.client_secret } : undefined;
  }

  /** The secret oidc-provider compares at the token endpoint. */
  async findWithSecret(clientId: string, trx: Queryable = this.db): Promise<{ sep: Sep; clientSecret: string | null } | undefined> {
    const row = await this.row(clientId, trx);
    return row ? { sep: fromRow(row), clientSecret: row.client_secret } : undefined;
  }

  /** A SeP's row; read once per request outside transactions (rememberedRead), each time inside one. */
  private row(clientId: string, trx: Queryable): Promise<SepRow | undefined> {
    const read = () => trx('sep').where({ client_id: clientId }).first() as Promise<SepRow | undefined>;
    return trx === this.db ? rememberedRead('sep', clientId, read) : read();
  }

  async list(filter: { status?: SepStatus; changePending?: boolean } = {}): Promise<Sep[]> {
    const query = this.db('sep').orderBy('created_at', 'asc');
    if (filter.status) query.where({ status: filter.status });
    if (filter.changePending) query.whereNotNull('requested_registration');
    const rows = (await query) as SepRow[];
    return rows.map(fromRow);
  }

  async listGroup(group: string, trx: Queryable = this.db): Promise<Sep[]> {
    const rows = (await trx('sep').where({ sep_group: group }).orderBy('created_at', 'asc')) as SepRow[];
    return rows.map(fromRow);
  }

  /** The organisation that owns a SeP group, if an administrator has established one. */
  async groupOwner(group: string, trx: Queryable = this.db): Promise<GroupOwner | undefined> {
    const row = (await trx('sep_group_owner').where({ sep_group: group }).first()) as
      | { sep_group: string; organisation_id: string; organisation_name: string; established_by: string; established_at: number }
      | undefined;
    return row ? { group: row.sep_group, organisation: { id: row.organisation_id, name: row.organisation_name }, establishedBy: row.established_by, establishedAt: Number(row.established_at) } : undefined;
  }

  /**
   * Records the owner of a group that has none yet (an administrator's act) and returns the owner
   * that stands: when two approvals race for a new group, the first one wins and the second sees it.
   */
  async establishGroupOwner(group: string, organisation: { id: string; name: string }, actor: string, trx: Queryable): Promise<GroupOwner> {
    await trx('sep_group_owner')
      .insert({ sep_group: group, organisation_id: organisation.id, organisation_name: organisation.name, established_by: actor.slice(0, 200), established_at: Date.now() })
      .onConflict('sep_group')
      .ignore();
    return (await this.groupOwner(group, trx))!;
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
