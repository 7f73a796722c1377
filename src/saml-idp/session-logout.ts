import { createHmac, timingSafeEqual } from 'node:crypto';
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
import { samlId, samlInstant, signEnveloped } from './xml-signing.ts';

const NAMEID_FORMATS = {
  persistent: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
  transient: 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient',
} as const;

/** One SeP told of the logout: the page loads `url` in a hidden frame. */
export interface LogoutFrame {
  sepId: string;
  url: string;
  /** Where the frame goes on to (Brána's frame that posts to a SeP): its origin must be allowed too. */
  postsTo?: string;
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
  /** Binds the frame that posts a LogoutRequest to a SeP to what Brána wrote (an HMAC). */
  formKey: Buffer;
}

/** How long the frame that posts a LogoutRequest may be loaded (the LogoutRequest's own NotOnOrAfter). */
const POST_FRAME_LIFETIME_MS = 10 * 60_000;

/** Where a frame posts a signed LogoutRequest to a SeP whose SingleLogoutService takes HTTP-POST only. */
export const POST_FRAME_PATH = '/saml-idp/slo/tell';

/** Brána's LogoutRequest to a SAML SeP (HTTP-Redirect: the query signature covers it; HTTP-POST: signed enveloped by the caller). */
export function logoutRequestXml(r: { idpEntityId: string; destination: string; participation: SamlParticipation }, now = Date.now(), id = samlId()): string {
  return (
    `<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${id}" Version="2.0" IssueInstant="${samlInstant(now)}" Destination="${escapeXml(r.destination)}" NotOnOrAfter="${samlInstant(now + 10 * 60_000)}">` +
    `<saml:Issuer>${escapeXml(r.idpEntityId)}</saml:Issuer>` +
    `<saml:NameID Format="${NAMEID_FORMATS[r.participation.nameIdFormat]}">${escapeXml(r.participation.nameId)}</saml:NameID>` +
    `<samlp:SessionIndex>${escapeXml(r.participation.sessionIndex)}</samlp:SessionIndex>` +
    `</samlp:LogoutRequest>`
  );
}

/**
 * The end of a citizen's Brána session for its other SePs, whichever SeP or protocol began it, all
 * front-channel (the browser loads each in a hidden frame), each told SeP a `logout` record: a SAML
 * SeP with a SingleLogoutService gets a signed LogoutRequest (HTTP-Redirect: in the frame's URL;
 * HTTP-POST: posted by a frame of Brána's own, `postFrame`); an OIDC SeP that
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
      const frame = participant.saml ? await this.samlLogoutFrame(sep.clientId, participant.saml) : this.frontChannelFrame(sep, session.authorizationFor(sep.clientId).sid);
      if (!frame) continue;
      frames.push(frame);
      const pseudonym = session.accountId ? deps.pseudonyms.forGroup(session.accountId, sep.group) : null;
      await deps.log.append(logoutPropagated({ sepId: sep.clientId, pseudonym, protocol: participant.saml ? 'saml' : 'oidc', initiatedBy: initiator }));
    }
    return frames;
  }

  private async samlLogoutFrame(sepId: string, participation: SamlParticipation): Promise<LogoutFrame | undefined> {
    const singleLogout = (await this.samlSeps.find(sepId))?.serviceProvider.singleLogout;
    if (!singleLogout) return undefined;
    const address = { idpEntityId: this.deps.idpEntityId, destination: singleLogout.url, participation };
    if (singleLogout.binding === BINDING_REDIRECT) {
      const query = signedRedirectQuery('SAMLRequest', logoutRequestXml(address), null, this.deps.signing.privateKeyPem);
      return { sepId, url: `${singleLogout.url}${singleLogout.url.includes('?') ? '&' : '?'}${query}` };
    }
    // HTTP-POST: a frame of Brána's own posts the signed LogoutRequest (a frame's src is a GET).
    const id = samlId();
    const xml = signEnveloped(logoutRequestXml(address, Date.now(), id), 'LogoutRequest', id, this.deps.signing);
    const message = Buffer.from(xml, 'utf8').toString('base64url');
    const expires = String(Date.now() + POST_FRAME_LIFETIME_MS);
    const url = new URL(`${POST_FRAME_PATH}/${encodeURIComponent(sepId)}`, this.deps.issuer);
    url.searchParams.set('m', message);
    url.searchParams.set('exp', expires);
    url.searchParams.set('mac', postFrameMac(this.deps.formKey, sepId, message, expires));
    return { sepId, url: url.href, postsTo: singleLogout.url };
  }

  /**
   * The signed LogoutRequest a frame of the logout page posts to a SeP (HTTP-POST, base64), if the
   * URL is one Brána wrote for that SeP and has not expired; never anything else.
   */
  postFrame(sepId: string, query: Record<string, unknown>): string | undefined {
    const { m, exp, mac } = query;
    if (typeof m !== 'string' || typeof exp !== 'string' || typeof mac !== 'string' || !/^\d{1,15}$/.test(exp) || Number(exp) < Date.now()) return undefined;
    const expected = Buffer.from(postFrameMac(this.deps.formKey, sepId, m, exp));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    return Buffer.from(m, 'base64url').toString('base64');
  }

  private frontChannelFrame(sep: Sep, sid: string | undefined): LogoutFrame | undefined {
    if (sep.protocol !== 'oidc' || !sep.frontchannelLogoutUri || !sid) return undefined;
    const url = new URL(sep.frontchannelLogoutUri);
    url.searchParams.set('iss', this.deps.issuer);
    url.searchParams.set('sid', sid);
    return { sepId: sep.clientId, url: url.href };
  }
}

function postFrameMac(key: Buffer, sepId: string, message: string, expires: string): string {
  return createHmac('sha256', key).update(`saml-slo-frame\0${sepId}\0${expires}\0${message}`).digest('base64url');
}

/**
 * The page's Content-Security-Policy with the frames' origins allowed (and only on this page): the
 * rest of the policy as the app set it.
 */
export function policyWithFrames(policy: string | undefined, frames: readonly LogoutFrame[]): string {
  const origins = [...new Set(frames.flatMap((frame) => [frame.url, ...(frame.postsTo ? [frame.postsTo] : [])]).map((url) => new URL(url).origin))];
  const base = (policy ?? "default-src 'self'").split(';').filter((directive) => !directive.trim().startsWith('frame-src'));
  return [...base, `frame-src ${origins.join(' ')}`].join(';');
}
