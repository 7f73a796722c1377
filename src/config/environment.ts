import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { SEP_ENVIRONMENTS, type SepEnvironment } from '../domain/sep-environment.ts';
import { ConfigurationErrors, type ConfigurationProblem } from './configuration-error.ts';

/** Everything Brána reads from its environment, validated once at start. */
export interface Environment {
  mode: 'development' | 'production';
  port: number;
  bindHost: string;
  publicUrl: URL;
  databaseUrl: string;
  /** Connections one node may hold to PostgreSQL. */
  databasePoolMax: number;
  /** How long a query, or the wait for a connection, may take before the request fails with 503. */
  databaseTimeoutMs: number;
  dataDir: string;
  keysDir: string;
  providersDir: string;
  /**
   * The population register configured; null: none, which the broker resolves to the test citizens
   * in development mode and refuses to start with in production mode (the CLI, which resolves no
   * one, still runs).
   */
  populationRegister: PopulationRegisterSettings | null;
  demoSepPort: number | null;
  trustProxy: boolean;
  /** Test and production SeP registrations are separate: an instance accepts and serves only its own. */
  sepEnvironment: SepEnvironment;
  rateLimits: RateLimitSettings;
  /** The longest time between two refreshes of a means' metadata (cacheDuration/validUntil may shorten it). */
  metadataRefreshIntervalMs: number;
  /** A PEM file: SP metadata of SAML SePs refreshed from its URL is taken only if this certificate signed it. */
  samlSepMetadataTrustAnchor: string | null;
  /** A PEM file of the certificate authorities trusted (instead of the system's) when fetching SAML SePs' SP metadata. */
  samlSepMetadataCa: string | null;
  audit: AuditSettings;
  /** How often a node re-reads the signing keys from the keys folder (SIGHUP re-reads at once). */
  keysReloadSeconds: number;
  /** How long SIGTERM waits for requests in flight before closing their connections. */
  shutdownGraceSeconds: number;
}

/**
 * The embedded register (a JSON file: the development test citizens, or a pilot's own data) or a
 * register service over HTTP (docs/POPULATION-REGISTER.md).
 */
export type PopulationRegisterSettings =
  | { kind: 'embedded'; file: string }
  | {
      kind: 'http';
      url: URL;
      /** Read at start from the variable BRANA_POPULATION_REGISTER_TOKEN_ENV names; never logged. */
      bearerToken: string | null;
      /** How long one request to the register may take. */
      timeoutMs: number;
    };

/** The assertion log's checkpoint interval and retention period. */
export interface AuditSettings {
  checkpointEveryRecords: number;
  checkpointEverySeconds: number;
  /** Records older than this may be purged (`brana audit purge`); null: keep everything. */
  retentionDays: number | null;
}

/**
 * Requests per client IP and window, per endpoint group. A citizen behind a shared address (an
 * office, a mobile network) shares its budget, so the citizen-facing limits are generous; the token
 * endpoint counts only failed requests, so a busy SeP's own server is never slowed, while guessing
 * secrets or codes is.
 */
export interface RateLimitSettings {
  windowMs: number;
  /** `/auth` and `/interaction/…`: the citizen's side of a login. */
  login: number;
  /**
   * Where identity means answer: `/saml/<means>/acs` (answers parsed, signatures verified: the costly
   * part) and `/oidc/<means>/callback` (each one makes Brána call the means' token endpoint).
   */
  acs: number;
  /** `/token`: failed requests only. */
  tokenFailures: number;
  /** SeP registration (`/reg`, `/register…`). */
  registration: number;
}

const DEFAULT_RATE_LIMITS: RateLimitSettings = { windowMs: 60_000, login: 600, acs: 120, tokenFailures: 60, registration: 20 };

const wholeNumber = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `must be a whole number from ${min} to ${max}`)
    .transform(Number)
    .refine((value) => value >= min && value <= max, `must be a whole number from ${min} to ${max}`);

const oneOf = <T extends string>(values: readonly [T, ...T[]]) => z.enum(values, { error: `must be one of ${values.join(', ')}` });

function isDatabaseUrl(value: string): boolean {
  if (value.startsWith('sqlite:')) return value.length > 'sqlite:'.length;
  if (!/^postgres(ql)?:\/\//.test(value)) return false;
  try {
    return Boolean(new URL(value).hostname);
  } catch {
    return false;
  }
}

function isOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.pathname === '/' && !url.search && !url.hash && !value.includes('#') && !url.username;
  } catch {
    return false;
  }
}

function isRegisterUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'https:' || url.protocol === 'http:') && !url.search && !url.hash && !value.includes('#') && !url.username && !url.password;
  } catch {
    return false;
  }
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(hostname);
}

/** One schema per variable, so that every wrong value is reported, not only the first. */
const VARIABLES = {
  BRANA_MODE: oneOf(['development', 'production']).default('development'),
  BRANA_PORT: wholeNumber(0, 65535).default(3000),
  BRANA_BIND_HOST: z.string().min(1, 'must not be empty').default('127.0.0.1'),
  BRANA_PUBLIC_URL: z.string().refine(isOrigin, 'must be an origin (http or https) without path, query or fragment, e.g. https://brana.example.cz').optional(),
  DATABASE_URL: z.string().refine(isDatabaseUrl, 'must be sqlite:<file> or postgres://user@host:port/database').optional(),
  BRANA_DB_POOL_MAX: wholeNumber(2, 200).default(10),
  BRANA_DB_TIMEOUT_MS: wholeNumber(100, 120_000).default(5000),
  BRANA_DATA_DIR: z.string().min(1, 'must not be empty').default('data'),
  BRANA_KEYS_DIR: z.string().min(1, 'must not be empty').default('keys'),
  BRANA_PROVIDERS_DIR: z.string().min(1, 'must not be empty').default('providers'),
  BRANA_POPULATION_REGISTER: z.string().min(1, 'must not be empty').optional(),
  BRANA_POPULATION_REGISTER_URL: z.string().refine(isRegisterUrl, 'must be the http(s) base URL of the register service, without credentials, query or fragment').optional(),
  BRANA_POPULATION_REGISTER_TOKEN_ENV: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be the name of an environment variable (the token itself goes in that variable)')
    .optional(),
  BRANA_POPULATION_REGISTER_TIMEOUT_MS: wholeNumber(100, 60_000).default(3000),
  BRANA_DEMO_SEP_PORT: wholeNumber(0, 65535).optional(),
  BRANA_TRUST_PROXY: oneOf(['true', 'false']).default('false'),
  BRANA_SEP_ENVIRONMENT: oneOf(SEP_ENVIRONMENTS).optional(),
  BRANA_RATE_LIMIT_WINDOW_SECONDS: wholeNumber(1, 3600).default(DEFAULT_RATE_LIMITS.windowMs / 1000),
  BRANA_RATE_LIMIT_LOGIN: wholeNumber(1, 1_000_000_000).default(DEFAULT_RATE_LIMITS.login),
  BRANA_RATE_LIMIT_ACS: wholeNumber(1, 1_000_000_000).default(DEFAULT_RATE_LIMITS.acs),
  BRANA_RATE_LIMIT_TOKEN_FAILURES: wholeNumber(1, 1_000_000_000).default(DEFAULT_RATE_LIMITS.tokenFailures),
  BRANA_RATE_LIMIT_REGISTRATION: wholeNumber(1, 1_000_000_000).default(DEFAULT_RATE_LIMITS.registration),
  BRANA_KEYS_RELOAD_SECONDS: wholeNumber(1, 3600).default(60),
  BRANA_SHUTDOWN_GRACE_SECONDS: wholeNumber(0, 600).default(25),
  BRANA_METADATA_REFRESH_SECONDS: wholeNumber(1, 7 * 24 * 3600).default(6 * 3600),
  BRANA_SAML_SEP_METADATA_TRUST_ANCHOR: z.string().min(1, 'must not be empty').optional(),
  BRANA_SAML_SEP_METADATA_CA: z.string().min(1, 'must not be empty').optional(),
  BRANA_AUDIT_CHECKPOINT_RECORDS: wholeNumber(1, 1_000_000).default(1000),
  BRANA_AUDIT_CHECKPOINT_SECONDS: wholeNumber(0, 86_400).default(300),
  BRANA_AUDIT_RETENTION_DAYS: wholeNumber(1, 36_500).optional(),
  LOG_LEVEL: oneOf(['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly']).optional(),
};
type Variables = { [K in keyof typeof VARIABLES]: z.output<(typeof VARIABLES)[K]> };

/** Values that may hold a password (or a token put where its variable's name belongs) are never repeated in a message. */
const SECRET_VARIABLES = new Set(['DATABASE_URL', 'BRANA_POPULATION_REGISTER_TOKEN_ENV']);

/**
 * Reads and checks the environment. Every wrong value is reported, each on its own line naming the
 * variable, in one `ConfigurationErrors`; nothing starts until all of them are right.
 */
export function readEnvironment(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Environment {
  const problems: ConfigurationProblem[] = [];
  const value: Partial<Variables> = {};
  for (const [name, schema] of Object.entries(VARIABLES) as Array<[keyof Variables, z.ZodType]>) {
    const raw = env[name];
    const parsed = schema.safeParse(raw);
    if (parsed.success) {
      (value as Record<string, unknown>)[name] = parsed.data;
    } else {
      const shown = raw !== undefined && !SECRET_VARIABLES.has(name) ? ` (got ${JSON.stringify(raw.slice(0, 100))})` : '';
      problems.push({ field: name, problem: `${parsed.error.issues[0]?.message ?? 'is not valid'}${shown}` });
    }
  }

  const port = value.BRANA_PORT ?? 3000;
  const publicUrl = value.BRANA_PUBLIC_URL ? new URL(value.BRANA_PUBLIC_URL) : new URL(`http://localhost:${port}`);
  if (value.BRANA_MODE === 'production') {
    if (value.BRANA_PUBLIC_URL === undefined && !problems.some((p) => p.field === 'BRANA_PUBLIC_URL')) {
      problems.push({ field: 'BRANA_PUBLIC_URL', problem: 'is required in production mode (the https address citizens and SePs use)' });
    } else if (value.BRANA_PUBLIC_URL && publicUrl.protocol !== 'https:') {
      problems.push({ field: 'BRANA_PUBLIC_URL', problem: 'must be an https URL in production mode' });
    }
  }
  const populationRegister = populationRegisterSettings(value, env, cwd, problems);
  if (problems.length) throw new ConfigurationErrors('environment', problems);

  const v = value as Variables;
  const dataDir = path.resolve(cwd, v.BRANA_DATA_DIR);
  const demo = v.BRANA_DEMO_SEP_PORT;
  return {
    mode: v.BRANA_MODE,
    port,
    bindHost: v.BRANA_BIND_HOST,
    publicUrl,
    databaseUrl: v.DATABASE_URL ?? `sqlite:${path.join(dataDir, 'brana.sqlite')}`,
    databasePoolMax: v.BRANA_DB_POOL_MAX,
    databaseTimeoutMs: v.BRANA_DB_TIMEOUT_MS,
    dataDir,
    keysDir: path.resolve(cwd, v.BRANA_KEYS_DIR),
    providersDir: path.resolve(cwd, v.BRANA_PROVIDERS_DIR),
    populationRegister,
    // BRANA_DEMO_SEP_PORT=0 turns the demo SeP off (benchmarks, clusters in development mode).
    demoSepPort: v.BRANA_MODE === 'development' && demo !== 0 ? (demo ?? (port === 0 ? null : port + 1)) : null,
    trustProxy: v.BRANA_TRUST_PROXY === 'true',
    sepEnvironment: v.BRANA_SEP_ENVIRONMENT ?? (v.BRANA_MODE === 'development' ? 'test' : 'production'),
    rateLimits: {
      windowMs: v.BRANA_RATE_LIMIT_WINDOW_SECONDS * 1000,
      login: v.BRANA_RATE_LIMIT_LOGIN,
      acs: v.BRANA_RATE_LIMIT_ACS,
      tokenFailures: v.BRANA_RATE_LIMIT_TOKEN_FAILURES,
      registration: v.BRANA_RATE_LIMIT_REGISTRATION,
    },
    keysReloadSeconds: v.BRANA_KEYS_RELOAD_SECONDS,
    shutdownGraceSeconds: v.BRANA_SHUTDOWN_GRACE_SECONDS,
    metadataRefreshIntervalMs: v.BRANA_METADATA_REFRESH_SECONDS * 1000,
    samlSepMetadataTrustAnchor: v.BRANA_SAML_SEP_METADATA_TRUST_ANCHOR === undefined ? null : path.resolve(cwd, v.BRANA_SAML_SEP_METADATA_TRUST_ANCHOR),
    samlSepMetadataCa: v.BRANA_SAML_SEP_METADATA_CA === undefined ? null : path.resolve(cwd, v.BRANA_SAML_SEP_METADATA_CA),
    audit: {
      checkpointEveryRecords: v.BRANA_AUDIT_CHECKPOINT_RECORDS,
      checkpointEverySeconds: v.BRANA_AUDIT_CHECKPOINT_SECONDS,
      retentionDays: v.BRANA_AUDIT_RETENTION_DAYS ?? null,
    },
  };
}

/**
 * Which population register, checked as one: a file or a register service (not both); a service
 * over https (plain http only on loopback in development). Nothing configured is null: the
 * composition root then uses the development test citizens in development mode, and refuses to
 * start in production mode; it also refuses a file holding the test citizens in production mode.
 */
function populationRegisterSettings(value: Partial<Variables>, env: NodeJS.ProcessEnv, cwd: string, problems: ConfigurationProblem[]): PopulationRegisterSettings | null {
  const refuse = (field: string, problem: string) => {
    problems.push({ field, problem });
    return null;
  };
  const production = value.BRANA_MODE === 'production';
  if (env.BRANA_POPULATION_REGISTER_URL === undefined) {
    for (const field of ['BRANA_POPULATION_REGISTER_TOKEN_ENV', 'BRANA_POPULATION_REGISTER_TIMEOUT_MS']) {
      if (env[field] !== undefined) refuse(field, 'applies only to a register service, and BRANA_POPULATION_REGISTER_URL is not set');
    }
  } else if (env.BRANA_POPULATION_REGISTER !== undefined) {
    return refuse('BRANA_POPULATION_REGISTER_URL', 'is set together with BRANA_POPULATION_REGISTER: configure one population register, the register service or the file');
  }
  const invalid = (name: 'BRANA_POPULATION_REGISTER' | 'BRANA_POPULATION_REGISTER_URL') => env[name] !== undefined && value[name] === undefined;
  // Already reported with its own variable.
  if (invalid('BRANA_POPULATION_REGISTER') || invalid('BRANA_POPULATION_REGISTER_URL')) return null;

  if (value.BRANA_POPULATION_REGISTER_URL) {
    const url = new URL(value.BRANA_POPULATION_REGISTER_URL);
    if (url.protocol !== 'https:') {
      if (production) return refuse('BRANA_POPULATION_REGISTER_URL', 'must be an https URL in production mode');
      if (!isLoopback(url.hostname)) return refuse('BRANA_POPULATION_REGISTER_URL', 'may use plain http only on loopback (localhost, 127.0.0.1, [::1]); use https');
    }
    const tokenVariable = value.BRANA_POPULATION_REGISTER_TOKEN_ENV;
    const bearerToken = tokenVariable ? env[tokenVariable] : undefined;
    if (tokenVariable && !bearerToken) return refuse('BRANA_POPULATION_REGISTER_TOKEN_ENV', 'names an environment variable that is not set or is empty (the bearer token belongs in that variable)');
    if (value.BRANA_POPULATION_REGISTER_TIMEOUT_MS === undefined) return null; // already reported
    return { kind: 'http', url, bearerToken: bearerToken ?? null, timeoutMs: value.BRANA_POPULATION_REGISTER_TIMEOUT_MS };
  }

  if (value.BRANA_POPULATION_REGISTER) {
    const file = path.resolve(cwd, value.BRANA_POPULATION_REGISTER);
    if (!fs.existsSync(file)) return refuse('BRANA_POPULATION_REGISTER', `file ${file} does not exist`);
    const problem = registerFileProblem(file);
    if (problem) return refuse('BRANA_POPULATION_REGISTER', `file ${file} ${problem}`);
    return { kind: 'embedded', file };
  }
  // None configured: the composition root decides (the test citizens in development; no start in production).
  return null;
}

/** What is wrong with an embedded register file, if anything. */
function registerFileProblem(file: string): string | null {
  let data: { citizens?: unknown };
  try {
    data = JSON.parse(fs.readFileSync(file, 'utf8')) as { citizens?: unknown };
  } catch (err) {
    return `cannot be read as JSON (${(err as Error).message})`;
  }
  return Array.isArray(data?.citizens) ? null : 'is not a register file: it has no "citizens" list';
}

