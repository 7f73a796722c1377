import assert from 'node:assert/strict';
import { sweepExpiredRows } from '../../src/operations/expired-rows.ts';
import { defaultPeriod, loginStatistics } from '../../src/stats/login-statistics.ts';
import { completeLogin } from '../support/login-driver.ts';
import { createPostgresDatabase } from '../support/postgres.ts';
import { samlLogin, samlSep, validatedBySep } from '../support/saml-sep.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

const EIDAS = 'http://eidas.europa.eu/attributes/naturalperson/';

describe('a SAML SeP (node-saml) logs a citizen in through Brána', () => {
  let brana: TestBroker;
  before(async () => {
    brana = await startTestBroker();
  });
  after(async () => brana.close());

  for (const binding of ['HTTP-Redirect', 'HTTP-POST'] as const) {
    it(`over ${binding}: a signed Response with a signed, encrypted Assertion the SeP decrypts; pseudonym, LoA and consented attributes only`, async () => {
      const sep = await samlSep(brana, { binding });
      const { answer } = await samlLogin(brana, sep, { means: 'eobcanka', login: '100000001' });
      assert.equal(answer.acs, sep.acsUrl);
      assert.equal(answer.RelayState, 'back-to-page-7');
      // On the wire: the assertion is encrypted (AES-256-GCM, key by RSA-OAEP), the Response signed.
      assert.match(answer.xml, /<saml:EncryptedAssertion>/);
      assert.match(answer.xml, /http:\/\/www\.w3\.org\/2009\/xmlenc11#aes256-gcm/);
      assert.match(answer.xml, /http:\/\/www\.w3\.org\/2001\/04\/xmlenc#rsa-oaep-mgf1p/);
      assert.doesNotMatch(answer.xml, /Novák|<saml:Assertion /);
      assert.match(answer.xml, /<samlp:Response [^>]*ID="[^"]+"[^>]*><saml:Issuer>[^<]+<\/saml:Issuer><ds:Signature/);

      const profile = await validatedBySep(sep, answer);
      assert.equal(profile.nameIDFormat, 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent');
      assert.match(profile.nameID, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(profile[`${EIDAS}PersonIdentifier`], `CZ/CZ/${profile.nameID}`);
      assert.equal(profile[`${EIDAS}CurrentGivenName`], 'Jan');
      assert.equal(profile[`${EIDAS}CurrentFamilyName`], 'Novák');
      assert.equal(profile[`${EIDAS}DateOfBirth`], '1980-04-12');
      const assertionXml = profile.getAssertionXml!();
      assert.match(assertionXml, /<saml:AuthnContextClassRef>http:\/\/eidas\.europa\.eu\/LoA\/high<\/saml:AuthnContextClassRef>/);
      assert.match(assertionXml, new RegExp(`<saml:Audience>${sep.entityId.replace(/[.]/g, '\\.')}</saml:Audience>`));
    });
  }

  it('gives the SAML SeP the same pseudonym as the OIDC sub of a SeP in the same group, and another group another one', async () => {
    const sep = await samlSep(brana, { registration: { group: 'hradec-kralove' } });
    const { answer } = await samlLogin(brana, sep, { means: 'mojeid', login: 'jnovak' });
    const profile = await validatedBySep(sep, answer);
    const oidcSep = await brana.registerSep({ group: 'hradec-kralove' });
    const oidc = await completeLogin(brana.url.origin, oidcSep, { means: 'eobcanka', login: '100000001', scope: 'openid' });
    assert.equal(profile.nameID, oidc.idToken.sub);
    const elsewhere = await samlSep(brana, { registration: { group: 'jina-skupina', organisation: { id: '00064581', name: 'Hlavní město Praha' } } });
    const other = await validatedBySep(elsewhere, (await samlLogin(brana, elsewhere, { means: 'eobcanka', login: '100000001' })).answer);
    assert.notEqual(other.nameID, profile.nameID);
  });

  it('writes the login to the assertion log as for an OIDC SeP, with the protocol: request, upstream, identity, consent, the assertion issued', async () => {
    const sep = await samlSep(brana);
    const { answer } = await samlLogin(brana, sep, { means: 'eobcanka', login: '100000001' });
    const profile = await validatedBySep(sep, answer);
    const records = (await brana.broker.log.query({ sepId: sep.clientId })).filter((record) => record.event !== 'sep_registered');
    assert.deepEqual(
      records.map((record) => record.event),
      ['request_received', 'request_sent_upstream', 'response_received', 'identity_resolved', 'consent_given', 'token_issued'],
    );
    const requestIds = new Set(records.map((record) => record.requestId));
    assert.equal(requestIds.size, 1);
    const issued = records.at(-1)!;
    assert.equal(issued.pseudonym, profile.nameID);
    assert.equal(issued.loa, 'high');
    assert.equal(issued.means, 'eobcanka');
    assert.equal(issued.detail.protocol, 'saml');
    assert.deepEqual(issued.detail.attributes, ['CurrentFamilyName', 'CurrentGivenName', 'DateOfBirth']);
    assert.equal(records[0]!.detail.protocol, 'saml');
    assert.ok(!JSON.stringify(records).includes('Novák'), 'no attribute values in the log');

    // Statistics count it as a login, split by protocol.
    const issuedAll = (await brana.broker.log.query({ event: 'token_issued' })).map((record) => record.detail.protocol ?? 'oidc');
    const stats = await loginStatistics(brana.broker.db, defaultPeriod());
    assert.deepEqual(stats.loginsByProtocol, { oidc: issuedAll.filter((p) => p === 'oidc').length, saml: issuedAll.filter((p) => p === 'saml').length });
    assert.ok(stats.loginsByProtocol.saml >= 1);
  });

  it('sweeps a journey once it is past its time (its request id is then too old to replay anyway)', async () => {
    const sep = await samlSep(brana);
    await samlLogin(brana, sep, { means: 'eobcanka', login: '100000001' });
    const journeys = () => brana.broker.db('saml_journey').where({ sep_id: sep.clientId }).count({ n: '*' });
    assert.equal(Number((await journeys())[0]!.n), 1);
    await sweepExpiredRows(brana.broker.db, brana.broker, Date.now() + 31 * 60_000);
    assert.equal(Number((await journeys())[0]!.n), 0);
  });
});

describe('a SAML SeP logs a citizen in through Brána on PostgreSQL', () => {
  it('over HTTP-POST: the same Response, the same log records', async () => {
    const database = await createPostgresDatabase('saml-sep');
    const brana = await startTestBroker({ databaseUrl: database.url });
    try {
      const sep = await samlSep(brana, { binding: 'HTTP-POST' });
      const profile = await validatedBySep(sep, (await samlLogin(brana, sep, { means: 'eobcanka', login: '100000001' })).answer);
      assert.equal(profile[`${EIDAS}CurrentGivenName`], 'Jan');
      const events = (await brana.broker.log.query({ sepId: sep.clientId })).map((record) => record.event);
      assert.deepEqual(events.slice(-2), ['consent_given', 'token_issued']);
    } finally {
      await brana.close();
      await database.drop();
    }
  });
});
