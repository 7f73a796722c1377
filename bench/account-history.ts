/**
 * `node bench/account-history.ts`: what opening My account costs as the log grows — the citizen's
 * history is found by computing their pseudonym in every SeP group and asking the assertion log for
 * those pseudonyms (migration 005's pseudonym index). Seeds BENCH_VOLUME login records over
 * BENCH_GROUPS SeP groups (rows inserted directly: reading does not check seals), then times the
 * history query for citizens with and without logins. Writes bench/results/account-history.json.
 * Not a test: no assertion depends on these numbers.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { LoginHistory } from '../src/account/login-history.ts';
import { AssertionLog } from '../src/audit/assertion-log.ts';
import { RecordSeal } from '../src/audit/seal.ts';
import { Pseudonyms } from '../src/pseudonym/pseudonym.ts';
import { SepStore } from '../src/sep/sep-store.ts';
import { createTestDatabase } from '../test/support/databases.ts';

const VOLUME = Number(process.env.BENCH_VOLUME ?? 200_000);
const GROUPS = Number(process.env.BENCH_GROUPS ?? 300);
const CITIZENS = 20_000;
const RUNS = 200;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const p95 = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length * 0.95)]!;

async function run(backend: 'sqlite' | 'postgres'): Promise<Record<string, number>> {
  const store = await createTestDatabase(backend);
  try {
    const pseudonyms = new Pseudonyms(Buffer.alloc(32, 7));
    const persons = Array.from({ length: CITIZENS }, () => randomUUID());
    const now = Date.now();
    const seps = Array.from({ length: GROUPS }, (_, i) => ({
      client_id: `bench-sep-${i}`,
      client_secret: 'x',
      status: 'active',
      environment: 'test',
      name_cs: `Služba ${i}`,
      name_en: `Service ${i}`,
      organisation_id: '00268810',
      organisation_name: 'Město',
      description: 'd',
      info_url: 'https://example.cz/',
      sep_group: `group-${i}`,
      sp_type: 'public',
      min_loa: 'substantial',
      allowed_attributes: '[]',
      eidas_enabled: false,
      redirect_uris: '["https://example.cz/cb"]',
      post_logout_redirect_uris: '[]',
      token_endpoint_auth_method: 'client_secret_basic',
      created_at: now,
      updated_at: now,
    }));
    for (let i = 0; i < seps.length; i += 100) await store.db('sep').insert(seps.slice(i, i + 100));
    const started = process.hrtime.bigint();
    const batch = backend === 'sqlite' ? 60 : 500;
    for (let seq = 1; seq <= VOLUME; seq += batch) {
      const rows = [];
      for (let k = seq; k < Math.min(seq + batch, VOLUME + 1); k += 1) {
        const group = k % GROUPS;
        rows.push({
          seq: k,
          at: now - (VOLUME - k) * 1000,
          event: 'token_issued',
          sep_id: `bench-sep-${group}`,
          request_id: null,
          means: 'eobcanka',
          pseudonym: pseudonyms.forGroup(persons[(k * 7919) % CITIZENS]!, `group-${group}`),
          loa: 'high',
          outcome: 'success',
          reason: null,
          detail: '{"attributes":["CurrentGivenName","PersonIdentifier"]}',
          prev_hash: '0'.repeat(64),
          hash: '0'.repeat(64),
          seal: '0'.repeat(64),
        });
      }
      await store.db('assertion_log').insert(rows);
    }
    const seedMs = Number(process.hrtime.bigint() - started) / 1e6;
    const history = new LoginHistory(new SepStore(store.db), new AssertionLog(store.db, { seal: new RecordSeal(Buffer.alloc(32, 9)) }), pseudonyms);
    const measure = async () => {
      const withLogins: number[] = [];
      const without: number[] = [];
      let found = 0;
      for (let i = 0; i < RUNS; i += 1) {
        let t = process.hrtime.bigint();
        found += (await history.of(persons[i]!)).length;
        withLogins.push(Number(process.hrtime.bigint() - t) / 1e6);
        t = process.hrtime.bigint();
        await history.of(randomUUID());
        without.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
      return { found: found / RUNS, median: median(withLogins), p95: p95(withLogins), none: median(without) };
    };
    const fresh = await measure();
    // What the planner knows once statistics exist (PostgreSQL's autovacuum gathers them by itself).
    await store.db.raw('ANALYZE');
    const analysed = await measure();
    const round = (ms: number) => Math.round(ms * 100) / 100;
    return {
      records: VOLUME,
      groups: GROUPS,
      seedMs: Math.round(seedMs),
      entriesPerCitizen: fresh.found,
      medianMs: round(fresh.median),
      p95Ms: round(fresh.p95),
      medianMsNoLogins: round(fresh.none),
      analysedMedianMs: round(analysed.median),
      analysedP95Ms: round(analysed.p95),
    };
  } finally {
    await store.drop();
  }
}

const results: Record<string, Record<string, number>> = {};
for (const backend of ['sqlite', 'postgres'] as const) results[backend] = await run(backend);
const out = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results', 'account-history.json');
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, `${JSON.stringify({ at: new Date().toISOString(), results }, null, 2)}\n`);
console.table(results);
