import express, { type Request, type Response, type Router } from 'express';
import { resentCheck, type AnswerAcceptance, type AnswerOutcome } from '../login/answer-acceptance.ts';
import type { JourneyFrontends } from '../login/journey.ts';
import type { BrokerMetrics } from '../metrics/broker-metrics.ts';
import type { IdentityMeansRegistry } from '../upstream/identity-means-registry.ts';
import { MAX_SAML_RESPONSE_LENGTH } from '../upstream/saml/response-guard.ts';
import { showCitizenError } from '../pages/citizen-errors.ts';
import { formOrRefusal } from '../pages/form-body.ts';

export interface UpstreamReturnDependencies {
  registry: IdentityMeansRegistry;
  acceptance: AnswerAcceptance;
  metrics: BrokerMetrics;
  /** Signs the way to a re-sent answer's interaction (resentCheck). */
  formKey: Buffer;
  /** The frontends of the journeys an answer finishes (OIDC: oidc-provider's interactions). */
  journeys: JourneyFrontends;
}

/**
 * Where identity means answer: the assertion consumer service of each SAML means
 * (`/saml/<means>/acs`) and the redirect URI of each OIDC means (`/oidc/<means>/callback`). The
 * answer arrives cross-site (a SAML POST carries none of the citizen's cookies): AnswerAcceptance
 * finds the login again from the answered request, checks and records it. An OIDC SeP's login is
 * then finished here and the browser sent straight to oidc-provider's resume, where the signed resume
 * cookie of that very interaction binds the result to the browser (one request fewer per login);
 * otherwise the browser goes on to its interaction, where its own cookies do. The same answer sent again
 * while its login waits (a reload or back after a 502) goes the same way, to be taken up only by the
 * browser that began the login (see AnswerAcceptance and the interaction's `resent` route).
 */
export function upstreamReturnRoutes(deps: UpstreamReturnDependencies): Router {
  const router = express.Router();
  // No inflation: a browser never compresses a form post, and a deflate bomb is then just bytes.
  const form = express.urlencoded({ extended: false, limit: Math.ceil(MAX_SAML_RESPONSE_LENGTH * 1.1), parameterLimit: 5, inflate: false });

  async function respond(req: Request, res: Response, means: string, outcome: AnswerOutcome): Promise<void> {
    if (outcome.kind === 'accepted') {
      // The login was finished with the answer where its frontend can (the browser then goes straight
      // to the resumed authorization, whose cookie check binds it); else by the browser's own interaction.
      res.redirect(303, outcome.resumeAt ?? `/interaction/${outcome.interactionUid}/upstream/${encodeURIComponent(outcome.requestId)}`);
    } else if (outcome.kind === 'resent') {
      const check = resentCheck(deps.formKey, outcome.interactionUid, outcome.requestId);
      res.redirect(303, `/interaction/${outcome.interactionUid}/resent/${encodeURIComponent(outcome.requestId)}?check=${check}`);
    } else if (outcome.interactionUid) {
      res.redirect(303, `/interaction/${outcome.interactionUid}/failed?reason=${outcome.outward}&means=${encodeURIComponent(means)}&ref=${outcome.reference}`);
    } else {
      showCitizenError(req, res, outcome.outward, outcome.reference ? { reference: outcome.reference } : {});
    }
  }

  async function receive(req: Request, res: Response, means: string, input: Record<string, unknown>): Promise<void> {
    const timed = deps.metrics.time('upstream_response', means);
    res.once('finish', () => timed());
    await respond(req, res, means, await deps.acceptance.receive(means, input, (uid) => deps.journeys.of(uid).awaitingAnswer?.(uid) ?? Promise.resolve(undefined)));
  }

  /** Only a configured SAML means has an ACS; checked before its body is read or anything is logged. */
  router.post(
    '/saml/:means/acs',
    (req, res, next) => {
      if (deps.registry.saml(String(req.params.means))) next();
      else showCitizenError(req, res, 'not_found');
    },
    // A body the form parser refuses (too large, compressed, another charset) is an answer refused like any other.
    formOrRefusal(form, async (req, res, why) => {
      const means = String(req.params.means);
      await respond(req, res, means, await deps.acceptance.refuseUnreadable(means, why === 'too_large' ? 'response_too_large' : 'request_malformed'));
    }),
    async (req, res) => {
      await receive(req, res, String(req.params.means), (req.body ?? {}) as Record<string, unknown>);
    },
  );

  // The authorization response is a top-level GET; like the SAML POST it is found again by its state.
  router.get('/oidc/:means/callback', async (req, res) => {
    const means = String(req.params.means);
    if (!deps.registry.oidc(means)) {
      showCitizenError(req, res, 'not_found');
      return;
    }
    await receive(req, res, means, req.query as Record<string, unknown>);
  });

  return router;
}
