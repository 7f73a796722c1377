import assert from 'node:assert/strict';
import { sweepExpiredRows } from '../../src/operations/expired-rows.ts';
import { defaultPeriod, loginStatistics } from '../../src/stats/login-statistics.ts';
import { createPostgresDatabase } from '../support/postgres.ts';
import { inflateRawSync } from 'node:zlib';
import type { Response } from 'supertest';
import { SAML, ValidateInResponseTo } from '@node-saml/node-saml';
import { formAction, hiddenFields } from '../support/html.ts';
import { samlAnswerOf, samlLogin, samlSep, samlSepKeys, sendToBrana, validatedBySep, type SamlSep } from '../support/saml-sep.ts';
import { Citizen, chooseMeans, completeLogin, decideConsent, loginAtIdp, postToAcs } from '../support/login-driver.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

const EIDAS = 'http://eidas.europa.eu/attributes/naturalperson/';

/** Where Brána sends a LogoutResponse, on whichever binding the SeP's metadata names, and how node-saml reads it. */
function logoutResponseOf(response: Response): { at: string; relayState: string | null; xml: string; validate(sep: SamlSep): Promise<{ loggedOut: boolean }> } {
  if (response.status === 303) {
    const location = new URL(response.headers.location as string);
    return {
      at: `${location.origin}${location.pathname}`,
      relayState: location.searchParams.get('RelayState'),
      xml: inflateRawSync(Buffer.from(location.searchParams.get('SAMLResponse')!, 'base64')).toString('utf8'),
      validate: (sep) => sep.saml.validateRedirectAsync(Object.fromEntries(location.searchParams), location.search.slice(1)),
    };
  }
  const fields = hiddenFields(response.text);
  return {
    at: formAction(response.text),
    relayState: fields.RelayState ?? null,
    xml: Buffer.from(fields.SAMLResponse!, 'base64').toString('utf8'),
    // node-saml looks for InResponseTo only on a Response, so on POST it cannot match a
    // LogoutResponse to its request; the test checks InResponseTo itself (below) and lets node-saml
    // check the rest (signature, issuer, status).
    validate: (sep) => new SAML({ ...sep.saml.options, validateInResponseTo: ValidateInResponseTo.never }).validatePostResponseAsync({ SAMLResponse: fields.SAMLResponse!, ...(fields.RelayState ? { RelayState: fields.RelayState } : {}) }),
  };
}

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

  it('encrypts with AES-256-CBC (NIA\'s suite) only for a SeP whose metadata lists no GCM, and that SeP decrypts it', async () => {
    const withoutGcm = (xml: string) => xml.replace(/<EncryptionMethod Algorithm="http:\/\/www\.w3\.org\/2009\/xmlenc11#aes(256|128)-gcm"\/>/g, '');
    const sep = await samlSep(brana, { editMetadata: withoutGcm });
    // Algorithm URIs, not /gcm/ alone: base64 (a certificate, a signature) may hold those letters.
    assert.doesNotMatch(sep.metadataXml, /xmlenc11#aes(128|256)-gcm/);
    const { answer } = await samlLogin(brana, sep, { means: 'eobcanka', login: '100000001' });
    assert.match(answer.xml, /<xenc:EncryptionMethod Algorithm="http:\/\/www\.w3\.org\/2001\/04\/xmlenc#aes256-cbc"/);
    assert.doesNotMatch(answer.xml, /xmlenc11#aes(128|256)-gcm/);
    const profile = await validatedBySep(sep, answer);
    assert.equal(profile[`${EIDAS}CurrentGivenName`], 'Jan');
  });

  it('answers isAgeOver for the age the request names (eidas:AttributeValue), and the other STORK attributes by their URIs', async () => {
    const STORK = 'http://www.stork.gov.eu/1.0/';
    const sep = await samlSep(brana, {
      registration: { allowedAttributes: ['isAgeOver', 'age', 'countryCodeOfBirth'] },
      requestedAttributes: [[`${STORK}isAgeOver`, true, '18'], [`${STORK}age`, false], [`${STORK}countryCodeOfBirth`, false]],
    });
    const profile = await validatedBySep(sep, (await samlLogin(brana, sep, { means: 'eobcanka', login: '100000001' })).answer);
    assert.equal(profile[`${STORK}isAgeOver`], 'true');
    assert.match(String(profile[`${STORK}age`]), /^\d{2}$/);
    assert.equal(profile[`${STORK}countryCodeOfBirth`], 'CZ');
    assert.equal(profile[`${EIDAS}CurrentGivenName`], undefined);
  });

  it('passes ForceAuthn on to the identity means, and a LoA asked for above the registered one narrows the choice', async () => {
    const sep = await samlSep(brana, { forceAuthn: true, loa: 'http://eidas.europa.eu/LoA/high' });
    const { answer, citizen } = await samlLogin(brana, sep, { means: 'eobcanka', login: '100000001' });
    await validatedBySep(sep, answer);
    const sent = (await brana.broker.log.query({ sepId: sep.clientId, event: 'request_sent_upstream' })).at(-1)!;
    assert.equal(sent.detail.forceAuthn, true);
    assert.equal(sent.loa, 'high');
    // The selection page offered only means registered for high.
    const selection = await citizen.follow(await citizen.get(await sep.saml.getAuthorizeUrlAsync('', undefined, {})));
    assert.match(selection.text, /value="eobcanka"/);
    assert.doesNotMatch(selection.text, /value="bankid"|value="nia-id"/, "no means registered below high");
  });

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

  for (const sloBinding of ['HTTP-POST', 'HTTP-Redirect'] as const) {
    it(`answers single logout with a signed LogoutResponse at the SeP's registered SLO endpoint (${sloBinding}), which node-saml accepts; logged`, async () => {
      const sep = await samlSep(brana, { sloBinding });
      const { answer, citizen } = await samlLogin(brana, sep, { means: 'eobcanka', login: '100000001' });
      const profile = await validatedBySep(sep, answer);
      // node-saml sends its LogoutRequest on HTTP-Redirect, signed in the query.
      const logoutUrl = new URL(await sep.saml.getLogoutUrlAsync(profile, 'after-logout', {}));
      const requestId = /ID="([^"]+)"/.exec(inflateRawSync(Buffer.from(logoutUrl.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8'))![1]!;
      const out = await citizen.get(logoutUrl.href);
      const received = logoutResponseOf(out);
      assert.match(received.xml, new RegExp(`<samlp:LogoutResponse [^>]*InResponseTo="${requestId}"`));
      assert.equal(received.at, sep.sloUrl);
      assert.equal(received.relayState, 'after-logout');
      const { loggedOut } = await received.validate(sep);
      assert.equal(loggedOut, true);
      const record = (await brana.broker.log.query({ sepId: sep.clientId, event: 'logout' })).at(-1)!;
      assert.equal(record.pseudonym, profile.nameID);
      assert.equal(record.outcome, 'success');
      assert.equal(record.detail.protocol, 'saml');

      // A LogoutRequest signed by another key is answered RequestDenied, and node-saml sees the failure.
      const forger = await samlSep(brana, { register: false, config: { issuer: sep.entityId, privateKey: samlSepKeys().encryption.privateKeyPem } });
      const denied = logoutResponseOf(await citizen.get(await forger.saml.getLogoutUrlAsync(profile, 'x', {})));
      assert.equal(denied.at, sep.sloUrl);
      assert.match(denied.xml, /status:Requester"><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:RequestDenied"/);
      const last = (await brana.broker.log.query({ sepId: sep.clientId, event: 'logout' })).at(-1)!;
      assert.equal(last.reason, 'signature_invalid');
      assert.equal(last.outcome, 'failure');
    });
  }

  it('continues a SAML journey when the browser re-sends the answer accepted just before a 502, and refuses it from another browser', async () => {
    const sep = await samlSep(brana);
    const citizen = new Citizen(brana.url.origin);
    let page = await citizen.follow(await sendToBrana(sep, citizen));
    page = await chooseMeans(citizen, page, 'eobcanka');
    const idp = await loginAtIdp(citizen, page, '100000001');
    const first = await citizen.post(idp.acs, idp.fields);
    assert.equal(first.status, 303, 'accepted; its redirect never reaches the browser');
    const stranger = await new Citizen(brana.url.origin).follow(await new Citizen(brana.url.origin).post(idp.acs, idp.fields));
    assert.notEqual(stranger.status, 200);
    const again = await postToAcs(citizen, idp.acs, idp.fields);
    assert.match(again.text, /name="decision"/, 'the same browser goes on to consent');
    const profile = await validatedBySep(sep, samlAnswerOf(await decideConsent(citizen, again, 'agree')));
    assert.match(profile.nameID, /^[A-Za-z0-9_-]{43}$/);
    const events = (await brana.broker.log.query({ sepId: sep.clientId })).map((record) => record.event);
    assert.equal(events.filter((event) => event === 'response_received').length, 1);
    assert.equal(events.filter((event) => event === 'token_issued').length, 1);
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
