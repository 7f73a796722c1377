import assert from 'node:assert/strict';
import { AssertionLog } from '../../src/audit/assertion-log.ts';
import { contentDigest } from '../../src/audit/chain.ts';
import { RecordSeal } from '../../src/audit/seal.ts';
import type { AuditTrail } from '../../src/audit/audit-trail.ts';
import { verifyStoredLog } from '../../src/audit/verification.ts';
import { openDatabase, type Database } from '../../src/store/database.ts';
import { openTestTrail } from '../support/audit-trail.ts';
import { BACKENDS, createTestDatabase, type TestDatabase } from '../support/databases.ts';

const SEQUENCER_LOCK_KEY = 4_242_002;

const count = async (db: Database, table: string, where: Record<string, unknown> = {}) => Number(((await db(table).where(where).count({ n: '*' }).first()) as { n: number | string }).n);

/**
 * The log without a cluster-wide lock (issue 18): on PostgreSQL a step stages its sealed record in
 * its own transaction, and a short sequencing transaction chains it. Two "nodes" here are two
 * connection pools on one database, each with its own log, as two Brána processes have.
 */
describe('the staged assertion log on postgres: two nodes append in parallel, a frozen one holds up only itself', () => {
  let store: TestDatabase;
  let other: Database;
  let nodeA: AuditTrail;
  let nodeB: AuditTrail;
  beforeEach(async () => {
    store = await createTestDatabase('postgres');
    other = openDatabase(store.url);
    nodeA = await openTestTrail(store.db);
    nodeB = await openTestTrail(other);
    assert.equal(nodeA.log.sequencing, 'staged');
  });
  afterEach(async () => {
    await nodeA.stop();
    await nodeB.stop();
    await other.destroy();
    await store.drop();
  });

  it('numbers the records of both nodes 1…n without a gap, each once, and the log verifies', async () => {
    await Promise.all([
      ...Array.from({ length: 30 }, (_, i) => nodeA.log.append({ event: 'request_received', outcome: 'success', sepId: `a-${i}` })),
      ...Array.from({ length: 30 }, (_, i) =>
        other.transaction(async (trx) => {
          await nodeB.log.append({ event: 'response_received', outcome: 'success', sepId: `b-${i}` }, trx);
          await nodeB.log.append({ event: 'identity_resolved', outcome: 'success', sepId: `b-${i}` }, trx);
        }),
      ),
    ]);
    await nodeA.log.settled();
    const rows = (await store.db('assertion_log').orderBy('seq').select('seq', 'sep_id', 'rid')) as Array<{ seq: string; sep_id: string; rid: string }>;
    assert.deepEqual(rows.map((row) => Number(row.seq)), Array.from({ length: 90 }, (_, i) => i + 1));
    assert.equal(new Set(rows.map((row) => row.rid)).size, 90, 'every record chained once, under its own name');
    assert.equal(await count(store.db, 'assertion_log_staged'), 0);
    const report = await verifyStoredLog(store.db, nodeA.keys.publicJwks, nodeA.seal);
    assert.equal(report.intact, true, JSON.stringify(report.problems));
    assert.equal(report.records, 90);
    assert.deepEqual(report.staged, { waiting: 0, refused: 0 });
    // A checkpoint over all of them, and a fresh export would close on it.
    assert.equal((await nodeB.checkpoints.make())?.seq, 90);
  });

  it('lets node B log (and finish) while node A is frozen inside a step that has written its record', async () => {
    let release!: () => void;
    const frozen = new Promise<void>((resolve) => (release = resolve));
    let staged!: () => void;
    const stagedYet = new Promise<void>((resolve) => (staged = resolve));
    const stepOfA = store.db.transaction(async (trx) => {
      await nodeA.log.append({ event: 'identity_resolved', outcome: 'success', sepId: 'frozen-a' }, trx);
      staged();
      await frozen;
    });
    await stagedYet;
    // With one cluster-wide lock held to the end of A's step, these would wait for A for ever.
    for (let i = 0; i < 5; i += 1) await nodeB.log.append({ event: 'token_issued', outcome: 'success', sepId: `b-${i}` });
    assert.deepEqual(((await nodeB.log.query()) as Array<{ sepId: string }>).map((record) => record.sepId), ['b-0', 'b-1', 'b-2', 'b-3', 'b-4']);
    release();
    await stepOfA;
    await nodeB.log.settled();
    const records = await nodeB.log.query();
    assert.deepEqual(records.map((record) => record.sepId), ['b-0', 'b-1', 'b-2', 'b-3', 'b-4', 'frozen-a']);
    assert.equal((await verifyStoredLog(store.db, nodeA.keys.publicJwks, nodeA.seal)).intact, true);
  });

  it('lets steps commit while the sequencer is held elsewhere (a frozen node mid-sequencing); the records wait, then are chained', async () => {
    const holder = await store.db.client.acquireConnection();
    try {
      await store.db.raw('BEGIN').connection(holder);
      await store.db.raw('SELECT pg_advisory_xact_lock(?)', [SEQUENCER_LOCK_KEY]).connection(holder);
      for (let i = 0; i < 3; i += 1) await nodeB.log.append({ event: 'token_issued', outcome: 'success', sepId: `b-${i}` });
      assert.equal(await count(store.db, 'assertion_log_staged'), 3, 'the steps committed; their records wait for the sequencer');
      assert.equal(await count(store.db, 'assertion_log'), 0);
      await store.db.raw('ROLLBACK').connection(holder);
    } finally {
      await store.db.client.releaseConnection(holder);
    }
    await nodeB.log.settled();
    assert.equal(await count(store.db, 'assertion_log'), 3);
    assert.equal(await count(store.db, 'assertion_log_staged'), 0);
  });

  it('chains records a node staged and never chained (it died): the next run of any node takes them', async () => {
    const dead = new AssertionLog(other, { seal: nodeA.seal, sequencer: { sweepMs: 0 } });
    await other.transaction((trx) => dead.append({ event: 'response_received', outcome: 'success', sepId: 'from-a-dead-node' }, trx));
    // The dead node's background run may or may not have started; its records are there either way.
    await nodeA.log.settled();
    assert.deepEqual((await nodeA.log.query()).map((record) => record.sepId), ['from-a-dead-node']);
  });
});

for (const backend of BACKENDS) {
  describe(`the staging table on ${backend}: nothing gets into the chain without Brána's staged seal, or twice`, () => {
    let store: TestDatabase;
    let trail: AuditTrail;
    let log: AssertionLog;
    beforeEach(async () => {
      store = await createTestDatabase(backend);
      trail = await openTestTrail(store.db);
      // SQLite writes inline by default; the staging path is the same code on both.
      log = new AssertionLog(store.db, { seal: trail.seal, sequencing: 'staged', sequencer: { sweepMs: 0 } });
    });
    afterEach(async () => {
      await log.stop();
      await trail.stop();
      await store.drop();
    });

    /** Stages a record as a step does, and returns its row as it was written (then `tamper`ed, before any sequencer sees it). */
    async function stage(sepId: string, tamper?: (trx: Database) => Promise<unknown>): Promise<Record<string, unknown>> {
      let row: Record<string, unknown> | undefined;
      await store.db.transaction(async (trx) => {
        await log.append({ event: 'token_issued', outcome: 'success', sepId, pseudonym: 'p-1' }, trx);
        row = (await trx('assertion_log_staged').where({ sep_id: sepId }).first()) as Record<string, unknown>;
        await tamper?.(trx as unknown as Database);
      });
      return row!;
    }

    it('refuses a row written into the staging table without the key, and verify names it', async () => {
      await log.append({ event: 'request_received', outcome: 'success', sepId: 'genuine' });
      const content = { at: Date.now(), event: 'token_issued', sep_id: 'forged', request_id: null, means: 'eobcanka', pseudonym: 'victim', loa: 'high', outcome: 'success', reason: null, detail: '{}', rid: '00000000-0000-4000-8000-000000000001' };
      await store.db('assertion_log_staged').insert({ ...content, seal: 'not-the-key' });
      await log.settled();
      assert.deepEqual((await log.query()).map((record) => record.sepId), ['genuine'], 'the forgery is not in the chain');
      const refused = (await store.db('assertion_log_staged').first('refused')) as { refused: string };
      assert.match(refused.refused, /^forged/);
      const report = await verifyStoredLog(store.db, trail.keys.publicJwks, trail.seal);
      assert.equal(report.intact, false);
      assert.equal(report.problems[0]?.kind, 'staged_refused');
      assert.deepEqual(report.staged, { waiting: 0, refused: 1 });
    });

    it('refuses a staged record altered before it was chained', async () => {
      await log.append({ event: 'request_received', outcome: 'success', sepId: 'genuine' });
      await stage('altered', (trx) => trx('assertion_log_staged').where({ sep_id: 'altered' }).update({ pseudonym: 'someone-else' }));
      await log.settled();
      assert.deepEqual((await log.query()).map((record) => record.sepId), ['genuine'], 'the altered record is not chained');
      assert.match(((await store.db('assertion_log_staged').first('refused')) as { refused: string }).refused, /^forged/);
      assert.equal((await verifyStoredLog(store.db, trail.keys.publicJwks, trail.seal)).intact, false);
    });

    it('judges no one with the wrong key: a process whose seal key is not Brána\'s leaves the records waiting, unrefused', async () => {
      await log.append({ event: 'request_received', outcome: 'success', sepId: 'genuine-1' });
      const misconfigured = new AssertionLog(store.db, { seal: new RecordSeal(Buffer.alloc(32, 7)), sequencing: 'staged', sequencer: { sweepMs: 0 } });
      // A record staged by a node with Brána's key (written here directly, so that no node chains it first).
      const content = { at: Date.now(), event: 'token_issued', sep_id: 'genuine-2', request_id: null, means: null, pseudonym: null, loa: null, outcome: 'success', reason: null, detail: '{}', rid: '00000000-0000-4000-8000-0000000000a2' };
      await store.db('assertion_log_staged').insert({ ...content, seal: trail.seal.ofStaged(content.rid, contentDigest(content)) });
      await misconfigured.settledWithin(200);
      assert.equal(await count(store.db, 'assertion_log_staged', { refused: null }), 1, 'still waiting, not refused');
      await log.settled();
      assert.deepEqual((await log.query()).map((record) => record.sepId), ['genuine-1', 'genuine-2']);
      assert.equal(await count(store.db, 'assertion_log_staged'), 0);
      await misconfigured.stop();
    });

    it('chains a staged record once: a copy put back after it was chained is refused as a replay', async () => {
      const row = await stage('once');
      await log.settled();
      assert.equal(await count(store.db, 'assertion_log', { sep_id: 'once' }), 1);
      await store.db('assertion_log_staged').insert({ ...row, refused: null });
      await log.settled();
      assert.equal(await count(store.db, 'assertion_log', { sep_id: 'once' }), 1, 'not chained twice');
      assert.match(((await store.db('assertion_log_staged').first('refused')) as { refused: string }).refused, /^replayed/);
    });

    it('writes a record only with its step: a rolled-back step stages nothing', async () => {
      await assert.rejects(
        store.db.transaction(async (trx) => {
          await log.append({ event: 'identity_resolved', outcome: 'success' }, trx);
          throw new Error('the step failed');
        }),
        /the step failed/,
      );
      await log.settled();
      assert.equal(await count(store.db, 'assertion_log_staged'), 0);
      assert.equal(await count(store.db, 'assertion_log'), 0);
    });
  });
}

describe('the inline assertion log on sqlite: a process remembers the head it committed, and another process appending is noticed', () => {
  let store: TestDatabase;
  let otherProcess: Database;
  beforeEach(async () => {
    store = await createTestDatabase('sqlite');
    otherProcess = openDatabase(store.url);
  });
  afterEach(async () => {
    await otherProcess.destroy();
    await store.drop();
  });

  it('chains after the CLI\'s record, not over it, when the CLI appended since this process last did', async () => {
    const trail = await openTestTrail(store.db);
    const cli = await openTestTrail(otherProcess);
    assert.equal(trail.log.sequencing, 'inline');
    await trail.log.append({ event: 'request_received', outcome: 'success', sepId: 'server-1' });
    await trail.log.append({ event: 'request_received', outcome: 'success', sepId: 'server-2' });
    await cli.log.append({ event: 'sep_approved', outcome: 'success', sepId: 'cli' });
    await trail.log.append({ event: 'token_issued', outcome: 'success', sepId: 'server-3' });
    const rows = (await store.db('assertion_log').orderBy('seq').select('seq', 'sep_id')) as Array<{ seq: number; sep_id: string }>;
    assert.deepEqual(rows.map((row) => [Number(row.seq), row.sep_id]), [[1, 'server-1'], [2, 'server-2'], [3, 'cli'], [4, 'server-3']]);
    const report = await verifyStoredLog(store.db, trail.keys.publicJwks, trail.seal);
    assert.equal(report.intact, true, JSON.stringify(report.problems));
  });
});
