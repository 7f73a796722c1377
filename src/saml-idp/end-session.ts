import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { localeOfContext } from '../oidc/provider.ts';
import { MESSAGES } from '../pages/i18n.ts';
import { renderTemplate } from '../pages/render.ts';
import type { Session } from './brana-session.ts';
import { policyWithFrames, type SessionLogout } from './session-logout.ts';

/**
 * A logout at Brána through OIDC (end_session, the citizen confirming "log out") ends the citizen's
 * whole Brána session; its SAML SePs are told too. oidc-provider answers with a redirect (to the
 * SeP's post_logout_redirect_uri or its own page); when the session had SAML SePs to tell, the
 * browser first gets the logout page with their LogoutRequests in hidden frames, which then goes on
 * to that very address. Through `provider.use`, after oidc-provider's own work: nothing changes for
 * any other route, and a logout without SAML SePs is answered exactly as before.
 */
export function installSessionLogoutOnEndSession(provider: Provider, sessionLogout: SessionLogout): void {
  provider.use(async (ctx, next) => {
    await next();
    const { oidc } = ctx as KoaContextWithOIDC;
    if (oidc?.route !== 'end_session_confirm' || ctx.status !== 303) return;
    const session = oidc.session as unknown as (Session & { destroyed?: boolean }) | undefined;
    // Only the end of the whole session ("log out of Brána"), not one SeP leaving it.
    if (!session?.destroyed) return;
    const frames = await sessionLogout.tell(session, oidc.client?.clientId ?? null);
    if (!frames.length) return;
    const location = ctx.response.get('Location');
    const locale = localeOfContext(ctx as KoaContextWithOIDC);
    ctx.status = 200;
    ctx.remove('Location');
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Content-Security-Policy', policyWithFrames(ctx.response.get('Content-Security-Policy') || undefined, frames));
    ctx.type = 'html';
    ctx.body = renderTemplate('logout-propagation', locale, { title: MESSAGES[locale].logout.title, frames, next: location, form: null });
  });
}
