import assert from 'node:assert/strict';
import supertest from 'supertest';
import { csrfOf, signInToConsole, staff } from '../support/console.ts';
import { decodeEntities } from '../support/html.ts';
import { Citizen } from '../support/login-driver.ts';
import { samlLogin, samlSep, validatedBySep } from '../support/saml-sep.ts';
import { MANY_REGISTRATIONS, initialAccessToken } from '../support/self-service.ts';
import { fetchSpMetadata, SpMetadataUnavailable } from '../../src/saml-idp/sp-metadata-source.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

const code = (html: string, id: string) => decodeEntities(new RegExp(`<code id="${id}">([^<]+)</code>`).exec(html)?.[1] ?? '');

/** The form as a municipal office fills it for a SAML service, with its SP metadata pasted. */
function samlForm(token: string, metadata: Record<string, string>): Record<string, string | string[]> {
  return {
    token,
    nameCs: 'Portál obce Lelekovice (SAML)',
    nameEn: 'Lelekovice portal (SAML)',
    description: 'Podání online.',
    infoUrl: 'https://www.lelekovice.cz/',
    organisationId: '00281999',
    organisationName: 'Obec Lelekovice',
    spType: 'public',
    legalBasis: '',
    group: `lelekovice-${process.pid}`,
    minimumLoa: 'substantial',
    attributes: ['CurrentGivenName', 'CurrentFamilyName'],
    redirectUris: '',
    postLogoutRedirectUris: '',
    protocol: 'saml',
    samlMetadata: '',
    samlMetadataUrl: '',
    ...metadata,
  };
}

describe('registering a SAML SeP through the /register form, approved by an administrator', () => {
  let brana: TestBroker;
  const post = (fields: Record<string, string | string[]>) =>
    supertest(brana.url.origin)
      .post('/register')
      .type('form')
      .send(new URLSearchParams(Object.entries(fields).flatMap(([key, value]) => (Array.isArray(value) ? value.map((item) => [key, item]) : [[key, value]]))).toString());
  const sepCount = async () => (await brana.broker.seps.list()).length;
  before(async () => {
    brana = await startTestBroker({ env: MANY_REGISTRATIONS });
    assert.equal((await staff(brana, ['grant', 'AIFO-0001-JN', '--role', 'administrator', '--name', 'Jan Novák (správce)'])).code, 0);
  });
  after(async () => brana.close());

  it('offers the choice of protocol, the metadata field, a file and a URL, each labelled', async () => {
    const page = await supertest(brana.url.origin).get('/register');
    for (const id of ['protocol-oidc', 'protocol-saml', 'samlMetadata', 'samlMetadataFile', 'samlMetadataUrl']) assert.match(page.text, new RegExp(`<label for="${id}">`), `a label for ${id}`);
  });

  it('registers a pending SAML SeP from pasted SP metadata; the console shows the SAML part; approved, the SeP logs citizens in', async () => {
    const sp = await samlSep(brana, { register: false });
    const done = await post(samlForm(await initialAccessToken(brana), { samlMetadata: sp.metadataXml }));
    assert.equal(done.status, 200, done.text.slice(0, 3000));
    const clientId = code(done.text, 'client-id');
    assert.equal(code(done.text, 'entity-id'), sp.entityId);
    assert.equal(code(done.text, 'idp-metadata-url'), `${brana.url.origin}/saml-idp/metadata`);
    assert.doesNotMatch(done.text, /client-secret|registration-access-token/, 'a SAML SeP has no OAuth secret to show');
    const sep = (await brana.broker.seps.find(clientId))!;
    assert.equal(sep.status, 'pending');
    assert.equal(sep.protocol, 'saml');
    assert.deepEqual(sep.redirectUris, [sp.acsUrl], 'its return URLs are the ACS endpoints of its metadata');

    // Pending: the SeP's AuthnRequest is refused and nothing is issued.
    const refused = await new Citizen(brana.url.origin).get(await sp.saml.getAuthorizeUrlAsync('', undefined, {}));
    assert.equal(refused.status, 400);
    assert.equal((await brana.broker.log.query({ sepId: clientId, event: 'token_issued' })).length, 0);

    // The administrator sees the SAML part in the diff and approves exactly that version.
    const admin = new Citizen(brana.url.origin);
    await signInToConsole(admin, 'eobcanka', '100000001');
    const page = await admin.get(`/console/admin/seps/${clientId}`);
    assert.equal(page.status, 200);
    assert.match(page.text, /data-field="saml\.entityId"/);
    assert.ok(page.text.includes(sp.entityId));
    assert.match(page.text, /data-field="saml\.signingCertificates"[\s\S]*?SHA-256 [0-9A-F:]{95}/);
    assert.match(page.text, /data-field="saml\.encryptionCertificate"/);
    assert.match(page.text, /data-field="saml\.metadataSource"[\s\S]*?self-service \(web form\)/);
    const digest = /name="digest" value="([^"]+)"/.exec(page.text)![1]!;
    const approved = await admin.post(`/console/admin/seps/${clientId}/approve`, { csrf: csrfOf(page.text), digest });
    assert.ok(approved.status < 400, `${approved.status}`);
    assert.equal((await brana.broker.seps.find(clientId))!.status, 'active');

    const registered = { ...sp, clientId };
    const profile = await validatedBySep(registered, (await samlLogin(brana, registered, { means: 'eobcanka', login: '100000001' })).answer);
    assert.match(profile.nameID, /^[A-Za-z0-9_-]{43}$/);
  });

  it('refuses what it cannot read or must not fetch, at the field, and registers nothing', async () => {
    const token = await initialAccessToken(brana);
    const sp = await samlSep(brana, { register: false });
    const taken = await samlSep(brana);
    const cases: Array<[string, Record<string, string>, string, RegExp]> = [
      ['a DOCTYPE (XXE)', { samlMetadata: `<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>${sp.metadataXml}` }, 'samlMetadata', /DOCTYPE|DTD/i],
      ['no metadata at all', {}, 'samlMetadata', /vložte metadata SP, nebo uveďte jejich adresu/],
      ['both pasted and a URL', { samlMetadata: sp.metadataXml, samlMetadataUrl: 'https://sp.example.cz/metadata' }, 'samlMetadata', /jedno z toho/],
      ['a plain-http URL', { samlMetadataUrl: 'http://sp.example.cz/metadata' }, 'samlMetadataUrl', /https/],
      ['the cloud metadata service (SSRF)', { samlMetadataUrl: 'https://169.254.169.254/latest/meta-data' }, 'samlMetadataUrl', /private or special-use network/],
      ['a URL on a private network (SSRF)', { samlMetadataUrl: 'https://10.0.0.1/metadata' }, 'samlMetadataUrl', /private or special-use network/],
      ['return URLs beside the metadata', { samlMetadata: sp.metadataXml, redirectUris: 'https://elsewhere.example.cz/cb' }, 'redirectUris', /návratové adresy z metadat/],
      ['an entity ID another SeP has', { samlMetadata: taken.metadataXml }, 'samlMetadata', /entityID/],
    ];
    for (const [what, metadata, field, message] of cases) {
      const before = await sepCount();
      const page = await post(samlForm(token, metadata));
      assert.equal(page.status, 400, `${what}: ${page.status}`);
      assert.match(page.text, new RegExp(`<a href="#${field}">`), `${what}: the problem is placed at ${field}`);
      assert.match(decodeEntities(page.text), message, what);
      assert.equal(await sepCount(), before, `${what}: nothing registered`);
    }
    // The token was never used up by a refusal: it still registers the SeP.
    const done = await post(samlForm(token, { samlMetadata: sp.metadataXml }));
    assert.equal(done.status, 200, done.text.slice(0, 2000));
  });

  it('never connects to a special-use address outside development, whether the URL names it or a name resolves to it', async () => {
    for (const url of ['https://localhost/metadata', 'https://127.0.0.1/metadata', 'https://[::1]/metadata', 'https://[fd00::1]/metadata', 'https://192.168.1.1/metadata']) {
      await assert.rejects(fetchSpMetadata(url, { allowLoopback: false }), (err: unknown) => err instanceof SpMetadataUnavailable && /private or special-use network/.test(err.message), url);
    }
  });

  it('keeps the OIDC registration exactly as it was when OpenID Connect is chosen', async () => {
    const done = await post({ ...samlForm(await initialAccessToken(brana), {}), protocol: 'oidc', redirectUris: 'https://portal.lelekovice.cz/callback' });
    assert.equal(done.status, 200, done.text.slice(0, 2000));
    assert.ok(code(done.text, 'client-secret'));
    assert.equal((await brana.broker.seps.find(code(done.text, 'client-id')))!.protocol, 'oidc');
  });
});
