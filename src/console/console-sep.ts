import type { SepEnvironment } from '../domain/sep-environment.ts';
import { ensureOwnSep } from '../sep/own-sep.ts';
import type { SepRegistration } from '../sep/sep-registration.ts';
import type { SepStore } from '../sep/sep-store.ts';

/**
 * The consoles for auditors, administrators and operators are a SeP of Brána itself, like My
 * account: staff sign in through the same journey as any citizen, with a means at LoA high. Its
 * own SeP group makes the staff member's pseudonym link to nothing else.
 */
export const CONSOLE_CLIENT_ID = 'brana-console';
export const CONSOLE_GROUP = 'brana-console';

export function consoleCallbackUrl(publicUrl: URL): string {
  return new URL('/console/callback', publicUrl).href;
}

export function consoleSepDocument(publicUrl: URL, environment: SepEnvironment) {
  return {
    clientId: CONSOLE_CLIENT_ID,
    environment,
    name: { cs: 'Brána – konzole správy a auditu', en: 'Brána – administration and audit console' },
    organisation: { id: '17651921', name: 'Provozovatel Brány' },
    description: 'Konzole auditorů, správců a provozovatelů Brány; součást Brány.',
    infoUrl: new URL('/console', publicUrl).href.replace(/^http:/, 'https:'),
    group: CONSOLE_GROUP,
    spType: 'public' as const,
    legalBasis: null,
    // The log shows who received whose data: only a means of the highest level opens it.
    minimumLoa: 'high' as const,
    allowedAttributes: [],
    allowedMeans: null,
    // Staff are in the Czech population register: a role is granted to a register id.
    eidasEnabled: false,
    redirectUris: [consoleCallbackUrl(publicUrl)],
    postLogoutRedirectUris: [],
    tokenEndpointAuthMethod: 'client_secret_basic' as const,
    jwksUri: null,
    idTokenEncryption: null,
  };
}

/** Registers the console SeP on the first start, and brings it back to this definition. */
export async function ensureConsoleSep(registration: SepRegistration, seps: SepStore, publicUrl: URL, environment: SepEnvironment): Promise<void> {
  await ensureOwnSep(registration, seps, consoleSepDocument(publicUrl, environment));
}
