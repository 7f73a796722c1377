import { errors, type ClientMetadata, type KoaContextWithOIDC } from 'oidc-provider';
import { BRANA_REGISTRATION, documentFromMetadata, metadataProblem } from '../sep/registration-metadata.ts';
import { planUpdate, RegistrationRejected, type SepRegistration } from '../sep/sep-registration.ts';
import type { SepStore } from '../sep/sep-store.ts';
import { sepOf, type Sep, type SepRegistration as RegistrationDocument } from '../sep/sep.ts';
import { SERVER_SET_METADATA, clientMetadataOf } from './client-metadata.ts';
import type { InitialAccessTokenUses } from './initial-access-token-uses.ts';

/** The policy every initial access token Brána issues carries, and so every registration access token. */
export const SEP_REGISTRATION_POLICY = 'brana-sep-registration';

export interface RegistrationRules {
  registration: SepRegistration;
  seps: SepStore;
  publicUrl: URL;
  /** What is left of each initial access token: a registration takes one use. */
  tokenUses: InitialAccessTokenUses;
}

export type RegistrationCheck = { ok: true; document: RegistrationDocument; preview: Sep } | { ok: false; problems: string[] };

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** The SeP as this registration (or this update of `current`) would leave it. */
function previewOf(clientId: string, document: RegistrationDocument, current: Sep | undefined): Sep {
  const now = Date.now();
  if (!current) return sepOf(clientId, document, { status: 'pending', requestedRegistration: null, logAttributeValues: false, createdAt: now, updatedAt: now });
  const plan = planUpdate(current, document);
  return sepOf(clientId, plan.inForce, { status: current.status, requestedRegistration: plan.requested, logAttributeValues: current.logAttributeValues, createdAt: current.createdAt, updatedAt: now });
}

/**
 * Checks a SeP's registration metadata (a new registration, or an update of `current`) with the
 * rules of the CLI document plus those of self-service, and says what Brána would register. Used by
 * the registration API and the web form alike.
 */
export async function checkRegistrationMetadata(rules: RegistrationRules, metadata: Record<string, unknown>, current?: Sep, language: 'cs' | 'en' = 'en'): Promise<RegistrationCheck> {
  const { document, problems } = documentFromMetadata(metadata);
  const clientId = current?.clientId ?? 'sep-preview';
  let parsed: RegistrationDocument | undefined;
  try {
    parsed = rules.registration.validate(document, language);
  } catch (err) {
    if (!(err instanceof RegistrationRejected)) throw err;
    problems.push(...err.problems.map(metadataProblem));
  }
  if (parsed) problems.push(...(await rules.registration.selfServiceProblems(parsed, current?.clientId)).map(metadataProblem));
  if (!parsed || problems.length) return { ok: false, problems };

  const preview = previewOf(clientId, parsed, current);
  // What only Brána sets may be echoed back as read (or as Brána will set it), never set: that is
  // how a SeP would grant itself a group or attributes.
  const registered = clientMetadataOf(preview, null, rules.publicUrl) as Record<string, unknown>;
  const read = current ? (clientMetadataOf(current, null, rules.publicUrl) as Record<string, unknown>) : {};
  for (const key of SERVER_SET_METADATA) {
    if (metadata[key] !== undefined && !same(metadata[key], registered[key]) && !same(metadata[key], read[key])) {
      problems.push(`${key}: is set by Brána${key.startsWith('sep_') ? `; ask for it in ${BRANA_REGISTRATION} and an administrator approves it` : ''}`);
    }
  }
  return problems.length ? { ok: false, problems } : { ok: true, document: parsed, preview };
}

/**
 * oidc-provider's registration policy (RFC 7591 / 7592): refuses a registration that breaks Brána's
 * rules with `invalid_client_metadata`, and replaces the metadata with exactly what Brána registers,
 * so the response says what is in force and what waits for approval.
 */
export function registrationPolicy(rules: RegistrationRules) {
  return async (ctx: KoaContextWithOIDC, properties: ClientMetadata): Promise<void> => {
    const current = ctx.oidc.route === 'client_update' && ctx.oidc.client ? await rules.seps.find(ctx.oidc.client.clientId) : undefined;
    const result = await checkRegistrationMetadata(rules, properties as Record<string, unknown>, current);
    if (!result.ok) throw new errors.InvalidClientMetadata(result.problems.join('; '));
    // Last, so that a registration refused for its content does not use the token up.
    const initial = ctx.oidc.route === 'registration' ? ctx.oidc.entities.InitialAccessToken : undefined;
    if (ctx.oidc.route === 'registration' && !(initial?.jti && (await rules.tokenUses.consume(initial.jti)))) {
      throw new errors.InvalidToken('the initial access token is used up');
    }
    const clientId = String(properties.client_id);
    const secret = typeof properties.client_secret === 'string' ? properties.client_secret : null;
    const registered = clientMetadataOf({ ...result.preview, clientId }, secret, rules.publicUrl);
    for (const key of Object.keys(properties)) delete (properties as Record<string, unknown>)[key];
    Object.assign(properties, registered);
  };
}
