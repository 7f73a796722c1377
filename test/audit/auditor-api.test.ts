import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import supertest from 'supertest';
import { requestIdOf } from '../../src/audit/request-id.ts';
import type { StoredAuditRecord } from '../../src/audit/assertion-log.ts';
import { exportedRecords } from '../../src/audit/export.ts';
import { brana } from '../support/cli.ts';
import { completeLogin, startLogin } from '../support/login-driver.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

type Agent = ReturnType<typeof supertest>;

describe('the auditors\' API (/audit): read-only, auditors only, every query logged', () => {
  let brana_: TestBroker;
  let http: Agent;
  let auditor: string;
  let admin: string;
  let monitor: string;
  let sep: { clientId: string; clientSecret: string; redirectUri: string };
  let other: { clientId: string; clientSecret: string; redirectUri: string };
  let pseudonym: string;
  let requestId: string;

  const count = async (table: string) => Number(((await brana_.broker.db(table).count({ n: '*' }).first()) as { n: number | string }).n);
  const records = async (query: Record<string, string>, token = auditor) =>
    (await http.get('/audit/records').query(query).set('Authorization', `Bearer ${token}`)).body as { records: StoredAuditRecord[]; next: number | null };

  before(async () => {
    brana_ = await startTestBroker();
    http = supertest(brana_.url.origin);
    auditor = (await brana_.broker.operators.issue('auditor', 'NKÚ auditor')).token;
    admin = (await brana_.broker.operators.issue('admin', 'Jana Správcová')).token;
    monitor = (await brana_.broker.operators.issue('monitor', 'prometheus')).token;
    sep = await brana_.registerSep();
    other = await brana_.registerSep({ group: 'ockovaci-portal' });
    const login = await completeLogin(brana_.url.origin, sep, { means: 'eobcanka', login: '100000001' });
    pseudonym = String(login.idToken.sub);
    await completeLogin(brana_.url.origin, other, { means: 'mojeid', login: 'jnovak' });
    const started = await startLogin(brana_.url.origin, sep);
    requestId = requestIdOf(createHash('sha256').update(started.codeVerifier).digest('base64url'))!;
  });
  after(async () => brana_.close());

  it('finds records by SeP, means, LoA, outcome, pseudonym, request id, event and time range', async () => {
    const bySep = await records({ sep: sep.clientId });
    assert.ok(bySep.records.length >= 7);
    assert.ok(bySep.records.every((r) => r.sepId === sep.clientId));
    assert.ok((await records({ means: 'mojeid' })).records.every((r) => r.means === 'mojeid'));
    const high = await records({ loa: 'high', event: 'token_issued' });
    assert.deepEqual(high.records.map((r) => r.sepId), [sep.clientId]);
    assert.deepEqual((await records({ pseudonym })).records.map((r) => r.event), ['identity_resolved', 'consent_given', 'token_issued']);
    assert.deepEqual((await records({ requestId })).records.map((r) => r.event), ['request_received']);
    assert.ok((await records({ outcome: 'success' })).records.every((r) => r.outcome === 'success'));
    const from = new Date(Date.now() + 60_000).toISOString();
    assert.deepEqual((await records({ from })).records, []);
    const window = await records({ from: '2000-01-01', to: new Date(Date.now() + 60_000).toISOString(), event: 'token_issued' });
    assert.equal(window.records.length, 2);
  });

  it('pages with limit and next', async () => {
    const first = await records({ limit: '3' });
    assert.equal(first.records.length, 3);
    assert.equal(first.next, first.records[2]!.seq);
    const second = await records({ limit: '3', after: String(first.next) });
    assert.equal(second.records[0]!.seq, first.next! + 1);
  });

  it('logs every query with the auditor\'s name and filter before answering', async () => {
    await records({ pseudonym, event: 'token_issued' });
    const logged = await brana_.broker.log.query({ event: 'audit_queried' }, { order: 'desc', limit: 1 });
    assert.equal(logged[0]!.detail.operator, 'NKÚ auditor');
    assert.deepEqual(logged[0]!.detail.filter, { pseudonym, event: 'token_issued' });
    assert.equal(logged[0]!.outcome, 'success');
  });

  it('gives an administrator and a monitor 403, logs the administrator\'s attempt, and anyone else 401', async () => {
    const before = await count('assertion_log');
    const asAdmin = await http.get('/audit/records').set('Authorization', `Bearer ${admin}`);
    assert.equal(asAdmin.status, 403);
    assert.equal(asAdmin.body.records, undefined);
    const attempt = (await brana_.broker.log.query({ event: 'audit_queried', outcome: 'failure' })).at(-1)!;
    assert.deepEqual([attempt.reason, attempt.detail.operator, attempt.detail.role], ['forbidden_role', 'Jana Správcová', 'admin']);
    for (const path_ of ['/audit/export', '/audit/checkpoints', '/audit/verify', '/audit/public-key']) {
      assert.equal((await http.get(path_).set('Authorization', `Bearer ${admin}`)).status, 403, path_);
    }
    assert.equal((await http.get('/audit/records').set('Authorization', `Bearer ${monitor}`)).status, 403);
    const anonymous = await http.get('/audit/records');
    assert.equal(anonymous.status, 401);
    assert.match(String(anonymous.headers['www-authenticate']), /^Bearer /);
    assert.equal((await http.get('/audit/records').set('Authorization', `Bearer ${auditor}x`)).status, 401);
    assert.equal(await count('assertion_log'), before + 6, 'only the refused administrator and monitor requests were logged');
  });

  it('lets an auditor write nothing: every other method is refused and nothing changes', async () => {
    const before = { log: await count('assertion_log'), seps: await count('sep'), operators: await count('operator_credential'), checkpoints: await count('audit_checkpoint') };
    for (const method of ['post', 'put', 'patch', 'delete'] as const) {
      for (const path_ of ['/audit/records', '/audit/export', '/audit/checkpoints', '/audit/anything']) {
        const response = await http[method](path_).set('Authorization', `Bearer ${auditor}`).send({ event: 'token_issued', outcome: 'success' });
        assert.equal(response.status, 405, `${method} ${path_}`);
        assert.equal(response.headers.allow, 'GET, HEAD');
      }
    }
    assert.deepEqual(before, { log: await count('assertion_log'), seps: await count('sep'), operators: await count('operator_credential'), checkpoints: await count('audit_checkpoint') });
  });

  it('refuses a filter it does not know, naming the parameter, and logs nothing', async () => {
    const before = await count('assertion_log');
    for (const [query, message] of [
      [{ loa: 'medium' }, /loa:/],
      [{ from: 'last tuesday' }, /from: must be a date/],
      [{ from: '2024-02-01', to: '2024-01-01' }, /to: must be later than from/],
      [{ colour: 'blue' }, /colour: is not a parameter/],
      [{ limit: '100000' }, /limit: must be a whole number from 1 to 1000/],
    ] as const) {
      const response = await http.get('/audit/records').query(query).set('Authorization', `Bearer ${auditor}`);
      assert.equal(response.status, 400);
      assert.equal(response.body.error, 'invalid_request');
      assert.match(response.body.error_description, message);
    }
    assert.equal(await count('assertion_log'), before);
  });

  for (const format of ['jsonl', 'csv'] as const) {
    it(`exports ${format} that an auditor verifies offline with the public key from the API`, async () => {
      const key = await http.get('/audit/public-key').set('Authorization', `Bearer ${auditor}`);
      const keyFile = path.join(brana_.dir, 'audit-public.json');
      fs.writeFileSync(keyFile, JSON.stringify(key.body));
      const response = await http
        .get('/audit/export')
        .query({ format, sep: sep.clientId })
        .set('Authorization', `Bearer ${auditor}`)
        .buffer(true)
        .parse((res, done) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => done(null, Buffer.concat(chunks)));
        });
      assert.equal(response.status, 200);
      assert.match(String(response.headers['content-disposition']), new RegExp(`attachment; filename="brana-audit-.*\\.${format}"`));
      const file = path.join(brana_.dir, `export.${format}`);
      fs.writeFileSync(file, response.body as Buffer);
      const verified = await brana(['audit', 'verify', '--file', file, '--public-key', keyFile], {});
      assert.equal(verified.code, 0, verified.stdout + verified.stderr);
      const { records: exported } = await exportedRecords(file);
      const expected = await brana_.broker.log.query({ sepId: sep.clientId });
      assert.deepEqual(exported.map((r) => r.seq), expected.map((r) => r.seq));
      assert.equal((await brana_.broker.log.query({ event: 'audit_exported' })).at(-1)!.detail.format, format);
    });
  }

  it('verifies the stored log on request and lists the checkpoints', async () => {
    const verified = await http.get('/audit/verify').set('Authorization', `Bearer ${auditor}`);
    assert.equal(verified.status, 200);
    assert.equal(verified.body.intact, true, JSON.stringify(verified.body.problems));
    const checkpoints = await http.get('/audit/checkpoints').set('Authorization', `Bearer ${auditor}`);
    assert.ok(checkpoints.body.checkpoints.length >= 1);
    assert.match(checkpoints.body.checkpoints[0].jws, /^[\w-]+\.[\w-]+\.[\w-]+$/);
  });
});
