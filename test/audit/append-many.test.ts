import assert from 'node:assert/strict';
import type { AuditTrail } from '../../src/audit/audit-trail.ts';
import { verifyStoredLog } from '../../src/audit/verification.ts';
import { openTestTrail } from '../support/audit-trail.ts';
import { BACKENDS, createTestDatabase, type TestDatabase } from '../support/databases.ts';
import { refuseLogRecords } from '../support/log-failures.ts';

/**
 * Several records of one step appended by one statement (issue 14: the ACS writes response_received
 * and identity_resolved together): the chain is computed before anything is sent, the records stay
 * in order and sealed, and a refused record takes the others with it. Inline on SQLite, staged on
 * PostgreSQL.
 */
for (const backend of BACKENDS) {
  describe(`records appended together (${backend === 'sqlite' ? 'SQLite, inline' : 'PostgreSQL, staged'})`, () => {
    let store: TestDatabase;
    let trail: AuditTrail;

    before(async () => {
      store = await createTestDatabase(backend);
      trail = await openTestTrail(store.db);
    });
    after(async () => {
      await trail?.stop();
      await store?.drop();
    });

    const events = async () => ((await store.db('assertion_log').orderBy('seq').select('event', 'sep_id')) as Array<{ event: string; sep_id: string }>).map((row) => `${row.event}:${row.sep_id}`);

    it('sends one insert for the records of a step, chains every one of them, and the log verifies', async () => {
      await trail.log.append({ event: 'request_received', outcome: 'success', sepId: 'before' });
      const statements: string[] = [];
      const count = (query: { sql: string }) => statements.push(query.sql);
      store.db.on('query', count);
      try {
        await store.db.transaction((trx) =>
          trail.log.appendMany(
            [
              { event: 'response_received', outcome: 'success', sepId: 'step' },
              { event: 'identity_resolved', outcome: 'success', sepId: 'step' },
            ],
            trx,
          ),
        );
      } finally {
        store.db.off('query', count);
      }
      assert.equal(statements.filter((sql) => /^insert/i.test(sql)).length, 1, statements.join('\n'));
      // Appended alone after them, the next record follows on the chain.
      await trail.log.append({ event: 'token_issued', outcome: 'success', sepId: 'after' });
      await trail.log.settled();
      // Inline, the chain is in the order of the appends. Staged, the sequencer chains by time, then by
      // the record's name, which increases in the order this process staged its records.
      assert.deepEqual(await events(), ['request_received:before', 'response_received:step', 'identity_resolved:step', 'token_issued:after']);
      const report = await verifyStoredLog(store.db, trail.keys.publicJwks, trail.seal);
      assert.equal(report.intact, true, JSON.stringify(report.problems));
      assert.equal(report.records, 4);
    });

    it('keeps the records of one step, and of one millisecond, in the order they were appended', async () => {
      // Every record stamped with the same instant: only their names can order them on the chain.
      const frozen = await openTestTrail(store.db, {}, () => 1_800_000_000_000);
      try {
        const step = Array.from({ length: 40 }, (_, i) => ({ event: 'identity_resolved' as const, outcome: 'success' as const, sepId: `same-ms-${i}` }));
        await store.db.transaction((trx) => frozen.log.appendMany(step.slice(0, 30), trx));
        for (const record of step.slice(30)) await frozen.log.append(record);
        await frozen.log.settled();
        const chained = (await events()).filter((event) => event.includes(':same-ms-'));
        assert.deepEqual(chained, step.map((record) => `identity_resolved:${record.sepId}`));
      } finally {
        await frozen.stop();
      }
    });

    it('writes none of them when one is refused', async () => {
      const before = await events();
      const restore = await refuseLogRecords(store.db, 'identity_resolved');
      try {
        await assert.rejects(
          store.db.transaction((trx) =>
            trail.log.appendMany(
              [
                { event: 'response_received', outcome: 'success', sepId: 'refused' },
                { event: 'identity_resolved', outcome: 'success', sepId: 'refused' },
              ],
              trx,
            ),
          ),
          /the assertion log refused a record \(response_received, identity_resolved\)/,
        );
      } finally {
        await restore();
      }
      await trail.log.settled();
      assert.deepEqual(await events(), before);
      await trail.log.append({ event: 'token_issued', outcome: 'success', sepId: 'later' });
      await trail.log.settled();
      const report = await verifyStoredLog(store.db, trail.keys.publicJwks, trail.seal);
      assert.equal(report.intact, true, JSON.stringify(report.problems));
    });
  });
}
