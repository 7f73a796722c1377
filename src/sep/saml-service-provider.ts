import type { Queryable } from '../store/database.ts';

export const BINDING_REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
export const BINDING_POST = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';

/** One AssertionConsumerService of a SAML SeP: Brána posts Responses only to these. */
export interface AssertionConsumerService {
  index: number;
  url: string;
  binding: typeof BINDING_POST;
  isDefault: boolean;
}

/** What Brána takes from a SAML SeP's SP metadata (the parts of the registration a SAML SeP adds). */
export interface SamlServiceProvider {
  entityId: string;
  assertionConsumerServices: AssertionConsumerService[];
  /** Certificates the SeP signs AuthnRequests with: several during a rollover. */
  signingCertificates: string[];
  /** The certificate Brána encrypts assertions to; null only if the SeP registered without encryption. */
  encryptionCertificate: string | null;
  /**
   * The data encryption of its Assertions (an XML Encryption URI): AES-256-GCM unless the SeP's
   * metadata lists only others (`md:EncryptionMethod`: NIA's AES-256-CBC for software without GCM).
   */
  assertionEncryption?: string;
  singleLogout: { url: string; binding: string } | null;
  /** The SP asks for signed assertions (Brána signs them anyway). */
  wantAssertionsSigned: boolean;
}

/** The SP metadata of one SAML SeP, as registered. */
export interface SamlSepRecord {
  clientId: string;
  serviceProvider: SamlServiceProvider;
  metadataXml: string;
  metadataSource: string;
  updatedAt: number;
}

interface SamlSepRow {
  client_id: string;
  entity_id: string;
  service_provider: string;
  metadata_xml: string;
  metadata_source: string;
  updated_at: number;
}

function fromRow(row: SamlSepRow): SamlSepRecord {
  return {
    clientId: row.client_id,
    serviceProvider: JSON.parse(row.service_provider) as SamlServiceProvider,
    metadataXml: row.metadata_xml,
    metadataSource: row.metadata_source,
    updatedAt: Number(row.updated_at),
  };
}

export class EntityIdTaken extends Error {}

/** The SP metadata of SAML SePs, on knex: the only module that reads or writes `sep_saml`. */
export class SamlSepStore {
  private readonly db: Queryable;

  constructor(db: Queryable) {
    this.db = db;
  }

  async save(clientId: string, serviceProvider: SamlServiceProvider, metadata: { xml: string; source: string }, trx: Queryable = this.db): Promise<void> {
    const taken = (await trx('sep_saml').where({ entity_id: serviceProvider.entityId }).first('client_id')) as { client_id: string } | undefined;
    if (taken && taken.client_id !== clientId) throw new EntityIdTaken(`entity id ${serviceProvider.entityId} is registered for SeP ${taken.client_id}`);
    const row: SamlSepRow = {
      client_id: clientId,
      entity_id: serviceProvider.entityId,
      service_provider: JSON.stringify(serviceProvider),
      metadata_xml: metadata.xml,
      metadata_source: metadata.source.slice(0, 2000),
      updated_at: Date.now(),
    };
    await trx('sep_saml').insert(row).onConflict('client_id').merge();
  }

  async find(clientId: string, trx: Queryable = this.db): Promise<SamlSepRecord | undefined> {
    const row = (await trx('sep_saml').where({ client_id: clientId }).first()) as SamlSepRow | undefined;
    return row ? fromRow(row) : undefined;
  }

  async findByEntityId(entityId: string, trx: Queryable = this.db): Promise<SamlSepRecord | undefined> {
    const row = (await trx('sep_saml').where({ entity_id: entityId }).first()) as SamlSepRow | undefined;
    return row ? fromRow(row) : undefined;
  }
}
