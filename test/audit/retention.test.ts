import assert from 'node:assert/strict';
import type { AuditTrail } from '../../src/audit/audit-trail.ts';
import { purgeOlderThan, PurgeRefused } from '../../src/audit/retention.ts';
import { verifyStoredLog } from '../../src/audit/verification.ts';
import { auditKeysDir, openTestTrail } from '../support/audit-trail.ts';
import { brana } from '../support/cli.ts';
import { asDatabaseOperator, BACKENDS, createTestDatabase, type TestDatabase } from '../support/databases.ts';

const DAY = 24 * 60 * 60 * 1000;

for (const backend of BACKENDS) {
  describe(`the retention purge on ${backend}: whole up to a checkpoint, the rest still verifiable`, () => {
    let store: TestDatabase;
    let trail: AuditTrail;
    let now = Date.now();
    const clock = () => now;

    beforeEach(async () => {
      store = await createTestDatabase(backend);
      now = Date.now() - 400 * DAY;
      trail = await openTestTrail(store.db, {}, clock);
      // Ten records and a checkpoint 400 days ago, five and a checkpoint 100 days ago, three today.
      for (let i = 0; i < 10; i += 1) await trail.log.append({ event: 'token_issued', outcome: 'success', pseudonym: `old-${i}` });
      await trail.checkpoints.make();
      now = Date.now() - 100 * DAY;
      for (let i = 0; i < 5; i += 1) await trail.log.append({ event: 'token_issued', outcome: 'success', pseudonym: `mid-${i}` });
      await trail.checkpoints.make();
      now = Date.now();
      for (let i = 0; i < 3; i += 1) await trail.log.append({ event: 'token_issued', outcome: 'success', pseudonym: `new-${i}` });
    });
    afterEach(async () => {
      await trail.checkpoints.stop();
      await store.drop();
    });

    it('purges only the records older than the retention period, up to the checkpoint before the cutoff', async () => {
      const result = await purgeOlderThan(store.db, trail, 365, 'test');
      assert.deepEqual(result, { throughSeq: 10, records: 10 });
      const remaining = await trail.log.query();
      assert.deepEqual(remaining.map((r) => r.seq), [11, 12, 13, 14, 15, 16, 17, 18, 19]);
      const purged = remaining.at(-1)!;
      assert.equal(purged.event, 'audit_purged');
      assert.equal(purged.detail.throughSeq, 10);
      const report = await verifyStoredLog(store.db, trail.keys.publicJwks, trail.seal);
      assert.equal(report.intact, true, JSON.stringify(report.problems));
      assert.equal(report.firstSeq, 11);
      assert.equal(await purgeOlderThan(store.db, trail, 365, 'test'), null, 'nothing more is old enough');
      // 30 days: up to the checkpoint of 100 days ago.
      assert.deepEqual(await purgeOlderThan(store.db, trail, 30, 'test'), { throughSeq: 15, records: 5 });
      assert.equal((await verifyStoredLog(store.db, trail.keys.publicJwks, trail.seal)).intact, true);
    });

    it('purges everything up to the newest checkpoint and goes on chaining from it', async () => {
      await trail.checkpoints.make();
      now = Date.now() + 10 * DAY;
      assert.deepEqual(await purgeOlderThan(store.db, trail, 1, 'test', now), { throughSeq: 18, records: 18 });
      await trail.log.append({ event: 'request_received', outcome: 'success' });
      const report = await verifyStoredLog(store.db, trail.keys.publicJwks, trail.seal);
      assert.equal(report.intact, true, JSON.stringify(report.problems));
      assert.deepEqual([report.firstSeq, report.lastSeq], [19, 20]);
    });

    it('will not purge a stretch that fails verification: the evidence stays', async () => {
      await asDatabaseOperator(store.db, async (db) => void (await db('assertion_log').where({ seq: 4 }).update({ pseudonym: 'rewritten' })));
      await assert.rejects(purgeOlderThan(store.db, trail, 365, 'test'), (err: Error) => err instanceof PurgeRefused && /record 4 \(altered\)/.test(err.message));
      assert.equal((await trail.log.query()).length, 18);
    });

    it('exposes a purge made in the database without Brána', async () => {
      // The triggers allow what the rule allows; but only Brána can write the sealed record of it.
      await store.db('audit_purge').insert({ through_seq: 10, at: Date.now(), records: 10, actor: 'someone' });
      await store.db('assertion_log').where('seq', '<=', 10).delete();
      const report = await verifyStoredLog(store.db, trail.keys.publicJwks, trail.seal);
      assert.equal(report.intact, false);
      assert.deepEqual({ seq: report.firstBad?.seq, kind: report.firstBad?.kind }, { seq: 10, kind: 'purge_unrecorded' });
    });

    it('is a CLI command that needs a retention period', async () => {
      const env = { DATABASE_URL: store.url, BRANA_KEYS_DIR: await auditKeysDir() };
      const none = await brana(['audit', 'purge'], env);
      assert.equal(none.code, 2);
      assert.match(none.stderr, /--retention-days: no retention period given and BRANA_AUDIT_RETENTION_DAYS is not set/);
      const purged = await brana(['audit', 'purge'], { ...env, BRANA_AUDIT_RETENTION_DAYS: '365' });
      assert.equal(purged.code, 0, purged.stderr);
      assert.deepEqual(JSON.parse(purged.stdout), { throughSeq: 10, records: 10 });
      assert.equal((await brana(['audit', 'verify'], env)).code, 0);
    });
  });
}
