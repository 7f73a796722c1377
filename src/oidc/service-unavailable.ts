import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { parse as parseCookies } from 'cookie';
import { RETRY_AFTER_SECONDS, UNAVAILABLE_BODY } from '../pages/service-unavailable.ts';
import { logger } from '../log/logger.ts';
import { MESSAGES, isLocale } from '../pages/i18n.ts';
import { LANGUAGE_COOKIE, renderTemplate } from '../pages/render.ts';
import { describeDatabaseError, isDatabaseUnavailable } from '../store/database-unavailable.ts';

/** oidc-provider's routes a citizen's browser visits: they get a page; every other route gets JSON. */
const BROWSER_ROUTES = new Set(['authorization', 'resume', 'end_session', 'end_session_confirm', 'end_session_success', 'code_verification', 'device_resume']);

/**
 * oidc-provider answers any failure of its adapter or of Brána's hooks as a 500 `server_error`. When
 * the cause is a database out of reach, this turns the answer into a 503 that says so: the error page
 * for a citizen's browser, `temporarily_unavailable` JSON for a SeP. It must be the outermost
 * middleware, so that it also sees a failed write of the assertion log after the route.
 */
export function installServiceUnavailable(provider: Provider): void {
  const unavailable = new WeakMap<object, unknown>();
  provider.on('server_error', (ctx: KoaContextWithOIDC, err: unknown) => {
    if (isDatabaseUnavailable(err)) unavailable.set(ctx, err);
  });

  provider.use(async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      if (!isDatabaseUnavailable(err)) throw err;
      unavailable.set(ctx, err);
    }
    if (!unavailable.has(ctx)) return;
    logger.warn('request failed: database unavailable', { method: ctx.method, route: (ctx as KoaContextWithOIDC).oidc?.route ?? null, ...describeDatabaseError(unavailable.get(ctx)) });
    ctx.status = 503;
    ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
    ctx.set('Cache-Control', 'no-store');
    ctx.remove('Location');
    const route = (ctx as KoaContextWithOIDC).oidc?.route;
    if (route ? BROWSER_ROUTES.has(route) : ctx.accepts('html', 'json') === 'html') {
      const chosen = parseCookies(ctx.get('cookie') ?? '')[LANGUAGE_COOKIE];
      const locale = isLocale(chosen) ? chosen : 'cs';
      ctx.type = 'html';
      ctx.body = renderTemplate('error', locale, { title: MESSAGES[locale].error.title, code: 'service_unavailable' });
    } else {
      ctx.body = { ...UNAVAILABLE_BODY };
    }
  });
}
