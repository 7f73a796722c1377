import assert from 'node:assert/strict';
import type { AuditTrail } from '../../src/audit/audit-trail.ts';
import { chainHash, contentDigest, GENESIS } from '../../src/audit/chain.ts';
import { verifyStoredLog } from '../../src/audit/verification.ts';
import { openTestTrail } from '../support/audit-trail.ts';
import { BACKENDS, createTestDatabase, type TestDatabase } from '../support/databases.ts';

async function refused(action: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(action, (err: Error) => {
    assert.match(err.message, message);
    return true;
  });
}

for (const backend of BACKENDS) {
  describe(`the assertion log on ${backend}: append-only, numbered, chained and sealed`, () => {
    let store: TestDatabase;
    let trail: AuditTrail;
    beforeEach(async () => {
      store = await createTestDatabase(backend);
      trail = await openTestTrail(store.db);
    });
    afterEach(async () => {
      await trail.checkpoints.stop();
      await store.drop();
    });

    it('numbers records 1, 2, 3…, chains each to the one before and seals it', async () => {
      for (let i = 0; i < 5; i += 1) await trail.log.append({ event: 'request_received', outcome: 'success', sepId: `sep-${i}` });
      const rows = (await store.db('assertion_log').orderBy('seq')) as Array<{ seq: number; prev_hash: string; hash: string; seal: string }>;
      assert.deepEqual(rows.map((r) => Number(r.seq)), [1, 2, 3, 4, 5]);
      assert.equal(rows[0]!.prev_hash, GENESIS);
      for (let i = 1; i < rows.length; i += 1) assert.equal(rows[i]!.prev_hash, rows[i - 1]!.hash);
      for (const row of rows) {
        assert.equal(row.hash, chainHash(row.prev_hash, contentDigest(row as never)));
        assert.ok(trail.seal.matches(Number(row.seq), row.hash, row.seal));
      }
      const report = await verifyStoredLog(store.db, trail.keys.publicJwks, trail.seal);
      assert.equal(report.intact, true, JSON.stringify(report.problems));
      assert.equal(report.records, 5);
    });

    it('refuses UPDATE and DELETE of a record, and the record stays as it was', async () => {
      await trail.log.append({ event: 'token_issued', outcome: 'success', sepId: 'sep-a', pseudonym: 'p1' });
      await trail.log.append({ event: 'token_issued', outcome: 'success', sepId: 'sep-a', pseudonym: 'p2' });
      const before = await store.db('assertion_log').orderBy('seq');
      await refused(store.db('assertion_log').where({ seq: 1 }).update({ pseudonym: 'someone-else' }), /append-only: UPDATE refused/);
      await refused(store.db('assertion_log').where({ seq: 2 }).delete(), /append-only: DELETE refused/);
      await refused(store.db('assertion_log').delete(), /append-only: DELETE refused/);
      if (backend === 'postgres') await refused(store.db.raw('TRUNCATE assertion_log'), /append-only: TRUNCATE refused/);
      assert.deepEqual(await store.db('assertion_log').orderBy('seq'), before);
      assert.equal((await verifyStoredLog(store.db, trail.keys.publicJwks, trail.seal)).intact, true);
    });

    it('refuses UPDATE and DELETE of checkpoints and of purge records', async () => {
      await trail.log.append({ event: 'request_received', outcome: 'success' });
      const checkpoint = await trail.checkpoints.make();
      assert.equal(checkpoint?.seq, 1);
      await refused(store.db('audit_checkpoint').update({ hash: '0'.repeat(64) }), /audit_checkpoint is append-only: UPDATE refused/);
      await refused(store.db('audit_checkpoint').delete(), /audit_checkpoint is append-only: DELETE refused/);
      await store.db('audit_purge').insert({ through_seq: 1, at: Date.now(), records: 0, actor: 'test' });
      await refused(store.db('audit_purge').update({ through_seq: 5 }), /audit_purge is append-only: UPDATE refused/);
      await refused(store.db('audit_purge').delete(), /audit_purge is append-only: DELETE refused/);
    });

    it('lets a purge permit name only a checkpoint, later than the last purge', async () => {
      for (let i = 0; i < 3; i += 1) await trail.log.append({ event: 'request_received', outcome: 'success' });
      await trail.checkpoints.make();
      await refused(store.db('audit_purge').insert({ through_seq: 2, at: Date.now(), records: 0, actor: 'test' }), /a purge must end at a checkpoint/);
      await store.db('audit_purge').insert({ through_seq: 3, at: Date.now(), records: 0, actor: 'test' });
      await refused(store.db('audit_purge').insert({ through_seq: 3, at: Date.now(), records: 0, actor: 'test' }), /a purge must end at a checkpoint|unique|UNIQUE/);
    });

    it('lets records go only as a whole prefix up to a permitted checkpoint', async () => {
      for (let i = 0; i < 6; i += 1) await trail.log.append({ event: 'request_received', outcome: 'success' });
      await trail.checkpoints.make();
      for (let i = 0; i < 2; i += 1) await trail.log.append({ event: 'request_received', outcome: 'success' });
      await store.db('audit_purge').insert({ through_seq: 6, at: Date.now(), records: 6, actor: 'test' });
      // Not beyond the permit, not a hole in the middle, not a part of the prefix.
      await refused(store.db('assertion_log').where('seq', '<=', 7).delete(), /DELETE refused/);
      await refused(store.db('assertion_log').where({ seq: 3 }).delete(), /DELETE refused|every record up to its checkpoint/);
      if (backend === 'postgres') await refused(store.db('assertion_log').where('seq', '<=', 4).delete(), /every record up to its checkpoint/);
      assert.equal(Number((await store.db('assertion_log').count({ n: '*' }))[0]!.n), 8);
      await store.db('assertion_log').where('seq', '<=', 6).delete();
      assert.deepEqual((await store.db('assertion_log').orderBy('seq').select('seq')).map((r: { seq: number }) => Number(r.seq)), [7, 8]);
    });

    it('keeps the chain linear when many requests append at once', async () => {
      await Promise.all(Array.from({ length: 40 }, (_, i) => trail.log.append({ event: 'request_received', outcome: 'success', sepId: `sep-${i}` })));
      const report = await verifyStoredLog(store.db, trail.keys.publicJwks, trail.seal);
      assert.equal(report.intact, true, JSON.stringify(report.problems));
      assert.equal(report.lastSeq, 40);
      assert.equal(new Set((await store.db('assertion_log').select('sep_id')).map((r: { sep_id: string }) => r.sep_id)).size, 40);
    });

    it('writes a record only with its step: a rolled-back transaction leaves neither', async () => {
      await assert.rejects(
        store.db.transaction(async (trx) => {
          await trx('person').insert({ id: 'person-1', register_id: 'r-1', created_at: Date.now() });
          await trail.log.append({ event: 'identity_resolved', outcome: 'success' }, trx);
          throw new Error('the step failed');
        }),
        /the step failed/,
      );
      assert.equal(Number((await store.db('assertion_log').count({ n: '*' }))[0]!.n), 0);
      assert.equal(Number((await store.db('person').count({ n: '*' }))[0]!.n), 0);
      await trail.log.append({ event: 'request_received', outcome: 'success' });
      assert.equal(Number((await store.db('assertion_log').max({ seq: 'seq' }))[0]!.seq), 1, 'no gap left by the rollback');
    });
  });
}
