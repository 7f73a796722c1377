import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';
import { parse as parseCookies, serialize as serializeCookie } from 'cookie';
import type { Request, Response } from 'express';
import { MESSAGES, isLocale, type Locale, type Messages } from './i18n.ts';

const TEMPLATES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'templates');
export const LANGUAGE_COOKIE = 'brana_lang';

const eta = new Eta({ views: TEMPLATES, cache: true, autoEscape: true, autoTrim: false });

/** The citizen's language: the remembered choice, else Czech. */
export function localeOf(req: Request): Locale {
  const chosen = parseCookies(req.headers.cookie ?? '')[LANGUAGE_COOKIE];
  return isLocale(chosen) ? chosen : 'cs';
}

export function languageCookie(locale: Locale, secure: boolean): string {
  return serializeCookie(LANGUAGE_COOKIE, locale, { path: '/', maxAge: 365 * 24 * 3600, sameSite: 'lax', httpOnly: true, secure });
}

export interface PageData {
  title: string;
  [key: string]: unknown;
}

/** Where the language switch sends the citizen back to: this page if it can be fetched again. */
function returnPath(req: Request): string {
  return req.method === 'GET' ? req.originalUrl : '';
}

export function renderPage(req: Request, res: Response, template: string, data: PageData, status = 200): void {
  const locale = localeOf(req);
  const t: Messages = MESSAGES[locale];
  const html = eta.render(template, {
    ...data,
    locale,
    t,
    languageSwitch: `/language?to=${t.common.switchLanguageCode}&back=${encodeURIComponent(returnPath(req))}`,
  });
  res.status(status).type('html').set('Cache-Control', 'no-store').send(html);
}

/** For pages rendered outside a request (oidc-provider's logout source). */
export function renderTemplate(template: string, locale: Locale, data: PageData & { languageSwitch?: string }): string {
  const t = MESSAGES[locale];
  return eta.render(template, { languageSwitch: `/language?to=${t.common.switchLanguageCode}&back=`, ...data, locale, t });
}
