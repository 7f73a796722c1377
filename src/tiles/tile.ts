import { z } from 'zod';
import { returnUrl } from '../sep/sep.ts';
import type { LogoType } from './logo.ts';
import { MAX_LOGO_BYTES } from './logo.ts';

/** A tile (dlaždice) on the Citizen Portal: how a municipal portal is listed there. */
export interface Tile {
  id: number;
  sepId: string;
  status: TileStatus;
  name: { cs: string; en: string };
  description: { cs: string; en: string };
  link: string;
  portalUrl: string;
  logoType: LogoType;
  logoSha256: string;
  servesPrivateContent: boolean;
  loginWithoutFurtherRegistration: boolean;
  /** Logins completed through Brána when the tile was requested: the portal is connected. */
  completedLogins: number;
  requestedAt: number;
  decidedAt: number | null;
  decidedBy: string | null;
  decisionReason: string | null;
}

/** pending → approved (published) or rejected; approved → withdrawn; a newer request supersedes. */
export type TileStatus = 'pending' | 'approved' | 'rejected' | 'withdrawn' | 'superseded';

/**
 * A SeP's tile request. The four conditions of the Citizen Portal are part of it: its own portal
 * (a URL), connected through Brána (checked from the assertion log), private content for the
 * logged-in citizen and login without any further registration (both declared).
 */
export function tileRequestSchema(allowLoopbackHttp: boolean) {
  const text = (max: number) => z.string().trim().min(1).max(max);
  return z
    .object({
      name: z.object({ cs: text(100), en: text(100) }).strict(),
      description: z.object({ cs: text(500), en: text(500) }).strict(),
      link: returnUrl(allowLoopbackHttp),
      logo: z
        .string()
        .max(Math.ceil((MAX_LOGO_BYTES * 4) / 3) + 4, `must be at most ${MAX_LOGO_BYTES / 1024} KiB`)
        .regex(/^[A-Za-z0-9+/]+={0,2}$/, 'must be the image in base64'),
      conditions: z
        .object({
          ownPortalUrl: returnUrl(allowLoopbackHttp),
          servesPrivateContent: z.literal(true, 'the Citizen Portal lists only portals that serve private content to the logged-in citizen'),
          loginWithoutFurtherRegistration: z.literal(true, 'the Citizen Portal lists only portals that need no further registration after the login'),
        })
        .strict(),
    })
    .strict();
}

export type TileRequest = z.output<ReturnType<typeof tileRequestSchema>>;

/** The site a URL belongs to, as far as Brána can tell without a public-suffix list: the last two labels. */
export function siteOf(url: string): string {
  const host = new URL(url).hostname;
  if (/^[\d.]+$/.test(host) || host.startsWith('[')) return host;
  return host.split('.').slice(-2).join('.');
}
