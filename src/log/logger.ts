import winston from 'winston';

/**
 * Structured JSON logs for operators. Never pass secrets, tokens, codes or SAML bodies here:
 * `redact` below is a last line of defence, not the policy.
 */
const SENSITIVE_KEYS = /^(client_secret|secret|password|code|code_verifier|access_token|id_token|refresh_token|token|SAMLResponse|SAMLRequest|assertion|authorization|cookie)$/i;

function redact(value: unknown, depth = 0): unknown {
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => redact(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    out[key] = SENSITIVE_KEYS.test(key) ? '[redacted]' : redact(item, depth + 1);
  }
  return out;
}

const redactFormat = winston.format((info) => {
  for (const key of Object.keys(info)) {
    if (SENSITIVE_KEYS.test(key)) info[key] = '[redacted]';
    else if (key !== 'level' && key !== 'message') info[key] = redact(info[key]);
  }
  return info;
});

export const logger = winston.createLogger({
  level: process.env.LOG_LEVEL ?? (process.env.NODE_ENV === 'test' ? 'error' : 'info'),
  format: winston.format.combine(winston.format.timestamp(), redactFormat(), winston.format.json()),
  defaultMeta: { service: 'brana' },
  transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn'] })],
});

/**
 * For command-line tools, whose standard output is their result (JSON, an export): every log line
 * goes to standard error instead, so that `brana audit export > file` holds nothing but the export.
 */
export function logToStandardError(): void {
  logger.clear().add(new winston.transports.Console({ stderrLevels: Object.keys(logger.levels) }));
}

export type Logger = typeof logger;
