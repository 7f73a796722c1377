import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import supertest from 'supertest';
import { ConfigurationError } from '../../src/config/configuration-error.ts';
import type { KeyPairWithCertificate } from '../../src/keys/certificate.ts';
import { codesIssuedTo, recordsOfLogin } from '../support/audit.ts';
import { brana as cli } from '../support/cli.ts';
import { authnRequestOf, externalResponse, idpKey, idpMetadataXml, providersFolder, samlMeansFile, signMetadata } from '../support/external-idp.ts';
import { authorizationResponse, postToAcs, startLogin } from '../support/login-driver.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

const ENTITY = 'https://idp.external.example.cz/metadata';
const SSO = 'https://idp.external.example.cz/sso';

/** Waits, without any deadline on speed, until a condition holds (the scheduler runs on its own). */
async function eventually(what: string, condition: () => boolean | Promise<boolean>, attempts = 200): Promise<void> {
  for (let i = 0; i < attempts; i += 1) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`never happened: ${what}`);
}

interface Attempt {
  code: string | null;
  status: number;
  codeVerifier: string;
  clientId: string;
}

/** One login through a means pointed at an external IdP, answered with a response signed by `signer`. */
async function loginThrough(brana: TestBroker, means: string, signer: KeyPairWithCertificate, sep?: Awaited<ReturnType<TestBroker['registerSep']>>): Promise<Attempt> {
  const registered = sep ?? (await brana.registerSep());
  const started = await startLogin(brana.url.origin, registered, { scope: 'openid', idpHint: means });
  assert.equal(started.response.status, 303, `expected a redirect to the IdP, got ${started.response.status}`);
  const location = String(started.response.headers.location);
  assert.ok(location.startsWith(SSO), location);
  const { id } = authnRequestOf(location);
  const SAMLResponse = await externalResponse(brana, means, { entityId: ENTITY, ...signer }, id);
  const page = await postToAcs(started.citizen, `/saml/${means}/acs`, { SAMLResponse });
  const code = page.status === 303 && String(page.headers.location).startsWith(registered.redirectUri) ? authorizationResponse(page, registered).get('code') : null;
  return { code, status: page.status, codeVerifier: started.codeVerifier, clientId: registered.clientId };
}

async function refusalReason(brana: TestBroker, attempt: Attempt): Promise<string | null | undefined> {
  return (await recordsOfLogin(brana.broker, attempt.codeVerifier)).find((record) => record.event === 'error')?.reason;
}

describe('metadata that keeps itself current', () => {
  const keyA = () => idpKey(0);
  const keyB = () => idpKey(1);
  const anchor = () => idpKey(2);
  const stranger = () => idpKey(3);

  describe('a means pointed at a metadata file, refreshed on schedule', () => {
    let brana: TestBroker;
    let providers: string;
    const write = (name: string, xml: string) => fs.writeFileSync(path.join(providers, name), xml);

    before(async () => {
      providers = providersFolder({
        keep: ['eobcanka', 'mojeid'],
        extra: {
          external: samlMeansFile({ name: { cs: 'Externí IdP', en: 'External IdP' } }, { metadata: 'external.xml' }),
          'expired-idp': samlMeansFile({ name: { cs: 'Prošlý IdP', en: 'Expired IdP' } }, { metadata: 'expired.xml' }),
          'signed-idp': samlMeansFile({ name: { cs: 'Podepsaný IdP', en: 'Signed IdP' } }, { metadata: 'signed.xml', metadataTrustAnchor: 'anchor.crt.pem' }),
        },
        files: {
          'external.xml': idpMetadataXml({ entityId: ENTITY, ssoUrl: SSO, certificates: [keyA().certificatePem], cacheDuration: 'PT1S' }),
          'expired.xml': idpMetadataXml({ entityId: ENTITY, ssoUrl: SSO, certificates: [keyA().certificatePem], validUntil: new Date(Date.now() - 60_000) }),
          'signed.xml': signMetadata(idpMetadataXml({ entityId: ENTITY, ssoUrl: SSO, certificates: [keyA().certificatePem] }), anchor()),
          'anchor.crt.pem': anchor().certificatePem,
        },
      });
      brana = await startTestBroker({ env: { BRANA_PROVIDERS_DIR: providers, BRANA_METADATA_REFRESH_SECONDS: '1' } });
    });
    after(async () => {
      await brana.close();
      fs.rmSync(providers, { recursive: true, force: true });
    });

    it('rolls a signing certificate over without a restart: the new one announced, then the old one retired', async () => {
      const source = brana.broker.registry.get('external')!.metadata;
      assert.ok((await loginThrough(brana, 'external', keyA())).code, 'the current key is trusted');
      const early = await loginThrough(brana, 'external', keyB());
      assert.equal(early.code, null, 'a key not yet announced is not trusted');
      assert.equal(await refusalReason(brana, early), 'signature_invalid');
      assert.equal(await codesIssuedTo(brana.broker, early.clientId), 0);

      let version = source.currentVersion();
      write('external.xml', idpMetadataXml({ entityId: ENTITY, ssoUrl: SSO, certificates: [keyA().certificatePem, keyB().certificatePem], cacheDuration: 'PT1S' }));
      await eventually('the announced certificate is picked up by the schedule', () => source.currentVersion() > version);
      assert.ok((await loginThrough(brana, 'external', keyB())).code, 'the announced key is trusted');
      assert.ok((await loginThrough(brana, 'external', keyA())).code, 'the old key is trusted during the rollover');

      version = source.currentVersion();
      write('external.xml', idpMetadataXml({ entityId: ENTITY, ssoUrl: SSO, certificates: [keyB().certificatePem], cacheDuration: 'PT1S' }));
      await eventually('the retirement is picked up by the schedule', () => source.currentVersion() > version);
      const retired = await loginThrough(brana, 'external', keyA());
      assert.equal(retired.code, null, 'the retired key is no longer trusted');
      assert.equal(await refusalReason(brana, retired), 'signature_invalid');
      assert.ok((await loginThrough(brana, 'external', keyB())).code);
      const refreshed = await brana.broker.log.query({ event: 'metadata_refreshed' });
      assert.ok(refreshed.some((record) => record.means === 'external' && record.detail.trigger === 'schedule' && record.detail.changed === true));
    });

    it('keeps the last good metadata when a refresh fails, says so in the health endpoint and the assertion log', async () => {
      write('external.xml', '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="broken"');
      const [status] = await brana.broker.registry.refreshMetadata('external');
      assert.equal(status!.state, 'failing');
      assert.equal(status!.available, true);
      assert.match(String(status!.error), /not readable XML/);

      assert.ok((await loginThrough(brana, 'external', keyB())).code, 'logins go on with the last good metadata');
      const health = await supertest(brana.url.origin).get('/health/metadata').set('Authorization', `Bearer ${(await brana.broker.operators.issue('monitor', `monitor ${Math.random()}`)).token}`);
      assert.equal(health.status, 200);
      assert.equal(health.body.status, 'degraded');
      const external = (health.body.means as Array<Record<string, unknown>>).find((item) => item.means === 'external')!;
      assert.equal(external.state, 'failing');
      assert.ok(external.lastRefreshAt && external.nextRefreshAt && external.error);
      const failures = await brana.broker.log.query({ event: 'metadata_refresh_failed' });
      const failure = failures.find((record) => record.means === 'external')!;
      assert.equal(failure.reason, 'metadata_refresh_failed');
      assert.equal(failure.detail.keptLastGood, true);

      write('external.xml', idpMetadataXml({ entityId: ENTITY, ssoUrl: SSO, certificates: [keyB().certificatePem], cacheDuration: 'PT1S' }));
      const [healed] = await brana.broker.registry.refreshMetadata('external');
      assert.equal(healed!.state, 'fresh');
      assert.equal(healed!.error, undefined);
    });

    it('stops a means whose metadata has expired, with a page offering the others', async () => {
      const health = await supertest(brana.url.origin).get('/health/metadata').set('Authorization', `Bearer ${(await brana.broker.operators.issue('monitor', `monitor ${Math.random()}`)).token}`);
      const expired = (health.body.means as Array<Record<string, unknown>>).find((item) => item.means === 'expired-idp')!;
      assert.equal(expired.state, 'expired');
      assert.equal(expired.available, false);
      assert.ok(Date.parse(String(expired.validUntil)) < Date.now());

      const sep = await brana.registerSep();
      const selection = await startLogin(brana.url.origin, sep);
      assert.equal(selection.response.status, 200);
      assert.doesNotMatch(selection.response.text, /value="expired-idp"/, 'a stopped means is not offered');
      assert.match(selection.response.text, /Dočasně nedostupné: Prošlý IdP/);
      assert.match(selection.response.text, /value="external"/);

      const hinted = await startLogin(brana.url.origin, sep, { idpHint: 'expired-idp' });
      assert.equal(hinted.response.status, 503);
      assert.match(hinted.response.text, /Zvolený prostředek teď není k dispozici/);
      for (const other of ['eobcanka', 'mojeid', 'external']) assert.match(hinted.response.text, new RegExp(`value="${other}"`));
      assert.doesNotMatch(hinted.response.text, /name="means" value="expired-idp"/);
      const logged = (await recordsOfLogin(brana.broker, hinted.codeVerifier)).find((record) => record.event === 'error');
      assert.equal(logged?.reason, 'means_metadata_unavailable');
      assert.equal(logged?.means, 'expired-idp');

      // Nothing it signs is accepted either: its keys are not trusted any more.
      const page = await postToAcs(hinted.citizen, '/saml/expired-idp/acs', { SAMLResponse: await externalResponse(brana, 'expired-idp', { entityId: ENTITY, ...keyA() }, '_x') });
      assert.ok(page.status >= 400);
      const refused = await brana.broker.log.query({ event: 'error' });
      assert.equal(refused.at(-1)?.reason, 'metadata_unavailable');

      // A SeP that may use only that means is told so, and giving up reaches it as access_denied.
      const only = await brana.registerSep({ allowedMeans: ['expired-idp'] });
      const stuck = await startLogin(brana.url.origin, only);
      assert.equal(stuck.response.status, 503);
      const uid = /action="\/interaction\/([^/]+)\/abort"/.exec(stuck.response.text)![1]!;
      const after = /name="after" value="([^"]+)"/.exec(stuck.response.text)![1]!;
      const params = authorizationResponse(await stuck.citizen.follow(await stuck.citizen.post(`/interaction/${uid}/abort`, { after })), only);
      assert.equal(params.get('error'), 'access_denied');
      assert.match(String(params.get('error_description')), /means_unavailable/);
    });

    it('reads signed metadata only when it verifies against the trust anchor, and keeps the last good otherwise', async () => {
      assert.ok((await loginThrough(brana, 'signed-idp', keyA())).code, 'metadata signed by the anchor is in use');
      const cases: Array<[string, string, RegExp]> = [
        ['signed by another key', signMetadata(idpMetadataXml({ entityId: ENTITY, ssoUrl: SSO, certificates: [stranger().certificatePem] }), stranger()), /not valid for the configured trust anchor/],
        ['unsigned', idpMetadataXml({ entityId: ENTITY, ssoUrl: SSO, certificates: [stranger().certificatePem] }), /Signature: is missing/],
        [
          'altered after signing (a certificate slipped in)',
          signMetadata(idpMetadataXml({ entityId: ENTITY, ssoUrl: SSO, certificates: [keyA().certificatePem] }), anchor()).replace(
            '<md:KeyDescriptor',
            idpMetadataXml({ entityId: ENTITY, ssoUrl: SSO, certificates: [stranger().certificatePem] }).match(/<md:KeyDescriptor.*?<\/md:KeyDescriptor>/)![0] + '<md:KeyDescriptor',
          ),
          /not valid for the configured trust anchor/,
        ],
      ];
      for (const [what, xml, message] of cases) {
        write('signed.xml', xml);
        const [status] = await brana.broker.registry.refreshMetadata('signed-idp');
        assert.equal(status!.state, 'failing', what);
        assert.match(String(status!.error), message, what);
        const attempt = await loginThrough(brana, 'signed-idp', stranger());
        assert.equal(attempt.code, null, `${what}: the stranger's key must not become trusted`);
        assert.ok((await loginThrough(brana, 'signed-idp', keyA())).code, `${what}: the last good metadata stays in use`);
      }
    });
  });

  describe('refusing bad signed metadata at start, and the shared last good copy', () => {
    const dirs: string[] = [];
    after(() => {
      for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
    });

    it('refuses to start on metadata signed by a key other than the trust anchor, naming the file and field', async () => {
      const providers = providersFolder({
        keep: ['eobcanka'],
        extra: { 'signed-idp': samlMeansFile({}, { metadata: 'signed.xml', metadataTrustAnchor: 'anchor.crt.pem' }) },
        files: {
          'signed.xml': signMetadata(idpMetadataXml({ entityId: ENTITY, ssoUrl: SSO, certificates: [keyA().certificatePem] }), stranger()),
          'anchor.crt.pem': anchor().certificatePem,
        },
      });
      dirs.push(providers);
      await assert.rejects(startTestBroker({ env: { BRANA_PROVIDERS_DIR: providers } }), (err: unknown) => err instanceof ConfigurationError && /signed\.xml: Signature: is not valid for the configured trust anchor/.test(err.message));
    });

    it('starts on the last good copy from the database when the source is broken, and takes an operator refresh from the CLI', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-shared-'));
      dirs.push(dir);
      const databaseUrl = `sqlite:${path.join(dir, 'shared.sqlite')}`;
      const providers = providersFolder({
        keep: ['eobcanka'],
        extra: { external: samlMeansFile({}, { metadata: 'external.xml' }) },
        files: { 'external.xml': idpMetadataXml({ entityId: ENTITY, ssoUrl: SSO, certificates: [keyA().certificatePem] }) },
      });
      dirs.push(providers);
      const env = { BRANA_PROVIDERS_DIR: providers, BRANA_METADATA_REFRESH_SECONDS: '3600' };
      const first = await startTestBroker({ databaseUrl, env });
      await first.close();

      fs.writeFileSync(path.join(providers, 'external.xml'), 'not metadata at all');
      const second = await startTestBroker({ databaseUrl, env });
      try {
        const [status] = second.broker.registry.metadataStatus().filter((item) => item.means === 'external');
        assert.equal(status!.state, 'failing');
        assert.equal(status!.available, true);
        assert.ok((await loginThrough(second, 'external', keyA())).code, 'the node serves the means on the shared last good copy');

        const cliEnv = { DATABASE_URL: databaseUrl, BRANA_PROVIDERS_DIR: providers, BRANA_MODE: 'development' };
        const failing = await cli(['metadata', 'refresh', 'external'], cliEnv);
        assert.equal(failing.code, 2);
        assert.match(failing.stderr, /1 metadata refresh\(es\) failed; the last good metadata stays in use/);
        const operatorFailure = (await second.broker.log.query({ event: 'metadata_refresh_failed' })).at(-1)!;
        assert.equal(operatorFailure.detail.trigger, 'operator');

        fs.writeFileSync(path.join(providers, 'external.xml'), idpMetadataXml({ entityId: ENTITY, ssoUrl: SSO, certificates: [keyA().certificatePem, keyB().certificatePem] }));
        const refreshed = await cli(['metadata', 'refresh', 'external'], cliEnv);
        assert.equal(refreshed.code, 0, refreshed.stderr);
        assert.equal((JSON.parse(refreshed.stdout) as Array<{ state: string }>)[0]!.state, 'fresh');
        assert.equal((await loginThrough(second, 'external', keyB())).code, null, 'not before the node has polled the shared copy');

        assert.deepEqual(await second.broker.registry.adoptSharedCopies(), ['external']);
        assert.ok((await loginThrough(second, 'external', keyB())).code, 'the node took the operator\'s refresh');
        const [after] = second.broker.registry.metadataStatus().filter((item) => item.means === 'external');
        assert.equal(after!.state, 'fresh');

        const shown = await cli(['metadata', 'show', 'external'], cliEnv);
        assert.equal(shown.code, 0, shown.stderr);
        const [described] = JSON.parse(shown.stdout) as Array<Record<string, unknown>>;
        assert.equal(described!.state, 'fresh');
        assert.equal(described!.entityId, ENTITY);
        assert.equal((described!.signingCertificates as unknown[]).length, 2);
        assert.match(String(described!.sha256), /^[0-9a-f]{64}$/);
        const development = JSON.parse((await cli(['metadata', 'show', 'eobcanka'], cliEnv)).stdout) as Array<Record<string, unknown>>;
        assert.match(String(development[0]!.source), /embedded development provider/);
      } finally {
        await second.close();
      }
    });
  });
});
