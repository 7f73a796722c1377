import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { brana } from '../support/cli.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

describe('administrative events in the assertion log', () => {
  let brana_: TestBroker;
  let keysDir: string;
  before(async () => {
    // A keys folder of its own: this broker generates its audit key on its first start.
    keysDir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-keys-'));
    brana_ = await startTestBroker({ env: { BRANA_KEYS_DIR: keysDir } });
  });
  after(async () => {
    await brana_.close();
    fs.rmSync(keysDir, { recursive: true, force: true });
  });

  it('records the audit key generated on the first start, and only then', async () => {
    const rotated = await brana_.broker.log.query({ event: 'keys_rotated' });
    assert.equal(rotated.length, 1);
    assert.deepEqual(rotated[0]!.detail, { kid: brana_.broker.audit.keys.kid, purpose: 'audit-signing', reason: 'generated on first start' });
    const env = { DATABASE_URL: brana_.broker.env.databaseUrl, BRANA_KEYS_DIR: keysDir };
    assert.equal((await brana(['audit', 'checkpoint'], env)).code, 0);
    assert.equal((await brana_.broker.log.query({ event: 'keys_rotated' })).length, 1, 'a later process finds the key and records nothing');
  });

  it('records a SeP registered, disabled, enabled and changed, each with who did it', async () => {
    const sep = await brana_.registerSep();
    const env = { DATABASE_URL: brana_.broker.env.databaseUrl, BRANA_KEYS_DIR: keysDir, BRANA_MODE: 'development' };
    for (const args of [['sep', 'disable', sep.clientId], ['sep', 'enable', sep.clientId], ['sep', 'log-values', sep.clientId, 'on']]) {
      const result = await brana(args, env);
      assert.equal(result.code, 0, result.stderr);
    }
    const events = (await brana_.broker.log.query({ sepId: sep.clientId })).map((r) => [r.event, r.detail.actor, r.detail.from ?? null, r.detail.to ?? null]);
    assert.deepEqual(events, [
      ['sep_registered', 'test', null, null],
      ['sep_status_changed', 'cli', 'active', 'disabled'],
      ['sep_status_changed', 'cli', 'disabled', 'active'],
      ['sep_changed', 'cli', false, true],
    ]);
  });
});
