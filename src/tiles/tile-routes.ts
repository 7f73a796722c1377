import express, { type Request, type Response, type Router } from 'express';
import { isLocale, type Locale } from '../pages/i18n.ts';
import { localeOf, renderTemplate } from '../pages/render.ts';
import { SepRequestError } from '../sep/sep-self-service-routes.ts';
import type { Tile } from './tile.ts';
import { TileNotAllowed, TileRejected, type TileRequests } from './tile-requests.ts';
import type { TileStore } from './tile-store.ts';

export interface TileDependencies {
  tiles: TileStore;
  tileRequests: TileRequests;
  publicUrl: URL;
  development: boolean;
}

function describeTile(tile: Tile): Record<string, unknown> {
  return {
    id: tile.id,
    status: tile.status,
    name: tile.name,
    description: tile.description,
    link: tile.link,
    conditions: {
      ownPortalUrl: tile.portalUrl,
      connectedThroughBroker: { completedLogins: tile.completedLogins },
      servesPrivateContent: tile.servesPrivateContent,
      loginWithoutFurtherRegistration: tile.loginWithoutFurtherRegistration,
    },
    logo: { type: tile.logoType, sha256: tile.logoSha256 },
    requestedAt: new Date(tile.requestedAt).toISOString(),
    decidedAt: tile.decidedAt === null ? null : new Date(tile.decidedAt).toISOString(),
    decisionReason: tile.decisionReason,
  };
}

/** A SeP's tile requests, mounted among its self-service routes (registration access token). */
export function sepTileRoutes(deps: TileDependencies) {
  return (router: Router, authenticate: (req: Request) => Promise<string>) => {
    const json = express.json({ limit: '512kb' });
    router.put('/:clientId/tile', json, async (req, res, next) => {
      try {
        const sepId = await authenticate(req);
        const tile = await deps.tileRequests.request(sepId, req.body, 'self-service (registration API)');
        res.status(201).json(describeTile(tile));
      } catch (err) {
        if (err instanceof TileRejected) next(new SepRequestError(400, 'invalid_tile', 'the tile request breaks the rules', err.problems));
        else if (err instanceof TileNotAllowed) next(new SepRequestError(err.code === 'unapproved_sep' ? 403 : 400, err.code, err.message));
        else next(err);
      }
    });
    router.get('/:clientId/tile', async (req, res, next) => {
      try {
        const sepId = await authenticate(req);
        res.json((await deps.tiles.list({ sepId })).map(describeTile));
      } catch (err) {
        next(err);
      }
    });
  };
}

/**
 * The published catalogue of tiles: JSON for the Citizen Portal (`/tiles.json`), an HTML page it
 * can embed in a frame (`/tiles`), and each tile's logo. All public, for any origin.
 */
export function tileCatalogueRoutes(deps: TileDependencies): Router {
  const router = express.Router();
  const logoUrl = (tile: Tile) => new URL(`/tiles/${tile.id}/logo`, deps.publicUrl).href;

  const shareable = (res: Response) => {
    res.set('Access-Control-Allow-Origin', '*');
    res.set('Cross-Origin-Resource-Policy', 'cross-origin');
  };

  router.get('/tiles.json', async (_req, res, next) => {
    try {
      const published = await deps.tiles.published();
      shareable(res);
      res.set('Cache-Control', 'public, max-age=300').json({
        generatedAt: new Date().toISOString(),
        tiles: published.map((tile) => ({
          id: tile.id,
          sepId: tile.sepId,
          organisation: tile.organisation,
          name: tile.name,
          description: tile.description,
          link: tile.link,
          logo: { url: logoUrl(tile), type: tile.logoType, sha256: tile.logoSha256 },
          approvedAt: tile.decidedAt === null ? null : new Date(tile.decidedAt).toISOString(),
        })),
      });
    } catch (err) {
      next(err);
    }
  });

  router.get('/tiles', async (req: Request, res: Response, next) => {
    try {
      const locale: Locale = isLocale(req.query.lang) ? req.query.lang : localeOf(req);
      const published = await deps.tiles.published();
      // Only links and images: the Citizen Portal may frame it (any https site; loopback in development).
      const ancestors = deps.development ? "https: http://localhost:* http://127.0.0.1:*" : 'https:';
      res.removeHeader('X-Frame-Options');
      res.set('Content-Security-Policy', `default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors ${ancestors}`);
      res.set('Cache-Control', 'public, max-age=300');
      res.type('html').send(
        renderTemplate('tiles', locale, {
          title: locale === 'cs' ? 'Portály obcí na Portálu občana' : 'Municipal portals on the Citizen Portal',
          tiles: published.map((tile) => ({ name: tile.name[locale], description: tile.description[locale], link: tile.link, logo: `/tiles/${tile.id}/logo`, organisation: tile.organisation.name })),
        }),
      );
    } catch (err) {
      next(err);
    }
  });

  router.get('/tiles/:id/logo', async (req, res, next) => {
    try {
      const id = /^\d{1,12}$/.test(String(req.params.id)) ? Number(req.params.id) : NaN;
      const logo = Number.isNaN(id) ? undefined : await deps.tiles.logo(id, true);
      if (!logo) {
        res.status(404).end();
        return;
      }
      shareable(res);
      res.set('Content-Security-Policy', "default-src 'none'; sandbox");
      res.set('Cache-Control', 'public, max-age=3600').set('ETag', `"${logo.sha256}"`).type(logo.type).send(logo.bytes);
    } catch (err) {
      next(err);
    }
  });

  return router;
}
