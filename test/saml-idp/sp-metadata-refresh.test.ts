import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import supertest from 'supertest';
import { generateSelfSignedCertificate } from '../../src/keys/certificate.ts';
import { parseServiceProviderMetadata } from '../../src/saml-idp/sp-metadata.ts';
import { SpMetadataRefresher } from '../../src/saml-idp/sp-metadata-refresh.ts';
import { Citizen } from '../support/login-driver.ts';
import { samlSep, samlSepKeys, type SamlSep } from '../support/saml-sep.ts';
import { adminToken } from '../support/self-service.ts';
import { sepDocument, startTestBroker, type TestBroker } from '../support/test-broker.ts';

/**
 * SP metadata of a SAML SeP registered from an https URL, kept current like a means' metadata: a
 * real https server (its own certificate, which Brána trusts through BRANA_SAML_SEP_METADATA_CA)
 * serves whatever the test puts there.
 */
describe('SP metadata of SAML SePs refreshed from its https URL', function () {
  this.timeout(30_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-sp-refresh-'));
  const certFile = path.join(dir, 'tls.crt');
  const keyFile = path.join(dir, 'tls.key');
  let brana: TestBroker;
  let server: https.Server;
  let serving: { status: number; body: string } = { status: 200, body: '' };
  let base = '';

  before(async () => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost', '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
    server = https.createServer({ key: fs.readFileSync(keyFile), cert: fs.readFileSync(certFile) }, (_req, res) => {
      res.writeHead(serving.status, { 'Content-Type': 'application/samlmetadata+xml' }).end(serving.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `https://localhost:${(server.address() as AddressInfo).port}`;
    brana = await startTestBroker({ env: { BRANA_SAML_SEP_METADATA_CA: certFile } });
  });
  after(async () => {
    await brana?.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A SeP registered from `url`, as the CLI or the form registers it. */
  async function registeredFrom(url: string, sep: SamlSep): Promise<string> {
    const serviceProvider = parseServiceProviderMetadata(sep.metadataXml, url, { allowLoopbackHttp: true });
    const registered = await brana.broker.registration.register(sepDocument({ redirectUris: [sep.acsUrl] }), 'active', 'test', { saml: { serviceProvider, metadata: { xml: sep.metadataXml, source: url } } });
    return registered.sep.clientId;
  }
  const inForce = async (clientId: string) => (await brana.broker.db('sep_saml').where({ client_id: clientId }).first('metadata_xml')).metadata_xml as string;
  const refreshByOperator = async (clientId: string) => supertest(brana.url.origin).post(`/admin/seps/${clientId}/saml-metadata/refresh`).set('Authorization', `Bearer ${await adminToken(brana)}`);

  it('puts a rolled-over certificate in force (same entity ID), logged; the SeP\'s requests under the new key are then accepted', async () => {
    const sep = await samlSep(brana, { register: false });
    const url = `${base}/rollover/metadata`;
    const clientId = await registeredFrom(url, sep);
    const rolled = await samlSep(brana, { register: false, keys: { signing: generateSelfSignedCertificate('rolled signing'), encryption: samlSepKeys().encryption }, entityId: sep.entityId, acsUrl: sep.acsUrl });
    serving = { status: 200, body: rolled.metadataXml };
    const refreshed = await refreshByOperator(clientId);
    assert.equal(refreshed.status, 200, refreshed.text);
    assert.equal(refreshed.body.state, 'fresh');
    assert.equal(await inForce(clientId), rolled.metadataXml);
    const record = (await brana.broker.log.query({ sepId: clientId, event: 'sep_changed' })).at(-1)!;
    assert.equal(record.detail.actor, 'metadata refresh');
    assert.equal(record.detail.field, 'samlMetadata');
    const page = await new Citizen(brana.url.origin).follow(await new Citizen(brana.url.origin).get(await rolled.saml.getAuthorizeUrlAsync('', undefined, {})));
    assert.doesNotMatch(page.text, /SAMLResponse/, 'no refusal posted to the SeP');

    // The admin API reports its state.
    const review = await supertest(brana.url.origin).get(`/admin/seps/${clientId}`).set('Authorization', `Bearer ${await adminToken(brana)}`);
    assert.equal(review.body.samlMetadataRefresh.source, url);
    assert.equal(review.body.samlMetadataRefresh.error, undefined);
  });

  it('keeps the metadata in force, and says why, when the URL fails, names another entity, or serves metadata that expired', async () => {
    const sep = await samlSep(brana, { register: false });
    const clientId = await registeredFrom(`${base}/failing/metadata`, sep);
    const other = await samlSep(brana, { register: false });
    const expired = sep.metadataXml.replace(/<EntityDescriptor /, `<EntityDescriptor validUntil="${new Date(Date.now() - 60_000).toISOString()}" `);
    const cases: Array<[string, { status: number; body: string }, RegExp]> = [
      ['HTTP 500', { status: 500, body: 'oops' }, /HTTP 500/],
      ['another entity ID', { status: 200, body: other.metadataXml }, /entityID: is .*, the SeP is registered as/],
      ['a DOCTYPE', { status: 200, body: `<!DOCTYPE x>${sep.metadataXml}` }, /DOCTYPE|DTD/i],
    ];
    // First a good copy, so that "kept" means something.
    serving = { status: 200, body: sep.metadataXml };
    assert.equal((await refreshByOperator(clientId)).status, 200);
    for (const [what, answer, reason] of cases) {
      serving = answer;
      const before = (await brana.broker.log.query({ sepId: clientId, event: 'sep_changed' })).length;
      const refreshed = await refreshByOperator(clientId);
      assert.equal(refreshed.status, 502, what);
      assert.match(String(refreshed.body.error), reason, what);
      assert.equal(await inForce(clientId), sep.metadataXml, `${what}: the metadata in force stays`);
      assert.equal((await brana.broker.log.query({ sepId: clientId, event: 'sep_changed' })).length, before, `${what}: nothing changed`);
    }
    serving = { status: 200, body: expired };
    await refreshByOperator(clientId);
    assert.equal(await inForce(clientId), sep.metadataXml, 'an expired document is not put in force');
  });

  it('reads refreshed metadata only under the trust anchor\'s signature when one is configured', async () => {
    const keys = samlSepKeys();
    const signed = await samlSep(brana, { register: false, config: { signMetadata: true } });
    const url = `${base}/anchored/metadata`;
    const clientId = await registeredFrom(url, await samlSep(brana, { register: false, entityId: signed.entityId, acsUrl: signed.acsUrl }));
    const registeredXml = await inForce(clientId);
    const refresher = new SpMetadataRefresher({
      db: brana.broker.db,
      seps: brana.broker.seps,
      registration: brana.broker.registration,
      refreshIntervalMs: 3_600_000,
      fetch: { allowLoopback: true, ca: [fs.readFileSync(certFile, 'utf8')] },
      trustAnchors: [keys.signing.certificatePem],
    });
    serving = { status: 200, body: (await samlSep(brana, { register: false, entityId: signed.entityId, acsUrl: signed.acsUrl })).metadataXml };
    assert.match(String((await refresher.refresh(clientId))?.error), /Signature: is missing/);
    serving = { status: 200, body: signed.metadataXml.replace(/Location="https:\/\/([^"]+)\/acs"/, 'Location="https://evil.example/acs"') };
    assert.match(String((await refresher.refresh(clientId))?.error), /Signature: is not valid/);
    assert.equal(await inForce(clientId), registeredXml);
    serving = { status: 200, body: signed.metadataXml };
    const taken = await refresher.refresh(clientId);
    assert.equal(taken?.error, undefined);
    assert.equal(await inForce(clientId), signed.metadataXml);
  });

  it('leaves SePs registered from a file or the form alone', async () => {
    const sep = await samlSep(brana);
    const refreshed = await refreshByOperator(sep.clientId);
    assert.equal(refreshed.status, 404);
  });
});
