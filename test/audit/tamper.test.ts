import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as jose from 'jose';
import type { AssertionLogRow } from '../../src/audit/assertion-log.ts';
import type { AuditTrail } from '../../src/audit/audit-trail.ts';
import { canonicalJson, chainHash, contentDigest } from '../../src/audit/chain.ts';
import { ChainNotVouchable, signCheckpoint } from '../../src/audit/checkpoints.ts';
import { verifyStoredLog, type VerificationReport } from '../../src/audit/verification.ts';
import type { Database } from '../../src/store/database.ts';
import { auditKeysDir, openTestTrail } from '../support/audit-trail.ts';
import { brana } from '../support/cli.ts';
import { asDatabaseOperator, BACKENDS, createTestDatabase, type TestDatabase } from '../support/databases.ts';

const rows = async (db: Database) => (await db('assertion_log').orderBy('seq')) as AssertionLogRow[];

/** A record as someone with database access but without Brána's keys would write it after `prev`. */
function forgedRow(seq: number, prevHash: string, change: Partial<AssertionLogRow> = {}): AssertionLogRow {
  const content = { at: Date.now(), event: 'token_issued', sep_id: 'sep-forged', request_id: null, means: 'eobcanka', pseudonym: 'someone', loa: 'high', outcome: 'success', reason: null, detail: canonicalJson({ attributes: [] }), ...change };
  const hash = chainHash(prevHash, contentDigest(content as AssertionLogRow));
  return { seq, ...content, prev_hash: prevHash, hash, seal: randomBytes(32).toString('base64url') } as AssertionLogRow;
}

/** Rewrites records from `from` on so that each links to the one before (what a careful forger does). */
async function relinkFrom(db: Database, from: number): Promise<void> {
  const all = await rows(db);
  let prev = all.find((row) => Number(row.seq) === from - 1)!.hash;
  for (const row of all.filter((r) => Number(r.seq) >= from)) {
    const hash = chainHash(prev, contentDigest(row));
    await db('assertion_log').where({ seq: row.seq }).update({ prev_hash: prev, hash });
    prev = hash;
  }
}

for (const backend of BACKENDS) {
  describe(`brana audit verify on ${backend}: every kind of tampering, named at the right record`, () => {
    let store: TestDatabase;
    let trail: AuditTrail;
    let env: Record<string, string>;

    const verify = async () => {
      const result = await brana(['audit', 'verify'], env);
      return { ...result, report: JSON.parse(result.stdout) as VerificationReport };
    };

    beforeEach(async () => {
      store = await createTestDatabase(backend);
      trail = await openTestTrail(store.db);
      env = { DATABASE_URL: store.url, BRANA_KEYS_DIR: await auditKeysDir() };
      for (let i = 1; i <= 30; i += 1) {
        await trail.log.append({ event: i % 3 ? 'request_received' : 'token_issued', outcome: 'success', sepId: `sep-${i % 4}`, pseudonym: `pseudonym-${i % 5}`, detail: { n: i } });
        if (i === 10 || i === 20) await trail.checkpoints.make();
      }
    });
    afterEach(async () => {
      await trail.checkpoints.stop();
      await store.drop();
    });

    it('finds an untouched log intact', async () => {
      const { code, report, stderr } = await verify();
      assert.equal(code, 0, stderr);
      assert.equal(report.intact, true);
      assert.equal(report.records, 30);
      assert.equal(report.checkpoints.valid, 2);
      assert.equal(report.coveredThrough, 20);
      assert.equal(report.uncovered, 10);
      assert.equal(report.sealsChecked, true);
    });

    const cases: Array<{ name: string; tamper: (db: Database) => Promise<void>; seq: number; kind: string }> = [
      {
        name: 'a record edited in place',
        tamper: async (db) => void (await db('assertion_log').where({ seq: 15 }).update({ pseudonym: 'someone-else' })),
        seq: 15,
        kind: 'altered',
      },
      {
        name: 'a record edited and every hash after it recomputed',
        tamper: async (db) => {
          await db('assertion_log').where({ seq: 15 }).update({ loa: 'low' });
          await relinkFrom(db, 15);
        },
        seq: 15,
        kind: 'forged',
      },
      {
        name: 'a record deleted',
        tamper: async (db) => void (await db('assertion_log').where({ seq: 15 }).delete()),
        seq: 15,
        kind: 'missing',
      },
      {
        name: 'two records swapped',
        tamper: async (db) => {
          await db('assertion_log').where({ seq: 15 }).update({ seq: 1000 });
          await db('assertion_log').where({ seq: 16 }).update({ seq: 15 });
          await db('assertion_log').where({ seq: 1000 }).update({ seq: 16 });
        },
        seq: 15,
        kind: 'out_of_order',
      },
      {
        name: 'a record inserted in the middle (the rest renumbered)',
        tamper: async (db) => {
          for (let seq = 30; seq >= 15; seq -= 1) await db('assertion_log').where({ seq }).update({ seq: seq + 1 });
          const before = (await db('assertion_log').where({ seq: 14 }).first()) as AssertionLogRow;
          await db('assertion_log').insert(forgedRow(15, before.hash));
        },
        seq: 15,
        kind: 'forged',
      },
      {
        name: 'the tail truncated (a checkpoint vouched for part of it)',
        tamper: async (db) => void (await db('assertion_log').where('seq', '>=', 16).delete()),
        seq: 16,
        kind: 'truncated',
      },
      {
        name: 'a record appended without the key',
        tamper: async (db) => {
          const last = (await db('assertion_log').where({ seq: 30 }).first()) as AssertionLogRow;
          await db('assertion_log').insert(forgedRow(31, last.hash));
        },
        seq: 31,
        kind: 'forged',
      },
    ];

    for (const testCase of cases) {
      it(`names record ${testCase.seq} for ${testCase.name}`, async () => {
        await asDatabaseOperator(store.db, testCase.tamper);
        const { code, report, stderr } = await verify();
        assert.equal(code, 3, 'a log that fails verification exits with 3');
        assert.equal(report.intact, false);
        assert.equal(report.firstBad?.seq, testCase.seq, JSON.stringify(report.problems.slice(0, 3)));
        assert.equal(report.firstBad?.kind, testCase.kind, JSON.stringify(report.problems.slice(0, 3)));
        assert.match(stderr, new RegExp(`first bad record ${testCase.seq} \\(${testCase.kind}\\)`));
      });
    }

    it('detects a forged append covered by a checkpoint signed with another key, even with only the public key', async () => {
      const { privateKey, publicKey } = await jose.generateKeyPair('ES256', { extractable: true });
      const forgerKid = await jose.calculateJwkThumbprint(await jose.exportJWK(publicKey));
      await asDatabaseOperator(store.db, async (db) => {
        const last = (await db('assertion_log').where({ seq: 30 }).first()) as AssertionLogRow;
        const forged = forgedRow(31, last.hash);
        await db('assertion_log').insert(forged);
        const claims = { v: 1 as const, seq: 31, hash: forged.hash, count: 31, at: Date.now() };
        const { v: _version, ...columns } = claims;
        await db('audit_checkpoint').insert({ ...columns, kid: forgerKid, jws: await signCheckpoint(claims, { signingKey: privateKey as never, kid: forgerKid }) });
      });
      const { code, report } = await verify();
      assert.equal(code, 3);
      assert.equal(report.firstBad?.seq, 31);
      assert.ok(report.problems.some((p) => p.kind === 'checkpoint_forged' && p.seq === 31));
      assert.equal(report.checkpoints.forged, 1);
      // An auditor holding only the public key (no seal key) still sees the forged checkpoint.
      const publicOnly = await verifyStoredLog(store.db, trail.keys.publicJwks);
      assert.equal(publicOnly.sealsChecked, false);
      assert.deepEqual(publicOnly.firstBad && { seq: publicOnly.firstBad.seq, kind: publicOnly.firstBad.kind }, { seq: 31, kind: 'checkpoint_forged' });
      // Brána refuses to sign over it.
      await assert.rejects(trail.checkpoints.make(), (err: Error) => err instanceof ChainNotVouchable && err.seq === 31);
    });

    it('refuses to sign a checkpoint over a record it did not write', async () => {
      await asDatabaseOperator(store.db, async (db) => {
        const last = (await db('assertion_log').where({ seq: 30 }).first()) as AssertionLogRow;
        await db('assertion_log').insert(forgedRow(31, last.hash));
      });
      await trail.log.append({ event: 'request_received', outcome: 'success' });
      await assert.rejects(trail.checkpoints.make(), (err: Error) => err instanceof ChainNotVouchable && err.seq === 31);
      const result = await brana(['audit', 'checkpoint'], env);
      assert.equal(result.code, 3);
      assert.match(result.stderr, /record 31: its seal is not Brána's/);
      assert.equal(Number((await store.db('audit_checkpoint').max({ seq: 'seq' }))[0]!.seq), 20, 'no checkpoint over the forgery');
    });

    it('refuses to sign a checkpoint when the log ends before its last checkpoint', async () => {
      await trail.checkpoints.make();
      await asDatabaseOperator(store.db, async (db) => void (await db('assertion_log').where('seq', '>=', 28).delete()));
      await assert.rejects(trail.checkpoints.make(), (err: Error) => err instanceof ChainNotVouchable && err.seq === 28 && /truncated/.test(err.message));
    });

    it('makes a checkpoint every N records by itself, off the login path', async () => {
      const auto = await openTestTrail(store.db, { checkpointEveryRecords: 5 });
      for (let i = 0; i < 12; i += 1) await auto.log.append({ event: 'request_received', outcome: 'success' });
      await auto.checkpoints.stop();
      const seqs = (await store.db('audit_checkpoint').orderBy('seq').select('seq')).map((r: { seq: number }) => Number(r.seq));
      // However the background checkpoints interleave with the appends, fewer than N records stay uncovered.
      assert.ok(seqs.length >= 3, `checkpoints at ${seqs.join(', ')}`);
      assert.ok(42 - Math.max(...seqs) < 5, `checkpoints at ${seqs.join(', ')}`);
      const { report } = await verify();
      assert.equal(report.intact, true, JSON.stringify(report.problems));
    });
  });
}
