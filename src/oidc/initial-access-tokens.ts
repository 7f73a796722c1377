import Provider from 'oidc-provider';
import type { AssertionLog } from '../audit/assertion-log.ts';
import { sepInitialTokenIssued } from '../audit/audit-events.ts';
import type { Database } from '../store/database.ts';
import { KnexModelAdapter } from '../store/oidc-model-store.ts';
import { SEP_REGISTRATION_POLICY, registrationPolicy, type RegistrationRules } from './sep-registration-policy.ts';

export const DEFAULT_INITIAL_TOKEN_DAYS = 14;
export const MAX_INITIAL_TOKEN_DAYS = 90;

/**
 * An initial access token (RFC 7591): an administrator hands it to a municipal portal so that it can
 * register itself. It carries Brána's registration policy, which every registration it makes (and
 * the registration access token it yields) must pass. The token is returned once; the log keeps
 * only its hash.
 */
export async function issueInitialAccessToken(provider: Provider, log: AssertionLog, actor: string, days = DEFAULT_INITIAL_TOKEN_DAYS): Promise<{ token: string; expiresAt: number }> {
  const expiresIn = Math.round(days * 86_400);
  const iat = new provider.InitialAccessToken({ expiresIn, policies: [SEP_REGISTRATION_POLICY] });
  const token = await iat.save();
  const expiresAt = Date.now() + expiresIn * 1000;
  try {
    await log.append(sepInitialTokenIssued({ actor, expiresAt, token }));
  } catch (err) {
    // A token nobody can account for must not stay usable.
    await iat.destroy();
    throw err;
  }
  return { token, expiresAt };
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
