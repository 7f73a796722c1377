import { createHash } from 'node:crypto';
import type { AssertionLog } from '../audit/assertion-log.ts';
import { tileApproved, tileRejected, tileRequested } from '../audit/audit-events.ts';
import { describeIssues } from '../config/configuration-error.ts';
import type { SepStore } from '../sep/sep-store.ts';
import type { Database } from '../store/database.ts';
import { LogoRejected, inspectLogo } from './logo.ts';
import { siteOf, tileRequestSchema, type Tile } from './tile.ts';
import type { TileStore } from './tile-store.ts';

/** A tile request refused for its content; `problems` name each field. */
export class TileRejected extends Error {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(problems.join('; '));
    this.problems = problems;
  }
}

/** A tile request or decision that the SeP's or the tile's state does not allow. */
export class TileNotAllowed extends Error {
  readonly code: 'unapproved_sep' | 'not_found' | 'nothing_to_decide';

  constructor(code: 'unapproved_sep' | 'not_found' | 'nothing_to_decide', message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * Tiles for the Citizen Portal: an approved SeP requests one, Brána checks the conditions a machine
 * can check, an administrator decides, and approved tiles of active SePs are published. Every
 * request and decision is an administrative event in the assertion log.
 */
export class TileRequests {
  private readonly db: Database;
  private readonly tiles: TileStore;
  private readonly seps: SepStore;
  private readonly log: AssertionLog;
  private readonly allowLoopbackHttp: boolean;

  constructor(options: { db: Database; tiles: TileStore; seps: SepStore; log: AssertionLog; allowLoopbackHttp: boolean }) {
    this.db = options.db;
    this.tiles = options.tiles;
    this.seps = options.seps;
    this.log = options.log;
    this.allowLoopbackHttp = options.allowLoopbackHttp;
  }

  async request(sepId: string, body: unknown, actor: string): Promise<Tile> {
    const sep = await this.seps.find(sepId);
    if (!sep || sep.status !== 'active') throw new TileNotAllowed('unapproved_sep', 'the SeP registration is not approved: a tile can be requested once an administrator has approved it');
    const parsed = tileRequestSchema(this.allowLoopbackHttp).safeParse(body);
    if (!parsed.success) throw new TileRejected(describeIssues(parsed.error.issues));
    const request = parsed.data;
    const problems: string[] = [];

    // Its own portal: on the site the SeP's return URLs are on, and the tile links there.
    const sites = new Set(sep.redirectUris.map(siteOf));
    if (!sites.has(siteOf(request.conditions.ownPortalUrl))) problems.push(`conditions.ownPortalUrl: is not on the site of the SeP's return URLs (${[...sites].join(', ')})`);
    if (siteOf(request.link) !== siteOf(request.conditions.ownPortalUrl)) problems.push('link: must lead to the portal named in conditions.ownPortalUrl');
    // Connected through the broker: citizens have completed logins to it through Brána.
    const completedLogins = await this.log.count({ sepId, event: 'token_issued', outcome: 'success' });
    if (completedLogins === 0) problems.push('conditions: the portal has no completed login through Brána yet; a tile is for a portal connected through the broker');
    const logo = Buffer.from(request.logo, 'base64');
    let logoType;
    try {
      logoType = inspectLogo(logo).type;
    } catch (err) {
      if (!(err instanceof LogoRejected)) throw err;
      problems.push(`logo: ${err.message}`);
    }
    if (problems.length || !logoType) throw new TileRejected(problems);

    const logoSha256 = createHash('sha256').update(logo).digest('hex');
    return this.db.transaction(async (trx) => {
      const superseded = await this.tiles.supersede(sepId, 'pending', trx);
      const id = await this.tiles.insert(
        {
          sepId,
          name: request.name,
          description: request.description,
          link: request.link,
          portalUrl: request.conditions.ownPortalUrl,
          logo,
          logoType,
          logoSha256,
          servesPrivateContent: request.conditions.servesPrivateContent,
          loginWithoutFurtherRegistration: request.conditions.loginWithoutFurtherRegistration,
          completedLogins,
          requestedAt: Date.now(),
        },
        trx,
      );
      await this.log.append(
        tileRequested({ actor, sepId, tileId: id, supersedes: superseded, completedLogins, portalUrl: request.conditions.ownPortalUrl, link: request.link, logoSha256, logoType }),
        trx,
      );
      return (await this.tiles.find(id, trx))!;
    });
  }

  async approve(id: number, actor: string): Promise<Tile> {
    return this.db.transaction(async (trx) => {
      const tile = await this.tiles.find(id, trx);
      if (!tile) throw new TileNotAllowed('not_found', `no tile ${id}`);
      if (tile.status !== 'pending') throw new TileNotAllowed('nothing_to_decide', `tile ${id} is ${tile.status}, not waiting for approval`);
      const sep = await this.seps.find(tile.sepId, trx);
      if (!sep || sep.status !== 'active') throw new TileNotAllowed('unapproved_sep', `the SeP ${tile.sepId} of tile ${id} is not active`);
      const replaced = await this.tiles.supersede(tile.sepId, 'approved', trx);
      await this.tiles.setStatus(id, 'approved', { by: actor, reason: null }, trx);
      await this.log.append(tileApproved({ actor, sepId: tile.sepId, tileId: id, replaces: replaced, logoSha256: tile.logoSha256 }), trx);
      return (await this.tiles.find(id, trx))!;
    });
  }

  /** Refuses a pending tile, or withdraws a published one. */
  async reject(id: number, actor: string, reason: string): Promise<Tile> {
    return this.db.transaction(async (trx) => {
      const tile = await this.tiles.find(id, trx);
      if (!tile) throw new TileNotAllowed('not_found', `no tile ${id}`);
      if (tile.status !== 'pending' && tile.status !== 'approved') throw new TileNotAllowed('nothing_to_decide', `tile ${id} is ${tile.status}`);
      const status = tile.status === 'pending' ? 'rejected' : 'withdrawn';
      await this.tiles.setStatus(id, status, { by: actor, reason }, trx);
      await this.log.append(tileRejected({ actor, sepId: tile.sepId, tileId: id, from: tile.status, to: status, reason }), trx);
      return (await this.tiles.find(id, trx))!;
    });
  }
}
