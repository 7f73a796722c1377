import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import supertest from 'supertest';
import { SignedXml } from 'xml-crypto';
import { execFileSync } from 'node:child_process';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { brana as cli, branaProcess } from '../support/cli.ts';
import { adminToken } from '../support/self-service.ts';
import os from 'node:os';
import { certificateBody, generateSelfSignedCertificate } from '../../src/keys/certificate.ts';
import { hiddenFields } from '../support/html.ts';
import { Citizen } from '../support/login-driver.ts';
import { samlLogin, samlSep, samlSepKeys, validatedBySep } from '../support/saml-sep.ts';
import { sepDocument, startTestBroker, type TestBroker } from '../support/test-broker.ts';

describe('registering a SAML SeP from its SP metadata (brana sep register --saml-metadata)', () => {
  let brana: TestBroker;
  let env: Record<string, string>;
  const write = (name: string, content: unknown) => {
    const file = path.join(brana.dir, name);
    fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
    return file;
  };
  const counts = async () => ({
    seps: Number((await brana.broker.db('sep').count({ n: '*' }))[0]!.n),
    samlSeps: Number((await brana.broker.db('sep_saml').count({ n: '*' }))[0]!.n),
    logged: Number((await brana.broker.db('assertion_log').where({ event: 'sep_registered' }).count({ n: '*' }))[0]!.n),
  });

  before(async () => {
    brana = await startTestBroker();
    env = { DATABASE_URL: `sqlite:${path.join(brana.dir, 'data', 'brana.sqlite')}`, BRANA_KEYS_DIR: brana.keysDir, BRANA_MODE: 'development', BRANA_PUBLIC_URL: brana.url.origin };
  });
  after(async () => brana.close());

  it('registers it on the same SeP record (group, attributes, LoA, environment) and the citizen logs in at it', async () => {
    const sep = await samlSep(brana, { register: false });
    const document = sepDocument({ clientId: undefined, redirectUris: undefined, group: 'hradec-kralove' });
    const result = await cli(['sep', 'register', '--file', write('saml-sep.json', document), '--saml-metadata', write('sp.xml', sep.metadataXml)], env);
    assert.equal(result.code, 0, result.stderr);
    const printed = JSON.parse(result.stdout) as { clientId: string; entityId: string; status: string; group: string; idpMetadata: string; clientSecret?: string };
    assert.equal(printed.entityId, sep.entityId);
    assert.equal(printed.status, 'active');
    assert.equal(printed.group, 'hradec-kralove');
    assert.equal(printed.idpMetadata, `${brana.url.origin}/saml-idp/metadata`);
    assert.equal(printed.clientSecret, undefined, 'a SAML SeP has no client secret to use');

    const stored = (await brana.broker.seps.find(printed.clientId))!;
    assert.equal(stored.protocol, 'saml');
    assert.deepEqual(stored.redirectUris, [sep.acsUrl]);
    const record = (await brana.broker.log.query({ sepId: printed.clientId })).find((entry) => entry.event === 'sep_registered')!;
    assert.equal(record.detail.samlEntityId, sep.entityId);

    const shown = await cli(['sep', 'show', printed.clientId], env);
    assert.equal(shown.code, 0, shown.stderr);
    const review = JSON.parse(shown.stdout) as { protocol: string; saml: { entityId: string; assertionConsumerServices: Array<{ url: string }>; assertionEncryption: string } };
    assert.equal(review.protocol, 'saml');
    assert.equal(review.saml.entityId, sep.entityId);
    assert.deepEqual(review.saml.assertionConsumerServices.map((service) => service.url), [sep.acsUrl]);
    assert.equal(review.saml.assertionEncryption, 'http://www.w3.org/2009/xmlenc11#aes256-gcm');
    assert.ok(!shown.stdout.includes('BEGIN CERTIFICATE'));
    const reviewed = await supertest(brana.url.origin).get(`/admin/seps/${printed.clientId}`).set('Authorization', `Bearer ${await adminToken(brana)}`);
    assert.equal(reviewed.status, 200);
    assert.equal((reviewed.body as { saml: { entityId: string } }).saml.entityId, sep.entityId);

    const profile = await validatedBySep(sep, (await samlLogin(brana, sep, { means: 'eobcanka', login: '100000001' })).answer);
    assert.match(profile.nameID, /^[A-Za-z0-9_-]{43}$/);

    // A SAML SeP is no OpenID client: the authorization endpoint does not know it.
    const authorize = await supertest(brana.url.origin).get(`/auth?client_id=${printed.clientId}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(sep.acsUrl)}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`);
    assert.equal(authorize.status, 400);
  });

  it('keeps a SAML SeP registered as pending out until an administrator approves the version reviewed', async () => {
    const sep = await samlSep(brana, { register: false });
    const result = await cli(['sep', 'register', '--pending', '--file', write('saml-sep.json', sepDocument({ clientId: undefined, redirectUris: undefined })), '--saml-metadata', write('sp.xml', sep.metadataXml)], env);
    assert.equal(result.code, 0, result.stderr);
    const { clientId } = JSON.parse(result.stdout) as { clientId: string };
    // Pending: its requests are refused with the citizen's page, nothing is posted to its ACS.
    const refused = await new Citizen(brana.url.origin).get(await sep.saml.getAuthorizeUrlAsync('', undefined, {}));
    assert.equal(refused.status, 400);
    assert.equal(hiddenFields(refused.text).SAMLResponse, undefined);

    const review = JSON.parse((await cli(['sep', 'show', clientId], env)).stdout) as { approval: { digest: string } };
    const approved = await cli(['sep', 'approve', clientId, '--digest', review.approval.digest], env);
    assert.equal(approved.code, 0, approved.stderr);
    const profile = await validatedBySep(sep, (await samlLogin(brana, sep, { means: 'eobcanka', login: '100000001' })).answer);
    assert.match(profile.nameID, /^[A-Za-z0-9_-]{43}$/);
  });

  const broken: Array<[string, (xml: string) => string, RegExp]> = [
    ['a DOCTYPE', (xml) => `<!DOCTYPE x [<!ENTITY e "e">]>${xml}`, /sp\.xml: \(document\): not readable XML: DOCTYPE is not allowed/],
    ['no signing certificate', (xml) => xml.replace(/<KeyDescriptor use="signing">[\s\S]*?<\/KeyDescriptor>/, ''), /KeyDescriptor\[@use=signing\]: has no valid signing certificate/],
    ['no encryption certificate', (xml) => xml.replace(/<KeyDescriptor use="encryption">[\s\S]*?<\/KeyDescriptor>/, ''), /KeyDescriptor\[@use=encryption\]: has no valid encryption certificate/],
    ['an ACS on plain http', (xml) => xml.replace(/Location="https:\/\/([^"]+)\/acs"/, 'Location="http://$1/acs"'), /AssertionConsumerService\[0\]\/@Location: must use https/],
    ['no entity id', (xml) => xml.replace(/entityID="[^"]+"/, ''), /EntityDescriptor\/@entityID: is missing/],
    [
      'only Triple-DES as its data encryption',
      (xml) => xml.replace(/(<EncryptionMethod Algorithm="[^"]+"\/>\s*)+/, '<EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#tripledes-cbc"/>'),
      /KeyDescriptor\/EncryptionMethod: names no data encryption Brána uses/,
    ],
  ];
  for (const [what, spoil, message] of broken) {
    it(`refuses metadata with ${what}, naming the file and field, and writes nothing`, async () => {
      const sep = await samlSep(brana, { register: false });
      const before = await counts();
      const result = await cli(['sep', 'register', '--file', write('saml-sep.json', sepDocument({ clientId: undefined, redirectUris: undefined })), '--saml-metadata', write('sp.xml', spoil(sep.metadataXml))], env);
      assert.equal(result.code, 2, result.stdout);
      assert.match(result.stderr, message);
      assert.deepEqual(await counts(), before);
    });
  }

  it('refuses a second SeP with the same entity id, and return URLs named beside the metadata', async () => {
    const sep = await samlSep(brana);
    const before = await counts();
    const again = await cli(['sep', 'register', '--file', write('saml-sep.json', sepDocument({ clientId: undefined, redirectUris: undefined })), '--saml-metadata', write('sp.xml', sep.metadataXml)], env);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /sp\.xml: entityID: entity id .* is registered for SeP/);
    const withUris = await cli(['sep', 'register', '--file', write('saml-sep.json', sepDocument({ clientId: undefined })), '--saml-metadata', write('sp.xml', sep.metadataXml)], env);
    assert.equal(withUris.code, 2);
    assert.match(withUris.stderr, /saml-sep\.json: redirectUris: a SAML SeP's return URLs are the ACS endpoints/);
    assert.deepEqual(await counts(), before);
  });

  it('fetches metadata from an https URL (the CLI as its own process, trusting the test server\'s certificate)', async () => {
    const sep = await samlSep(brana, { register: false });
    const keyFile = path.join(brana.dir, 'tls.key');
    const certFile = path.join(brana.dir, 'tls.crt');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost', '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
    const server = https.createServer({ key: fs.readFileSync(keyFile), cert: fs.readFileSync(certFile) }, (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/samlmetadata+xml' }).end(sep.metadataXml);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `https://localhost:${(server.address() as AddressInfo).port}/saml/metadata`;
      const result = await branaProcess(['sep', 'register', '--file', write('saml-sep.json', sepDocument({ clientId: undefined, redirectUris: undefined })), '--saml-metadata', url], { ...env, NODE_EXTRA_CA_CERTS: certFile, LOG_LEVEL: 'error' });
      assert.equal(result.code, 0, result.stderr);
      const { clientId, entityId } = JSON.parse(result.stdout) as { clientId: string; entityId: string };
      assert.equal(entityId, sep.entityId);
      // And again from there, later (the SeP's certificates rolled over, say).
      const again = await branaProcess(['sep', 'saml-metadata', clientId], { ...env, NODE_EXTRA_CA_CERTS: certFile, LOG_LEVEL: 'error' });
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual((JSON.parse(again.stdout) as { changed: string[] }).changed, []);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('reads metadata from a file or an https URL only', async () => {
    const before = await counts();
    const result = await cli(['sep', 'register', '--file', write('saml-sep.json', sepDocument({ clientId: undefined, redirectUris: undefined })), '--saml-metadata', 'http://portal.example.cz/saml/metadata'], env);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /http:\/\/portal\.example\.cz\/saml\/metadata: SP metadata is read from a file or an https URL only/);
    assert.deepEqual(await counts(), before);
  });

  it('reads metadata only under the signature of a trust anchor when one is given', async () => {
    const keys = samlSepKeys();
    const signed = await samlSep(brana, { register: false, config: { signMetadata: true } });
    assert.match(signed.metadataXml, /<ds:Signature|<Signature/);
    const anchor = write('anchor.pem', keys.signing.certificatePem);
    const other = write('other-anchor.pem', keys.encryption.certificatePem);
    const register = (metadata: string, trust: string) => cli(['sep', 'register', '--file', write('saml-sep.json', sepDocument({ clientId: undefined, redirectUris: undefined })), '--saml-metadata', write('sp.xml', metadata), '--saml-metadata-trust-anchor', trust], env);
    const before = await counts();
    const wrongAnchor = await register(signed.metadataXml, other);
    assert.equal(wrongAnchor.code, 2);
    assert.match(wrongAnchor.stderr, /sp\.xml: Signature: is not valid for the configured trust anchor/);
    const unsigned = await register((await samlSep(brana, { register: false })).metadataXml, anchor);
    assert.match(unsigned.stderr, /sp\.xml: Signature: is missing/);
    const tampered = await register(signed.metadataXml.replace(/Location="https:\/\/([^"]+)\/acs"/, 'Location="https://evil.example/acs"'), anchor);
    assert.match(tampered.stderr, /Signature: is not valid/);
    assert.deepEqual(await counts(), before);
    const accepted = await register(signed.metadataXml, anchor);
    assert.equal(accepted.code, 0, accepted.stderr);
  });

  it('takes a SeP\'s new metadata (a signing certificate rollover) with brana sep saml-metadata: the same entity ID only, logged', async () => {
    const sep = await samlSep(brana);
    const rolled = { signing: generateSelfSignedCertificate('rolled signing'), encryption: samlSepKeys().encryption };
    const next = await samlSep(brana, { register: false, keys: rolled, entityId: sep.entityId, acsUrl: sep.acsUrl });
    // Before the rollover Brána knows only the old certificate: the new key's request is refused.
    const refused = await new Citizen(brana.url.origin).get(await next.saml.getAuthorizeUrlAsync('', undefined, {}));
    assert.match(Buffer.from(hiddenFields(refused.text).SAMLResponse!, 'base64').toString(), /status:RequestDenied/);

    const elsewhere = await samlSep(brana, { register: false, keys: rolled });
    const wrongEntity = await cli(['sep', 'saml-metadata', sep.clientId, '--saml-metadata', write('other.xml', elsewhere.metadataXml)], env);
    assert.equal(wrongEntity.code, 2);
    assert.match(wrongEntity.stderr, /other\.xml: entityID: is https:\/\/.*, the SeP is registered as/);

    const replaced = await cli(['sep', 'saml-metadata', sep.clientId, '--saml-metadata', write('rolled.xml', next.metadataXml)], env);
    assert.equal(replaced.code, 0, replaced.stderr);
    assert.deepEqual((JSON.parse(replaced.stdout) as { changed: string[] }).changed, ['signingCertificates']);
    const record = (await brana.broker.log.query({ sepId: sep.clientId, event: 'sep_changed' })).at(-1)!;
    assert.equal(record.detail.field, 'samlMetadata');
    assert.ok(!JSON.stringify(record).includes('BEGIN CERTIFICATE'), 'fingerprints, never certificates');

    const profile = await validatedBySep(next, (await samlLogin(brana, next, { means: 'eobcanka', login: '100000001' })).answer);
    assert.match(profile.nameID, /^[A-Za-z0-9_-]{43}$/);

    // Registered from a file, so there is no URL to fetch it from again.
    const again = await cli(['sep', 'saml-metadata', sep.clientId], env);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /--saml-metadata: required: SeP .* was registered from .*rolled\.xml, not from an https URL/);
  });

  it('publishes signed IdP metadata: signing and encryption certificates, SSO on HTTP-Redirect and HTTP-POST', async () => {
    const response = await supertest(brana.url.origin).get('/saml-idp/metadata');
    assert.equal(response.status, 200);
    assert.match(response.headers['content-type'] as string, /application\/samlmetadata\+xml/);
    const xml = response.text;
    assert.match(xml, new RegExp(`entityID="${brana.url.origin}/saml-idp/metadata"`));
    assert.match(xml, /WantAuthnRequestsSigned="true"/);
    assert.match(xml, /<md:KeyDescriptor use="signing">/);
    assert.match(xml, /<md:KeyDescriptor use="encryption">/);
    assert.match(xml, new RegExp(`Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${brana.url.origin}/saml-idp/sso"`));
    assert.match(xml, new RegExp(`Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${brana.url.origin}/saml-idp/sso"`));
    const signature = new SignedXml({ publicCert: brana.broker.keys.samlSigning.certificatePem, getCertFromKeyInfo: () => null });
    signature.loadSignature(/<ds:Signature[\s\S]*<\/ds:Signature>/.exec(xml)![0]);
    assert.equal(signature.checkSignature(xml), true);
  });

  it('announces the next signing certificate beside the one in use during a rollover; a file that is no certificate stops the start', async () => {
    const keysDir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-rollover-keys-'));
    const next = generateSelfSignedCertificate('Brána SAML signing, next');
    fs.writeFileSync(path.join(keysDir, 'saml-signing-next.crt.pem'), next.certificatePem);
    const rolling = await startTestBroker({ env: { BRANA_KEYS_DIR: keysDir } });
    try {
      const xml = (await supertest(rolling.url.origin).get('/saml-idp/metadata')).text;
      const signingCertificates = [...xml.matchAll(/<md:KeyDescriptor use="signing">[\s\S]*?<ds:X509Certificate>([^<]+)</g)].map((match) => match[1]);
      assert.deepEqual(signingCertificates, [certificateBody(rolling.broker.keys.samlSigning.certificatePem), certificateBody(next.certificatePem)]);
      const signature = new SignedXml({ publicCert: rolling.broker.keys.samlSigning.certificatePem, getCertFromKeyInfo: () => null });
      signature.loadSignature(/<ds:Signature[\s\S]*<\/ds:Signature>/.exec(xml)![0]);
      assert.equal(signature.checkSignature(xml), true, 'signed with the key in use, not the announced one');
    } finally {
      await rolling.close();
    }
    fs.writeFileSync(path.join(keysDir, 'saml-signing-next.crt.pem'), 'not a certificate');
    await assert.rejects(startTestBroker({ env: { BRANA_KEYS_DIR: keysDir } }), /saml-signing-next\.crt\.pem: \(certificate\): is not a PEM certificate/);
    fs.rmSync(keysDir, { recursive: true, force: true });
  });
});
