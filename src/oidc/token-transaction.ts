import { AsyncLocalStorage } from 'node:async_hooks';
import type Provider from 'oidc-provider';
import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import { logger } from '../log/logger.ts';
import { isDatabaseUnavailable } from '../store/database-unavailable.ts';
import { ConsumedMeanwhile, HeldWrites, RequestWrites, currentRequestWrites, withRequestWrites } from '../store/request-writes.ts';

/**
 * One transaction per code redeemed at the token endpoint. oidc-provider consumes the code in a
 * statement of its own and only then stores the access token (with its `token_issued` record, in
 * the store hook's transaction), perhaps a refresh token, and signs the ID token: a failure anywhere
 * after the consumption left the code used up and nothing issued, and the SeP's retry got
 * invalid_grant with the grant revoked.
 *
 * Here the model store holds the consumption and every write after it for the length of the request
 * (HeldWrites, found by the adapter through the request's async context), and this middleware
 * commits them in one transaction once oidc-provider has built a successful answer, ID token
 * included: the code is consumed exactly when the tokens and their record are stored.
 *
 * - oidc-provider fails the request (any error, the register or the database out of reach): nothing
 *   held is written, the code stays unused and the SeP may retry.
 * - The commit finds the code consumed meanwhile (another request with the same code won): nothing is
 *   written, the grant is revoked — the winner's tokens with it — and the answer is invalid_grant,
 *   as oidc-provider answers a code it sees used twice; `grant.revoked` and `grant.error` are emitted
 *   as oidc-provider would, for the assertion log.
 * - The commit fails otherwise (the log refuses its record, the database goes): 500 server_error, or
 *   503 from installServiceUnavailable when the database is out of reach, which says "nothing was
 *   changed" only if the COMMIT itself was never sent (RequestWrites).
 *
 * It must run inside installServiceUnavailable and the audit middleware, so that they see its answer.
 */
export function installTokenTransaction(provider: Provider): void {
  provider.use(async (ctx, next) => {
    const outer = currentRequestWrites();
    // A request whose writes are held already (the resume of an authorization) commits them itself.
    if (outer?.held) {
      await next();
      return;
    }
    const writes = outer ?? new RequestWrites();
    const held = new HeldWrites(() => (ctx as KoaContextWithOIDC).oidc?.route === 'token');
    writes.held = held;
    try {
      await (outer ? next() : withRequestWrites(writes, next));
    } finally {
      writes.held = undefined;
    }
    if (held.empty) return;
    // oidc-provider refused or failed the request: nothing it meant to write is written.
    if (ctx.status !== 200) return;
    try {
      try {
        const commit = () => redeeming.run(redeemedBy(ctx as KoaContextWithOIDC), () => held.commit());
        await (outer ? commit() : withRequestWrites(writes, commit));
      } catch (err) {
        if (!(err instanceof ConsumedMeanwhile)) throw err;
        const grantId = await err.revokeGrant();
        const refusal = new errors.InvalidGrant(`${err.model === 'AuthorizationCode' ? 'authorization code' : err.model} already consumed`);
        ctx.status = refusal.statusCode;
        ctx.body = { error: refusal.error, error_description: refusal.error_description };
        if (grantId) provider.emit('grant.revoked', ctx, grantId);
        provider.emit('grant.error', ctx, refusal);
      }
    } catch (err) {
      if (!isDatabaseUnavailable(err)) logger.error('tokens not issued: their transaction failed', { error: (err as Error).message });
      ctx.status = 500;
      ctx.body = { error: 'server_error', error_description: 'oops! something went wrong' };
      provider.emit('server_error', ctx, err);
    }
  });
}

/** What a token request redeemed, as oidc-provider loaded it: the code (or another grant source) and its grant. */
interface Redeemed {
  grantId: string;
  code: unknown;
  grant: unknown;
}

const redeeming = new AsyncLocalStorage<Redeemed | undefined>();

function redeemedBy(ctx: KoaContextWithOIDC): Redeemed | undefined {
  const code = ctx.oidc?.entities.AuthorizationCode;
  const grant = ctx.oidc?.entities.Grant;
  if (!code?.grantId || !grant || grant.jti !== code.grantId) return undefined;
  return { grantId: code.grantId, code, grant };
}

/**
 * The authorization code the token request committing now redeemed, and its grant, as oidc-provider
 * loaded them in this request: the `token_issued` record takes them from here instead of reading
 * them again. Undefined for another grant, or when no code was redeemed (a refresh token).
 */
export function redeemedInThisRequest(grantId: string): { code: unknown; grant: unknown } | undefined {
  const redeemed = redeeming.getStore();
  return redeemed?.grantId === grantId ? { code: redeemed.code, grant: redeemed.grant } : undefined;
}
