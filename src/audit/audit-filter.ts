import type { Knex } from 'knex';
import { z } from 'zod';
import { describeIssues } from '../config/configuration-error.ts';
import { LOA_LEVELS } from '../domain/loa.ts';
import type { RecordContent } from './chain.ts';
import { helpDeskReferenceOf } from './help-desk-reference.ts';

/**
 * Which records an auditor asks for. The same filter runs as SQL (queries) and in memory (exports,
 * which walk the whole chain between two checkpoints and keep only the matching records whole).
 */
export interface AuditFilter {
  /** Epoch milliseconds, inclusive. */
  from?: number;
  /** Epoch milliseconds, exclusive. */
  to?: number;
  sepId?: string;
  means?: string;
  loa?: string;
  outcome?: 'success' | 'failure';
  pseudonym?: string;
  /** A citizen's per-group pseudonyms (the account page's history). */
  pseudonyms?: readonly string[];
  requestId?: string;
  event?: string;
  events?: readonly string[];
  /** The help-desk reference a citizen quotes from an error page (`detail.reference` of a refusal). */
  reference?: string;
}

/** A filter refused for its content; `problems` name each parameter. */
export class InvalidAuditFilter extends Error {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(problems.join('; '));
    this.problems = problems;
  }
}

/** `2024-03-01`, `2024-03-01T12:00:00Z` (or with an offset), or epoch milliseconds. */
const instant = z
  .string()
  .trim()
  .max(40)
  .transform((value, ctx) => {
    if (/^\d{1,15}$/.test(value)) return Number(value);
    if (/^\d{4}-\d{2}-\d{2}$/.test(value) || /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/.test(value)) {
      const ms = Date.parse(value);
      if (Number.isFinite(ms)) return ms;
    }
    ctx.addIssue({ code: 'custom', message: 'must be a date (2024-03-01), an ISO 8601 time with a zone (2024-03-01T12:00:00Z) or epoch milliseconds' });
    return z.NEVER;
  });

const text = (max: number) => z.string().min(1).max(max);

const reference = z.string().transform((value, ctx) => {
  const normal = helpDeskReferenceOf(value);
  if (normal) return normal;
  ctx.addIssue({ code: 'custom', message: 'must be the 8-character code from the citizen\'s error page (such as K7PM3QXD)' });
  return z.NEVER;
});

/** How the reference appears in a record's detail, which is stored as canonical JSON (no spaces, keys sorted). */
const referenceInDetail = (code: string) => `"reference":"${code}"`;

const filterSchema = z
  .object({
    from: instant.optional(),
    to: instant.optional(),
    sep: text(64).optional(),
    means: text(40).optional(),
    loa: z.enum(LOA_LEVELS).optional(),
    outcome: z.enum(['success', 'failure']).optional(),
    pseudonym: text(100).optional(),
    requestId: text(200).optional(),
    event: text(40).regex(/^[a-z_]+$/, 'must be an event name such as token_issued').optional(),
    reference: reference.optional(),
  })
  .strict()
  .refine((value) => value.from === undefined || value.to === undefined || value.from < value.to, { message: 'must be later than from', path: ['to'] });

export const FILTER_PARAMETERS = ['from', 'to', 'sep', 'means', 'loa', 'outcome', 'pseudonym', 'requestId', 'event', 'reference'] as const;

/** Reads a filter from query parameters or CLI options (strings); refuses anything it does not know. */
export function parseAuditFilter(input: Record<string, unknown>): AuditFilter {
  const parsed = filterSchema.safeParse(input);
  if (!parsed.success) throw new InvalidAuditFilter(describeIssues(parsed.error.issues));
  const value = parsed.data;
  const filter: AuditFilter = {};
  if (value.from !== undefined) filter.from = value.from;
  if (value.to !== undefined) filter.to = value.to;
  if (value.sep !== undefined) filter.sepId = value.sep;
  if (value.means !== undefined) filter.means = value.means;
  if (value.loa !== undefined) filter.loa = value.loa;
  if (value.outcome !== undefined) filter.outcome = value.outcome;
  if (value.pseudonym !== undefined) filter.pseudonym = value.pseudonym;
  if (value.requestId !== undefined) filter.requestId = value.requestId;
  if (value.event !== undefined) filter.event = value.event;
  if (value.reference !== undefined) filter.reference = value.reference;
  return filter;
}

export function applyAuditFilter<T extends Knex.QueryBuilder>(query: T, filter: AuditFilter): T {
  if (filter.from !== undefined) query.where('at', '>=', filter.from);
  if (filter.to !== undefined) query.where('at', '<', filter.to);
  if (filter.sepId !== undefined) query.where('sep_id', filter.sepId);
  if (filter.means !== undefined) query.where('means', filter.means);
  if (filter.loa !== undefined) query.where('loa', filter.loa);
  if (filter.outcome !== undefined) query.where('outcome', filter.outcome);
  if (filter.pseudonym !== undefined) query.where('pseudonym', filter.pseudonym);
  if (filter.pseudonyms !== undefined) query.whereIn('pseudonym', [...filter.pseudonyms]);
  if (filter.requestId !== undefined) query.where('request_id', filter.requestId);
  if (filter.event !== undefined) query.where('event', filter.event);
  if (filter.events !== undefined) query.whereIn('event', [...filter.events]);
  // The reference is only ever [2-9A-Z]: no LIKE wildcard can come with it.
  if (filter.reference !== undefined) query.where('detail', 'like', `%${referenceInDetail(filter.reference)}%`);
  return query;
}

export function matchesAuditFilter(row: RecordContent, filter: AuditFilter): boolean {
  const at = Number(row.at);
  return (
    (filter.from === undefined || at >= filter.from) &&
    (filter.to === undefined || at < filter.to) &&
    (filter.sepId === undefined || row.sep_id === filter.sepId) &&
    (filter.means === undefined || row.means === filter.means) &&
    (filter.loa === undefined || row.loa === filter.loa) &&
    (filter.outcome === undefined || row.outcome === filter.outcome) &&
    (filter.pseudonym === undefined || row.pseudonym === filter.pseudonym) &&
    (filter.pseudonyms === undefined || (row.pseudonym !== null && filter.pseudonyms.includes(row.pseudonym))) &&
    (filter.requestId === undefined || row.request_id === filter.requestId) &&
    (filter.event === undefined || row.event === filter.event) &&
    (filter.events === undefined || filter.events.includes(row.event)) &&
    (filter.reference === undefined || row.detail.includes(referenceInDetail(filter.reference)))
  );
}

/** The filter as it is shown in an export's header and in the record of the query. */
export function describeAuditFilter(filter: AuditFilter): Record<string, unknown> {
  const out: Record<string, unknown> = { ...filter };
  if (filter.from !== undefined) out.from = new Date(filter.from).toISOString();
  if (filter.to !== undefined) out.to = new Date(filter.to).toISOString();
  if (filter.pseudonyms !== undefined) out.pseudonyms = filter.pseudonyms.length;
  return out;
}
