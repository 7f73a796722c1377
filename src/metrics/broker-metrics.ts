import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import type { CommittedRecord } from '../audit/assertion-log.ts';

/** The steps of a login whose latency is measured (the journey of CRAFT.md). */
export const LOGIN_STEPS = [
  'authorization',
  'upstream_request',
  'identity_means',
  'upstream_response',
  'consent',
  'resume',
  'token',
  'userinfo',
  'end_session',
] as const;
export type LoginStep = (typeof LOGIN_STEPS)[number];

/** The failure reasons kept apart in the metrics; any more become `other` (labels must stay few). */
const MAX_REASONS = 60;
const REASON = /^[A-Za-z0-9_]{1,64}$/;

/**
 * Brána's Prometheus metrics, one registry per broker. Logins and failures are counted from the
 * assertion log's committed records (so the numbers are the log's numbers); latency is measured
 * where each step happens. Labels are bounded: step, means (the configured identity means), reason.
 */
export class BrokerMetrics {
  readonly registry = new Registry();
  private readonly logins: Counter<'means'>;
  private readonly failures: Counter<'reason'>;
  private readonly firstTime: Counter<'means'>;
  private readonly steps: Histogram<'step' | 'means'>;
  private readonly requests: Counter;
  private readonly statements: Counter;
  private readonly knownMeans: ReadonlySet<string>;
  private readonly reasons = new Set<string>();

  constructor(knownMeans: readonly string[]) {
    this.knownMeans = new Set(knownMeans);
    collectDefaultMetrics({ register: this.registry, prefix: 'brana_' });
    this.logins = new Counter({ name: 'brana_logins_total', help: 'Completed logins: tokens issued to SePs, by identity means', labelNames: ['means'], registers: [this.registry] });
    this.failures = new Counter({ name: 'brana_login_failures_total', help: 'Failed logins by reason (errors and refused consent)', labelNames: ['reason'], registers: [this.registry] });
    this.firstTime = new Counter({ name: 'brana_first_time_resolutions_total', help: 'Citizens resolved for the first time (new registrations), by identity means', labelNames: ['means'], registers: [this.registry] });
    // What a login costs in work, beside time: HTTP requests served and SQL statements sent (bench reads both).
    this.requests = new Counter({ name: 'brana_http_requests_total', help: 'HTTP requests this node received', registers: [this.registry] });
    this.statements = new Counter({ name: 'brana_database_statements_total', help: 'SQL statements this node sent to the database', registers: [this.registry] });
    this.steps = new Histogram({
      name: 'brana_step_duration_seconds',
      help: 'Time Brána (or, for identity_means, the citizen at the identity means) spent in each step of a login',
      labelNames: ['step', 'means'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30, 120, 600],
      registers: [this.registry],
    });
  }

  private means(value: string | null | undefined): string {
    return value && this.knownMeans.has(value) ? value : value ? 'other' : 'none';
  }

  private reason(value: string | null | undefined): string {
    const reason = value && REASON.test(value) ? value : 'other';
    if (this.reasons.has(reason)) return reason;
    if (this.reasons.size >= MAX_REASONS) return 'other';
    this.reasons.add(reason);
    return reason;
  }

  countRequest(): void {
    this.requests.inc();
  }

  countStatement(): void {
    this.statements.inc();
  }

  /** Counts a committed assertion log record. */
  observeRecord(record: CommittedRecord): void {
    switch (record.event) {
      case 'token_issued':
        this.logins.inc({ means: this.means(record.means) });
        break;
      case 'identity_resolved':
        if (record.detail.firstTime === true) this.firstTime.inc({ means: this.means(record.means) });
        break;
      case 'error':
      case 'consent_refused':
        this.failures.inc({ reason: this.reason(record.reason) });
        break;
      default:
    }
  }

  /** Starts timing a step; call the result when the step ends (the means may be known only then). */
  time(step: LoginStep, means?: string | null): (meansAtEnd?: string | null) => void {
    const started = process.hrtime.bigint();
    return (meansAtEnd) => {
      this.steps.observe({ step, means: this.means(meansAtEnd ?? means) }, Number(process.hrtime.bigint() - started) / 1e9);
    };
  }

  /** A step whose duration is known from elsewhere (the time a citizen spent at the identity means). */
  observe(step: LoginStep, means: string | null | undefined, seconds: number): void {
    if (Number.isFinite(seconds) && seconds >= 0) this.steps.observe({ step, means: this.means(means) }, seconds);
  }
}
