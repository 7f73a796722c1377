import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigurationError, ConfigurationErrors } from '../../src/config/configuration-error.ts';
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

  it('every wrong environment variable at once, one line each, never repeating the database URL', () => {
    const wrong = {
      BRANA_PORT: 'eighty',
      BRANA_MODE: 'staging',
      BRANA_TRUST_PROXY: 'yes',
      DATABASE_URL: 'mysql://brana:s3cret@db.example.cz/brana',
      BRANA_DB_TIMEOUT_MS: '5s',
      BRANA_KEYS_RELOAD_SECONDS: '0',
      BRANA_DEMO_SEP_PORT: 'none',
      BRANA_POPULATION_REGISTER: '/no/such/register.json',
    };
    assert.throws(
      () => readEnvironment(wrong),
      (err: unknown) => {
        assert.ok(err instanceof ConfigurationErrors);
        const lines = err.message.split('\n');
        assert.deepEqual(lines.map((line) => line.split(': ')[1]).sort(), Object.keys(wrong).sort());
        assert.equal(lines.length, Object.keys(wrong).length);
        for (const line of lines) assert.match(line, /^environment: [A-Z_]+: \S/);
        assert.match(err.message, /BRANA_PORT: must be a whole number from 0 to 65535 \(got "eighty"\)/);
        assert.match(err.message, /BRANA_POPULATION_REGISTER: file \/no\/such\/register\.json does not exist/);
        assert.ok(!err.message.includes('s3cret'), 'a database URL may hold a password');
        return true;
      },
    );
  });

  it('production needs an https public URL; the demo SeP can be switched off', () => {
    assert.throws(() => readEnvironment({ BRANA_MODE: 'production' }), /BRANA_PUBLIC_URL: is required in production mode/);
    const env = readEnvironment({ BRANA_DEMO_SEP_PORT: '0', BRANA_PORT: '4000', DATABASE_URL: 'postgres://brana@db:5432/brana', BRANA_DB_POOL_MAX: '20' });
    assert.equal(env.demoSepPort, null);
    assert.equal(env.databasePoolMax, 20);
    assert.equal(env.databaseTimeoutMs, 5000);
    assert.equal(env.keysReloadSeconds, 60);
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
