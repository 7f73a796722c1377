import type { AssertionLog } from '../audit/assertion-log.ts';
import { logoutPropagated } from '../audit/audit-events.ts';
import { escapeXml } from '../domain/xml-escape.ts';
import type { KeyPairWithCertificate } from '../keys/certificate.ts';
import type { Pseudonyms } from '../pseudonym/pseudonym.ts';
import { BINDING_REDIRECT, SamlSepStore } from '../sep/saml-service-provider.ts';
import type { SepStore } from '../sep/sep-store.ts';
import type { Sep } from '../sep/sep.ts';
import type { Database } from '../store/database.ts';
import { participantsOf, type SamlParticipation, type Session } from './brana-session.ts';
import { signedRedirectQuery } from './saml-bindings.ts';
import { samlId, samlInstant } from './xml-signing.ts';

const NAMEID_FORMATS = {
  persistent: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
  transient: 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient',
} as const;

/** One SeP told of the logout: the page loads `url` in a hidden frame. */
export interface LogoutFrame {
  sepId: string;
  url: string;
}

export interface SessionLogoutDependencies {
  db: Database;
  seps: SepStore;
  log: AssertionLog;
  pseudonyms: Pseudonyms;
  idpEntityId: string;
  /** Brána's OpenID issuer: the `iss` of a front-channel logout. */
  issuer: string;
  signing: KeyPairWithCertificate;
}

/** Brána's LogoutRequest to a SAML SeP (HTTP-Redirect: the query signature covers it). */
export function logoutRequestXml(r: { idpEntityId: string; destination: string; participation: SamlParticipation }, now = Date.now()): string {
  return (
    `<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${samlId()}" Version="2.0" IssueInstant="${samlInstant(now)}" Destination="${escapeXml(r.destination)}" NotOnOrAfter="${samlInstant(now + 10 * 60_000)}">` +
    `<saml:Issuer>${escapeXml(r.idpEntityId)}</saml:Issuer>` +
    `<saml:NameID Format="${NAMEID_FORMATS[r.participation.nameIdFormat]}">${escapeXml(r.participation.nameId)}</saml:NameID>` +
    `<samlp:SessionIndex>${escapeXml(r.participation.sessionIndex)}</samlp:SessionIndex>` +
    `</samlp:LogoutRequest>`
  );
}

/**
 * The end of a citizen's Brána session for its other SePs, whichever SeP or protocol began it, all
 * front-channel (the browser loads each in a hidden frame), each told SeP a `logout` record: a SAML
 * SeP with an HTTP-Redirect SingleLogoutService gets a signed LogoutRequest; an OIDC SeP that
 * registered a `frontchannel_logout_uri` gets it with `iss` and its `sid` (OpenID Connect
 * Front-Channel Logout 1.0). Any other SeP cannot be told; its tokens expire (10 minutes).
 */
export class SessionLogout {
  private readonly deps: SessionLogoutDependencies;
  private readonly samlSeps: SamlSepStore;

  constructor(deps: SessionLogoutDependencies) {
    this.deps = deps;
    this.samlSeps = new SamlSepStore(deps.db);
  }

  /** The frames that tell the session's SePs other than `initiator`, with their log records written. */
  async tell(session: Session, initiator: string | null): Promise<LogoutFrame[]> {
    const { deps } = this;
    const frames: LogoutFrame[] = [];
    for (const participant of participantsOf(session)) {
      if (participant.sepId === initiator) continue;
      const sep = await deps.seps.find(participant.sepId);
      if (!sep || sep.status !== 'active') continue;
      const url = participant.saml ? await this.samlLogoutUrl(sep.clientId, participant.saml) : this.frontChannelUrl(sep, session.authorizationFor(sep.clientId).sid);
      if (!url) continue;
      frames.push({ sepId: sep.clientId, url });
      const pseudonym = session.accountId ? deps.pseudonyms.forGroup(session.accountId, sep.group) : null;
      await deps.log.append(logoutPropagated({ sepId: sep.clientId, pseudonym, protocol: participant.saml ? 'saml' : 'oidc', initiatedBy: initiator }));
    }
    return frames;
  }

  private async samlLogoutUrl(sepId: string, participation: SamlParticipation): Promise<string | undefined> {
    const singleLogout = (await this.samlSeps.find(sepId))?.serviceProvider.singleLogout;
    if (singleLogout?.binding !== BINDING_REDIRECT) return undefined;
    const query = signedRedirectQuery('SAMLRequest', logoutRequestXml({ idpEntityId: this.deps.idpEntityId, destination: singleLogout.url, participation }), null, this.deps.signing.privateKeyPem);
    return `${singleLogout.url}${singleLogout.url.includes('?') ? '&' : '?'}${query}`;
  }

  private frontChannelUrl(sep: Sep, sid: string | undefined): string | undefined {
    if (sep.protocol !== 'oidc' || !sep.frontchannelLogoutUri || !sid) return undefined;
    const url = new URL(sep.frontchannelLogoutUri);
    url.searchParams.set('iss', this.deps.issuer);
    url.searchParams.set('sid', sid);
    return url.href;
  }
}

/**
 * The page's Content-Security-Policy with the frames' origins allowed (and only on this page): the
 * rest of the policy as the app set it.
 */
export function policyWithFrames(policy: string | undefined, frames: readonly LogoutFrame[]): string {
  const origins = [...new Set(frames.map((frame) => new URL(frame.url).origin))];
  const base = (policy ?? "default-src 'self'").split(';').filter((directive) => !directive.trim().startsWith('frame-src'));
  return [...base, `frame-src ${origins.join(' ')}`].join(';');
}
