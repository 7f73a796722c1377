import type Provider from 'oidc-provider';
import type { AdapterPayload, KoaContextWithOIDC } from 'oidc-provider';
import type { AssertionLog, AuditRecord } from '../audit/assertion-log.ts';
import { requestIdOf } from '../audit/request-id.ts';
import { attributeOfClaim } from '../domain/attributes.ts';
import { loaFromUri } from '../domain/loa.ts';
import { claimsOfScopes } from '../consent/release-policy.ts';
import type { Pseudonyms } from '../pseudonym/pseudonym.ts';
import type { SepStore } from '../sep/sep-store.ts';
import type { Transaction } from '../store/database.ts';
import { logger } from '../log/logger.ts';
import type { StoreHook } from './model-adapter.ts';

/**
 * Writes `token_issued` in the same transaction that stores the access token: if the record cannot
 * be written, the token is not issued either.
 */
export function tokenIssuedHook(log: AssertionLog, seps: SepStore, pseudonyms: Pseudonyms): StoreHook {
  return async (model, _id, payload, trx: Transaction) => {
    if (model !== 'AccessToken' || !payload.accountId || !payload.clientId) return;
    const sep = await seps.find(payload.clientId, trx);
    const code = (await trx('oidc_model')
      .where({ model: 'AuthorizationCode', grant_id: payload.grantId ?? '' })
      .orderBy('consumed_at', 'desc')
      .first('payload')) as { payload: string } | undefined;
    // The access token does not carry how the citizen logged in; the code it was redeemed for does.
    const codePayload = code ? (JSON.parse(code.payload) as { codeChallenge?: string; acr?: string; amr?: string[] }) : undefined;
    const grant = (await trx('oidc_model').where({ model: 'Grant', id: payload.grantId ?? '' }).first('payload')) as { payload: string } | undefined;
    const grantPayload = grant ? (JSON.parse(grant.payload) as AdapterPayload & { openid?: { scope?: string; claims?: string[] }; rejected?: { openid?: { claims?: string[] } } }) : undefined;
    const rejected = new Set(grantPayload?.rejected?.openid?.claims ?? []);
    const granted = [...claimsOfScopes((grantPayload?.openid?.scope ?? '').split(' ')), ...(grantPayload?.openid?.claims ?? [])].filter((claim) => !rejected.has(claim));
    const attributes = [...new Set(granted.map(attributeOfClaim).filter((id) => id !== undefined))].sort();
    await log.append(
      {
        event: 'token_issued',
        outcome: 'success',
        sepId: payload.clientId,
        requestId: codePayload ? requestIdOf(codePayload.codeChallenge) : null,
        means: Array.isArray(codePayload?.amr) ? String(codePayload.amr[0]) : null,
        loa: loaFromUri(codePayload?.acr) ?? null,
        pseudonym: sep ? pseudonyms.forGroup(payload.accountId, sep.group) : null,
        detail: { grantId: payload.grantId, scope: payload.scope, attributes },
      },
      trx,
    );
  };
}

/**
 * Records what oidc-provider decides on its own routes (an accepted authorization request, an error
 * returned to a SeP, a logout) before the response leaves, so a failed write fails the request
 * rather than losing the record.
 */
export function installAuditMiddleware(provider: Provider, log: AssertionLog): void {
  const pending = new WeakMap<object, AuditRecord[]>();
  const add = (ctx: object, record: AuditRecord) => {
    const list = pending.get(ctx) ?? [];
    list.push(record);
    pending.set(ctx, list);
  };
  const requestId = (ctx: KoaContextWithOIDC) => requestIdOf(ctx.oidc?.params?.code_challenge);

  const onError = (ctx: KoaContextWithOIDC, err: Error & { error?: string; error_description?: string }) => {
    add(ctx, {
      event: 'error',
      outcome: 'failure',
      sepId: ctx.oidc?.client?.clientId ?? null,
      requestId: ctx.oidc ? requestId(ctx) : null,
      reason: (err.error ?? 'server_error').slice(0, 80),
      detail: { route: ctx.oidc?.route, description: err.error_description },
    });
  };
  provider.on('authorization.error', onError);
  provider.on('grant.error', onError);
  provider.on('userinfo.error', onError);
  provider.on('end_session.error', onError);
  provider.on('end_session.success', (ctx: KoaContextWithOIDC) => {
    add(ctx, { event: 'logout', outcome: 'success', sepId: ctx.oidc?.client?.clientId ?? null });
  });

  provider.use(async (ctx, next) => {
    await next();
    const oidc = (ctx as KoaContextWithOIDC).oidc as KoaContextWithOIDC['oidc'] | undefined;
    const records = pending.get(ctx) ?? [];
    // A new authorization request (not the resumption of one) whose client is known.
    if (oidc?.route === 'authorization' && oidc.client) {
      records.unshift({
        event: 'request_received',
        outcome: 'success',
        sepId: oidc.client.clientId,
        requestId: requestId(ctx as KoaContextWithOIDC),
        detail: { scope: oidc.params?.scope, prompt: oidc.params?.prompt, acrValues: oidc.params?.acr_values, idpHint: oidc.params?.idp_hint },
      });
    }
    if (!records.length) return;
    pending.delete(ctx);
    try {
      for (const record of records) await log.append(record);
    } catch (err) {
      logger.error('assertion log write failed', { error: (err as Error).message });
      throw err;
    }
  });
}
