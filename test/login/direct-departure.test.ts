import assert from 'node:assert/strict';
import { recordsOfLogin } from '../support/audit.ts';
import { idpKey, idpMetadataXml, providersFolder, samlMeansFile } from '../support/external-idp.ts';
import { hiddenFields } from '../support/html.ts';
import { startLogin } from '../support/login-driver.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

/**
 * A login that goes straight to a means (idp_hint, or the only means a SeP may use) is handed off at
 * the authorization request itself — but only by redirect. A means reached by a form post, or one
 * that is stopped, is left to the interaction page, and nothing is written twice.
 */
describe('a login handed off at the authorization request', () => {
  let brana: TestBroker;
  before(async () => {
    const providers = providersFolder({
      keep: ['eobcanka', 'mojeid'],
      extra: { 'post-idp': samlMeansFile({ name: { cs: 'IdP s formulářem', en: 'Form-post IdP' } }, { metadata: 'post.xml' }) },
      files: { 'post.xml': idpMetadataXml({ entityId: 'https://post-idp.example/', ssoUrl: 'https://post-idp.example/sso', certificates: [idpKey(0).certificatePem], ssoBinding: 'HTTP-POST' }) },
    });
    brana = await startTestBroker({ env: { BRANA_PROVIDERS_DIR: providers } });
  });
  after(async () => brana?.close());

  it('leaves a means reached by a form post to the interaction page: one request to the means, one record', async () => {
    const sep = await brana.registerSep();
    const started = await startLogin(brana.url.origin, sep, { idpHint: 'post-idp' });
    assert.equal(started.authorization.status, 303);
    assert.match(new URL(String(started.authorization.headers.location), brana.url.origin).pathname, /^\/interaction\/[^/]+$/, 'to the interaction page first');
    assert.equal(started.response.status, 200, 'the page that posts the request to the means');
    assert.match(started.response.text, /action="https:\/\/post-idp\.example\/sso"/);
    assert.ok(hiddenFields(started.response.text).SAMLRequest);
    const events = (await recordsOfLogin(brana.broker, started.codeVerifier)).map((record) => record.event);
    assert.deepEqual(events, ['request_received', 'request_sent_upstream']);
    const uid = /^\/interaction\/([^/]+)$/.exec(new URL(String(started.authorization.headers.location), brana.url.origin).pathname)![1]!;
    assert.equal((await brana.broker.db('upstream_request').where({ interaction_uid: uid })).length, 1);
  });

  it('hands a means reached by redirect off at once: to the means from the authorization request, one request, one record', async () => {
    const sep = await brana.registerSep();
    const started = await startLogin(brana.url.origin, sep, { idpHint: 'mojeid' });
    assert.match(String(started.authorization.headers.location), /\/dev-idp\/mojeid\/sso\?SAMLRequest=/);
    const events = (await recordsOfLogin(brana.broker, started.codeVerifier)).map((record) => record.event);
    assert.deepEqual(events, ['request_received', 'request_sent_upstream']);
  });

  it('writes the request\'s record with the hand-off, in one transaction and one log statement', async () => {
    const sep = await brana.registerSep();
    const statements: string[] = [];
    const count = (query: { sql: string }) => statements.push(query.sql);
    brana.broker.db.on('query', count);
    let started;
    try {
      started = await startLogin(brana.url.origin, sep, { idpHint: 'mojeid' });
    } finally {
      brana.broker.db.off('query', count);
    }
    assert.match(String(started.authorization.headers.location), /\/dev-idp\/mojeid\/sso\?SAMLRequest=/);
    assert.equal(statements.filter((sql) => /^BEGIN/i.test(sql)).length, 1, statements.join('\n'));
    assert.equal(statements.filter((sql) => /^insert into .assertion_log/i.test(sql)).length, 1, statements.join('\n'));
    const events = (await recordsOfLogin(brana.broker, started.codeVerifier)).map((record) => record.event);
    assert.deepEqual(events, ['request_received', 'request_sent_upstream']);
  });

  it('records the request alone, and leaves the login to the interaction page, when the hand-off fails: nothing of it written', async () => {
    const sep = await brana.registerSep();
    const db = brana.broker.db;
    await db.raw("CREATE TRIGGER test_refuse_request BEFORE INSERT ON upstream_request BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END");
    let started;
    try {
      started = await startLogin(brana.url.origin, sep, { idpHint: 'mojeid' });
    } finally {
      await db.raw('DROP TRIGGER test_refuse_request');
    }
    const to = new URL(String(started.authorization.headers.location), brana.url.origin).pathname;
    assert.match(to, /^\/interaction\/[^/]+$/, 'to the interaction page');
    const uid = /^\/interaction\/([^/]+)$/.exec(to)![1]!;
    assert.equal((await db('upstream_request').where({ interaction_uid: uid })).length, 0);
    const events = (await recordsOfLogin(brana.broker, started.codeVerifier)).map((record) => record.event);
    assert.equal(events[0], 'request_received', 'the request recorded');
    assert.equal(events.filter((event) => event === 'request_received').length, 1, 'once');
    assert.ok(!events.includes('request_sent_upstream'));
  });
});
