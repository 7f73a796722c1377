import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { parse as parseCookies } from 'cookie';
import { logDatabaseUnavailable, RETRY_AFTER_SECONDS, unavailableBody } from '../pages/service-unavailable.ts';
import { outageLog } from '../log/outage-log.ts';
import { isLocale } from '../pages/i18n.ts';
import { LANGUAGE_COOKIE, renderTemplate } from '../pages/render.ts';
import { errorPage } from '../pages/citizen-errors.ts';
import { isDatabaseUnavailable } from '../store/database-unavailable.ts';
import { RegisterUnavailable } from '../identity/population-register.ts';
import { RequestWrites, withRequestWrites } from '../store/request-writes.ts';

const REGISTER_UNAVAILABLE_BODY = {
  error: 'temporarily_unavailable',
  error_description: 'Brána cannot reach the population register for the claims. Retry later.',
} as const;

/** oidc-provider's routes a citizen's browser visits: they get a page; every other route gets JSON. */
const BROWSER_ROUTES = new Set(['authorization', 'resume', 'end_session', 'end_session_confirm', 'end_session_success', 'code_verification', 'device_resume']);

/**
 * oidc-provider answers any failure of its adapter or of Brána's hooks as a 500 `server_error`. When
 * the cause is a database out of reach, this turns the answer into a 503 that says so: the error page
 * for a citizen's browser, `temporarily_unavailable` JSON for a SeP. It must be the outermost
 * middleware, so that it also sees a failed write of the assertion log after the route. It counts
 * the request's writes (RequestWrites), so that the JSON says "nothing was changed" only when true.
 */
export function installServiceUnavailable(provider: Provider): void {
  const unavailable = new WeakMap<object, unknown>();
  // The database, or the population register (read for the claims at token and userinfo).
  const isUnavailable = (err: unknown) => isDatabaseUnavailable(err) || err instanceof RegisterUnavailable;
  provider.on('server_error', (ctx: KoaContextWithOIDC, err: unknown) => {
    if (isUnavailable(err)) unavailable.set(ctx, err);
  });

  provider.use(async (ctx, next) => {
    const writes = new RequestWrites();
    try {
      await withRequestWrites(writes, next);
    } catch (err) {
      if (!isUnavailable(err)) throw err;
      unavailable.set(ctx, err);
    }
    if (!unavailable.has(ctx)) return;
    const cause = unavailable.get(ctx);
    const route = (ctx as KoaContextWithOIDC).oidc?.route;
    if (cause instanceof RegisterUnavailable) outageLog.report('warn', 'request failed: population register unavailable', cause.reason, { method: ctx.method, route: route ?? null });
    else logDatabaseUnavailable(cause, { method: ctx.method, route: route ?? null }, writes);
    ctx.status = 503;
    ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
    ctx.set('Cache-Control', 'no-store');
    ctx.remove('Location');
    if (route ? BROWSER_ROUTES.has(route) : ctx.accepts('html', 'json') === 'html') {
      const chosen = parseCookies(ctx.get('cookie') ?? '')[LANGUAGE_COOKIE];
      const locale = isLocale(chosen) ? chosen : 'cs';
      ctx.type = 'html';
      ctx.body = renderTemplate('error', locale, errorPage('service_unavailable', locale));
    } else {
      ctx.body = cause instanceof RegisterUnavailable ? { ...REGISTER_UNAVAILABLE_BODY } : { ...unavailableBody(writes) };
    }
  });
}
