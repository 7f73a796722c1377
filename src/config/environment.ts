import path from 'node:path';
import { z } from 'zod';
import { ConfigurationError, describeIssues } from './configuration-error.ts';
import { SEP_ENVIRONMENTS, type SepEnvironment } from '../sep/sep.ts';
import { DEFAULT_RATE_LIMITS, type RateLimitSettings } from '../http/rate-limits.ts';

/** Everything Brána reads from its environment, validated once at start. */
export interface Environment {
  mode: 'development' | 'production';
  port: number;
  bindHost: string;
  publicUrl: URL;
  databaseUrl: string;
  dataDir: string;
  keysDir: string;
  providersDir: string;
  demoSepPort: number | null;
  trustProxy: boolean;
  /** Test and production SeP registrations are separate: an instance accepts and serves only its own. */
  sepEnvironment: SepEnvironment;
  rateLimits: RateLimitSettings;
  /** The longest time between two refreshes of a means' metadata (cacheDuration/validUntil may shorten it). */
  metadataRefreshIntervalMs: number;
  audit: AuditSettings;
}

/** The assertion log's checkpoint interval and retention period. */
export interface AuditSettings {
  checkpointEveryRecords: number;
  checkpointEverySeconds: number;
  /** Records older than this may be purged (`brana audit purge`); null: keep everything. */
  retentionDays: number | null;
}

const schema = z.object({
  BRANA_MODE: z.enum(['development', 'production']).default('development'),
  BRANA_PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  BRANA_BIND_HOST: z.string().min(1).default('127.0.0.1'),
  BRANA_PUBLIC_URL: z.string().url().optional(),
  DATABASE_URL: z.string().min(1).optional(),
  BRANA_DATA_DIR: z.string().min(1).default('data'),
  BRANA_KEYS_DIR: z.string().min(1).default('keys'),
  BRANA_PROVIDERS_DIR: z.string().min(1).default('providers'),
  BRANA_DEMO_SEP_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  BRANA_TRUST_PROXY: z.enum(['true', 'false']).default('false'),
  BRANA_SEP_ENVIRONMENT: z.enum(SEP_ENVIRONMENTS).optional(),
  BRANA_RATE_LIMIT_WINDOW_SECONDS: z.coerce.number().int().min(1).max(3600).default(DEFAULT_RATE_LIMITS.windowMs / 1000),
  BRANA_RATE_LIMIT_LOGIN: z.coerce.number().int().min(1).default(DEFAULT_RATE_LIMITS.login),
  BRANA_RATE_LIMIT_ACS: z.coerce.number().int().min(1).default(DEFAULT_RATE_LIMITS.acs),
  BRANA_RATE_LIMIT_TOKEN_FAILURES: z.coerce.number().int().min(1).default(DEFAULT_RATE_LIMITS.tokenFailures),
  BRANA_RATE_LIMIT_REGISTRATION: z.coerce.number().int().min(1).default(DEFAULT_RATE_LIMITS.registration),
  BRANA_METADATA_REFRESH_SECONDS: z.coerce.number().int().min(1).max(7 * 24 * 3600).default(6 * 3600),
  BRANA_AUDIT_CHECKPOINT_RECORDS: z.coerce.number().int().min(1).max(1_000_000).default(1000),
  BRANA_AUDIT_CHECKPOINT_SECONDS: z.coerce.number().int().min(0).max(86_400).default(300),
  BRANA_AUDIT_RETENTION_DAYS: z.coerce.number().int().min(1).max(36_500).optional(),
});

export function readEnvironment(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Environment {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const [first] = describeIssues(parsed.error.issues);
    const [field = '(root)', ...rest] = (first ?? 'unknown: invalid').split(': ');
    throw new ConfigurationError('environment', field, rest.join(': '));
  }
  const value = parsed.data;
  const port = value.BRANA_PORT;
  const publicUrl = new URL(value.BRANA_PUBLIC_URL ?? `http://localhost:${port}`);
  if (publicUrl.pathname !== '/' || publicUrl.search || publicUrl.hash) {
    throw new ConfigurationError('environment', 'BRANA_PUBLIC_URL', 'must be an origin without path, query or fragment');
  }
  if (value.BRANA_MODE === 'production' && publicUrl.protocol !== 'https:') {
    throw new ConfigurationError('environment', 'BRANA_PUBLIC_URL', 'must be an https URL in production mode');
  }
  const dataDir = path.resolve(cwd, value.BRANA_DATA_DIR);
  return {
    mode: value.BRANA_MODE,
    port,
    bindHost: value.BRANA_BIND_HOST,
    publicUrl,
    databaseUrl: value.DATABASE_URL ?? `sqlite:${path.join(dataDir, 'brana.sqlite')}`,
    dataDir,
    keysDir: path.resolve(cwd, value.BRANA_KEYS_DIR),
    providersDir: path.resolve(cwd, value.BRANA_PROVIDERS_DIR),
    // BRANA_DEMO_SEP_PORT=0 turns the demo SeP off (benchmarks, clusters in development mode).
    demoSepPort: value.BRANA_MODE === 'development' && value.BRANA_DEMO_SEP_PORT !== 0 ? (value.BRANA_DEMO_SEP_PORT ?? port + 1) : null,
    trustProxy: value.BRANA_TRUST_PROXY === 'true',
    sepEnvironment: value.BRANA_SEP_ENVIRONMENT ?? (value.BRANA_MODE === 'development' ? 'test' : 'production'),
    rateLimits: {
      windowMs: value.BRANA_RATE_LIMIT_WINDOW_SECONDS * 1000,
      login: value.BRANA_RATE_LIMIT_LOGIN,
      acs: value.BRANA_RATE_LIMIT_ACS,
      tokenFailures: value.BRANA_RATE_LIMIT_TOKEN_FAILURES,
      registration: value.BRANA_RATE_LIMIT_REGISTRATION,
    },
    metadataRefreshIntervalMs: value.BRANA_METADATA_REFRESH_SECONDS * 1000,
    audit: {
      checkpointEveryRecords: value.BRANA_AUDIT_CHECKPOINT_RECORDS,
      checkpointEverySeconds: value.BRANA_AUDIT_CHECKPOINT_SECONDS,
      retentionDays: value.BRANA_AUDIT_RETENTION_DAYS ?? null,
    },
  };
}
