import express, { type Request, type Response, type Router } from 'express';
import { localeOf, renderPage } from '../pages/render.ts';
import { logger } from '../log/logger.ts';
import { AuthnRequestRejected, type DevelopmentIdentityProvider, type PendingAuthnRequest } from './development-identity-provider.ts';

/** HTTP endpoints of the embedded development identity providers, under /dev-idp/<means>. */
export function developmentIdentityProviderRoutes(providers: Map<string, DevelopmentIdentityProvider>): Router {
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '300kb', parameterLimit: 20 });

  const providerOf = (req: Request, res: Response): DevelopmentIdentityProvider | undefined => {
    const provider = providers.get(String(req.params.means));
    if (!provider) res.status(404).type('text').send('no such development identity provider');
    return provider;
  };

  const refuse = (res: Response, err: unknown) => {
    if (!(err instanceof AuthnRequestRejected)) throw err;
    logger.warn('development IdP refused a request', { reason: err.message });
    res.status(400).type('text').send(`Development identity provider: ${err.message}`);
  };

  const showLogin = (req: Request, res: Response, provider: DevelopmentIdentityProvider, request: PendingAuthnRequest) => {
    renderPage(req, res, 'dev-idp-login', {
      title: provider.means.name.cs,
      meansName: provider.means.name[localeOf(req)],
      hint: provider.means.development.loginHint?.[localeOf(req)] ?? null,
      logo: provider.means.logoFile ? `/means/${provider.means.id}/logo.svg` : null,
      minimumLoa: request.minimumLoa,
      accounts: provider.accounts(),
      sealed: provider.sealRequest(request),
      action: `${provider.baseUrl}/login`,
    });
  };

  router.get('/:means/metadata', (req, res) => {
    const provider = providerOf(req, res);
    if (provider) res.type('application/samlmetadata+xml').send(provider.metadataXml());
  });

  router.get('/:means/sso', (req, res) => {
    const provider = providerOf(req, res);
    if (!provider) return;
    try {
      const rawQuery = req.originalUrl.includes('?') ? req.originalUrl.slice(req.originalUrl.indexOf('?') + 1) : '';
      showLogin(req, res, provider, provider.readRedirectRequest(rawQuery));
    } catch (err) {
      refuse(res, err);
    }
  });

  router.post('/:means/sso', form, (req, res) => {
    const provider = providerOf(req, res);
    if (!provider) return;
    try {
      const body = req.body as Record<string, unknown>;
      if (typeof body.SAMLRequest !== 'string') throw new AuthnRequestRejected('missing SAMLRequest');
      showLogin(req, res, provider, provider.readPostRequest(body.SAMLRequest, typeof body.RelayState === 'string' ? body.RelayState : ''));
    } catch (err) {
      refuse(res, err);
    }
  });

  router.post('/:means/login', form, async (req, res, next) => {
    const provider = providerOf(req, res);
    if (!provider) return;
    try {
      const body = req.body as Record<string, unknown>;
      const request = provider.openRequest(body.request);
      const decision = body.action === 'cancel' || body.action === 'fail' ? body.action : { login: String(body.login ?? '') };
      const xml = await provider.answer(request, decision);
      const fields: Record<string, string> = { SAMLResponse: Buffer.from(xml, 'utf8').toString('base64') };
      if (request.relayState) fields.RelayState = request.relayState;
      renderPage(req, res, 'autopost', { title: provider.means.name.cs, heading: provider.means.name.cs, action: provider.acsUrl(), fields });
    } catch (err) {
      if (err instanceof AuthnRequestRejected) refuse(res, err);
      else next(err);
    }
  });

  return router;
}
