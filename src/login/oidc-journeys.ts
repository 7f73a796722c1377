import type { Request, Response } from 'express';
import type Provider from 'oidc-provider';
import { errors as oidcErrors } from 'oidc-provider';
import { requestIdOf } from '../audit/request-id.ts';
import { releaseDecision, type ReleaseDecision } from '../consent/release-policy.ts';
import { loaUri, type Loa } from '../domain/loa.ts';
import { requiredLoa } from '../domain/required-loa.ts';
import type { AttributeId } from '../domain/attributes.ts';
import { buildGrant } from '../oidc/grants.ts';
import type { Interaction } from '../oidc/provider.ts';
import { HeldWrites, RequestWrites, withRequestWrites } from '../store/request-writes.ts';
import { JourneyGone, type AnswerFinish, type Journey, type JourneyFrontend, type JourneyResult, type LoginResult } from './journey.ts';

/** An OIDC SeP's journey: oidc-provider's interaction, read through the Journey a login step needs. */
class OidcJourney implements Journey {
  readonly protocol = 'oidc';
  readonly interaction: Interaction;
  private requestId: string | null | undefined;

  constructor(interaction: Interaction) {
    this.interaction = interaction;
  }

  get uid(): string {
    return this.interaction.uid;
  }

  get sepId(): string {
    return String(this.interaction.params.client_id);
  }

  get sepRequestId(): string | null {
    // A hash of the PKCE challenge: computed once per request, as before the journey existed.
    if (this.requestId === undefined) this.requestId = requestIdOf(this.interaction.params.code_challenge);
    return this.requestId;
  }

  get stage(): Journey['stage'] {
    const name = this.interaction.prompt.name;
    return name === 'login' || name === 'consent' ? name : 'other';
  }

  get accountId(): string | undefined {
    return this.interaction.session?.accountId;
  }

  get forceAuthn(): boolean {
    const reasons = this.interaction.prompt.reasons ?? [];
    return reasons.includes('login_prompt') || reasons.includes('max_age') || this.interaction.params.max_age !== undefined;
  }

  /** prompt=none never reaches an interaction: oidc-provider answers it. */
  readonly passive = false;

  get idpHint(): string | undefined {
    const hint = this.interaction.params.idp_hint;
    return typeof hint === 'string' ? hint : undefined;
  }

  minimumLoa(registered: Loa): Loa {
    return requiredLoa(registered, this.interaction.params);
  }

  releaseDecision(allowed: readonly AttributeId[]): ReleaseDecision {
    return releaseDecision(this.interaction.params, allowed);
  }
}

/**
 * The OIDC side of the journey, through oidc-provider's interaction API only: the browser's signed
 * interaction cookie finds its journey, and every stage ends in `interactionFinished` (oidc-provider
 * then resumes the authorization: on to consent, or a code to the SeP).
 */
export class OidcJourneys implements JourneyFrontend {
  private readonly provider: () => Provider;

  /** `provider`: the instance in use now (it is replaced when the signing keys change). */
  constructor(provider: () => Provider) {
    this.provider = provider;
  }

  /** The journey of an interaction oidc-provider has just begun (in the authorization request itself). */
  journeyOf(interaction: Interaction): Journey {
    return new OidcJourney(interaction);
  }

  async details(req: Request, res: Response, uid: string): Promise<Journey> {
    let interaction: Interaction;
    try {
      interaction = await this.provider().interactionDetails(req, res);
    } catch (err) {
      if (err instanceof oidcErrors.SessionNotFound) throw new JourneyGone();
      throw err;
    }
    if (interaction.uid !== uid) throw new JourneyGone();
    return new OidcJourney(interaction);
  }

  async saveGrant(journey: Journey, accountId: string, decision: ReleaseDecision): Promise<string> {
    const { interaction } = journey as OidcJourney;
    return buildGrant(this.provider(), accountId, journey.sepId, decision, interaction.params.scope).save();
  }

  async finish(req: Request, res: Response, _journey: Journey, result: JourneyResult): Promise<void> {
    const provider = this.provider();
    if (result.kind === 'login') {
      await provider.interactionFinished(req, res, { login: loginOf(result) }, { mergeWithLastSubmission: false });
    } else if (result.kind === 'consent') {
      await provider.interactionFinished(req, res, { consent: { grantId: result.grantId ?? undefined } }, { mergeWithLastSubmission: true });
    } else {
      await provider.interactionFinished(req, res, { error: 'access_denied', error_description: result.description }, { mergeWithLastSubmission: false });
    }
  }

  /**
   * The login result stored on the interaction at the ACS, as interactionResult stores it, and the
   * browser sent straight to oidc-provider's resume (`/auth/<uid>`): one request fewer per login.
   * The resume takes it up only with the browser's signed resume cookie of this very interaction,
   * and with its session, so a browser that did not begin the login gets nothing from it. Only an
   * interaction that still waits for a login, with no result yet, is finished here. Its row is
   * written in the answer's transaction: a node that dies before that commit leaves the answer
   * unconsumed and the interaction waiting, never an answer consumed for a login that cannot resume.
   */
  async awaitingAnswer(uid: string): Promise<AnswerFinish | undefined> {
    const interaction = await this.provider().Interaction.find(uid);
    if (!interaction || interaction.prompt.name !== 'login' || interaction.result !== undefined) return undefined;
    if (interaction.exp <= Math.floor(Date.now() / 1000)) return undefined;
    return {
      finish: async (result, trx) => {
        const left = interaction.exp - Math.floor(Date.now() / 1000);
        if (left <= 0) return undefined;
        interaction.result = { login: loginOf(result) };
        // oidc-provider builds the row (its save), held rather than written, then written in `trx`.
        const capture = new RequestWrites();
        const held = HeldWrites.everyWrite();
        capture.held = held;
        await withRequestWrites(capture, () => interaction.save(left));
        await held.writeIn(trx);
        return interaction.returnTo;
      },
    };
  }
}

/** A login result as oidc-provider's interaction result. */
function loginOf(result: LoginResult) {
  return { accountId: result.accountId, acr: loaUri(result.acr), amr: [result.means], ts: Math.floor(result.authnInstant / 1000), remember: false };
}
