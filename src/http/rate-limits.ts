import type { Request, RequestHandler, Response } from 'express';
import { rateLimit, type Options } from 'express-rate-limit';
import type { RateLimitSettings } from '../config/environment.ts';
import { showCitizenError } from '../pages/citizen-errors.ts';
import { logger } from '../log/logger.ts';

/** Who is answered: a citizen's browser, a SeP's server, or either (decided by the Accept header). */
type Audience = 'citizen' | 'sep' | 'negotiated';

function retryAfterSeconds(res: Response): string {
  return String(res.getHeader('Retry-After') ?? '60');
}

/** A limited citizen gets the Czech/English page; a SeP gets an OAuth-style JSON error. Both 429. */
function refusal(audience: Audience, group: string) {
  return (req: Request, res: Response) => {
    logger.warn('rate limit reached', { group });
    if (audience === 'citizen' || (audience === 'negotiated' && req.accepts(['application/json', 'text/html']) === 'text/html')) {
      showCitizenError(req, res, 'too_many_requests');
      return;
    }
    res.status(429).json({ error: 'temporarily_unavailable', error_description: `too many requests from this address; retry after ${retryAfterSeconds(res)} seconds` });
  };
}

function limiter(group: string, audience: Audience, limit: number, windowMs: number, extra: Partial<Options> = {}): RequestHandler {
  return rateLimit({
    windowMs,
    limit,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    handler: refusal(audience, group),
    // The proxy setting is explicit (BRANA_TRUST_PROXY); without a proxy a client's own
    // X-Forwarded-For is simply ignored, which is not worth a warning per limiter.
    validate: { xForwardedForHeader: false },
    logger: {
      error: (error: unknown, message?: string) => logger.error(message ?? 'rate limiter failed', { error: String(error) }),
      warn: (error: unknown, message?: string) => logger.warn(message ?? 'rate limiter warning', { error: String(error) }),
    },
    ...extra,
  });
}

/** One named limiter per endpoint group, each with its own count (in memory, per node). */
export interface RateLimiters {
  login: RequestHandler;
  acs: RequestHandler;
  token: RequestHandler;
  registration: RequestHandler;
}

export function rateLimiters(settings: RateLimitSettings): RateLimiters {
  return {
    login: limiter('login', 'citizen', settings.login, settings.windowMs),
    acs: limiter('acs', 'citizen', settings.acs, settings.windowMs),
    token: limiter('token', 'sep', settings.tokenFailures, settings.windowMs, { skipSuccessfulRequests: true }),
    // The registration API answers a SeP's code in JSON, its web form answers a person with a page.
    registration: limiter('registration', 'negotiated', settings.registration, settings.windowMs),
  };
}
