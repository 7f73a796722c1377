import assert from 'node:assert/strict';
import supertest from 'supertest';
import { attribute } from '../../src/domain/attributes.ts';
import { loaUri, type Loa } from '../../src/domain/loa.ts';
import { codesIssuedTo, recordsOfLogin } from '../support/audit.ts';
import { authnRequestIdOf, authorizationResponse, completeLogin, loginAtIdp, postToAcs, startLogin, type Sep } from '../support/login-driver.ts';
import { forgedResponse, JAN_NOVAK } from '../support/saml-forge.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

/** One test citizen per means, with the LoA that account reaches and the given name it belongs to. */
const ACCOUNTS: Array<{ means: string; login: string; loa: Loa; givenName: string }> = [
  { means: 'eobcanka', login: '100000001', loa: 'high', givenName: 'Jan' },
  { means: 'nia-id', login: 'jan.novak', loa: 'substantial', givenName: 'Jan' },
  { means: 'mobilni-klic', login: 'jan.novak', loa: 'substantial', givenName: 'Jan' },
  { means: 'mojeid', login: 'msvobodova', loa: 'high', givenName: 'Marie' },
  { means: 'ica-starcos', login: 'jnovak', loa: 'high', givenName: 'Jan' },
  { means: 'isds', login: 'jn4x7ab', loa: 'low', givenName: 'Jan' },
  { means: 'bankid', login: 'jan.novak', loa: 'substantial', givenName: 'Jan' },
  { means: 'csob', login: 'jan.novak', loa: 'substantial', givenName: 'Jan' },
  { means: 'ceska-sporitelna', login: 'marie.svobodova', loa: 'substantial', givenName: 'Marie' },
  { means: 'komercni-banka', login: 'jana.cerna', loa: 'substantial', givenName: 'Jana' },
  { means: 'moneta', login: 'jana.cerna', loa: 'substantial', givenName: 'Jana' },
  { means: 'eidas', login: 'DE-erika.mustermann', loa: 'high', givenName: 'Erika' },
];

const CZECH_NAMESPACES = ['schemas.eidentita.cz', 'schemas.eidentity.cz', 'schemas.identitaobcana.cz'];

describe('the twelve identity means', () => {
  let brana: TestBroker;
  let everything: Sep;
  before(async () => {
    brana = await startTestBroker();
    everything = await brana.registerSep({ minimumLoa: 'low', eidasEnabled: true, allowedAttributes: ['CurrentGivenName', 'CurrentFamilyName', 'DateOfBirth'] });
  });
  after(async () => brana.close());

  it('offers all twelve, in order, with names, administrators and logos, to a SeP at low with foreign eIDs enabled', async () => {
    const { response } = await startLogin(brana.url.origin, everything);
    const offered = [...response.text.matchAll(/name="means" value="([^"]+)"/g)].map((match) => match[1]);
    assert.deepEqual(offered, ['eobcanka', 'nia-id', 'mobilni-klic', 'mojeid', 'ica-starcos', 'isds', 'bankid', 'csob', 'ceska-sporitelna', 'komercni-banka', 'moneta', 'eidas']);
    assert.match(response.text, /Spravuje: Bankovní identita, a\.s\./);
    for (const id of offered) {
      const logo = await supertest(brana.url.origin).get(`/means/${id}/logo.svg`);
      assert.equal(logo.status, 200, id);
      assert.match(String(logo.headers['content-type']), /image\/svg\+xml/);
      assert.match(logo.body.toString(), /<svg [^>]*role="img"/);
    }
  });

  for (const account of ACCOUNTS) {
    it(`logs ${account.givenName} in end to end through ${account.means} at ${account.loa}`, async () => {
      const { idToken, userinfo } = await completeLogin(brana.url.origin, everything, { means: account.means, login: account.login, scope: 'openid profile' });
      assert.equal(idToken.acr, loaUri(account.loa));
      assert.deepEqual(idToken.amr, [account.means]);
      assert.equal(idToken.PersonIdentifier, `CZ/CZ/${idToken.sub}`);
      assert.equal(userinfo.given_name, account.givenName);
      assert.equal(userinfo.CurrentGivenName, account.givenName);
    });
  }

  it('gives one citizen one pseudonym through a bank, Bank iD, eObčanka and the other means they hold', async () => {
    const subs = new Set<unknown>();
    for (const [means, login] of [['csob', 'jan.novak'], ['eobcanka', '100000001'], ['bankid', 'jan.novak'], ['nia-id', 'jan.novak'], ['isds', 'jn4x7ab'], ['ica-starcos', 'jnovak']] as const) {
      subs.add((await completeLogin(brana.url.origin, everything, { means, login, scope: 'openid' })).idToken.sub);
    }
    assert.equal(subs.size, 1);
    const marie = new Set<unknown>();
    for (const [means, login] of [['ceska-sporitelna', 'marie.svobodova'], ['eobcanka', '100000002'], ['bankid', 'marie.svobodova']] as const) {
      marie.add((await completeLogin(brana.url.origin, everything, { means, login, scope: 'openid' })).idToken.sub);
    }
    assert.equal(marie.size, 1);
    assert.ok(!marie.has([...subs][0]));
  });

  it('carries NIA\'s encrypted assertion shape: RSA-OAEP-MGF1P with SHA-1, AES-256-CBC, a WIF-style key reference', async () => {
    const started = await startLogin(brana.url.origin, everything, { idpHint: 'eobcanka', scope: 'openid' });
    const idp = await loginAtIdp(started.citizen, started.response, '100000001');
    const xml = Buffer.from(idp.fields.SAMLResponse!, 'base64').toString('utf8');
    const encryptedKey = /<e:EncryptedKey[\s\S]*<\/e:EncryptedKey>/.exec(xml)![0];
    assert.match(encryptedKey, /Algorithm="http:\/\/www\.w3\.org\/2001\/04\/xmlenc#rsa-oaep-mgf1p"/);
    assert.match(encryptedKey, /<DigestMethod Algorithm="http:\/\/www\.w3\.org\/2000\/09\/xmldsig#sha1"/);
    assert.match(encryptedKey, /<o:SecurityTokenReference xmlns:o="http:\/\/docs\.oasis-open\.org\/wss\/2004\/01\/oasis-200401-wss-wssecurity-secext-1\.0\.xsd"><X509Data><X509IssuerSerial><X509IssuerName>CN=Brána SAML encryption/);
    assert.doesNotMatch(encryptedKey, /X509Certificate/);
    assert.match(xml, /xmlenc#aes256-cbc/);
    const page = await postToAcs(started.citizen, idp.acs, idp.fields);
    assert.ok(authorizationResponse(page, everything).get('code'), 'Brána decrypts it and the login completes');
  });

  it('accepts the Czech attribute namespace in all three spellings seen in the wild', async () => {
    for (const host of CZECH_NAMESPACES) {
      const started = await startLogin(brana.url.origin, everything, { idpHint: 'eobcanka', scope: 'openid' });
      const idp = await loginAtIdp(started.citizen, started.response, '100000001');
      const attributes = [...JAN_NOVAK, { name: `http://${host}/moris/2016/identity/claims/phonenumber`, values: ['+420601000001'] }];
      const page = await postToAcs(started.citizen, idp.acs, { SAMLResponse: await forgedResponse(brana, 'eobcanka', authnRequestIdOf(idp.sealedRequest), { attributes }) });
      assert.ok(authorizationResponse(page, everything).get('code'), host);
      const resolved = (await recordsOfLogin(brana.broker, started.codeVerifier)).find((record) => record.event === 'identity_resolved')!;
      assert.ok((resolved.detail.attributesAsserted as string[]).includes('phonenumber'), host);
    }
  });

  describe('foreign eIDs through the eIDAS node', () => {
    it('resolves a foreign person by their eIDAS identifier, releases what their eID asserted, and keeps only a hash of it', async () => {
      const first = await completeLogin(brana.url.origin, everything, { means: 'eidas', login: 'DE-erika.mustermann', scope: 'openid profile' });
      const again = await completeLogin(brana.url.origin, everything, { means: 'eidas', login: 'DE-erika.mustermann', scope: 'openid' });
      const other = await completeLogin(brana.url.origin, everything, { means: 'eidas', login: 'SK-zuzana.horvathova', scope: 'openid' });
      assert.equal(first.idToken.sub, again.idToken.sub);
      assert.notEqual(first.idToken.sub, other.idToken.sub);
      assert.equal(first.userinfo.family_name, 'Mustermann');
      assert.equal(first.userinfo.birthdate, '1984-08-12');
      assert.equal(first.userinfo.address, undefined, 'no Czech register address for a foreign person');
      const everythingReleased = JSON.stringify([first.idToken, first.userinfo]);
      assert.ok(!everythingReleased.includes('7a1f3c9e'), 'the foreign identifier is never handed to a SeP');

      const persons = (await brana.broker.db('person').select('register_id')) as Array<{ register_id: string }>;
      const foreign = persons.filter((row) => row.register_id.startsWith('eidas:'));
      assert.equal(foreign.length, 2);
      assert.ok(foreign.some((row) => row.register_id.startsWith('eidas:DE:')));
      assert.ok(!JSON.stringify(persons).includes('7a1f3c9e'), 'only a keyed hash of the identifier is stored');
      const facts = (await brana.broker.db('foreign_person').select('expires_at')) as Array<{ expires_at: number }>;
      assert.ok(facts.every((row) => Number(row.expires_at) > Date.now() && Number(row.expires_at) < Date.now() + 9 * 3600_000), 'kept only for a session\'s life');
    });

    it('is offered only to SePs that enabled foreign eIDs, and an eIDAS session does not carry over to the others', async () => {
      const czechOnly = await brana.registerSep({ minimumLoa: 'low' });
      const selection = await startLogin(brana.url.origin, czechOnly);
      assert.doesNotMatch(selection.response.text, /value="eidas"/);
      const hinted = await startLogin(brana.url.origin, czechOnly, { idpHint: 'eidas' });
      assert.equal(hinted.response.status, 200, 'idp_hint cannot open a means the SeP may not use');
      assert.doesNotMatch(hinted.response.text, /value="eidas"/);

      const session = await completeLogin(brana.url.origin, everything, { means: 'eidas', login: 'AT-lorenz.huber', scope: 'openid' });
      const silent = await startLogin(brana.url.origin, czechOnly, { prompt: 'none', scope: 'openid' }, session.citizen);
      assert.equal(authorizationResponse(silent.response, czechOnly).get('error'), 'login_required');
      const visible = await startLogin(brana.url.origin, czechOnly, { scope: 'openid' }, session.citizen);
      assert.equal(visible.response.status, 200);
      assert.match(visible.response.text, /name="means"/, 'the citizen chooses a Czech means');
      assert.equal(await codesIssuedTo(brana.broker, czechOnly.clientId), 0);
    });

    it('refuses an identifier that is Czech, meant for another country, or missing', async () => {
      const cases: Array<[string, string[], string]> = [
        ['CZ/CZ/ (a Czech pseudonym)', ['CZ/CZ/abcdef'], 'resolution_identifier_invalid'],
        ['issued for Austria', ['DE/AT/abcdef'], 'resolution_identifier_invalid'],
        ['not an eIDAS identifier', ['abcdef'], 'resolution_identifier_invalid'],
        ['missing', [], 'resolution_insufficient_attributes'],
      ];
      for (const [what, values, reason] of cases) {
        const started = await startLogin(brana.url.origin, everything, { idpHint: 'eidas', scope: 'openid' });
        const idp = await loginAtIdp(started.citizen, started.response, 'DE-erika.mustermann');
        const attributes = [...JAN_NOVAK, ...(values.length ? [{ name: attribute('PersonIdentifier').samlName, values }] : [])];
        const page = await postToAcs(started.citizen, idp.acs, { SAMLResponse: await forgedResponse(brana, 'eidas', authnRequestIdOf(idp.sealedRequest), { attributes, loa: 'high' }) });
        assert.equal(page.status, 400, what);
        assert.match(page.text, /nedokázali jednoznačně najít/, what);
        const records = await recordsOfLogin(brana.broker, started.codeVerifier);
        assert.equal(records.find((record) => record.event === 'error')?.reason, reason, what);
        assert.ok(!records.some((record) => record.event === 'identity_resolved'), what);
      }
    });
  });
});
