import assert from 'node:assert/strict';
import { readJsonlExport } from '../../src/audit/export.ts';
import { verifyChain, type ChainEntry } from '../../src/audit/verification.ts';
import { registrationOf } from '../../src/sep/sep.ts';
import { csrfOf, signInToConsole, staff } from '../support/console.ts';
import { createTestDatabase, type TestDatabase } from '../support/databases.ts';
import { Citizen, completeLogin } from '../support/login-driver.ts';
import { sepDocument, startTestBroker, type TestBroker } from '../support/test-broker.ts';

/**
 * The consoles on a real PostgreSQL server, where the log is staged and sequenced: every console
 * query (the search by a person's pseudonyms, a record's proof, a stretch's verification, exports,
 * tokens) and every decision (with the SeP's row locked) on the second backend.
 */
describe('the staff consoles on PostgreSQL', () => {
  let database: TestDatabase;
  let brana: TestBroker;
  let citizen: Citizen;
  let csrf: string;

  before(async () => {
    database = await createTestDatabase('postgres');
    brana = await startTestBroker({ databaseUrl: database.url });
    for (const role of ['auditor', 'administrator', 'operator']) assert.equal((await staff(brana, ['grant', 'AIFO-0001-JN', '--role', role, '--name', 'Jan Novák'])).code, 0);
    citizen = new Citizen(brana.url.origin);
    const home = await signInToConsole(citizen, 'eobcanka', '100000001');
    assert.equal(home.status, 200, home.text.slice(0, 300));
    csrf = csrfOf(home.text);
  });
  after(async () => {
    await brana?.close();
    await database?.drop();
  });

  it('finds a citizen\'s login by register id, proves the record, verifies the log and exports the login', async () => {
    const sep = await brana.registerSep();
    await completeLogin(brana.url.origin, sep, { means: 'eobcanka', login: '100000002', scope: 'openid profile' });
    const found = await citizen.post('/console/audit/search', { csrf, personKind: 'registerId', person: 'AIFO-0002-MS', reason: 'Spis 1/2026', event: 'token_issued' });
    assert.equal(found.status, 200);
    const seq = /href="\/console\/audit\/records\/(\d+)"/.exec(found.text)?.[1];
    assert.ok(seq, 'the login is found');

    const record = await citizen.get(`/console/audit/records/${seq}`);
    assert.equal(record.status, 200);
    assert.match(record.text, /id="hash-matches">ano</);
    assert.match(record.text, /id="sealed">ano</);

    const verified = await citizen.post('/console/audit/verify', { csrf });
    assert.match(verified.text, /id="verify-result"><p>Neporušeno: /);

    const exported = await citizen.post('/console/audit/export', { csrf, personKind: 'registerId', person: 'AIFO-0002-MS', reason: 'Spis 1/2026', event: 'token_issued', format: 'jsonl' });
    assert.equal(exported.status, 200);
    const lines = readJsonlExport(exported.text);
    assert.deepEqual(lines.flatMap((line) => (line.kind === 'record' ? [line.record.seq] : [])), [Number(seq)]);
    const report = await verifyChain({
      entries: lines.flatMap((line): ChainEntry[] => (line.kind === 'record' || line.kind === 'digest' ? [line.entry] : [])),
      checkpoints: lines.flatMap((line) => (line.kind === 'checkpoint' ? [line.jws] : [])),
      publicJwks: brana.broker.audit.keys.publicJwks,
    });
    assert.equal(report.intact, true, JSON.stringify(report.problems));

    const printed = await citizen.post('/console/audit/export', { csrf, personKind: 'registerId', person: 'AIFO-0002-MS', reason: 'Spis 1/2026', event: 'token_issued', format: 'report' });
    assert.match(printed.text, /id="report-verdict">Ověřeno: 1 záznam/);
  });

  it('approves the version shown, refuses an approval of one that changed since, and suspends and reinstates', async () => {
    const { sep } = await brana.broker.registration.register(sepDocument(), 'pending', 'test');
    const page = await citizen.get(`/console/admin/seps/${sep.clientId}`);
    const shown = /id="digest">([0-9a-f]{64})</.exec(page.text)![1]!;
    await brana.broker.registration.updateBySep(sep.clientId, { ...registrationOf(sep), description: 'Přepsáno' }, sep.clientId);
    const stale = await citizen.post(`/console/admin/seps/${sep.clientId}/approve`, { csrf, digest: shown });
    assert.equal(stale.status, 409);
    assert.equal((await brana.broker.seps.find(sep.clientId))!.status, 'pending');

    const now = /id="digest">([0-9a-f]{64})</.exec(stale.text)![1]!;
    const approved = await citizen.post(`/console/admin/seps/${sep.clientId}/approve`, { csrf, digest: now });
    assert.equal(approved.status, 303);
    assert.equal((await brana.broker.seps.find(sep.clientId))!.status, 'active');

    assert.equal((await citizen.post(`/console/admin/seps/${sep.clientId}/suspend`, { csrf, reason: 'Šetření úniku' })).status, 303);
    assert.equal((await brana.broker.seps.find(sep.clientId))!.status, 'disabled');
    assert.equal((await citizen.post(`/console/admin/seps/${sep.clientId}/reinstate`, { csrf, reason: 'Šetření skončilo' })).status, 303);
    assert.equal((await brana.broker.seps.find(sep.clientId))!.status, 'active');
  });

  it('issues and lists initial access tokens, and shows the operator\'s page', async () => {
    const issued = await citizen.post('/console/admin/tokens', { csrf, days: '3', uses: '1' });
    assert.equal(issued.status, 201);
    assert.match(issued.text, /id="issued-token">[^<]{20,}</);
    assert.match(issued.text, /1 \/ 1<\/td>/);
    const operations = await citizen.get('/console/operations/');
    assert.equal(operations.status, 200);
    assert.match(operations.text, /id="readiness">Uzel je připraven přijímat provoz\.</);
  });
});
