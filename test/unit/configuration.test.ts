import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigurationError } from '../../src/config/configuration-error.ts';
import { readEnvironment } from '../../src/config/environment.ts';
import { readIdentityMeansFile } from '../../src/means/identity-means.ts';
import { parseIdpMetadata } from '../../src/upstream/saml/idp-metadata.ts';

function means(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'eobcanka',
    name: { cs: 'eObčanka', en: 'eObčanka' },
    administrator: { cs: 'MV ČR', en: 'Ministry of the Interior' },
    loa: 'high',
    protocol: 'saml',
    saml: { metadata: null },
    ...overrides,
  };
}

describe('configuration errors name the file and the field', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-config-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, content: unknown) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
    return file;
  };

  const cases: Array<[string, string, unknown, RegExp]> = [
    ['an LoA that does not exist', 'eobcanka.json', means({ loa: 'very-high' }), /eobcanka\.json: loa: /],
    ['an id that does not match the file name', 'mojeid.json', means(), /mojeid\.json: id: must match the file name/],
    ['a metadata file that is not there', 'eobcanka.json', means({ saml: { metadata: 'missing.xml' } }), /eobcanka\.json: saml\.metadata: file .*missing\.xml does not exist/],
    ['a plain-http metadata URL', 'eobcanka.json', means({ saml: { metadata: 'http://idp.example.cz/metadata' } }), /saml\.metadata: a metadata URL must use https/],
    ['a logo that is not there', 'eobcanka.json', means({ logo: 'logos/none.svg' }), /eobcanka\.json: logo: file/],
    ['an unknown requested attribute', 'eobcanka.json', means({ saml: { metadata: null, requestedAttributes: ['Nickname'] } }), /saml\.requestedAttributes\.0:/],
    ['broken JSON', 'eobcanka.json', '{"id": "eobcanka",', /eobcanka\.json: \(document\): is not valid JSON/],
  ];
  for (const [what, name, content, message] of cases) {
    it(`an identity means with ${what}`, () => {
      const file = write(name, content);
      assert.throws(() => readIdentityMeansFile(file), (err: unknown) => err instanceof ConfigurationError && message.test(err.message));
    });
  }

  it('environment variables', () => {
    assert.throws(() => readEnvironment({ BRANA_PORT: 'eighty' }), /environment: BRANA_PORT: /);
    assert.throws(() => readEnvironment({ BRANA_MODE: 'production', BRANA_PUBLIC_URL: 'http://brana.example.cz' }), /BRANA_PUBLIC_URL: must be an https URL in production mode/);
    assert.throws(() => readEnvironment({ BRANA_PUBLIC_URL: 'https://brana.example.cz/sub/path' }), /BRANA_PUBLIC_URL: must be an origin/);
    assert.throws(() => readEnvironment({ BRANA_MODE: 'staging' }), /environment: BRANA_MODE: /);
    const env = readEnvironment({}, '/srv/brana');
    assert.equal(env.databaseUrl, 'sqlite:/srv/brana/data/brana.sqlite');
    assert.equal(env.publicUrl.href, 'http://localhost:3000/');
    // Test and production SeP registrations are separate: by default a development instance serves test SePs.
    assert.equal(env.sepEnvironment, 'test');
    assert.equal(readEnvironment({ BRANA_MODE: 'production', BRANA_PUBLIC_URL: 'https://brana.example.cz' }).sepEnvironment, 'production');
    assert.equal(readEnvironment({ BRANA_MODE: 'production', BRANA_PUBLIC_URL: 'https://brana-test.example.cz', BRANA_SEP_ENVIRONMENT: 'test' }).sepEnvironment, 'test');
    assert.throws(() => readEnvironment({ BRANA_SEP_ENVIRONMENT: 'staging' }), /environment: BRANA_SEP_ENVIRONMENT: /);
  });

  it('identity provider metadata', () => {
    assert.throws(() => parseIdpMetadata('<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"/>', 'idp.xml'), /idp\.xml: IDPSSODescriptor: must appear exactly once/);
    assert.throws(() => parseIdpMetadata('<!DOCTYPE x [<!ENTITY e "e">]><x/>', 'idp.xml'), /idp\.xml: \(document\): not readable XML: DOCTYPE/);
    assert.throws(() => parseIdpMetadata('<html/>', 'idp.xml'), /idp\.xml: EntityDescriptor: the root element is not SAML 2\.0 metadata/);
    const noCertificate =
      '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">' +
      '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>';
    assert.throws(() => parseIdpMetadata(noCertificate, 'idp.xml'), /idp\.xml: IDPSSODescriptor\/KeyDescriptor: has no valid signing certificate/);
  });
});
