/**
 * After each scenario: is the database Brána leaves behind consistent? The assertion log is
 * verified by the operator's own tool (`brana audit verify`, through the CLI), and a few queries
 * look for rows that one step should have written together and a fault split: a row without its
 * log record, a log record without its row, a code consumed without a token.
 */
import pg from 'pg';
import { runCliToEnd } from '../cluster.ts';

export interface AuditVerification {
  /** `brana audit verify` exited 0. */
  intact: boolean;
  exitCode: number | null;
  records: number | null;
  checkpointsValid: number | null;
  firstBad: unknown;
  /** What the CLI said on stderr when it failed. */
  message?: string;
}

export async function verifyAuditLog(env: NodeJS.ProcessEnv): Promise<AuditVerification> {
  const outcome = await runCliToEnd(['audit', 'verify'], env);
  let report: { intact?: boolean; records?: number; checkpoints?: { valid?: number }; firstBad?: unknown } = {};
  try {
    report = JSON.parse(outcome.stdout) as typeof report;
  } catch {
    // no report: the command failed before verifying
  }
  return {
    intact: outcome.code === 0 && report.intact === true,
    exitCode: outcome.code,
    records: report.records ?? null,
    checkpointsValid: report.checkpoints?.valid ?? null,
    firstBad: report.firstBad ?? null,
    ...(outcome.code === 0 ? {} : { message: outcome.stderr.trim().slice(0, 500) }),
  };
}

/** Each check: a name, what it means, and the query counting the rows it finds. */
const CHECKS: Array<{ name: string; meaning: string; sql: string }> = [
  {
    name: 'upstream_request_without_log_record',
    meaning: 'a request sent to the identity means (upstream_request) without its request_sent_upstream record',
    sql: `SELECT count(*) AS n FROM upstream_request u WHERE NOT EXISTS (
            SELECT 1 FROM assertion_log l WHERE l.event = 'request_sent_upstream' AND l.detail::jsonb->>'upstreamRequestId' = u.request_id)`,
  },
  {
    name: 'log_record_without_upstream_request',
    meaning: 'a request_sent_upstream record whose upstream_request row does not exist',
    sql: `SELECT count(*) AS n FROM assertion_log l WHERE l.event = 'request_sent_upstream' AND NOT EXISTS (
            SELECT 1 FROM upstream_request u WHERE u.request_id = l.detail::jsonb->>'upstreamRequestId')`,
  },
  {
    name: 'consumed_request_without_outcome',
    meaning: 'an upstream_request marked answered (consumed_at) without an outcome',
    sql: `SELECT count(*) AS n FROM upstream_request WHERE consumed_at IS NOT NULL AND outcome IS NULL`,
  },
  {
    name: 'accepted_answer_without_log_record',
    meaning: 'an upstream_request answered successfully without its response_received record',
    sql: `SELECT count(*) AS n FROM upstream_request u WHERE u.outcome = 'success' AND NOT EXISTS (
            SELECT 1 FROM assertion_log l WHERE l.event = 'response_received' AND l.detail::jsonb->>'upstreamRequestId' = u.request_id)`,
  },
  {
    name: 'log_record_without_accepted_answer',
    meaning: "a response_received record whose upstream_request is not marked answered successfully",
    sql: `SELECT count(*) AS n FROM assertion_log l WHERE l.event = 'response_received' AND NOT EXISTS (
            SELECT 1 FROM upstream_request u WHERE u.request_id = l.detail::jsonb->>'upstreamRequestId' AND u.outcome = 'success')`,
  },
  {
    name: 'code_consumed_without_token',
    meaning: 'an authorization code marked consumed with no access token of its grant (the code was spent, no token was issued)',
    sql: `SELECT count(*) AS n FROM oidc_model c WHERE c.model = 'AuthorizationCode' AND c.consumed_at IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM oidc_model t WHERE t.model = 'AccessToken' AND t.grant_id = c.grant_id)`,
  },
  {
    name: 'token_without_log_record',
    meaning: 'an access token without a token_issued record of its grant',
    sql: `SELECT count(*) AS n FROM oidc_model t WHERE t.model = 'AccessToken' AND NOT EXISTS (
            SELECT 1 FROM assertion_log l WHERE l.event = 'token_issued' AND l.detail::jsonb->>'grantId' = t.grant_id)`,
  },
  {
    name: 'log_sequence_gaps',
    meaning: 'numbers missing from the assertion log\'s sequence (a record lost between others)',
    sql: `SELECT coalesce(max(seq) - min(seq) + 1 - count(*), 0) AS n FROM assertion_log`,
  },
];

export const HALF_WRITTEN_CHECKS = CHECKS.map(({ name, meaning }) => ({ name, meaning }));

export async function findHalfWrittenRows(databaseUrl: string): Promise<Record<string, number>> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    const found: Record<string, number> = {};
    for (const check of CHECKS) found[check.name] = Number((await client.query<{ n: string }>(check.sql)).rows[0]?.n ?? 0);
    return found;
  } finally {
    await client.end();
  }
}

/** Records of the assertion log by event (and failures by reason), for the report. */
export async function logSummary(databaseUrl: string): Promise<{ byEvent: Record<string, number>; failures: Record<string, number> }> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    const byEvent: Record<string, number> = {};
    for (const row of (await client.query<{ event: string; n: string }>('SELECT event, count(*) AS n FROM assertion_log GROUP BY event ORDER BY event')).rows) byEvent[row.event] = Number(row.n);
    const failures: Record<string, number> = {};
    for (const row of (
      await client.query<{ event: string; reason: string | null; n: string }>(
        "SELECT event, reason, count(*) AS n FROM assertion_log WHERE outcome = 'failure' GROUP BY event, reason ORDER BY count(*) DESC",
      )
    ).rows) {
      failures[`${row.event}${row.reason ? ` ${row.reason}` : ''}`] = Number(row.n);
    }
    return { byEvent, failures };
  } finally {
    await client.end();
  }
}

/** What became of a code the SeP could not exchange. */
export interface LostCodeFate {
  /** A `token_issued` record of its login exists: Brána issued a token, its answer never reached the SeP. */
  tokenIssued: boolean;
  /** The code's row: consumed, not consumed (still exchangeable until it expires), or gone (its grant revoked, e.g. by the replay check). */
  code: 'consumed' | 'unconsumed' | 'gone';
}

/**
 * For each lost code, whether Brána issued a token for it, and the state of the code itself
 * (an oidc-provider authorization code's row id is the code).
 */
export async function lostCodeFates(databaseUrl: string, lost: Array<{ requestId: string; code: string }>): Promise<LostCodeFate[]> {
  if (!lost.length) return [];
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    const issued = new Set(
      (await client.query<{ request_id: string }>("SELECT DISTINCT request_id FROM assertion_log WHERE event = 'token_issued' AND request_id = ANY($1)", [lost.map((l) => l.requestId)])).rows.map(
        (row) => row.request_id,
      ),
    );
    const codes = new Map(
      (await client.query<{ id: string; consumed_at: string | null }>("SELECT id, consumed_at FROM oidc_model WHERE model = 'AuthorizationCode' AND id = ANY($1)", [lost.map((l) => l.code)])).rows.map(
        (row) => [row.id, row.consumed_at] as const,
      ),
    );
    return lost.map((l) => ({
      tokenIssued: issued.has(l.requestId),
      code: !codes.has(l.code) ? 'gone' : codes.get(l.code) === null ? 'unconsumed' : 'consumed',
    }));
  } finally {
    await client.end();
  }
}
