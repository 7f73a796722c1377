import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadBrokerKeys } from '../../src/keys/key-store.ts';
import { rotateSigningKeys } from '../../src/operations/key-rotation.ts';
import { SIGNING_KEYS_FILE } from '../../src/keys/signing-keys.ts';
import { migrate, openDatabase } from '../../src/store/database.ts';
import { openTestTrail, settleLog } from '../support/audit-trail.ts';
import { brana as runBrana } from '../support/cli.ts';
import { createPostgresDatabase } from '../support/postgres.ts';

interface Listed {
  kid: string;
  alg: string;
  state: string;
}

describe('brana keys (signing key rotation)', () => {
  let dir: string;
  let env: Record<string, string>;
  let file: string;
  const keysRotated = async (databaseUrl = env.DATABASE_URL!) => {
    const db = openDatabase(databaseUrl);
    try {
      await settleLog(db);
      return ((await db('assertion_log').where({ event: 'keys_rotated' }).orderBy('seq', 'asc')) as Array<{ outcome: string; detail: string }>)
        .map((row) => ({ ...row, detail: JSON.parse(row.detail) as Record<string, unknown> }))
        .filter((row) => row.detail.purpose === 'oidc-signing');
    } finally {
      await db.destroy();
    }
  };

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-keys-cli-'));
    env = { DATABASE_URL: `sqlite:${path.join(dir, 'brana.sqlite')}`, BRANA_KEYS_DIR: path.join(dir, 'keys'), BRANA_MODE: 'production', BRANA_PUBLIC_URL: 'https://brana.example.cz' };
    await loadBrokerKeys(env.BRANA_KEYS_DIR!, new URL('https://brana.example.cz'));
    file = path.join(env.BRANA_KEYS_DIR!, SIGNING_KEYS_FILE);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('adds keys that are published at once and sign after every node has re-read them, and logs keys_rotated', async () => {
    const before = JSON.parse((await runBrana(['keys', 'list'], env)).stdout) as Listed[];
    assert.deepEqual(before.map((key) => key.state), ['signing', 'signing']);

    const result = await runBrana(['keys', 'rotate'], { ...env, BRANA_KEYS_RELOAD_SECONDS: '30' });
    assert.equal(result.code, 0, result.stderr);
    const summary = JSON.parse(result.stdout) as { signingFrom: string; added: Array<{ kid: string; alg: string }>; retiring: Array<{ kid: string; publishedUntil: string }>; pickUp: string };
    assert.deepEqual(summary.added.map((key) => key.alg), ['RS256', 'ES256']);
    assert.deepEqual(summary.retiring.map((key) => key.kid).sort(), before.map((key) => key.kid).sort());
    const signingFrom = Date.parse(summary.signingFrom);
    assert.ok(signingFrom > Date.now() + 30_000, 'by default the new keys sign only after two re-read intervals');
    // Old keys stay until the last ID token they signed (10 minutes) has expired, with margin.
    for (const key of summary.retiring) assert.ok(Date.parse(key.publishedUntil) >= signingFrom + 600_000);
    assert.match(summary.pickUp, /within 30 s .* SIGHUP/);

    const after = JSON.parse((await runBrana(['keys', 'list'], env)).stdout) as Listed[];
    assert.deepEqual(after.map((key) => key.state).sort(), ['pending', 'pending', 'signing', 'signing']);

    const [record] = await keysRotated();
    assert.equal(record!.outcome, 'success');
    assert.deepEqual((record!.detail.added as Array<{ kid: string }>).map((key) => key.kid), summary.added.map((key) => key.kid));
    assert.ok(!JSON.stringify(record).includes('"d"'), 'no key material in the log');
  });

  it('can switch at once, for when every node is sent SIGHUP right away', async () => {
    const result = await runBrana(['keys', 'rotate', '--activate-in', '0'], env);
    assert.equal(result.code, 0, result.stderr);
    const states = (JSON.parse((await runBrana(['keys', 'list'], env)).stdout) as Listed[]).map((key) => key.state);
    assert.deepEqual(states, ['signing', 'signing', 'published', 'published']);
  });

  it('refuses a wrong --activate-in and another rotation in progress, changing nothing', async () => {
    const original = fs.readFileSync(file, 'utf8');
    const wrong = await runBrana(['keys', 'rotate', '--activate-in', 'soon'], env);
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /--activate-in: must be a whole number of seconds/);

    fs.writeFileSync(`${file}.lock`, '');
    const busy = await runBrana(['keys', 'rotate'], env);
    assert.equal(busy.code, 2);
    assert.match(busy.stderr, /another rotation is in progress/);
    assert.equal(fs.readFileSync(file, 'utf8'), original);
    assert.deepEqual(await keysRotated(), []);
  });

  it('does not rotate when the rotation cannot be logged (PostgreSQL, log table locked past the timeout)', async () => {
    const database = await createPostgresDatabase('rotate');
    const db = openDatabase(database.url, { timeoutMs: 500 });
    try {
      await migrate(db);
      const original = fs.readFileSync(file, 'utf8');
      const lock = await database.lockTable('assertion_log_staged');
      try {
        const { log } = await openTestTrail(db);
        await assert.rejects(rotateSigningKeys(file, db, log, { activateInMs: 0, retainMs: 60_000, actor: 'test' }), /statement timeout/);
      } finally {
        await lock.release();
      }
      assert.equal(fs.readFileSync(file, 'utf8'), original, 'the key file is unchanged');
      assert.deepEqual(fs.readdirSync(path.dirname(file)).filter((name) => /\.(tmp|lock)$/.test(name)), [], 'no temporary or lock file stays');
      assert.deepEqual((await db('assertion_log').where({ event: 'keys_rotated' })).filter((row: { detail: string }) => JSON.parse(row.detail).purpose === 'oidc-signing'), []);
    } finally {
      await db.destroy();
      await database.drop();
    }
  });
});
