import { createHash, X509Certificate } from 'node:crypto';
import type { Command } from 'commander';
import type { AssertionLog } from '../audit/assertion-log.ts';
import { openAuditTrail } from '../audit/audit-trail.ts';
import { readEnvironment, type Environment } from '../config/environment.ts';
import { readIdentityMeansFolder, type IdentityMeans } from '../means/identity-means.ts';
import { migrate, openDatabase, type Database } from '../store/database.ts';
import { oidcDiscoverySource } from '../upstream/oidc/oidc-protocol.ts';
import { samlMetadataSource } from '../upstream/saml/saml-protocol.ts';
import { MetadataCache, type CachedMetadata } from '../upstream/metadata/metadata-cache.ts';
import { metadataState, metadataUsable } from '../upstream/metadata/metadata-schedule.ts';
import type { MetadataSource } from '../upstream/metadata/metadata-source.ts';
import { OperatorError } from './operator-error.ts';

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

async function withCache<T>(action: (context: { env: Environment; db: Database; cache: MetadataCache; means: IdentityMeans[] }) => Promise<T>): Promise<T> {
  const env = readEnvironment();
  const means = readIdentityMeansFolder(env.providersDir);
  const db = openDatabase(env.databaseUrl);
  try {
    await migrate(db);
    return await action({ env, db, cache: new MetadataCache(db), means });
  } finally {
    await db.destroy();
  }
}

function chosen(all: IdentityMeans[], id: string | undefined): IdentityMeans[] {
  if (id === undefined) return all;
  const found = all.find((means) => means.id === id);
  if (!found) throw new OperatorError(`no identity means ${id} (known: ${all.map((means) => means.id).join(', ')})`);
  return [found];
}

/** Where a means' metadata comes from; null when the embedded development provider serves it. */
function sourceOf(means: IdentityMeans, options: { refreshIntervalMs: number; cache?: MetadataCache; log?: AssertionLog }): MetadataSource<unknown> | null {
  if (means.protocol === 'saml') return means.saml.metadata ? (samlMetadataSource(means, options) as MetadataSource<unknown>) : null;
  return means.oidc.issuer ? (oidcDiscoverySource(means, options) as MetadataSource<unknown>) : null;
}

/** What the nodes last stored about a means, read back and checked as a node would read it. */
function describeCached(means: IdentityMeans, cached: CachedMetadata | undefined, env: Environment): Record<string, unknown> {
  const now = Date.now();
  const facts = {
    loaded: Boolean(cached?.document),
    ...(cached?.validUntil != null ? { validUntil: cached.validUntil } : {}),
    ...(cached?.cacheDurationMs != null ? { cacheDurationMs: cached.cacheDurationMs } : {}),
    ...(cached?.fetchedAt != null ? { lastRefreshAt: cached.fetchedAt } : {}),
    ...(cached?.lastError ? { lastError: cached.lastError } : {}),
  };
  const description: Record<string, unknown> = {
    state: metadataState(now, facts, env.metadataRefreshIntervalMs),
    available: metadataUsable(now, facts),
    lastRefreshAt: iso(cached?.fetchedAt ?? null),
    lastAttemptAt: iso(cached?.lastAttemptAt ?? null),
    nextRefreshAt: iso(cached?.nextRefreshAt ?? null),
    validUntil: iso(cached?.validUntil ?? null),
    sha256: cached?.sha256 ?? null,
    ...(cached?.lastError ? { error: cached.lastError } : {}),
  };
  const source = sourceOf(means, { refreshIntervalMs: env.metadataRefreshIntervalMs });
  if (cached?.document && source) {
    try {
      Object.assign(description, source.check(cached.document).summary);
    } catch (err) {
      description.documentProblem = (err as Error).message;
    }
  }
  return description;
}

/** `brana metadata show [means]` and `brana metadata refresh [means]`. */
export function addMetadataCommands(program: Command): void {
  const metadata = program.command('metadata').description("identity means' metadata (SAML metadata, OpenID Provider discovery)");

  metadata
    .command('show [means]')
    .description('show where each means takes its metadata from and its state as the nodes last stored it')
    .action(async (id: string | undefined) => {
      await withCache(async ({ env, cache, means }) => {
        const rows = new Map((await cache.list()).map((row) => [row.means, row]));
        print(
          chosen(means, id).map((item) => {
            const location = item.protocol === 'saml' ? item.saml.metadata : item.oidc.issuer;
            const base = { means: item.id, protocol: item.protocol, loa: item.loa };
            if (!location) return { ...base, source: env.mode === 'development' ? 'embedded development provider (made in-process, not cached)' : 'not configured' };
            const source = sourceOf(item, { refreshIntervalMs: env.metadataRefreshIntervalMs })!;
            return { ...base, source: source.location, trustAnchors: item.protocol === 'saml' ? item.saml.metadataTrustAnchors.map(fingerprint) : [], ...describeCached(item, rows.get(item.id), env) };
          }),
        );
      });
    });

  metadata
    .command('refresh [means]')
    .description('fetch and check metadata now; every node takes a good copy into use within a minute')
    .action(async (id: string | undefined) => {
      const failed = await withCache(async ({ env, cache, db, means }) => {
        // Records are sealed like every other: the log comes with its keys.
        const audit = await openAuditTrail(db, env.keysDir, env.audit);
        const log = audit.log;
        const results: unknown[] = [];
        let failures = 0;
        for (const item of chosen(means, id)) {
          const source = sourceOf(item, { refreshIntervalMs: env.metadataRefreshIntervalMs, cache, log });
          if (!source) {
            results.push({ means: item.id, skipped: 'served by the embedded development provider: nothing to refresh' });
            continue;
          }
          try {
            results.push(await source.refresh('operator'));
          } catch {
            failures += 1;
            results.push(source.status());
          }
        }
        print(results);
        await audit.stop();
        return failures;
      });
      if (failed) throw new OperatorError(`${failed} metadata refresh(es) failed; the last good metadata stays in use`);
    });
}

function fingerprint(pem: string): string {
  return createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
}
