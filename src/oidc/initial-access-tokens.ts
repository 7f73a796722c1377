import Provider from 'oidc-provider';
import type { AssertionLog } from '../audit/assertion-log.ts';
import { sepInitialTokenIssued } from '../audit/audit-events.ts';
import type { Database } from '../store/database.ts';
import { KnexModelAdapter } from '../store/oidc-model-store.ts';
import { SEP_REGISTRATION_POLICY, registrationPolicy, type RegistrationRules } from './sep-registration-policy.ts';

/** A token is handed to one organisation to register soon: a few days, once, unless said otherwise. */
export const DEFAULT_INITIAL_TOKEN_DAYS = 3;
export const MAX_INITIAL_TOKEN_DAYS = 30;
export const DEFAULT_INITIAL_TOKEN_USES = 1;
export const MAX_INITIAL_TOKEN_USES = 100;

/**
 * An initial access token (RFC 7591): an administrator hands it to a municipal portal so that it can
 * register itself — `uses` times (once by default), within `days`. It carries Brána's registration
 * policy, which every registration it makes (and the registration access token it yields) must
 * pass, and which takes one of its uses. The token is returned once; the store and the log keep
 * only its hash.
 */
export async function issueInitialAccessToken(
  provider: Provider,
  rules: Pick<RegistrationRules, 'tokenUses'>,
  log: AssertionLog,
  actor: string,
  options: { days?: number; uses?: number } = {},
): Promise<{ token: string; expiresAt: number; uses: number }> {
  const days = options.days ?? DEFAULT_INITIAL_TOKEN_DAYS;
  const uses = options.uses ?? DEFAULT_INITIAL_TOKEN_USES;
  const expiresIn = Math.round(days * 86_400);
  const iat = new provider.InitialAccessToken({ expiresIn, policies: [SEP_REGISTRATION_POLICY] });
  const token = await iat.save();
  const expiresAt = Date.now() + expiresIn * 1000;
  try {
    await rules.tokenUses.grant(token, uses, expiresAt);
    await log.append(sepInitialTokenIssued({ actor, expiresAt, uses, token }));
  } catch (err) {
    // A token nobody can account for must not stay usable.
    await iat.destroy();
    throw err;
  }
  return { token, expiresAt, uses };
}

/**
 * oidc-provider for the CLI, which runs no server: it only mints initial access tokens into the
 * store the running Brána reads, with the same registration policy. It has no signing keys because
 * it never signs anything.
 */
export function registrationDesk(db: Database, rules: RegistrationRules): Provider {
  return new Provider(rules.publicUrl.origin, {
    adapter: (name: string) => new KnexModelAdapter(db, name),
    jwks: { keys: [] },
    features: {
      devInteractions: { enabled: false },
      registration: { enabled: true, initialAccessToken: true, policies: { [SEP_REGISTRATION_POLICY]: registrationPolicy(rules) } },
    },
  });
}
