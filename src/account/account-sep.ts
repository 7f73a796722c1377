import type { SepEnvironment } from '../domain/sep-environment.ts';
import { ensureOwnSep } from '../sep/own-sep.ts';
import type { SepRegistration } from '../sep/sep-registration.ts';
import type { SepStore } from '../sep/sep-store.ts';

/**
 * "My account" is a SeP of Brána itself: the citizen logs in to it through the same journey as to
 * any service, with any means. Its own SeP group makes its pseudonym link to nothing else, and it
 * asks for no attributes, so no consent is needed to open it.
 */
export const ACCOUNT_CLIENT_ID = 'brana-account';
export const ACCOUNT_GROUP = 'brana-account';

export function accountCallbackUrl(publicUrl: URL): string {
  return new URL('/account/callback', publicUrl).href;
}

export function accountSepDocument(publicUrl: URL, environment: SepEnvironment) {
  return {
    clientId: ACCOUNT_CLIENT_ID,
    environment,
    name: { cs: 'Brána – Můj účet', en: 'Brána – My account' },
    // The operator of the national point is DIA; an operator of another Brána puts its own here.
    organisation: { id: '17651921', name: 'Provozovatel Brány' },
    description: 'Přehled přihlášení a trvalých souhlasů občana; součást Brány.',
    infoUrl: new URL('/account', publicUrl).href.replace(/^http:/, 'https:'),
    group: ACCOUNT_GROUP,
    spType: 'public' as const,
    legalBasis: null,
    // The history tells which services a person uses: it needs the level of assurance of personal data.
    minimumLoa: 'substantial' as const,
    allowedAttributes: [],
    allowedMeans: null,
    // Foreign persons (eIDAS) have logins and consents of their own to see.
    eidasEnabled: true,
    redirectUris: [accountCallbackUrl(publicUrl)],
    postLogoutRedirectUris: [],
    tokenEndpointAuthMethod: 'client_secret_basic' as const,
    jwksUri: null,
    idTokenEncryption: null,
  };
}

/** Registers the account SeP on the first start, and brings it back to this definition. */
export async function ensureAccountSep(registration: SepRegistration, seps: SepStore, publicUrl: URL, environment: SepEnvironment): Promise<void> {
  await ensureOwnSep(registration, seps, accountSepDocument(publicUrl, environment));
}
