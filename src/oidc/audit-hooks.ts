import type Provider from 'oidc-provider';
import type { ClaimsParameterMember, KoaContextWithOIDC } from 'oidc-provider';
import type { AssertionLog, AuditRecord } from '../audit/assertion-log.ts';
import { errorReturnedToSep, grantRevoked, logout, requestReceived, tokenIssued, tokenRevoked } from '../audit/audit-events.ts';
import { requestIdOf } from '../audit/request-id.ts';
import { attribute, attributeOfClaim, type AttributeId } from '../domain/attributes.ts';
import { loaFromUri } from '../domain/loa.ts';
import { claimsOfScopes } from '../consent/release-policy.ts';
import type { PersonStore } from '../identity/person-store.ts';
import type { PopulationRegister } from '../identity/population-register.ts';
import type { Pseudonyms } from '../pseudonym/pseudonym.ts';
import type { SepStore } from '../sep/sep-store.ts';
import type { Database, Transaction } from '../store/database.ts';
import { KnexModelAdapter, type StoreHook } from '../store/oidc-model-store.ts';
import { logger } from '../log/logger.ts';
import { isDatabaseUnavailable } from '../store/database-unavailable.ts';
import { HeldWrites, currentRequestWrites } from '../store/request-writes.ts';
import { answerWritesFailed } from './resumable-interactions.ts';
import { claimsOf } from './account.ts';
import { redeemedInThisRequest } from './token-transaction.ts';
import type { Departure, Interaction } from './provider.ts';

/** What the token hook needs beyond the log: the SeP and the person, for pseudonym and (if on) values. */
export interface TokenAuditDependencies {
  db: Database;
  log: AssertionLog;
  seps: SepStore;
  pseudonyms: Pseudonyms;
  persons: PersonStore;
  register: PopulationRegister;
}

interface GrantPayload {
  openid?: { scope?: string; claims?: string[] };
  rejected?: { openid?: { claims?: string[] } };
}

interface CodePayload {
  codeChallenge?: string;
  acr?: string;
  amr?: string[];
  claims?: string;
}

/** The members of a claims parameter, both parts merged (for isAgeOver's requested age). */
function requestedMembers(claims: string | undefined): Record<string, null | ClaimsParameterMember> {
  if (!claims) return {};
  try {
    const parsed = JSON.parse(claims) as { id_token?: Record<string, null | ClaimsParameterMember>; userinfo?: Record<string, null | ClaimsParameterMember> };
    return { ...parsed.userinfo, ...parsed.id_token };
  } catch {
    return {};
  }
}

/**
 * The values of the released attributes, for a SeP whose operator turned value logging on: the
 * same values the SeP receives, by attribute name.
 */
async function releasedValues(deps: TokenAuditDependencies, trx: Transaction, accountId: string, group: string, attributes: readonly AttributeId[], claims: string | undefined): Promise<Record<string, unknown>> {
  const person = await deps.persons.find(accountId, trx);
  const record = person ? await deps.register.findById(person.registerId) : undefined;
  if (!record) return {};
  const all = claimsOf(record, deps.pseudonyms.personIdentifier(accountId, group), requestedMembers(claims)) as Record<string, unknown>;
  const values: Record<string, unknown> = {};
  for (const id of attributes) {
    const value = all[attribute(id).claims[0]!];
    if (value !== undefined) values[id] = value;
  }
  return values;
}

/**
 * Writes `token_issued` in the same transaction that stores the access token: if the record cannot
 * be written, the token is not issued either.
 */
export function tokenIssuedHook(deps: TokenAuditDependencies): StoreHook {
  // The code and the grant are read through the model store, in the token's own transaction.
  const codes = new KnexModelAdapter(deps.db, 'AuthorizationCode');
  const grants = new KnexModelAdapter(deps.db, 'Grant');
  return async (model, _id, payload, trx: Transaction) => {
    if (model !== 'AccessToken' || !payload.accountId || !payload.clientId) return;
    const sep = await deps.seps.findAsReadIn(payload.clientId, trx);
    // At the token endpoint oidc-provider has loaded the code being redeemed and its grant in this
    // very request: they are taken from it rather than read again (a refresh token's exchange reads them).
    const redeemed = payload.grantId ? redeemedInThisRequest(payload.grantId) : undefined;
    const code = (redeemed?.code ?? (payload.grantId ? await codes.lastConsumedOfGrantIn(trx, payload.grantId) : undefined)) as CodePayload | undefined;
    const grantPayload = (redeemed?.grant ?? (payload.grantId ? await grants.readIn(trx, payload.grantId) : undefined)) as GrantPayload | undefined;
    const rejected = new Set(grantPayload?.rejected?.openid?.claims ?? []);
    const granted = [...claimsOfScopes((grantPayload?.openid?.scope ?? '').split(' ')), ...(grantPayload?.openid?.claims ?? [])].filter((claim) => !rejected.has(claim));
    const attributes = [...new Set(granted.map(attributeOfClaim).filter((id) => id !== undefined))].sort();
    // The access token carries neither acr nor amr; the code it was redeemed for does.
    const acr = code?.acr ?? (typeof payload.acr === 'string' ? payload.acr : undefined);
    const amr = code?.amr ?? (Array.isArray(payload.amr) ? (payload.amr as string[]) : undefined);
    await deps.log.append(
      tokenIssued({
        sepId: payload.clientId,
        requestId: requestIdOf(code?.codeChallenge),
        means: amr?.[0] ?? null,
        loa: loaFromUri(acr) ?? null,
        pseudonym: sep ? deps.pseudonyms.forGroup(payload.accountId, sep.group) : null,
        grantId: payload.grantId,
        scope: payload.scope,
        attributes,
        ...(sep?.logAttributeValues ? { attributeValues: await releasedValues(deps, trx, payload.accountId, sep.group, attributes, code?.claims) } : {}),
      }),
      trx,
    );
  };
}

/** oidc-provider's authorization endpoint (its resume is `/auth/<uid>`). */
const AUTHORIZATION_PATH = /^\/auth\/?$/;

/** A record waiting for the end of its request, and whose person (if any) it concerns. */
interface PendingRecord {
  record: AuditRecord;
  accountId?: string | undefined;
}

/**
 * Records what oidc-provider decides on its own routes (an accepted authorization request, an error
 * returned to a SeP, a revoked token or grant, a logout) before the response leaves, so a failed
 * write fails the request rather than losing the record.
 *
 * An authorization request that begins a login going straight to a means (`departure`,
 * login/direct-departure.ts) sends the browser to that means at once, instead of to its interaction
 * page only to be redirected there: one request fewer. oidc-provider has made the interaction and
 * set its cookies (for `/interaction/<uid>` and `/auth/<uid>`, as always, so the pages after a
 * failure and the resume work as they do); only the redirect's target changes. The interaction's
 * row (held, as every write of an authorization request) and the request's own records go with the
 * hand-off's, in its transaction: one commit. A hand-off that does not happen, or fails before
 * anything was sent to commit, leaves the redirect to the interaction page (which hands off or says
 * why not), and the held writes and the records to be written here, together, before the answer leaves.
 */
export function installAuditMiddleware(provider: Provider, log: AssertionLog, seps: SepStore, pseudonyms: Pseudonyms, departure?: Departure): void {
  const pending = new WeakMap<object, PendingRecord[]>();
  const destroyedTokens = new WeakSet<object>();
  const add = (ctx: object, item: PendingRecord) => {
    const list = pending.get(ctx) ?? [];
    list.push(item);
    pending.set(ctx, list);
  };
  const requestId = (ctx: KoaContextWithOIDC) => requestIdOf(ctx.oidc?.params?.code_challenge);

  const onError = (ctx: KoaContextWithOIDC, err: Error & { error?: string; error_description?: string }) => {
    add(ctx, {
      record: errorReturnedToSep({
        sepId: ctx.oidc?.client?.clientId ?? null,
        requestId: ctx.oidc ? requestId(ctx) : null,
        error: err.error ?? 'server_error',
        route: ctx.oidc?.route,
        description: err.error_description,
      }),
    });
  };
  provider.on('authorization.error', onError);
  provider.on('grant.error', onError);
  provider.on('userinfo.error', onError);
  provider.on('end_session.error', onError);
  provider.on('revocation.error', onError);
  provider.on('access_token.destroyed', (token: object) => destroyedTokens.add(token));
  provider.on('grant.revoked', (ctx: KoaContextWithOIDC, grantId: string) => {
    const session = ctx.oidc?.session;
    // At logout the grants of every SeP in the session go; the session says whose each one was.
    const clientId = Object.entries(session?.authorizations ?? {}).find(([, authorization]) => authorization.grantId === grantId)?.[0] ?? ctx.oidc?.client?.clientId ?? null;
    const entities = ctx.oidc?.entities as { AuthorizationCode?: { accountId?: string }; AccessToken?: { accountId?: string } } | undefined;
    add(ctx, {
      record: grantRevoked({ sepId: clientId, grantId, route: ctx.oidc?.route }),
      accountId: session?.accountId ?? entities?.AuthorizationCode?.accountId ?? entities?.AccessToken?.accountId,
    });
  });
  provider.on('end_session.success', (ctx: KoaContextWithOIDC) => {
    add(ctx, { record: logout({ sepId: ctx.oidc?.client?.clientId ?? null }), accountId: ctx.oidc?.session?.accountId });
  });

  /** The per-SeP pseudonym of the person a record concerns, from the SeP's group. */
  const withPseudonym = async ({ record, accountId }: PendingRecord): Promise<AuditRecord> => {
    if (!accountId || !record.sepId || record.pseudonym) return record;
    const sep = await seps.find(record.sepId);
    return sep ? { ...record, pseudonym: pseudonyms.forGroup(accountId, sep.group) } : record;
  };

  /** A login that begins here handed to its means, with the request's records and writes: whether it was (the browser is sent there). */
  const handedOff = async (ctx: KoaContextWithOIDC, records: AuditRecord[], held: HeldWrites | undefined): Promise<boolean> => {
    const interaction = ctx.oidc?.entities.Interaction as Interaction | undefined;
    if (!departure || ctx.oidc?.route !== 'authorization' || ctx.status !== 303 || !interaction || ctx.response.get('Location') !== `/interaction/${interaction.uid}`) return false;
    let target: string | undefined;
    try {
      target = await departure(interaction, records, held ? (trx) => held.writeIn(trx) : undefined);
    } catch (err) {
      // The database gone, perhaps at the COMMIT: whether the records were written is not known (503).
      if (isDatabaseUnavailable(err)) throw err;
      // Anything else failed before the commit: nothing of the hand-off was written.
      logger.error('hand-off at the authorization request failed', { error: (err as Error).message });
      return false;
    }
    if (target) ctx.redirect(target);
    return target !== undefined;
  };

  /**
   * The writes an authorization request held (its interaction, or the grant, code and session of a
   * login answered at once), when they do not go with a hand-off: with the request's records in one
   * transaction (one statement alone when there are none), before the answer leaves. False when
   * they failed: the answer is then an error, never a redirect to what was not stored.
   */
  const committed = async (ctx: KoaContextWithOIDC, held: HeldWrites, records: AuditRecord[] = []): Promise<boolean> => {
    try {
      await held.commit(records.length ? (trx) => log.appendMany(records, trx) : undefined);
      return true;
    } catch (err) {
      // The database gone: answered 503 by installServiceUnavailable.
      if (isDatabaseUnavailable(err)) throw err;
      logger.error('authorization request not answered: its writes failed', { error: (err as Error).message });
      answerWritesFailed(provider, ctx, err);
      return false;
    }
  };

  provider.use(async (ctx, next) => {
    // Every write of an authorization request is held to its end (HeldWrites): made in the
    // transaction of the login's hand-off to its means if there is one (one commit), else alone.
    const writes = currentRequestWrites();
    const held = writes && !writes.held && AUTHORIZATION_PATH.test(ctx.path) ? HeldWrites.everyWrite() : undefined;
    if (held) writes!.held = held;
    try {
      await next();
    } finally {
      if (held) writes!.held = undefined;
    }
    const oidc = (ctx as KoaContextWithOIDC).oidc as KoaContextWithOIDC['oidc'] | undefined;
    const items = pending.get(ctx) ?? [];
    // A new authorization request (not the resumption of one) whose client is known.
    if (oidc?.route === 'authorization' && oidc.client) {
      items.unshift({
        record: requestReceived({
          sepId: oidc.client.clientId,
          requestId: requestId(ctx as KoaContextWithOIDC),
          scope: oidc.params?.scope,
          prompt: oidc.params?.prompt,
          acrValues: oidc.params?.acr_values,
          idpHint: oidc.params?.idp_hint,
        }),
      });
    }
    const token = (oidc?.entities as { AccessToken?: { clientId?: string; accountId?: string; grantId?: string } } | undefined)?.AccessToken;
    if (oidc?.route === 'revocation' && ctx.status === 200 && token && destroyedTokens.has(token)) {
      items.push({ record: tokenRevoked({ sepId: token.clientId ?? null, grantId: token.grantId }), accountId: token.accountId });
    }
    // A failed request writes nothing it held; its records (the error returned to the SeP) are written as always.
    const holding = held && !held.empty && ctx.status < 500 ? held : undefined;
    if (!items.length) {
      if (holding) await committed(ctx as KoaContextWithOIDC, holding);
      return;
    }
    pending.delete(ctx);
    try {
      const records = await Promise.all(items.map(withPseudonym));
      if (await handedOff(ctx as KoaContextWithOIDC, records, holding)) return;
      if (holding) {
        await committed(ctx as KoaContextWithOIDC, holding, records);
        return;
      }
      for (const record of records) await log.append(record);
    } catch (err) {
      // An outage is logged (once per kind and interval) where the 503 is sent.
      if (!isDatabaseUnavailable(err)) logger.error('assertion log write failed', { error: (err as Error).message });
      throw err;
    }
  });
}
