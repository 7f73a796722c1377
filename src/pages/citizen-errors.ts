import type { Request, Response } from 'express';
import { MESSAGES, type ErrorCode, type Locale } from './i18n.ts';
import { localeOf, renderPage } from './render.ts';

const STATUS: Partial<Record<ErrorCode, number>> = {
  not_found: 404,
  bad_request: 400,
  too_many_requests: 429,
  server_error: 500,
  means_unavailable: 503,
  means_unreachable: 503,
  service_unavailable: 503,
  register_unavailable: 503,
};

/** An identity means as the page offers it: what the citizen picks, named in their language. */
interface OfferedMeans {
  id: string;
  name: Record<Locale, string>;
}

/**
 * The one page a citizen sees when a login goes wrong: what happened in their language, and what to
 * do next (another qualifying means, or back to the service).
 */
export function showCitizenError(
  req: Request,
  res: Response,
  code: ErrorCode,
  options: { uid?: string; alternatives?: OfferedMeans[]; retry?: OfferedMeans; afterCode?: ErrorCode; reference?: string } = {},
): void {
  const locale = localeOf(req);
  renderPage(
    req,
    res,
    'error',
    {
      title: MESSAGES[locale].error.title,
      code,
      uid: options.uid ?? null,
      alternatives: (options.alternatives ?? []).map((means) => ({ id: means.id, name: means.name[locale] })),
      retry: options.retry ? { id: options.retry.id, name: options.retry.name[locale] } : null,
      afterCode: options.afterCode ?? null,
      reference: options.reference ?? null,
    },
    STATUS[code] ?? 400,
  );
}

/** An error the HTTP layer raised for the request itself (a body too large, malformed, compressed). */
export function isClientError(err: unknown): boolean {
  const { status, expose } = err as { status?: unknown; expose?: unknown };
  return typeof status === 'number' && status >= 400 && status < 500 && expose === true;
}
