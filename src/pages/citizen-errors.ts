import type { Request, Response } from 'express';
import type { Loa } from '../domain/loa.ts';
import { MESSAGES, type ErrorCode, type Locale } from './i18n.ts';
import { localeOf, renderPage, type PageData } from './render.ts';

/**
 * The HTTP status of each page; 400 where none is named. A cancel is the citizen's own choice, not
 * an error: its page answers 200 (monitoring counts no failure; the refusal is in the assertion log).
 * A genuine answer below the level the service requires is refused for what it is, not for its
 * form: 403. A means that is down or expired: 503, try another.
 */
const STATUS: Partial<Record<ErrorCode, number>> = {
  cancelled: 200,
  loa_too_low: 403,
  not_found: 404,
  bad_request: 400,
  sep_request_refused: 400,
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

export interface CitizenErrorOptions {
  /** The login the citizen can go on with (another means, or giving up back to the service). */
  uid?: string;
  /** The other means that qualify for this login and can be used now. */
  alternatives?: OfferedMeans[];
  /** The means that failed, offered again. */
  retry?: OfferedMeans;
  /** The means that failed, named in the message (cancelled, loa_too_low). */
  failed?: OfferedMeans;
  /** The level the service requires (loa_too_low). */
  minimumLoa?: Loa;
  /** The code the SeP learns if the citizen gives up here. */
  afterCode?: ErrorCode;
  /** The help-desk reference of the refusal's log record. */
  reference?: string;
}

/** What happened, in the citizen's language, as specific as the page knows it. */
function messageOf(code: ErrorCode, locale: Locale, options: CitizenErrorOptions): string {
  const t = MESSAGES[locale];
  const failed = options.failed?.name[locale];
  if (code === 'cancelled' && failed) return t.error.cancelledAt(failed);
  if (code === 'loa_too_low' && options.minimumLoa) {
    const required = t.error.loaRequired(t.common.loaRequired[options.minimumLoa]);
    return failed ? `${required} ${t.error.loaNotReachedBy(failed)}` : required;
  }
  return t.error.codes[code];
}

/**
 * The error page's content, for whichever layer renders it (Express here, oidc-provider's Koa in
 * `renderError`): what happened in the citizen's language, and what to do next (another qualifying
 * means, or back to the service). A cancel gets a calm page of its own title; every other failure
 * is "the login did not succeed".
 */
export function errorPage(code: ErrorCode, locale: Locale, options: CitizenErrorOptions = {}): PageData {
  const t = MESSAGES[locale].error;
  const calm = code === 'cancelled';
  const heading = calm ? t.cancelledTitle : t.title;
  return {
    title: heading,
    heading,
    calm,
    message: messageOf(code, locale, options),
    uid: options.uid ?? null,
    alternatives: (options.alternatives ?? []).map((means) => ({ id: means.id, name: means.name[locale] })),
    alternativesLabel: code === 'loa_too_low' ? t.tryQualifying : t.tryOther,
    retry: options.retry ? { id: options.retry.id, name: options.retry.name[locale] } : null,
    // The selection page itself, listing every means (not the single means it would go straight to).
    backToChoice: calm && options.uid !== undefined,
    afterCode: options.afterCode ?? null,
    // Nothing for the help desk after a cancel: nothing went wrong.
    reference: calm ? null : (options.reference ?? null),
  };
}

/** The error page as the answer to an Express request, with the status its code calls for. */
export function showCitizenError(req: Request, res: Response, code: ErrorCode, options: CitizenErrorOptions = {}): void {
  renderPage(req, res, 'error', errorPage(code, localeOf(req), options), STATUS[code] ?? 400);
}

/** An error the HTTP layer raised for the request itself (a body too large, malformed, compressed). */
export function isClientError(err: unknown): boolean {
  const { status, expose } = err as { status?: unknown; expose?: unknown };
  return typeof status === 'number' && status >= 400 && status < 500 && expose === true;
}
