/**
 * `npm run bench:audit`: what the tamper-evident assertion log costs, on SQLite and PostgreSQL.
 * Appends (hash chain + seal, in their own transaction, as a login step writes them), the seal
 * alone, a checkpoint over 1000 records (walk, check and sign), whole-log verification, exports and
 * the weekly statistics. Writes bench/results/audit-log.json and prints a table. Not a test: no
 * assertion depends on these numbers.
 */
import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { openAuditTrail } from '../src/audit/audit-trail.ts';
import { sinkOf, writeExport } from '../src/audit/export.ts';
import { verifyStoredLog } from '../src/audit/verification.ts';
import { loginStatistics } from '../src/stats/login-statistics.ts';
import { createTestDatabase } from '../test/support/databases.ts';

const APPENDS = Number(process.env.BENCH_APPENDS ?? 2000);
const VOLUME = Number(process.env.BENCH_VOLUME ?? 20_000);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

async function timed<T>(action: () => Promise<T>): Promise<[T, number]> {
  const started = process.hrtime.bigint();
  const result = await action();
  return [result, Number(process.hrtime.bigint() - started) / 1e6];
}

const nowhere = () => new Writable({ write: (_chunk, _encoding, done) => done() });

async function run(backend: 'sqlite' | 'postgres'): Promise<Record<string, number>> {
  const store = await createTestDatabase(backend);
  const keysDir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-bench-keys-'));
  let clock = Date.now() - 12 * 7 * 86_400_000;
  const trail = await openAuditTrail(store.db, keysDir, { checkpointEveryRecords: 1_000_000, checkpointEverySeconds: 0, retentionDays: null }, () => clock);
  try {
    const latencies: number[] = [];
    for (let i = 0; i < APPENDS; i += 1) {
      const [, ms] = await timed(() => trail.log.append({ event: 'token_issued', outcome: 'success', sepId: `sep-${i % 20}`, means: i % 3 ? 'eobcanka' : 'mojeid', loa: 'high', pseudonym: `pseudonym-${i}`, detail: { grantId: `grant-${i}`, scope: 'openid profile', attributes: ['CurrentFamilyName', 'CurrentGivenName', 'DateOfBirth'] } }));
      latencies.push(ms);
    }
    latencies.sort((a, b) => a - b);

    // The same row written as a bare insert in its own transaction: what any log would cost.
    await store.db.schema.createTable('bench_plain', (t) => {
      t.bigIncrements('seq').primary();
      t.bigInteger('at');
      t.string('event', 40);
      t.string('sep_id', 64);
      t.string('means', 40);
      t.string('pseudonym', 100);
      t.text('detail');
    });
    const plain: number[] = [];
    for (let i = 0; i < APPENDS; i += 1) {
      const [, ms] = await timed(() => store.db.transaction(async (trx) => trx('bench_plain').insert({ at: Date.now(), event: 'token_issued', sep_id: `sep-${i % 20}`, means: 'eobcanka', pseudonym: `pseudonym-${i}`, detail: '{"attributes":[]}' })));
      plain.push(ms);
    }
    plain.sort((a, b) => a - b);

    const [, checkpointMs] = await timed(() => trail.checkpoints.make());

    // Volume for verification, exports and statistics: appended in bulk transactions, spread over 12 weeks.
    for (let done = 0; done < VOLUME; done += 1000) {
      await store.db.transaction(async (trx) => {
        for (let i = 0; i < 1000; i += 1) {
          clock += 1450;
          await trail.log.append(i % 5 ? { event: 'token_issued', outcome: 'success', sepId: `sep-${i % 20}`, means: i % 3 ? 'eobcanka' : 'mojeid', loa: 'high', pseudonym: `p-${done + i}` } : { event: 'identity_resolved', outcome: 'success', means: 'eobcanka', detail: { firstTime: i % 2 === 0 } }, trx);
        }
      });
      if ((done / 1000) % 10 === 9) await trail.checkpoints.make();
    }
    await trail.checkpoints.make();
    const total = APPENDS + VOLUME;
    const [report, verifyMs] = await timed(() => verifyStoredLog(store.db, trail.keys.publicJwks, trail.seal));
    if (!report.intact) throw new Error('the benchmark log does not verify');
    const [, jsonlMs] = await timed(() => writeExport(store.db, trail.checkpoints, {}, 'jsonl', sinkOf(nowhere())));
    const [, csvMs] = await timed(() => writeExport(store.db, trail.checkpoints, {}, 'csv', sinkOf(nowhere())));
    const [, filteredMs] = await timed(() => writeExport(store.db, trail.checkpoints, { sepId: 'sep-7' }, 'jsonl', sinkOf(nowhere())));
    const today = new Date(clock);
    const [, statsMs] = await timed(() => loginStatistics(store.db, { until: { year: today.getUTCFullYear(), month: today.getUTCMonth() + 1, day: today.getUTCDate() }, weeks: 13 }));
    return {
      appendMedianMs: percentile(latencies, 0.5),
      appendP95Ms: percentile(latencies, 0.95),
      bareInsertMedianMs: percentile(plain, 0.5),
      appendOverBareInsert: Number((percentile(latencies, 0.5) / percentile(plain, 0.5)).toFixed(2)),
      checkpointOver2000Ms: checkpointMs,
      records: total,
      verifyRecordsPerSecond: Math.round(total / (verifyMs / 1000)),
      exportJsonlRecordsPerSecond: Math.round(total / (jsonlMs / 1000)),
      exportCsvRecordsPerSecond: Math.round(total / (csvMs / 1000)),
      exportOneSepOfTwentyMs: Math.round(filteredMs),
      statistics13WeeksMs: Math.round(statsMs),
    };
  } finally {
    await trail.checkpoints.stop();
    await store.drop();
    fs.rmSync(keysDir, { recursive: true, force: true });
  }
}

const key = Buffer.alloc(32, 7);
const sealStarted = process.hrtime.bigint();
for (let i = 0; i < 100_000; i += 1) createHmac('sha256', key).update(`brana-audit-seal-v1\n${i}\n${'a'.repeat(64)}`).digest('base64url');
const sealMicroseconds = Number(process.hrtime.bigint() - sealStarted) / 1e3 / 100_000;

const results = { machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}`, node: process.version, sealMicroseconds, sqlite: await run('sqlite'), postgres: await run('postgres') };
fs.mkdirSync(path.join(import.meta.dirname, 'results'), { recursive: true });
fs.writeFileSync(path.join(import.meta.dirname, 'results', 'audit-log.json'), `${JSON.stringify(results, null, 2)}\n`);
console.table({ sqlite: results.sqlite, postgres: results.postgres });
console.log(`seal (HMAC-SHA256) per record: ${sealMicroseconds.toFixed(2)} µs; ${results.machine}; node ${results.node}`);
