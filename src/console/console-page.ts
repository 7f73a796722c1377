import { createHmac, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { SignInSession } from '../access/sign-in-sessions.ts';
import type { StaffGrant, StaffRole } from '../access/staff-roles.ts';
import { staffActor } from '../audit/audit-events.ts';
import type { Locale } from '../pages/i18n.ts';
import { localeOf, renderPage, renderTemplate, type PageData } from '../pages/render.ts';
import { CONSOLE_MESSAGES, type ConsoleMessages } from './console-messages.ts';

/** The signed-in staff member of a console request, as the role check left it in `res.locals`. */
export interface Staff {
  sessionId: string;
  session: SignInSession;
  /** The name the log gives them (of their first role). */
  name: string;
  roles: StaffRole[];
  /** The form token of this session: every POST carries it. */
  csrf: string;
}

export function staffOf(res: Response): Staff {
  const staff = res.locals.staff as Staff | undefined;
  if (!staff) throw new Error('the console session check did not run before this handler');
  return staff;
}

/** How the assertion log names the staff member of this request as the actor. */
export const actorOf = (res: Response) => staffActor(staffOf(res).name);

export function staffFrom(sessionId: string, session: SignInSession, grants: StaffGrant[], formKey: Buffer): Staff | undefined {
  if (!grants.length) return undefined;
  return { sessionId, session, name: grants[0]!.name, roles: grants.map((grant) => grant.role), csrf: formToken(formKey, sessionId) };
}

export function formToken(formKey: Buffer, sessionId: string): string {
  return createHmac('sha256', formKey).update(`console:${sessionId}`).digest('base64url');
}

/** Whether a posted form carries this session's token and (where the browser says) came from Brána's own origin. */
export function formIsGenuine(req: Request, staff: Staff, origin: string): boolean {
  const from = req.headers.origin;
  if (from !== undefined && from !== origin) return false;
  const body = req.body as Record<string, unknown> | undefined;
  const given = Buffer.from(typeof body?.csrf === 'string' ? body.csrf : '');
  const expected = Buffer.from(staff.csrf);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export const consoleMessages = (req: Request): ConsoleMessages => CONSOLE_MESSAGES[localeOf(req)];

export function formatTime(at: number, locale: Locale): string {
  return new Intl.DateTimeFormat(locale === 'cs' ? 'cs-CZ' : 'en-GB', { dateStyle: 'medium', timeStyle: 'medium', timeZone: 'Europe/Prague' }).format(new Date(at));
}

/** What every console page is given: the console's own text and, when someone is signed in, their name, roles and form token. */
function consoleData(req: Request, res: Response, data: Omit<PageData, 'title'> & { title?: string }): PageData {
  const c = consoleMessages(req);
  const staff = res.locals.staff as Staff | undefined;
  return {
    ...data,
    title: data.title ? `${data.title} – ${c.title}` : c.title,
    c,
    staff: staff ? { name: staff.name, roles: staff.roles, csrf: staff.csrf } : null,
    time: (at: number) => formatTime(at, localeOf(req)),
  };
}

/** Renders a console page and sends it. */
export function renderConsole(req: Request, res: Response, template: string, data: Omit<PageData, 'title'> & { title?: string }, status = 200): void {
  renderPage(req, res, `console/${template}`, consoleData(req, res, data), status);
}

/** A console page (or a part of one, without a layout) as text, for a page sent in pieces as work goes on. */
export function consoleHtml(req: Request, res: Response, template: string, data: Omit<PageData, 'title'> & { title?: string }): string {
  return renderTemplate(`console/${template}`, localeOf(req), consoleData(req, res, data));
}

/** A part of the console for one role: anyone else gets the 403 page. */
export function requireRole(role: StaffRole) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const staff = staffOf(res);
    if (staff.roles.includes(role)) {
      next();
      return;
    }
    const c = consoleMessages(req);
    renderConsole(req, res, 'forbidden', { title: c.forbidden.title, message: c.forbidden.wrongRole(c.roles[role]), recorded: false }, 403);
  };
}
