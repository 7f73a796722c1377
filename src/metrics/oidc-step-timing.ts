import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { BrokerMetrics, LoginStep } from './broker-metrics.ts';

const STEP_OF_ROUTE: Record<string, LoginStep> = {
  authorization: 'authorization',
  resume: 'resume',
  token: 'token',
  userinfo: 'userinfo',
  end_session: 'end_session',
  end_session_confirm: 'end_session',
};

/** Times oidc-provider's own steps (authorization, resume, token, userinfo, logout), records included. */
export function installStepTiming(provider: Provider, metrics: BrokerMetrics): void {
  provider.use(async (ctx, next) => {
    const started = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const oidc = (ctx as KoaContextWithOIDC).oidc as KoaContextWithOIDC['oidc'] | undefined;
      const step = oidc?.route ? STEP_OF_ROUTE[oidc.route] : undefined;
      if (step && oidc) {
        const entities = oidc.entities as { AuthorizationCode?: { amr?: string[] } };
        const amr = entities.AuthorizationCode?.amr ?? (oidc.result?.login as { amr?: string[] } | undefined)?.amr ?? oidc.session?.amr;
        metrics.observe(step, Array.isArray(amr) ? amr[0] : null, Number(process.hrtime.bigint() - started) / 1e9);
      }
    }
  });
}
