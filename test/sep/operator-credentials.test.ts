import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import supertest from 'supertest';
import { OperatorCredentials } from '../../src/access/operator-credentials.ts';
import { requireOperator } from '../../src/access/require-operator.ts';
import { migrate, openDatabase, type Database } from '../../src/store/database.ts';
import { brana as cli } from '../support/cli.ts';

describe('operator credentials (administrators and auditors)', () => {
  let dir: string;
  let env: Record<string, string>;
  let db: Database;
  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-operators-'));
    env = { DATABASE_URL: `sqlite:${path.join(dir, 'brana.sqlite')}`, BRANA_KEYS_DIR: path.join(dir, 'keys') };
    db = openDatabase(env.DATABASE_URL!);
    await migrate(db);
  });
  afterEach(async () => {
    await db.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('issues a token once, stores only its hash, and revokes it', async () => {
    const added = await cli(['operator', 'add', '--role', 'auditor', '--name', 'NKÚ auditor'], env);
    assert.equal(added.code, 0, added.stderr);
    const { token } = JSON.parse(added.stdout) as { token: string };
    assert.match(token, /^brana_auditor_[A-Za-z0-9_-]{43}$/);
    const stored = JSON.stringify(await db('operator_credential').select());
    assert.ok(!stored.includes(token), 'the token itself is never stored');

    const credentials = new OperatorCredentials(db);
    assert.equal((await credentials.authenticate(token))?.role, 'auditor');
    assert.equal(await credentials.authenticate(`${token.slice(0, -1)}x`), undefined);

    const listed = await cli(['operator', 'list'], env);
    assert.ok(!listed.stdout.includes(token));
    assert.equal((await cli(['operator', 'revoke', 'NKÚ auditor'], env)).code, 0);
    assert.equal(await credentials.authenticate(token), undefined);
    const events = (await db('assertion_log').where('event', 'like', 'operator_%').select('event')).map((r: { event: string }) => r.event);
    assert.deepEqual(events, ['operator_added', 'operator_revoked']);
  });

  it('refuses an unknown role and a bad name, writing nothing', async () => {
    const role = await cli(['operator', 'add', '--role', 'root', '--name', 'x'], env);
    assert.equal(role.code, 2);
    assert.match(role.stderr, /--role: must be one of admin, auditor/);
    const name = await cli(['operator', 'add', '--role', 'admin', '--name', '<script>'], env);
    assert.equal(name.code, 2);
    assert.equal((await db('operator_credential').count({ n: '*' }))[0]!.n, 0);
  });

  it('lets each role into its own endpoints only', async () => {
    const credentials = new OperatorCredentials(db);
    const admin = (await credentials.issue('admin', 'admin')).token;
    const auditor = (await credentials.issue('auditor', 'auditor')).token;
    const app = express();
    app.get('/admin', requireOperator(credentials, 'admin'), (_req, res) => void res.json({ ok: true }));
    app.get('/audit', requireOperator(credentials, 'auditor'), (_req, res) => void res.json({ ok: true }));
    const agent = supertest(app);
    assert.equal((await agent.get('/admin').set('Authorization', `Bearer ${admin}`)).status, 200);
    assert.equal((await agent.get('/audit').set('Authorization', `Bearer ${admin}`)).status, 403);
    assert.equal((await agent.get('/audit').set('Authorization', `Bearer ${auditor}`)).status, 200);
    assert.equal((await agent.get('/admin').set('Authorization', `Bearer ${auditor}`)).status, 403);
    const none = await agent.get('/admin');
    assert.equal(none.status, 401);
    assert.match(String(none.headers['www-authenticate']), /Bearer/);
  });
});
