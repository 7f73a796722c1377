import assert from 'node:assert/strict';
import supertest from 'supertest';
import { runBrokerToEnd } from '../support/broker-process.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

describe('operating a node: health, readiness, configuration at start', () => {
  let brana: TestBroker;
  before(async () => {
    brana = await startTestBroker();
  });
  after(async () => brana.close());

  it('/healthz says the process is up; /readyz lists its named checks', async () => {
    const health = await supertest(brana.url.origin).get('/healthz').expect(200);
    assert.deepEqual(health.body, { status: 'ok' });
    const ready = await supertest(brana.url.origin).get('/readyz').expect(200);
    assert.equal(ready.body.status, 'ready');
    assert.deepEqual(Object.keys(ready.body.checks), ['database', 'keys', 'metadata', 'register']);
    assert.equal(ready.body.checks.database.ok, true);
    assert.deepEqual(ready.body.checks.register, { ok: true, detail: 'embedded' });
    assert.deepEqual(Object.keys(ready.body.checks.keys.detail.signing), ['RS256', 'ES256']);
    assert.equal(ready.body.checks.metadata.ok, true);
    assert.equal(ready.body.checks.metadata.detail.eobcanka.available, true, 'per identity means');
    assert.equal(ready.headers['cache-control'], 'no-store');
    assert.ok(!JSON.stringify(ready.body).includes('"d"'), 'no key material');
  });

  it('takes a further check in one line: it shows per-part detail, and the node is not ready while it fails', async () => {
    let reachable = true;
    brana.broker.readiness.add('registers', async () => ({ ok: reachable, detail: { basicRegister: reachable ? 'reachable' : 'unreachable', rob: 'reachable' } }));
    const ok = await supertest(brana.url.origin).get('/readyz').expect(200);
    assert.deepEqual(ok.body.checks.registers, { ok: true, detail: { basicRegister: 'reachable', rob: 'reachable' } });
    reachable = false;
    const failing = await supertest(brana.url.origin).get('/readyz').expect(503);
    assert.equal(failing.body.status, 'not_ready');
    assert.equal(failing.body.checks.registers.detail.basicRegister, 'unreachable');
    assert.equal(failing.body.checks.database.ok, true);
    assert.throws(() => brana.broker.readiness.add('registers', () => ({ ok: true })), /already registered/);
  });

  it('counts a check that throws or never answers as failed, without hanging /readyz', async () => {
    const other = await startTestBroker();
    try {
      other.broker.readiness.add('broken', () => {
        throw new Error('register unreachable');
      });
      other.broker.readiness.add('silent', () => new Promise(() => undefined));
      const report = await supertest(other.url.origin).get('/readyz').expect(503);
      assert.deepEqual(report.body.checks.broken, { ok: false, detail: 'the check failed' }, 'the raw error goes to the log, not to a public page');
      assert.equal(report.body.checks.silent.ok, false);
    } finally {
      await other.close();
    }
  });

  it('reports itself draining once it is told to stop', async () => {
    const other = await startTestBroker();
    try {
      other.broker.readiness.drain();
      const report = await supertest(other.url.origin).get('/readyz').expect(503);
      assert.equal(report.body.status, 'draining');
    } finally {
      await other.close();
    }
  });

  it('refuses to start with wrong settings, printing one line for each wrong variable', async () => {
    const result = await runBrokerToEnd({ BRANA_MODE: 'production', BRANA_PORT: '99999', BRANA_TRUST_PROXY: 'maybe', DATABASE_URL: 'oracle://scott:tiger@db/orcl', LOG_LEVEL: 'loud' });
    assert.equal(result.code, 2);
    const lines = result.stderr.trim().split('\n');
    assert.deepEqual(
      lines.map((line) => /^Brána cannot start: environment: ([A-Z_]+): /.exec(line)?.[1]).sort(),
      ['BRANA_PORT', 'BRANA_PUBLIC_URL', 'BRANA_TRUST_PROXY', 'DATABASE_URL', 'LOG_LEVEL'],
    );
    assert.ok(!result.stderr.includes('tiger'), 'the database password is not repeated');
    assert.ok(!result.stderr.includes('    at '), 'no stack trace');
  });
});
