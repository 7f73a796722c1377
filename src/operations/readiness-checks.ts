import type { SigningKeyReload } from '../keys/signing-key-reload.ts';
import { SIGNING_ALGORITHMS } from '../keys/signing-keys.ts';
import type { IdentityMeansRegistry } from '../upstream/identity-means-registry.ts';
import type { CheckResult, ReadinessCheck } from './readiness.ts';

/**
 * The node holds a signing key for every algorithm. A failed re-read of the key file is reported but
 * does not make the node unready: it goes on signing with the keys it has.
 */
export function signingKeysCheck(keys: SigningKeyReload): ReadinessCheck {
  return () => {
    const status = keys.status();
    return {
      ok: SIGNING_ALGORITHMS.every((alg) => Boolean(status.signing[alg])),
      detail: { signing: status.signing, published: status.published, loadedAt: new Date(status.loadedAt).toISOString(), reloadFailed: Boolean(status.lastError) },
      ...(status.lastError ? { error: String(status.lastError) } : {}),
    };
  };
}

/**
 * Identity means metadata, per means (fresh, stale, expired, failing). The node is ready while at
 * least one means can be used: a means whose metadata expired is unusable on every node alike and is
 * left out of the selection page, so taking the nodes out of the load balancer would only stop the
 * other means too.
 */
export function metadataCheck(registry: IdentityMeansRegistry): ReadinessCheck {
  return () => {
    const means = registry.metadataStatus();
    return {
      ok: means.some((status) => status.available),
      detail: Object.fromEntries(means.map((status) => [status.means, { state: status.state, available: status.available, validUntil: status.validUntil }])),
    };
  };
}

/** How long one answer of the register's health check stands for the next ones. */
export const REGISTER_CHECK_CACHE_MS = 5000;

/**
 * The population register answers. An embedded register is always there; a register service is
 * asked at most once per `cacheMs` (every load balancer asks every node every few seconds, and the
 * register need not hear each of them), and concurrent reports share one question.
 */
export function registerCheck(probe: (() => Promise<void>) | null, cacheMs = REGISTER_CHECK_CACHE_MS, now: () => number = Date.now): ReadinessCheck {
  if (!probe) return () => ({ ok: true, detail: 'embedded' });
  let last: { at: number; result: Promise<CheckResult> } | undefined;
  return () => {
    if (!last || now() - last.at >= cacheMs) {
      last = {
        at: now(),
        result: probe().then(
          () => ({ ok: true, detail: 'reachable' }),
          (err: unknown) => ({ ok: false, detail: (err as Error).message }),
        ),
      };
    }
    return last.result;
  };
}
