import type { Database, Queryable } from '../store/database.ts';
import type { LogoType } from './logo.ts';
import type { Tile, TileStatus } from './tile.ts';

interface Row {
  id: number;
  sep_id: string;
  status: string;
  name_cs: string;
  name_en: string;
  description_cs: string;
  description_en: string;
  link_url: string;
  portal_url: string;
  logo?: Buffer;
  logo_type: string;
  logo_sha256: string;
  private_content: boolean | number;
  no_further_registration: boolean | number;
  completed_logins: number;
  requested_at: number;
  decided_at: number | null;
  decided_by: string | null;
  decision_reason: string | null;
}

const COLUMNS = ['id', 'sep_id', 'status', 'name_cs', 'name_en', 'description_cs', 'description_en', 'link_url', 'portal_url', 'logo_type', 'logo_sha256', 'private_content', 'no_further_registration', 'completed_logins', 'requested_at', 'decided_at', 'decided_by', 'decision_reason'];

function fromRow(row: Row): Tile {
  return {
    id: Number(row.id),
    sepId: row.sep_id,
    status: row.status as TileStatus,
    name: { cs: row.name_cs, en: row.name_en },
    description: { cs: row.description_cs, en: row.description_en },
    link: row.link_url,
    portalUrl: row.portal_url,
    logoType: row.logo_type as LogoType,
    logoSha256: row.logo_sha256,
    servesPrivateContent: Boolean(row.private_content),
    loginWithoutFurtherRegistration: Boolean(row.no_further_registration),
    completedLogins: Number(row.completed_logins),
    requestedAt: Number(row.requested_at),
    decidedAt: row.decided_at === null ? null : Number(row.decided_at),
    decidedBy: row.decided_by,
    decisionReason: row.decision_reason,
  };
}

export type NewTile = Omit<Tile, 'id' | 'status' | 'decidedAt' | 'decidedBy' | 'decisionReason'> & { logo: Buffer };

/** The tiles, on knex. The only module that reads or writes the `tile` table. */
export class TileStore {
  private readonly db: Database;

  constructor(db: Database) {
    this.db = db;
  }

  async insert(tile: NewTile, trx: Queryable): Promise<number> {
    const [inserted] = (await trx('tile')
      .insert({
        sep_id: tile.sepId,
        status: 'pending',
        name_cs: tile.name.cs,
        name_en: tile.name.en,
        description_cs: tile.description.cs,
        description_en: tile.description.en,
        link_url: tile.link,
        portal_url: tile.portalUrl,
        logo: tile.logo,
        logo_type: tile.logoType,
        logo_sha256: tile.logoSha256,
        private_content: tile.servesPrivateContent,
        no_further_registration: tile.loginWithoutFurtherRegistration,
        completed_logins: tile.completedLogins,
        requested_at: tile.requestedAt,
      })
      .returning('id')) as Array<{ id: number } | number>;
    return typeof inserted === 'object' ? Number(inserted.id) : Number(inserted);
  }

  async find(id: number, trx: Queryable = this.db): Promise<Tile | undefined> {
    const row = (await trx('tile').where({ id }).first(COLUMNS)) as Row | undefined;
    return row ? fromRow(row) : undefined;
  }

  /** A tile's logo; with `publishedOnly`, only while the tile is on the catalogue. */
  async logo(id: number, publishedOnly = false): Promise<{ bytes: Buffer; type: LogoType; sha256: string } | undefined> {
    const query = this.db('tile').where({ 'tile.id': id });
    if (publishedOnly) query.join('sep', 'sep.client_id', 'tile.sep_id').where({ 'tile.status': 'approved', 'sep.status': 'active' });
    const row = (await query.first('tile.logo', 'tile.logo_type', 'tile.logo_sha256')) as { logo: Buffer; logo_type: string; logo_sha256: string } | undefined;
    return row ? { bytes: Buffer.from(row.logo), type: row.logo_type as LogoType, sha256: row.logo_sha256 } : undefined;
  }

  async list(filter: { status?: TileStatus; sepId?: string } = {}, trx: Queryable = this.db): Promise<Tile[]> {
    const query = trx('tile').select(COLUMNS).orderBy('id', 'asc');
    if (filter.status) query.where({ status: filter.status });
    if (filter.sepId) query.where({ sep_id: filter.sepId });
    return ((await query) as Row[]).map(fromRow);
  }

  /** Approved tiles of active SePs: what the Citizen Portal shows. */
  async published(): Promise<Array<Tile & { organisation: { id: string; name: string } }>> {
    const rows = (await this.db('tile')
      .join('sep', 'sep.client_id', 'tile.sep_id')
      .where({ 'tile.status': 'approved', 'sep.status': 'active' })
      .orderBy('tile.name_cs', 'asc')
      .select([...COLUMNS.map((column) => `tile.${column}`), 'sep.organisation_id', 'sep.organisation_name'])) as Array<Row & { organisation_id: string; organisation_name: string }>;
    return rows.map((row) => ({ ...fromRow(row), organisation: { id: row.organisation_id, name: row.organisation_name } }));
  }

  async setStatus(id: number, status: TileStatus, decision: { by: string; reason: string | null } | null, trx: Queryable): Promise<void> {
    await trx('tile')
      .where({ id })
      .update({ status, ...(decision ? { decided_at: Date.now(), decided_by: decision.by, decision_reason: decision.reason } : {}) });
  }

  /** Marks this SeP's tiles of one status as superseded by a newer one; returns their ids. */
  async supersede(sepId: string, status: TileStatus, trx: Queryable): Promise<number[]> {
    const ids = ((await trx('tile').where({ sep_id: sepId, status }).select('id')) as Array<{ id: number }>).map((row) => Number(row.id));
    if (ids.length) await trx('tile').whereIn('id', ids).update({ status: 'superseded' });
    return ids;
  }
}
