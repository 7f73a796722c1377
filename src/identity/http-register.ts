import { z } from 'zod';
import { outageLog } from '../log/outage-log.ts';
import { RegisterUnavailable, type IdentityQuery, type PopulationRegister, type RegisterMatch, type RegisterRecord } from './population-register.ts';

const postalAddress = z.object({
  street: z.string(),
  houseNumber: z.string(),
  town: z.string(),
  townPart: z.string(),
  postCode: z.string(),
  country: z.string(),
  ruianCode: z.string(),
});

/** The record shape of the contract; fields the contract does not name are dropped, not passed on. */
const registerRecord = z.object({
  registerId: z.string().min(1),
  givenName: z.string().min(1),
  familyName: z.string().min(1),
  dateOfBirth: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  placeOfBirth: z.string(),
  countryCodeOfBirth: z.string(),
  address: postalAddress,
  email: z.string().nullable(),
  phone: z.string().nullable(),
  idDocument: z.object({ type: z.string(), number: z.string() }).nullable(),
}) satisfies z.ZodType<RegisterRecord>;

const matchAnswer = z.discriminatedUnion('result', [
  z.object({ result: z.literal('found'), record: registerRecord }),
  z.object({ result: z.literal('not_found') }),
  z.object({ result: z.literal('ambiguous') }),
]);

/** A register's answer is small; anything far larger is not an answer under the contract. */
const MAX_ANSWER_CHARS = 1_000_000;
/** The health probe answers /readyz, which must itself answer within its own bound (2 s). */
const PROBE_TIMEOUT_MS = 1500;

export interface HttpRegisterOptions {
  /** The service's base URL: look-ups go to `<url>/match` and `<url>/persons/<registerId>`. */
  url: URL;
  /** How long one request may take, its answer included. */
  timeoutMs: number;
  bearerToken: string | null;
  /** Further attempts after a network error or a 5xx (a look-up changes nothing, so repeating it is safe). */
  retries?: number;
  /** The wait before the first further attempt, doubled before each next one. */
  retryDelayMs?: number;
}

type Answer = { status: number; body: unknown };

/**
 * A population register service over HTTP (contract: docs/POPULATION-REGISTER.md). Whatever goes
 * wrong (no connection, no answer in time, a 5xx after the retries, a status or body outside the
 * contract) is one `RegisterUnavailable`, never a person wrongly found or not found. Personal data
 * goes in request bodies, never in URLs, so that no access log along the way keeps it.
 */
export class HttpRegister implements PopulationRegister {
  private readonly base: URL;
  private readonly timeoutMs: number;
  private readonly headers: Record<string, string>;
  private readonly retries: number;
  private readonly retryDelayMs: number;

  constructor(options: HttpRegisterOptions) {
    // A base without a trailing slash would lose its last path segment when look-up paths are resolved against it.
    this.base = new URL(options.url.href.endsWith('/') ? options.url.href : `${options.url.href}/`);
    this.timeoutMs = options.timeoutMs;
    this.headers = { accept: 'application/json', ...(options.bearerToken ? { authorization: `Bearer ${options.bearerToken}` } : {}) };
    this.retries = options.retries ?? 2;
    this.retryDelayMs = options.retryDelayMs ?? 100;
  }

  async match(query: IdentityQuery): Promise<RegisterMatch> {
    const { givenName, familyName, dateOfBirth, placeOfBirth } = query;
    const answer = await this.lookUp('match', 'match', { givenName, familyName, dateOfBirth, ...(placeOfBirth ? { placeOfBirth } : {}) });
    if (answer.status !== 200) throw unavailable('status', `match answered HTTP ${answer.status}`);
    const parsed = matchAnswer.safeParse(answer.body);
    if (!parsed.success) throw unavailable('malformed', `match answered outside the contract (${describeIssue(parsed.error)})`);
    return parsed.data.result === 'found' ? { kind: 'found', record: parsed.data.record } : { kind: parsed.data.result };
  }

  async findById(registerId: string): Promise<RegisterRecord | undefined> {
    const answer = await this.lookUp('findById', `persons/${encodeURIComponent(registerId)}`);
    if (answer.status === 404) return undefined;
    if (answer.status !== 200) throw unavailable('status', `findById answered HTTP ${answer.status}`);
    const parsed = registerRecord.safeParse(answer.body);
    if (!parsed.success) throw unavailable('malformed', `findById answered outside the contract (${describeIssue(parsed.error)})`);
    if (parsed.data.registerId !== registerId) throw unavailable('malformed', 'findById answered with the record of another register id');
    return parsed.data;
  }

  /** Whether the service answers its health check now: one short attempt, for readiness. */
  async probe(): Promise<void> {
    let response: Response;
    try {
      response = await fetch(new URL('health', this.base), { headers: this.headers, redirect: 'manual', signal: AbortSignal.timeout(Math.min(this.timeoutMs, PROBE_TIMEOUT_MS)) });
      await response.body?.cancel();
    } catch (err) {
      throw networkFailure('health', err, Math.min(this.timeoutMs, PROBE_TIMEOUT_MS));
    }
    if (!response.ok) throw new RegisterUnavailable('status', `health answered HTTP ${response.status}`);
  }

  /**
   * One look-up with its retries: the first answer that is not a 5xx, its body parsed when it is
   * 200. A timeout is not retried: it has already cost the citizen the whole wait.
   */
  private async lookUp(operation: string, path: string, query?: Record<string, string>): Promise<Answer> {
    const url = new URL(path, this.base);
    for (let attempt = 0; ; attempt += 1) {
      let failure: RegisterUnavailable;
      try {
        const response = await fetch(url, {
          method: query ? 'POST' : 'GET',
          headers: query ? { ...this.headers, 'content-type': 'application/json' } : this.headers,
          ...(query ? { body: JSON.stringify(query) } : {}),
          redirect: 'manual',
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        if (response.status < 500) return { status: response.status, body: response.status === 200 ? await readJson(operation, response) : await discard(response) };
        await response.body?.cancel();
        failure = new RegisterUnavailable('status', `${operation} answered HTTP ${response.status}`);
      } catch (err) {
        if (err instanceof RegisterUnavailable) throw logged(err);
        failure = networkFailure(operation, err, this.timeoutMs);
        if (failure.reason === 'timeout') throw logged(failure);
      }
      if (attempt >= this.retries) throw logged(failure);
      await new Promise((resolve) => setTimeout(resolve, this.retryDelayMs * 2 ** attempt));
    }
  }
}

async function readJson(operation: string, response: Response): Promise<unknown> {
  const text = await response.text();
  if (text.length > MAX_ANSWER_CHARS) throw new RegisterUnavailable('malformed', `${operation} answered with more than ${MAX_ANSWER_CHARS} characters`);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new RegisterUnavailable('malformed', `${operation} answered with a body that is not JSON`);
  }
}

async function discard(response: Response): Promise<undefined> {
  await response.body?.cancel();
  return undefined;
}

function networkFailure(operation: string, err: unknown, timeoutMs: number): RegisterUnavailable {
  if (err instanceof Error && err.name === 'TimeoutError') return new RegisterUnavailable('timeout', `${operation}: no answer within ${timeoutMs} ms`);
  const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
  const why = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : (err as Error).message;
  return new RegisterUnavailable('unreachable', `${operation}: ${why}`);
}

function unavailable(reason: RegisterUnavailable['reason'], detail: string): RegisterUnavailable {
  return logged(new RegisterUnavailable(reason, detail));
}

/**
 * For operators: what failed and why; never the query, the record or the token. One line per reason
 * and interval while the register is out, not one per citizen.
 */
function logged(err: RegisterUnavailable): RegisterUnavailable {
  outageLog.report('warn', 'population register unavailable', err.reason, { detail: err.message });
  return err;
}

function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  return issue ? `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}` : 'not valid';
}
