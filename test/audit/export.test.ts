import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as jose from 'jose';
import type { AuditTrail } from '../../src/audit/audit-trail.ts';
import { exportedRecords } from '../../src/audit/export.ts';
import type { VerificationReport } from '../../src/audit/verification.ts';
import { auditKeysDir, openTestTrail } from '../support/audit-trail.ts';
import { brana } from '../support/cli.ts';
import { BACKENDS, createTestDatabase, type TestDatabase } from '../support/databases.ts';

for (const backend of BACKENDS) {
  describe(`exports of the assertion log on ${backend}: JSON Lines and CSV with their checkpoint proof`, () => {
    let store: TestDatabase;
    let trail: AuditTrail;
    let env: Record<string, string>;
    let dir: string;
    let publicKeyFile: string;

    const exportTo = async (format: 'jsonl' | 'csv', name: string, filters: string[] = []) => {
      const file = path.join(dir, name);
      const result = await brana(['audit', 'export', '--format', format, '--out', file, ...filters], env);
      assert.equal(result.code, 0, result.stderr);
      return { file, summary: JSON.parse(result.stdout) as { records: number; digestsOnly: number; anchor: number; through: number; note?: string } };
    };
    const verifyFile = async (file: string, keyFile = publicKeyFile) => {
      const result = await brana(['audit', 'verify', '--file', file, '--public-key', keyFile], {});
      return { ...result, report: JSON.parse(result.stdout) as VerificationReport };
    };

    beforeEach(async () => {
      store = await createTestDatabase(backend);
      trail = await openTestTrail(store.db);
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-export-'));
      env = { DATABASE_URL: store.url, BRANA_KEYS_DIR: await auditKeysDir() };
      publicKeyFile = path.join(dir, 'audit-public.jwks.json');
      const printed = await brana(['audit', 'public-key'], env);
      fs.writeFileSync(publicKeyFile, printed.stdout);
      for (let i = 1; i <= 25; i += 1) {
        await trail.log.append({ event: 'token_issued', outcome: 'success', sepId: i % 2 ? 'sep-odd' : 'sep-even', means: 'eobcanka', loa: 'high', pseudonym: `p-${i}`, detail: { attributes: ['CurrentGivenName'], n: i } });
        if (i === 8) await trail.checkpoints.make();
      }
    });
    afterEach(async () => {
      await trail.checkpoints.stop();
      await store.drop();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    for (const format of ['jsonl', 'csv'] as const) {
      it(`exports everything as ${format}, closes on a fresh checkpoint, and verifies offline with the public key alone`, async () => {
        const { file, summary } = await exportTo(format, `all.${format}`);
        assert.equal(summary.anchor, 0);
        assert.equal(summary.digestsOnly, 0);
        assert.equal(summary.note, undefined);
        const stored = await trail.log.query();
        assert.equal(summary.records, stored.length);
        assert.equal(stored.at(-1)!.event, 'audit_exported', 'the export itself is logged first');
        assert.equal(summary.through, stored.at(-1)!.seq, 'a checkpoint closes the export');

        const { records } = await exportedRecords(file);
        assert.deepEqual(records, stored.map(({ seq, at, event, sepId, requestId, means, pseudonym, loa, outcome, reason, detail, prevHash, hash, rid }) => ({ seq, at, event, sepId, requestId, means, pseudonym, loa, outcome, reason, detail, prevHash, hash, ...(rid ? { rid } : {}) })));

        const { code, report, stderr } = await verifyFile(file);
        assert.equal(code, 0, stderr);
        assert.equal(report.intact, true);
        assert.equal(report.records, stored.length);
        assert.equal(report.uncovered, 0);
        assert.equal(report.sealsChecked, false);
      });
    }

    it('exports one SeP: its records whole, every other position as a digest, still proven by the checkpoints', async () => {
      const { file, summary } = await exportTo('jsonl', 'odd.jsonl', ['--sep', 'sep-odd', '--from', '2000-01-01']);
      assert.equal(summary.records, 13);
      const { header, records } = await exportedRecords(file);
      assert.deepEqual(header?.filter, { sepId: 'sep-odd', from: '2000-01-01T00:00:00.000Z' });
      assert.ok(records.every((record) => record.sepId === 'sep-odd'));
      assert.ok(!fs.readFileSync(file, 'utf8').includes('sep-even'), 'nothing of the other SeP is shown');
      const { code, report } = await verifyFile(file);
      assert.equal(code, 0);
      assert.equal(report.records, 13);
      assert.ok(report.digestsOnly >= 11);
    });

    it('starts a late stretch at the checkpoint before it, not at the first record', async () => {
      const { file, summary } = await exportTo('csv', 'late.csv', ['--sep', 'sep-odd', '--from', String((await trail.log.query({}, { afterSeq: 9, limit: 1 }))[0]!.at)]);
      assert.equal(summary.anchor, 8);
      const { code, report } = await verifyFile(file);
      assert.equal(code, 0, JSON.stringify(report.problems));
      assert.equal(report.firstSeq, 9);
    });

    it('names the record that was changed in an exported file, and refuses a file checked with another key', async () => {
      const { file } = await exportTo('jsonl', 'all.jsonl');
      const lines = fs.readFileSync(file, 'utf8').split('\n');
      const index = lines.findIndex((line) => line.includes('"seq":12,'));
      lines[index] = lines[index]!.replace('"pseudonym":"p-12"', '"pseudonym":"p-99"');
      const edited = path.join(dir, 'edited.jsonl');
      fs.writeFileSync(edited, lines.join('\n'));
      const altered = await verifyFile(edited);
      assert.equal(altered.code, 3);
      assert.deepEqual({ seq: altered.report.firstBad?.seq, kind: altered.report.firstBad?.kind }, { seq: 12, kind: 'altered' });

      const dropped = path.join(dir, 'dropped.jsonl');
      fs.writeFileSync(dropped, fs.readFileSync(file, 'utf8').split('\n').filter((line) => !line.includes('"seq":5,')).join('\n'));
      const missing = await verifyFile(dropped);
      assert.deepEqual({ seq: missing.report.firstBad?.seq, kind: missing.report.firstBad?.kind }, { seq: 5, kind: 'missing' });

      const other = path.join(dir, 'other.jwk.json');
      const { publicKey } = await jose.generateKeyPair('ES256', { extractable: true });
      fs.writeFileSync(other, JSON.stringify(await jose.exportJWK(publicKey)));
      const wrongKey = await verifyFile(file, other);
      assert.equal(wrongKey.code, 3);
      assert.equal(wrongKey.report.firstBad?.kind, 'checkpoint_forged');
      assert.equal(wrongKey.report.checkpoints.valid, 0);
    });

    it('refuses a filter it does not understand, naming the option, and exports nothing', async () => {
      const result = await brana(['audit', 'export', '--format', 'jsonl', '--loa', 'medium'], env);
      assert.equal(result.code, 2);
      assert.match(result.stderr, /--loa:/);
      const badTime = await brana(['audit', 'query', '--from', 'yesterday'], env);
      assert.equal(badTime.code, 2);
      assert.match(badTime.stderr, /--from: must be a date/);
      assert.equal((await trail.log.query({ events: ['audit_exported', 'audit_queried'] })).length, 0, 'a refused request is not a query');
    });
  });
}
