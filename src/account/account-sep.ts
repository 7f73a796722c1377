import type { SepEnvironment } from '../domain/sep-environment.ts';
import { changedFields, type SepRegistration } from '../sep/sep-registration.ts';
import { SepAlreadyRegistered, type SepStore } from '../sep/sep-store.ts';
import { registrationOf } from '../sep/sep.ts';

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

/** Registers the account SeP on the first start, and brings it back to this definition (a changed public URL, environment, release). */
export async function ensureAccountSep(registration: SepRegistration, seps: SepStore, publicUrl: URL, environment: SepEnvironment): Promise<void> {
  const desk = registration.forBrana();
  const wanted = accountSepDocument(publicUrl, environment);
  const current = await seps.find(ACCOUNT_CLIENT_ID);
  if (!current) {
    try {
      await desk.register(wanted, 'active', 'brana');
    } catch (err) {
      // Another node of the cluster registered it at the same moment.
      if (!(err instanceof SepAlreadyRegistered) && !(await seps.find(ACCOUNT_CLIENT_ID))) throw err;
    }
    return;
  }
  // An administrator may have disabled it on purpose: its status is left alone.
  if (changedFields(registrationOf(current), desk.validate(wanted)).length) await desk.replaceByOperator(ACCOUNT_CLIENT_ID, wanted, 'brana');
}
