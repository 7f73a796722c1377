import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import type Provider from 'oidc-provider';
import type { Adapter, AdapterPayload, KoaContextWithOIDC } from 'oidc-provider';
import { logger } from '../log/logger.ts';
import type { Database } from '../store/database.ts';
import { KnexModelAdapter } from '../store/oidc-model-store.ts';
import { HeldWrites, currentRequestWrites } from '../store/request-writes.ts';
import { isDatabaseUnavailable } from '../store/database-unavailable.ts';
import { parse as parseCookies } from 'cookie';
import { isLocale } from '../pages/i18n.ts';
import { LANGUAGE_COOKIE, renderTemplate } from '../pages/render.ts';
import { errorPage } from '../pages/citizen-errors.ts';

/*
 * Resuming an authorization (`GET /auth/<uid>`) that any node can repeat (issue 18).
 *
 * oidc-provider's resume destroys the interaction first and only then does its work (logs the person
 * in, renews the session id, asks for consent in a new interaction or issues the code) and answers.
 * A node killed after the destroy, or an answer lost on its way (a load balancer giving up on a slow
 * node: a 502), left the browser holding the resume cookie of an interaction no node could find:
 * "interaction session not found", a dead end. Two extension points, no fork:
 *
 * - The Interaction adapter does not delete the interaction when the resume destroys it. At the end
 *   of the resume, once oidc-provider has built its answer and before the answer leaves, the row is
 *   marked resumed (with the resume's other writes) and keeps that answer (status, Location,
 *   Set-Cookie, body) until the interaction would have expired anyway. oidc-provider and Brána's interaction pages never see a marked row:
 *   for them the interaction is gone, as before.
 * - The same browser asking the same resume again (its signed resume cookie — which that answer
 *   clears — and the same session cookie it presented then) is given the recorded answer again: the
 *   same session, the same consent page, the same code. Nothing is made twice, and no code the SeP
 *   could receive twice exists. A node that died half-way through a resume wrote and recorded
 *   nothing, and the row is still unmarked: the resume simply runs again.
 *
 * Who can repeat a resume is who could do it the first time: the holder of the interaction's signed
 * resume cookie; any other browser, or the same one in another session, finds the interaction gone.
 *
 * Every write of a resume (the grant, the code, the renewed session and the old one's removal, the
 * mark) is held for the length of the request (HeldWrites) and made at its end, before the answer
 * leaves: one multi-row statement, or one transaction when there is a removal too. A node that dies
 * before it has written nothing; a write that fails leaves nothing and answers an error, never a
 * redirect with a code that does not exist.
 */

/** The key under which the row of a resumed interaction keeps what its resume did. */
const RESUMED = 'brana:resumed';

/** The answer a resume gave, as it is given again. */
export interface RecordedAnswer {
  status: number;
  location: string | null;
  setCookie: string[];
  contentType: string | null;
  body: string | null;
}

interface ResumedMark {
  /** When the interaction was resumed (ms). */
  at: number;
  /** SHA-256 of the session cookie the browser presented to that resume ('' without one). */
  session: string;
  answer: RecordedAnswer;
}

/** The resume this request is: the interaction named by its URL and its resume cookie, as read at the start. */
interface ResumeInProgress {
  uid: string;
  payload: AdapterPayload;
  /** oidc-provider took the interaction up (destroyed it) in this request. */
  resumed: boolean;
}

const resumeInProgress = new AsyncLocalStorage<ResumeInProgress>();

function markOf(payload: AdapterPayload): ResumedMark | undefined {
  return (payload as Record<string, unknown>)[RESUMED] as ResumedMark | undefined;
}

const sessionDigest = (session: string | undefined) => (session ? createHash('sha256').update(session).digest('hex') : '');

/** Seconds an interaction row has left; 0 if none. */
function secondsLeft(payload: AdapterPayload): number {
  return typeof payload.exp === 'number' ? payload.exp - Math.floor(Date.now() / 1000) : 0;
}

/**
 * The store of oidc-provider's Interaction model: the shared model store, except that a resume's
 * destroy is left to the end of its request (installResumableResume marks the row then), and a
 * marked row is found by no one.
 */
export class ResumableInteractionAdapter implements Adapter {
  private readonly rows: KnexModelAdapter;

  constructor(db: Database) {
    this.rows = new KnexModelAdapter(db, 'Interaction');
  }

  upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    return this.rows.upsert(id, payload, expiresIn);
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    // The resume's own interaction, read by installResumableResume a moment ago: not read twice.
    const resume = resumeInProgress.getStore();
    if (resume?.uid === id) return structuredClone(resume.payload);
    const payload = await this.rows.find(id);
    return payload && !markOf(payload) ? payload : undefined;
  }

  findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.find(uid);
  }

  findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.rows.findByUserCode(userCode);
  }

  consume(id: string): Promise<void> {
    return this.rows.consume(id);
  }

  async destroy(id: string): Promise<void> {
    const resume = resumeInProgress.getStore();
    if (resume?.uid === id) {
      resume.resumed = true;
      return;
    }
    await this.rows.destroy(id);
  }

  revokeByGrantId(grantId: string): Promise<void> {
    return this.rows.revokeByGrantId(grantId);
  }
}

/** What the rest of Brána asks of interactions: whether one still waits, and the row of a resume. */
export class ResumableInteractions {
  private readonly rows: KnexModelAdapter;

  constructor(db: Database) {
    this.rows = new KnexModelAdapter(db, 'Interaction');
  }

  /** The interaction exists, has not expired and has not been resumed: its login still waits for an answer. */
  async isPending(uid: string): Promise<boolean> {
    const payload = await this.rows.find(uid);
    return payload !== undefined && !markOf(payload);
  }

  /** The interaction's row as stored, resumed or not (undefined once expired). */
  row(uid: string): Promise<AdapterPayload | undefined> {
    return this.rows.find(uid);
  }

  /** Marks the interaction resumed, keeping the answer its resume gave, for as long as it had left. */
  async markResumed(uid: string, payload: AdapterPayload, mark: ResumedMark): Promise<void> {
    const left = secondsLeft(payload);
    if (left <= 0) {
      await this.rows.destroy(uid);
      return;
    }
    await this.rows.upsert(uid, { ...payload, [RESUMED]: mark } as AdapterPayload, left);
  }
}

const RESUME_PATH = /^\/auth\/([A-Za-z0-9_-]+)\/?$/;

/**
 * The middleware around oidc-provider's resume route (installed with provider.use, inside the audit
 * middleware): gives a recorded answer again, and records the answer of every resume.
 */
export function installResumableResume(provider: Provider, interactions: ResumableInteractions): void {
  provider.use(async (ctx, next) => {
    const uid = ctx.method === 'GET' ? RESUME_PATH.exec(ctx.path)?.[1] : undefined;
    // oidc-provider's own first check, made here too: only the browser holding this resume cookie resumes.
    if (!uid || ctx.cookies.get(provider.cookieName('resume'), { signed: true }) !== uid) {
      await next();
      return;
    }
    const payload = await interactions.row(uid);
    if (!payload) {
      await next();
      return;
    }
    const session = sessionDigest(ctx.cookies.get(provider.cookieName('session'), { signed: true }));
    const earlier = markOf(payload);
    if (earlier) {
      if (earlier.session === session) {
        logger.info('resume repeated: the answer it gave is given again', { status: earlier.answer.status, resumedMsAgo: Date.now() - earlier.at });
        giveAgain(ctx as KoaContextWithOIDC, earlier.answer);
        return;
      }
      // Another session: for oidc-provider the interaction is gone, and the citizen is told to start again.
      await next();
      return;
    }
    const resume: ResumeInProgress = { uid, payload, resumed: false };
    // Every write of the resume (the grant, the code, the session, the mark) is held to its end.
    const writes = currentRequestWrites();
    const held = HeldWrites.everyWrite();
    if (writes) writes.held = held;
    try {
      await resumeInProgress.run(resume, next);
      if (resume.resumed && ctx.status < 500) {
        const setCookie = ctx.response.get('set-cookie') as string | string[] | undefined;
        const answer: RecordedAnswer = {
          status: ctx.status,
          location: ctx.response.get('location') || null,
          setCookie: setCookie === undefined ? [] : ([] as string[]).concat(setCookie),
          contentType: ctx.response.get('content-type') || null,
          body: typeof ctx.body === 'string' ? ctx.body : null,
        };
        await interactions.markResumed(uid, payload, { at: Date.now(), session, answer });
      }
    } finally {
      if (writes) writes.held = undefined;
    }
    // A failed resume writes nothing: the interaction waits, unmarked, and the resume can run again.
    if (ctx.status >= 500) return;
    try {
      await held.commit();
    } catch (err) {
      failResume(provider, ctx as KoaContextWithOIDC, err);
    }
  });
}

/**
 * The resume's writes failed: nothing of them is stored (one statement, or one transaction), so the
 * answer oidc-provider built (a code that does not exist, a session cookie for no session) does not
 * leave. The browser keeps its resume cookie and may try again; a database out of reach is answered
 * 503 by installServiceUnavailable, anything else 500.
 */
function failResume(provider: Provider, ctx: KoaContextWithOIDC, err: unknown): void {
  if (!isDatabaseUnavailable(err)) logger.error('authorization not resumed: its writes failed', { error: (err as Error).message });
  answerWritesFailed(provider, ctx, err);
}

/**
 * An authorization request or its resume whose held writes failed: the answer oidc-provider built
 * (a redirect to an interaction or a code that does not exist, a cookie for no session) does not
 * leave; 500 with the error page (503 from installServiceUnavailable when the database is out of reach).
 */
export function answerWritesFailed(provider: Provider, ctx: KoaContextWithOIDC, err: unknown): void {
  ctx.remove('Location');
  ctx.remove('Set-Cookie');
  ctx.status = 500;
  ctx.set('Cache-Control', 'no-store');
  ctx.type = 'html';
  const chosen = parseCookies(ctx.get('cookie') ?? '')[LANGUAGE_COOKIE];
  const locale = isLocale(chosen) ? chosen : 'cs';
  ctx.body = renderTemplate('error', locale, errorPage('server_error', locale));
  provider.emit('server_error', ctx, err);
}

function giveAgain(ctx: KoaContextWithOIDC, answer: RecordedAnswer): void {
  ctx.status = answer.status;
  ctx.set('Cache-Control', 'no-store');
  if (answer.location) ctx.set('Location', answer.location);
  if (answer.setCookie.length) ctx.set('Set-Cookie', answer.setCookie);
  if (answer.contentType) ctx.set('Content-Type', answer.contentType);
  ctx.body = answer.body ?? '';
}
