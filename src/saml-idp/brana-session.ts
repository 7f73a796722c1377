import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';
import type Provider from 'oidc-provider';
import { loaFromUri, loaUri, type Loa } from '../domain/loa.ts';
import { SESSION_TTL_SECONDS, sessionCookieOptions } from '../oidc/provider.ts';

/** oidc-provider's Session: the citizen's one Brána session, whatever protocol each SeP speaks. */
export type Session = InstanceType<Provider['Session']>;

/**
 * What a SAML SeP was told in a session, kept in the session's entry for it (oidc-provider keeps
 * `sid` and `grantId` there for an OIDC SeP): enough to send it a LogoutRequest, and to know that a
 * LogoutRequest naming this NameID and SessionIndex is about this session.
 */
export interface SamlParticipation {
  nameId: string;
  nameIdFormat: 'persistent' | 'transient';
  sessionIndex: string;
}

/** The login a session holds: who, at which LoA, with which means. */
export interface SessionLogin {
  accountId: string;
  acr: Loa;
  means: string;
  authnInstant: number;
}

/** A SeP of a session, and (SAML) what it was told. */
export interface SessionParticipant {
  sepId: string;
  saml: SamlParticipation | undefined;
}

/**
 * The citizen's Brána session as the SAML side sees it: oidc-provider's own Session model and cookie,
 * read and written through the provider (its adapter, its signed cookie), so that one login serves
 * SePs of both protocols and one logout ends it for all. Only SAML routes call this: an OIDC login
 * runs exactly as before, through oidc-provider alone.
 */
export class BranaSessions {
  private readonly provider: () => Provider;
  private readonly secure: boolean;
  private readonly indexKey: Buffer;

  /**
   * `provider`: the instance in use now (it is replaced when the signing keys change). `secret`:
   * Brána's form key; the key that seals SessionIndexes is derived from it.
   */
  constructor(provider: () => Provider, secure: boolean, secret: Buffer) {
    this.provider = provider;
    this.secure = secure;
    this.indexKey = createHash('sha256').update('brana-saml-session-index').update(secret).digest();
  }

  /**
   * A SessionIndex for one SeP: the session's uid sealed (AES-256-GCM, a random IV), so that two
   * SePs — of different groups, with different pseudonyms — cannot link their logins by it, and a
   * LogoutRequest that names it (on a cross-site POST, without the session cookie) still finds it.
   */
  private sealIndex(uid: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.indexKey, iv);
    const sealed = Buffer.concat([cipher.update(uid, 'utf8'), cipher.final()]);
    return Buffer.concat([iv, sealed, cipher.getAuthTag()]).toString('base64url');
  }

  private openIndex(index: string): string | undefined {
    const bytes = Buffer.from(index, 'base64url');
    if (bytes.length < 29 || bytes.length > 200) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.indexKey, bytes.subarray(0, 12));
      decipher.setAuthTag(bytes.subarray(bytes.length - 16));
      return Buffer.concat([decipher.update(bytes.subarray(12, bytes.length - 16)), decipher.final()]).toString('utf8');
    } catch {
      return undefined;
    }
  }

  /** The browser's session (a new, unsaved one if it has none). */
  current(req: Request, res: Response): Promise<Session> {
    return this.provider().Session.get({ req, res, secure: this.secure } as unknown as Parameters<Provider['Session']['get']>[0]);
  }

  /** The login the session holds, if it holds one. */
  loginOf(session: Session): SessionLogin | undefined {
    const acr = loaFromUri(session.acr);
    const means = session.amr?.[0];
    if (!session.accountId || !acr || !means) return undefined;
    return { accountId: session.accountId, acr, means, authnInstant: (session.loginTs ?? 0) * 1000 };
  }

  /**
   * A means just authenticated the citizen for a SAML SeP: the browser's session now holds that
   * login, as oidc-provider's resume does it for an OIDC SeP (a new session id against fixation; a
   * session of another person is ended and a new one begins; a transient cookie, as OIDC logins make).
   */
  async logIn(req: Request, res: Response, login: SessionLogin): Promise<void> {
    let session = await this.current(req, res);
    if (session.accountId && session.accountId !== login.accountId) {
      await session.destroy();
      session = new (this.provider().Session)();
    }
    session.loginAccount({ accountId: login.accountId, acr: loaUri(login.acr), amr: [login.means], loginTs: Math.floor(login.authnInstant / 1000), transient: true });
    if (!(session as { new?: boolean }).new) session.resetIdentifier();
    await this.save(req, res, session);
  }

  /**
   * The SessionIndex to give a SAML SeP in this browser's session of `accountId`, or undefined when
   * the session is no longer that person's (another login in another tab): the SeP then joins nothing.
   */
  async sessionIndexFor(req: Request, res: Response, accountId: string): Promise<string | undefined> {
    const session = await this.current(req, res);
    return session.accountId === accountId ? this.sealIndex(session.uid) : undefined;
  }

  /** Records that a SAML SeP was given an assertion in the browser's session (its SLO needs it). */
  async join(req: Request, res: Response, sepId: string, participation: SamlParticipation): Promise<boolean> {
    const session = await this.current(req, res);
    if (this.openIndex(participation.sessionIndex) !== session.uid || !session.accountId) return false;
    session.ensureClientContainer(sepId);
    Object.assign(session.authorizationFor(sepId), { saml: participation });
    await this.save(req, res, session);
    return true;
  }

  /**
   * The session a SeP's LogoutRequest is about: named by its SessionIndex (a cross-site POST carries
   * no session cookie), or else the browser's; only if the SeP is part of it under that very NameID
   * (a SeP can end only a session it was given, never guess one).
   */
  async forLogout(req: Request, res: Response, sepId: string, nameId: string, sessionIndexes: readonly string[]): Promise<Session | undefined> {
    const uids = sessionIndexes.slice(0, 4).map((index) => this.openIndex(index));
    const candidates: Array<Session | undefined> = sessionIndexes.length
      ? await Promise.all(uids.map((uid) => (uid ? this.provider().Session.findByUid(uid) : undefined)))
      : [await this.current(req, res)];
    return candidates.find((session) => {
      const saml = session?.accountId ? participationOf(session, sepId) : undefined;
      return saml !== undefined && saml.nameId === nameId && (!sessionIndexes.length || sessionIndexes.includes(saml.sessionIndex));
    });
  }

  /** Ends a session; the browser's cookie goes too when it is this browser's session. */
  async end(req: Request, res: Response, session: Session): Promise<void> {
    const browsers = await this.current(req, res);
    await session.destroy();
    if (browsers.jti === session.jti) this.cookies(req, res).set(this.provider().cookieName('session'), null, sessionCookieOptions(this.secure));
  }

  private cookies(req: Request, res: Response) {
    const { cookies } = this.provider().createContext(req, res);
    cookies.secure = this.secure;
    return cookies;
  }

  private async save(req: Request, res: Response, session: Session): Promise<void> {
    await session.save(SESSION_TTL_SECONDS);
    this.cookies(req, res).set(this.provider().cookieName('session'), session.jti, sessionCookieOptions(this.secure));
  }
}

/** What a SAML SeP was told in a session, if it is one of its SePs. */
export function participationOf(session: Session, sepId: string): SamlParticipation | undefined {
  const entry = session.authorizations?.[sepId] as { saml?: SamlParticipation } | undefined;
  return entry?.saml;
}

/** The SePs of a session (OIDC ones from oidc-provider's entries, SAML ones with what they were told). */
export function participantsOf(session: Session): SessionParticipant[] {
  return Object.keys(session.authorizations ?? {}).map((sepId) => ({ sepId, saml: participationOf(session, sepId) }));
}
