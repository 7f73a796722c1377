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
});
