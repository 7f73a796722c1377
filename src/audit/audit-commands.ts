import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type * as jose from 'jose';
import { readEnvironment } from '../config/environment.ts';
import type { Database } from '../store/database.ts';
import { auditExported, auditQueried } from './audit-events.ts';
import { describeAuditFilter, FILTER_PARAMETERS, InvalidAuditFilter, parseAuditFilter, type AuditFilter } from './audit-filter.ts';
import type { AuditTrail } from './audit-trail.ts';
import { ChainNotVouchable } from './checkpoints.ts';
import { EXPORT_FORMATS, exportForVerification, ExportUnreadable, sinkOf, writeExport, type ExportFormat } from './export.ts';
import { purgeOlderThan, PurgeRefused } from './retention.ts';
import { verifyChain, verifyStoredLog, type VerificationReport } from './verification.ts';

/** The log failed verification: `brana` exits with 3 so that scripts can tell it from a mistake (2). */
export class LogNotIntact extends Error {}

export interface AuditCommandContext {
  withStore<T>(action: (store: { db: Database; audit: AuditTrail }) => Promise<T>): Promise<T>;
  /** An operator mistake: one line, exit code 2. */
  fail(message: string): never;
  print(value: unknown): void;
}

interface FilterOptions {
  from?: string;
  to?: string;
  sep?: string;
  means?: string;
  loa?: string;
  outcome?: string;
  pseudonym?: string;
  requestId?: string;
  event?: string;
  reference?: string;
}

function withFilterOptions(command: Command): Command {
  return command
    .option('--from <time>', 'records at or after this time (2024-03-01, 2024-03-01T12:00:00Z or epoch ms)')
    .option('--to <time>', 'records before this time')
    .option('--sep <clientId>', 'records of this SeP')
    .option('--means <id>', 'records of this identity means')
    .option('--loa <level>', 'low, substantial or high')
    .option('--outcome <outcome>', 'success or failure')
    .option('--pseudonym <pseudonym>', "records of this citizen's per-SeP-group pseudonym")
    .option('--request-id <id>', 'the records of one login')
    .option('--event <event>', 'records of this event (token_issued, error, …)')
    .option('--reference <code>', 'the refusal a citizen\'s error page names by this code (help desk)');
}

function filterOf(options: FilterOptions, fail: AuditCommandContext['fail']): AuditFilter {
  const input: Record<string, string> = {};
  for (const key of FILTER_PARAMETERS) {
    const value = options[key];
    if (value !== undefined) input[key] = value;
  }
  try {
    return parseAuditFilter(input);
  } catch (err) {
    if (err instanceof InvalidAuditFilter) fail(err.problems.map((problem) => `--${problem.replace(/^requestId/, 'request-id')}`).join('\n'));
    throw err;
  }
}

/** The audit public key(s) from a JWKS or JWK file; private members are dropped. */
export function readAuditPublicJwks(file: string): { keys: jose.JWK[] } {
  let value: unknown;
  try {
    value = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ExportUnreadable(`${file}: is not a readable JSON key file (${(err as Error).message})`);
  }
  const keys = (Array.isArray((value as { keys?: unknown }).keys) ? (value as { keys: jose.JWK[] }).keys : [value as jose.JWK]).map(({ d: _private, ...publicJwk }) => publicJwk);
  if (!keys.every((key) => key.kty === 'EC' && key.crv === 'P-256' && typeof key.x === 'string')) throw new ExportUnreadable(`${file}: keys: must be ES256 (P-256) public keys`);
  return { keys };
}

function explain(report: VerificationReport): string {
  const first = report.firstBad!;
  return `assertion log NOT intact: first bad record ${first.seq} (${first.kind}): ${first.message}`;
}

export function registerAuditCommands(program: Command, context: AuditCommandContext): void {
  const { withStore, fail, print } = context;
  const audit = program.command('audit').description('the assertion log: verify, checkpoint, query, export, purge');

  audit
    .command('verify')
    .description('check the chain, seals and signed checkpoints of the log (or of an export file) and name the first bad record')
    .option('--file <export>', 'verify an export (JSON Lines or CSV) instead of the database')
    .option('--public-key <file>', 'the audit public key (JWKS or JWK; default: the one in the keys folder)')
    .action(async (options: { file?: string; publicKey?: string }) => {
      let report: VerificationReport;
      if (options.file) {
        const keyFile = options.publicKey ?? path.join(readEnvironment().keysDir, 'audit-signing.jwks.json');
        if (!fs.existsSync(keyFile)) fail(`--public-key: give the audit public key (${keyFile} does not exist)`);
        if (!fs.existsSync(options.file)) fail(`--file: ${options.file} does not exist`);
        try {
          const publicJwks = readAuditPublicJwks(keyFile);
          const exported = await exportForVerification(options.file);
          report = await verifyChain({ entries: exported.entries(), checkpoints: exported.checkpoints, publicJwks });
          if (report.uncovered > 0 && report.intact) {
            print({ ...report, note: `${report.uncovered} exported positions are not covered by a signed checkpoint and cannot be proven` });
            return;
          }
        } catch (err) {
          if (err instanceof ExportUnreadable) fail(err.message);
          throw err;
        }
      } else {
        report = await withStore(async ({ db, audit: trail }) => {
          const publicJwks = options.publicKey ? readAuditPublicJwks(options.publicKey) : trail.keys.publicJwks;
          await trail.log.settled();
          return verifyStoredLog(db, publicJwks, trail.seal);
        });
      }
      print(report);
      if (!report.intact) throw new LogNotIntact(explain(report));
    });

  audit
    .command('checkpoint')
    .description('sign a checkpoint over the newest record now')
    .action(async () => {
      await withStore(async ({ audit: trail }) => {
        try {
          const checkpoint = await trail.checkpoints.make();
          print(checkpoint ? { seq: checkpoint.seq, hash: checkpoint.hash, at: new Date(checkpoint.at).toISOString(), kid: checkpoint.kid, jws: checkpoint.jws } : { seq: 0, note: 'the log is empty' });
        } catch (err) {
          if (err instanceof ChainNotVouchable) throw new LogNotIntact(`Brána will not sign a checkpoint: ${err.message}`);
          throw err;
        }
      });
    });

  audit
    .command('public-key')
    .description('print the audit public key (JWKS) that auditors verify checkpoints and exports with')
    .action(async () => {
      await withStore(async ({ audit: trail }) => print(trail.keys.publicJwks));
    });

  withFilterOptions(audit.command('query').description('print matching records (JSON); the query itself is logged'))
    .option('--limit <n>', 'at most this many records (default 100, at most 10000)', '100')
    .action(async (options: FilterOptions & { limit: string }) => {
      const filter = filterOf(options, fail);
      const limit = Number(options.limit);
      if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) fail('--limit: must be a whole number from 1 to 10000');
      await withStore(async ({ audit: trail }) => {
        await trail.log.append(auditQueried({ via: 'cli' }, { filter: describeAuditFilter(filter), limit }));
        const records = await trail.log.query(filter, { limit });
        print(records.map((record) => ({ ...record, time: new Date(record.at).toISOString() })));
      });
    });

  withFilterOptions(audit.command('export').description('write matching records with the checkpoint proof (JSON Lines or CSV); the export is logged'))
    .requiredOption('--format <format>', `one of ${EXPORT_FORMATS.join(', ')}`)
    .option('--out <file>', 'write to this file instead of standard output')
    .action(async (options: FilterOptions & { format: string; out?: string }) => {
      if (!(EXPORT_FORMATS as readonly string[]).includes(options.format)) fail(`--format: must be one of ${EXPORT_FORMATS.join(', ')}`);
      const filter = filterOf(options, fail);
      await withStore(async ({ db, audit: trail }) => {
        await trail.log.append(auditExported({ via: 'cli' }, { filter: describeAuditFilter(filter), format: options.format }));
        const stream = options.out ? fs.createWriteStream(options.out, { mode: 0o600 }) : process.stdout;
        let summary;
        try {
          summary = await writeExport(db, trail.checkpoints, filter, options.format as ExportFormat, sinkOf(stream));
        } catch (err) {
          // `brana audit export … | head`: the reader went away; nothing is wrong with the log.
          if ((err as NodeJS.ErrnoException).code === 'EPIPE') return;
          throw err;
        }
        if (options.out) {
          await new Promise<void>((resolve, reject) => (stream as fs.WriteStream).end((err?: Error | null) => (err ? reject(err) : resolve())));
          print({ file: options.out, records: summary.records, digestsOnly: summary.digestsOnly, anchor: summary.header.anchor, through: summary.header.through, ...(summary.header.note ? { note: summary.header.note } : {}) });
        }
      });
    });

  audit
    .command('purge')
    .description('remove the records older than the retention period, whole up to a signed checkpoint')
    .option('--retention-days <days>', 'the retention period (default: BRANA_AUDIT_RETENTION_DAYS)')
    .action(async (options: { retentionDays?: string }) => {
      const configured = readEnvironment().audit.retentionDays;
      const days: number = (options.retentionDays !== undefined ? Number(options.retentionDays) : configured) ?? fail('--retention-days: no retention period given and BRANA_AUDIT_RETENTION_DAYS is not set');
      if (!Number.isSafeInteger(days) || days < 1) fail('--retention-days: must be a whole number of days, at least 1');
      await withStore(async ({ db, audit: trail }) => {
        try {
          const result = await purgeOlderThan(db, trail, days, 'cli');
          print(result ?? { records: 0, note: `no signed checkpoint is older than ${days} days` });
        } catch (err) {
          if (err instanceof PurgeRefused) throw new LogNotIntact(`purge refused: ${err.message}`);
          throw err;
        }
      });
    });
}
