import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigurationError } from '../../src/config/configuration-error.ts';
import { parsePersonIdentifier } from '../../src/domain/person-identifier.ts';
import { readIdentityMeansFile, readIdentityMeansFolder } from '../../src/means/identity-means.ts';
import { requireRealMetadata } from '../../src/upstream/identity-means-registry.ts';
import { metadataState, nextRefreshDelay, retryDelay } from '../../src/upstream/metadata/metadata-schedule.ts';
import { MetadataSource, MetadataUnavailable, type ParsedMetadata } from '../../src/upstream/metadata/metadata-source.ts';
import { parseDiscovery } from '../../src/upstream/oidc/discovery.ts';
import { parseSamlMetadata } from '../../src/upstream/saml/signed-metadata.ts';
import { idpKey, idpMetadataXml, signMetadata } from '../support/external-idp.ts';
import { startTestBroker } from '../support/test-broker.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

describe('identity means as data', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-means-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const write = (id: string, document: Record<string, unknown>) => {
    const file = path.join(dir, `${id}.json`);
    fs.writeFileSync(file, JSON.stringify({ id, name: { cs: 'X', en: 'X' }, administrator: { cs: 'X', en: 'X' }, loa: 'substantial', ...document }));
    return file;
  };

  it('reads the twelve means of the repository, each with a logo and a development persona', () => {
    const means = readIdentityMeansFolder(path.resolve('providers'));
    assert.equal(means.length, 12);
    for (const item of means) {
      assert.ok(item.logoFile && fs.existsSync(item.logoFile), item.id);
      assert.ok(item.development.loginHint?.cs && item.development.loginHint.en, item.id);
    }
    assert.deepEqual(means.filter((item) => item.protocol === 'oidc').map((item) => item.id), ['bankid']);
    assert.deepEqual(means.filter((item) => item.crossBorder).map((item) => item.id), ['eidas']);
    assert.deepEqual(Object.fromEntries(means.map((item) => [item.id, item.loa])), {
      eobcanka: 'high', 'nia-id': 'substantial', 'mobilni-klic': 'substantial', mojeid: 'high', 'ica-starcos': 'high', isds: 'low',
      bankid: 'substantial', csob: 'substantial', 'ceska-sporitelna': 'substantial', 'komercni-banka': 'substantial', moneta: 'substantial', eidas: 'high',
    });
  });

  const refusals: Array<[string, Record<string, unknown>, RegExp]> = [
    ['an OIDC issuer on plain http', { protocol: 'oidc', oidc: { issuer: 'http://bank.example.cz', clientId: 'x', clientSecretEnv: 'X' } }, /bank\.json: oidc\.issuer: must use https/],
    ['an OIDC issuer without a client id', { protocol: 'oidc', oidc: { issuer: 'https://bank.example.cz', clientSecretEnv: 'X' } }, /bank\.json: oidc\.clientId: is required when an issuer is given/],
    ['a client secret written into the file', { protocol: 'oidc', oidc: { issuer: 'https://bank.example.cz', clientId: 'x', clientSecret: 's3cret' } }, /bank\.json: oidc: Unrecognized key/],
    ['an OIDC means without its oidc settings', { protocol: 'oidc' }, /bank\.json: oidc: is required for a means with protocol oidc/],
    ['a SAML means with OIDC settings', { protocol: 'saml', oidc: {} }, /bank\.json: oidc: must not be set for a means with protocol saml/],
    ['a protocol Brána does not speak', { protocol: 'cas' }, /bank\.json: protocol:/],
    ['a trust anchor that is not there', { protocol: 'saml', saml: { metadataTrustAnchor: 'anchor.pem' } }, /bank\.json: saml\.metadataTrustAnchor: file .*anchor\.pem does not exist/],
    ['a scope without openid', { protocol: 'oidc', oidc: { scope: 'profile' } }, /bank\.json: oidc\.scope: must start with openid/],
  ];
  for (const [what, document, message] of refusals) {
    it(`refuses ${what}, naming the file and field`, () => {
      assert.throws(() => readIdentityMeansFile(write('bank', document)), (err: unknown) => err instanceof ConfigurationError && message.test(err.message));
    });
  }

  it('refuses a trust anchor that holds no certificate', () => {
    fs.writeFileSync(path.join(dir, 'anchor.pem'), 'not a certificate');
    assert.throws(() => readIdentityMeansFile(write('bank', { protocol: 'saml', saml: { metadataTrustAnchor: ['anchor.pem'] } })), /saml\.metadataTrustAnchor\.0: file .* holds no PEM certificate/);
  });

  it('refuses, in production, a means left to a development provider', () => {
    const oidc = readIdentityMeansFile(write('bank', { protocol: 'oidc', oidc: {} }));
    assert.throws(() => requireRealMetadata(oidc), /bank\.json: oidc\.issuer: is required in production mode/);
    const saml = readIdentityMeansFile(write('card', { protocol: 'saml' }));
    assert.throws(() => requireRealMetadata(saml), /card\.json: saml\.metadata: is required in production mode/);
  });

  it('refuses to start when the client secret\'s environment variable is not set', async () => {
    fs.mkdirSync(path.join(dir, 'p'));
    fs.writeFileSync(
      path.join(dir, 'p', 'bank.json'),
      JSON.stringify({ id: 'bank', name: { cs: 'B', en: 'B' }, administrator: { cs: 'B', en: 'B' }, loa: 'substantial', protocol: 'oidc', oidc: { issuer: 'https://bank.example.cz', clientId: 'brana', clientSecretEnv: 'BRANA_UNSET_TEST_SECRET' } }),
    );
    await assert.rejects(startTestBroker({ env: { BRANA_PROVIDERS_DIR: path.join(dir, 'p') } }), /bank\.json: oidc\.clientSecretEnv: the environment variable BRANA_UNSET_TEST_SECRET is not set/);
  });
});

describe('the eIDAS PersonIdentifier', () => {
  it('reads issuing country, destination country and identifier', () => {
    assert.deepEqual(parsePersonIdentifier('DE/CZ/7a1f3c9e-5d2b'), { issuingCountry: 'DE', destinationCountry: 'CZ', identifier: '7a1f3c9e-5d2b' });
    assert.deepEqual(parsePersonIdentifier('CZ/CZ/a/b'), { issuingCountry: 'CZ', destinationCountry: 'CZ', identifier: 'a/b' });
    for (const bad of ['7a1f3c9e', 'de/CZ/x', 'DEU/CZ/x', 'DE/CZ/', 'DE/CZ/with space', `DE/CZ/${'x'.repeat(257)}`]) assert.equal(parsePersonIdentifier(bad), undefined, bad);
  });
});

describe('when metadata is refreshed and what state it is in', () => {
  it('refreshes on the interval, sooner on cacheDuration and before validUntil, never more than twice a minute', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    assert.equal(nextRefreshDelay(now, {}, 6 * HOUR), 6 * HOUR);
    assert.equal(nextRefreshDelay(now, { cacheDurationMs: HOUR }, 6 * HOUR), HOUR);
    assert.equal(nextRefreshDelay(now, { validUntil: now + 4 * HOUR }, 6 * HOUR), 2 * HOUR);
    assert.equal(nextRefreshDelay(now, { cacheDurationMs: 1000 }, 6 * HOUR), 30_000, 'a tiny cacheDuration does not hammer the source');
    assert.equal(nextRefreshDelay(now, { validUntil: now - HOUR }, 6 * HOUR), 30_000);
    assert.equal(nextRefreshDelay(now, {}, 1000), 1000, 'the operator may choose a shorter interval');
    assert.equal(retryDelay(6 * HOUR), 5 * MINUTE);
    assert.equal(retryDelay(1000), 1000);
  });

  it('is fresh, then stale after its cache lifetime, failing after a failed refresh, expired at validUntil', () => {
    const at = Date.parse('2025-01-01T00:00:00Z');
    const facts = { loaded: true, lastRefreshAt: at, cacheDurationMs: HOUR, validUntil: at + 10 * HOUR };
    assert.equal(metadataState(at + 30 * MINUTE, facts, 6 * HOUR), 'fresh');
    assert.equal(metadataState(at + 2 * HOUR, facts, 6 * HOUR), 'stale');
    assert.equal(metadataState(at + 2 * HOUR, { ...facts, lastError: 'HTTP 503' }, 6 * HOUR), 'failing');
    assert.equal(metadataState(at + 10 * HOUR, { ...facts, lastError: 'HTTP 503' }, 6 * HOUR), 'expired');
    assert.equal(metadataState(at, { loaded: false, lastError: 'HTTP 503' }, 6 * HOUR), 'failing');
  });
});

describe('a metadata source', () => {
  interface Document {
    version: number;
    validUntil?: number;
  }
  function source(documents: Array<Document | Error>, clock: { now: number }) {
    let index = 0;
    return new MetadataSource<number>({
      means: 'test',
      location: 'memory',
      load: async () => {
        const next = documents[Math.min(index, documents.length - 1)]!;
        index += 1;
        if (next instanceof Error) throw next;
        return JSON.stringify(next);
      },
      parse: (text): ParsedMetadata<number> => {
        const document = JSON.parse(text) as Document;
        return { value: document.version, ...(document.validUntil ? { validUntil: new Date(document.validUntil) } : {}), summary: {} };
      },
      refreshIntervalMs: HOUR,
      clock: () => clock.now,
    });
  }

  it('keeps the last good document through a failed refresh, and stops the means at validUntil without a reload', async () => {
    const clock = { now: Date.parse('2025-01-01T00:00:00Z') };
    const metadata = source([{ version: 1, validUntil: clock.now + 3 * HOUR }, new Error('HTTP 503')], clock);
    await metadata.refresh('start');
    assert.equal(metadata.current(), 1);
    assert.equal(metadata.status().state, 'fresh');

    clock.now += HOUR;
    await assert.rejects(metadata.refresh('schedule'), /HTTP 503/);
    assert.equal(metadata.current(), 1, 'the last good document stays in use');
    assert.equal(metadata.status().state, 'failing');
    assert.equal(metadata.status().error, 'HTTP 503');

    clock.now += 2 * HOUR;
    assert.equal(metadata.usable(), false);
    assert.equal(metadata.status().state, 'expired');
    assert.throws(() => metadata.current(), MetadataUnavailable);
  });

  it('does not trade a valid document for an expired one, but reports an expired one when it has nothing else', async () => {
    const clock = { now: Date.parse('2025-01-01T00:00:00Z') };
    const valid = source([{ version: 1, validUntil: clock.now + HOUR }, { version: 2, validUntil: clock.now - HOUR }], clock);
    await valid.refresh('start');
    await assert.rejects(valid.refresh('operator'), /expired/);
    assert.equal(valid.current(), 1);
    assert.equal(valid.currentVersion(), 1);

    const stale = source([{ version: 3, validUntil: clock.now - HOUR }], clock);
    await stale.refresh('start');
    assert.equal(stale.status().state, 'expired');
    assert.equal(stale.status().validUntil, new Date(clock.now - HOUR).toISOString());
    assert.throws(() => stale.current(), /expired/);
  });

  it('counts a new version only when the document changes', async () => {
    const clock = { now: Date.parse('2025-01-01T00:00:00Z') };
    const metadata = source([{ version: 1 }, { version: 1 }, { version: 2 }], clock);
    await metadata.refresh('start');
    const first = metadata.currentVersion();
    await metadata.refresh('schedule');
    assert.equal(metadata.currentVersion(), first);
    await metadata.refresh('schedule');
    assert.equal(metadata.currentVersion(), first + 1);
    assert.equal(metadata.current(), 2);
  });
});

describe('reading an OpenID Provider\'s discovery document', () => {
  const issuer = 'https://oidc.bank.example.cz';
  const document = (change: Record<string, unknown> = {}) =>
    JSON.stringify({
      issuer,
      authorization_endpoint: `${issuer}/auth`,
      token_endpoint: `${issuer}/token`,
      jwks_uri: `${issuer}/jwks`,
      response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'],
      ...change,
    });

  it('takes a conforming document', () => {
    assert.equal(parseDiscovery(document(), { source: 'bank', issuer }).value.token_endpoint, `${issuer}/token`);
  });

  const refusals: Array<[string, Record<string, unknown>, RegExp]> = [
    ['another issuer (impersonation)', { issuer: 'https://evil.example' }, /bank: issuer: is https:\/\/evil\.example, expected/],
    ['a plain-http token endpoint', { token_endpoint: 'http://oidc.bank.example.cz/token' }, /bank: token_endpoint: must be an https URL/],
    ['no code flow', { response_types_supported: ['id_token'] }, /bank: response_types_supported: must include code/],
    ['no PKCE S256', { code_challenge_methods_supported: ['plain'] }, /bank: code_challenge_methods_supported: must include S256/],
    ['no JWKS', { jwks_uri: undefined }, /bank: jwks_uri:/],
  ];
  for (const [what, change, message] of refusals) {
    it(`refuses ${what}`, () => {
      assert.throws(() => parseDiscovery(document(change), { source: 'bank', issuer }), message);
    });
  }
});

describe('signed SAML metadata', () => {
  const xml = () => idpMetadataXml({ entityId: 'https://idp.example.cz', ssoUrl: 'https://idp.example.cz/sso', certificates: [idpKey(0).certificatePem] });

  it('reads only what the trust anchor signed, and accepts any of several anchors', () => {
    const signed = signMetadata(xml(), idpKey(2));
    const parsed = parseSamlMetadata(signed, { source: 'm.xml', trustAnchors: [idpKey(3).certificatePem, idpKey(2).certificatePem] });
    assert.equal(parsed.value.entityId, 'https://idp.example.cz');
    assert.equal(parsed.summary.signed, true);
  });

  it('refuses a signature that is not on the root element', () => {
    const inner = idpMetadataXml({ entityId: 'https://idp.example.cz', ssoUrl: 'https://idp.example.cz/sso', certificates: [idpKey(0).certificatePem] }).replace(
      '<md:IDPSSODescriptor ',
      '<md:IDPSSODescriptor ID="_inner" ',
    );
    const signedInside = signMetadata(inner, idpKey(2), '_inner');
    assert.throws(() => parseSamlMetadata(signedInside, { source: 'm.xml', trustAnchors: [idpKey(2).certificatePem] }), /m\.xml: Signature: is missing/);
  });

  it('ignores signatures when no trust anchor is configured', () => {
    assert.equal(parseSamlMetadata(xml(), { source: 'm.xml', trustAnchors: [] }).summary.signed, false);
  });
});
