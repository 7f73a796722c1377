import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateSelfSignedCertificate } from '../../src/keys/certificate.ts';
import { loadBrokerKeys } from '../../src/keys/key-store.ts';
import { branaProcess, type CliResult } from '../support/cli.ts';
import { idpKey, idpMetadataXml, providersFolder, samlMeansFile, signMetadata } from '../support/external-idp.ts';
import { IndependentIdp, base64, type AssertionFields } from '../support/independent-idp.ts';
import { XmlSecWorkspace } from '../support/xmlsec.ts';

/**
 * `brana means check`: the operator's doctor, run as a child process against metadata and captured
 * answers the test writes — signed by the IdP's key with xmlsec1, encrypted to Brána's own key.
 */
describe('brana means check (the means doctor)', function () {
  this.timeout(60_000);
  const PUBLIC_URL = 'https://brana.example.cz';
  const MEANS = 'external-idp';
  const ENTITY_ID = 'https://idp.example.org/idp/shibboleth';
  const SP_ENTITY_ID = `${PUBLIC_URL}/saml/${MEANS}/metadata`;
  const ACS = `${PUBLIC_URL}/saml/${MEANS}/acs`;
  const DAY = 86_400_000;
  let keysDir: string;
  let workspace: XmlSecWorkspace;
  let idp: IndependentIdp;
  const folders: string[] = [];

  before(async () => {
    keysDir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-doctor-keys-'));
    await loadBrokerKeys(keysDir, new URL(PUBLIC_URL));
    workspace = new XmlSecWorkspace();
    const signing = idpKey(0);
    idp = new IndependentIdp(
      { means: MEANS, entityId: ENTITY_ID, keys: { keyFile: workspace.file('idp.key.pem', signing.privateKeyPem), certFile: workspace.file('idp.crt.pem', signing.certificatePem) } },
      { entityId: SP_ENTITY_ID, acsUrl: ACS, encryptionCertFile: path.join(keysDir, 'saml-encryption.crt.pem') },
      workspace,
    );
  });
  after(() => {
    for (const dir of [keysDir, workspace.dir, ...folders]) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** The IdP's metadata, signed by the federation's anchor (idpKey(1)) unless a case says otherwise. */
  function metadata(change: { validUntil?: Date; certificates?: string[]; binding?: string; signer?: number } = {}): string {
    let xml = idpMetadataXml({
      entityId: ENTITY_ID,
      ssoUrl: 'https://idp.example.org/idp/profile/SAML2/Redirect/SSO',
      certificates: change.certificates ?? [idpKey(0).certificatePem],
      validUntil: change.validUntil ?? new Date(Date.now() + 7 * DAY),
      cacheDuration: 'PT6H',
    });
    xml = xml.replace('<md:SingleSignOnService', '<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat><md:SingleSignOnService');
    if (change.binding) xml = xml.replace('urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect', change.binding);
    return signMetadata(xml, idpKey(change.signer ?? 1));
  }

  function check(metadataXml: string, args: string[] = [], saml: Record<string, unknown> = {}): Promise<CliResult> {
    const dir = providersFolder({
      keep: [],
      extra: { [MEANS]: samlMeansFile({}, { metadata: 'idp-metadata.xml', metadataTrustAnchor: 'federation.crt.pem', ...saml }) },
      files: { 'idp-metadata.xml': metadataXml, 'federation.crt.pem': idpKey(1).certificatePem },
    });
    folders.push(dir);
    return branaProcess(['means', 'check', MEANS, ...args], {
      BRANA_MODE: 'production',
      BRANA_PUBLIC_URL: PUBLIC_URL,
      BRANA_PROVIDERS_DIR: dir,
      BRANA_KEYS_DIR: keysDir,
      LOG_LEVEL: 'error',
    });
  }

  const metadataFile = (dir: string) => path.join(dir, 'idp-metadata.xml');
  const printed = (result: CliResult) => JSON.parse(result.stdout) as Record<string, any>;

  describe('metadata, and what Brána sends and accepts', () => {
    it('a good metadata: exit 0, the facts an operator compares with the IdP, the request Brána sends and what it accepts', async () => {
      const result = await check(metadata());
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stderr, '');
      const report = printed(result);
      assert.equal(report.usable, true);
      assert.deepEqual(report.problems, []);
      assert.equal(report.metadata.entityId, ENTITY_ID);
      assert.equal(report.metadata.signature.verified, true);
      assert.equal(report.metadata.cacheDuration.value, 'PT6H');
      assert.equal(report.metadata.signingCertificates.length, 1);
      assert.match(report.metadata.signingCertificates[0].subject, /CN=test idp key 0/);
      assert.match(report.metadata.signingCertificates[0].sha256, /^[0-9a-f]{64}$/);
      assert.deepEqual(report.metadata.singleSignOnServices.map((s: { binding: string }) => s.binding), ['HTTP-Redirect']);
      assert.deepEqual(report.metadata.nameIdFormats, ['urn:oasis:names:tc:SAML:2.0:nameid-format:persistent']);
      assert.equal(report.metadata.wantAuthnRequestsSigned, false);

      assert.deepEqual(report.serviceProvider, { entityId: SP_ENTITY_ID, metadataUrl: SP_ENTITY_ID, acsUrl: ACS });
      assert.equal(report.sends.binding, 'HTTP-Redirect');
      assert.equal(report.sends.to, 'https://idp.example.org/idp/profile/SAML2/Redirect/SSO');
      assert.equal(report.sends.issuer, SP_ENTITY_ID);
      assert.equal(report.sends.assertionConsumerServiceURL, ACS);
      assert.match(report.sends.signature, /query string.*rsa-sha256/);
      assert.equal(report.sends.forceAuthn, false);
      assert.equal(report.sends.nameIdPolicy.format, 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent');
      assert.deepEqual(report.sends.requestedAuthnContext, { comparison: 'minimum', classRefs: ['http://eidas.europa.eu/LoA/substantial'] });
      assert.equal(report.sends.eidasExtensions.spType, 'public');
      assert.equal(report.sends.eidasExtensions.requestedAttributes.length, 4);

      assert.deepEqual(report.accepts.signatures, { requireSignedResponse: false, requireSignedAssertion: false, rule: report.accepts.signatures.rule });
      assert.equal(report.accepts.levelsOfAssurance.registeredMaximum, 'substantial');
      assert.equal(report.accepts.clockSkewSeconds, 30);
      assert.equal(report.accepts.maximumAssertionAgeSeconds, 300);
      assert.ok(report.accepts.algorithms.signature.includes('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256'));
    });

    it("a means with its own AuthnContextClassRef values is asked in them, and its stricter signature policy is shown", async () => {
      const password = 'urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport';
      const result = await check(metadata(), [], { authnContextMap: { [password]: 'substantial' }, requireSignedResponse: true });
      assert.equal(result.code, 0, result.stderr);
      const report = printed(result);
      assert.deepEqual(report.sends.requestedAuthnContext, { comparison: 'exact', classRefs: [password] });
      assert.deepEqual(report.accepts.levelsOfAssurance.authnContextMap, { [password]: 'substantial' });
      assert.equal(report.accepts.signatures.requireSignedResponse, true);
      assert.match(report.accepts.signatures.rule, /^the Response must carry a valid signature/);
    });

    it('a certificate that expires within 30 days: still usable (exit 0), with a warning', async () => {
      const soon = generateSelfSignedCertificate('idp key expiring soon', 10);
      const result = await check(metadata({ certificates: [soon.certificatePem] }));
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /^warning: .*idp-metadata\.xml: KeyDescriptor\/X509Certificate: certificate CN=idp key expiring soon .* within 30 days/);
    });

    const refused: Array<[string, () => string, RegExp]> = [
      ['expired metadata', () => metadata({ validUntil: new Date(Date.now() - DAY) }), /: EntityDescriptor\/@validUntil: expired at /],
      [
        'an expired signing certificate',
        () => metadata({ certificates: [idpKey(0).certificatePem, generateSelfSignedCertificate('retired idp key', -1).certificatePem] }),
        /: KeyDescriptor\/X509Certificate: certificate CN=retired idp key .* expired at .*: Brána does not trust it/,
      ],
      ['a metadata signature that does not verify against the trust anchor', () => metadata({ signer: 2 }), /: Signature: is not valid for the configured trust anchor/],
      ['no HTTP-Redirect or HTTP-POST endpoint', () => metadata({ binding: 'urn:oasis:names:tc:SAML:2.0:bindings:SOAP' }), /: IDPSSODescriptor\/SingleSignOnService: has no HTTP-Redirect or HTTP-POST endpoint, which Brána needs \(offered: SOAP\)/],
    ];
    for (const [what, document, line] of refused) {
      it(`${what}: exit 1, one line naming the file, the field and the problem`, async () => {
        const result = await check(document());
        assert.equal(result.code, 1, result.stderr);
        const lines = result.stderr.trim().split('\n');
        assert.equal(lines.length, 1, result.stderr);
        assert.match(lines[0]!, line);
        assert.ok(lines[0]!.startsWith(metadataFile(path.dirname(lines[0]!.split(': ')[0]!))), lines[0]);
        assert.equal(printed(result).usable, false);
      });
    }

    it('all four at once: one line for each', async () => {
      const xml = metadata({
        validUntil: new Date(Date.now() - DAY),
        certificates: [generateSelfSignedCertificate('retired idp key', -1).certificatePem],
        binding: 'urn:oasis:names:tc:SAML:2.0:bindings:SOAP',
        signer: 2,
      });
      const result = await check(xml);
      assert.equal(result.code, 1);
      const fields = result.stderr.trim().split('\n').map((line) => line.split(': ')[1]);
      assert.deepEqual(fields, ['Signature', 'EntityDescriptor/@validUntil', 'KeyDescriptor/X509Certificate', 'IDPSSODescriptor/SingleSignOnService']);
    });
  });

  describe('--response: a captured answer verified offline', () => {
    const REQUEST_ID = '_a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';
    // Captured an hour ago: the doctor judges it at its own IssueInstant, not now.
    const T = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;
    const minutes = (n: number) => new Date(T + n * 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const capture = (content: string) => workspace.file('captured-response.txt', content);

    it('a good response (base64 as posted): the identity it yields, at its own IssueInstant', async () => {
      const file = capture(base64(await idp.answer({ requestId: REQUEST_ID, now: T })));
      const result = await check(metadata(), ['--response', file]);
      assert.equal(result.code, 0, result.stderr);
      const report = printed(result).response;
      assert.equal(report.clock, `the response's IssueInstant ${new Date(T).toISOString()}`);
      assert.match(report.requestBinding, /^not checked offline/);
      assert.equal(report.inResponseTo, REQUEST_ID);
      assert.equal(report.identity.means, MEANS);
      assert.equal(report.identity.authority, ENTITY_ID);
      assert.equal(report.identity.acr, 'substantial', 'high as asserted, capped by the means');
      assert.match(report.identity.subject, /^subject-/);
      assert.deepEqual(report.identity.attributes, ['CurrentGivenName', 'CurrentFamilyName', 'DateOfBirth', 'PlaceOfBirth']);
    });

    it('the XML itself is read as well', async () => {
      const file = capture(await idp.answer({ requestId: REQUEST_ID, now: T }, { encrypt: false }));
      const result = await check(metadata(), ['--response', file]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(printed(result).response.identity.acr, 'substantial');
    });

    it('a tampered response: signature_invalid', async () => {
      const xml = await idp.answer({ requestId: REQUEST_ID, now: T }, { encrypt: false });
      const file = capture(xml.replace('Novák', 'Nováková'));
      const result = await check(metadata(), ['--response', file]);
      assert.equal(result.code, 1);
      assert.equal(result.stderr, `${file}: signature_invalid: the response signature does not verify\n`);
      assert.equal(printed(result).response.refused.reason, 'signature_invalid');
    });

    it('a response for another audience: audience_mismatch', async () => {
      const file = capture(base64(await idp.answer({ requestId: REQUEST_ID, now: T }, { assertion: { audience: 'https://another-sp.example.cz/metadata' } })));
      const result = await check(metadata(), ['--response', file]);
      assert.equal(result.code, 1);
      assert.equal(result.stderr, `${file}: audience_mismatch: refused (the citizen is told: invalid_response)\n`);
    });

    it('an assertion that expired before the response was sent: expired; valid with --at inside its validity', async () => {
      const lateDelivery: Partial<AssertionFields> = {
        issueInstant: minutes(-3),
        authnInstant: minutes(-3),
        notBefore: minutes(-3),
        notOnOrAfter: minutes(-2),
        confirmationNotOnOrAfter: minutes(-2),
      };
      const file = capture(base64(await idp.answer({ requestId: REQUEST_ID, now: T }, { assertion: lateDelivery })));
      const expired = await check(metadata(), ['--response', file]);
      assert.equal(expired.code, 1);
      assert.equal(expired.stderr, `${file}: expired: refused (the citizen is told: invalid_response)\n`);

      const inside = await check(metadata(), ['--response', file, '--at', minutes(-2.5)]);
      assert.equal(inside.code, 0, inside.stderr);
      assert.equal(printed(inside).response.clock, `--at ${new Date(T - 2.5 * 60_000).toISOString()}`);
      assert.equal(printed(inside).response.identity.authority, ENTITY_ID);
    });
  });
});
