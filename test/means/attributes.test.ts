import assert from 'node:assert/strict';
import { completeLogin, startLogin, loginAtIdp, chooseMeans, returnToBrana } from '../support/login-driver.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

/** Whole years, counted independently of Brána's own arithmetic. */
function yearsSince(isoDate: string, now = new Date()): number {
  const birth = new Date(`${isoDate}T00:00:00Z`);
  let years = now.getUTCFullYear() - birth.getUTCFullYear();
  const birthdayThisYear = Date.UTC(now.getUTCFullYear(), birth.getUTCMonth(), birth.getUTCDate());
  if (now.getTime() < birthdayThisYear) years -= 1;
  return years;
}

const ALL = ['CurrentGivenName', 'CurrentFamilyName', 'DateOfBirth', 'PlaceOfBirth', 'countryCodeOfBirth', 'CurrentAddress', 'tradresaid', 'eMail', 'phonenumber', 'age', 'isAgeOver', 'idtype', 'idnumber'];

describe('the eIDAS attribute set toward SePs', () => {
  let brana: TestBroker;
  before(async () => {
    brana = await startTestBroker();
  });
  after(async () => brana.close());

  it('releases NIA claim names asked for in the claims parameter, into the ID token', async () => {
    const sep = await brana.registerSep({ allowedAttributes: ALL });
    const { idToken } = await completeLogin(brana.url.origin, sep, {
      means: 'eobcanka',
      login: '100000001',
      scope: 'openid',
      claims: { id_token: { CurrentGivenName: null, CurrentFamilyName: null, DateOfBirth: null, PlaceOfBirth: null, countryCodeOfBirth: null, idtype: null, idnumber: null } },
    });
    assert.equal(idToken.CurrentGivenName, 'Jan');
    assert.equal(idToken.CurrentFamilyName, 'Novák');
    assert.equal(idToken.DateOfBirth, '1980-04-12');
    assert.equal(idToken.PlaceOfBirth, 'Praha');
    assert.equal(idToken.countryCodeOfBirth, 'CZ');
    assert.equal(idToken.idtype, 'ID');
    assert.equal(idToken.idnumber, '100000001');
    assert.equal(idToken.given_name, undefined, 'only what was asked for');
  });

  it('maps the standard scopes profile, email, address and phone to the same data in both vocabularies', async () => {
    const sep = await brana.registerSep({ allowedAttributes: ALL });
    const { userinfo } = await completeLogin(brana.url.origin, sep, { means: 'csob', login: 'jan.novak', scope: 'openid profile email address phone' });
    assert.equal(userinfo.given_name, 'Jan');
    assert.equal(userinfo.CurrentGivenName, 'Jan');
    assert.equal(userinfo.birthdate, '1980-04-12');
    assert.equal(userinfo.email, 'jan.novak@example.cz');
    assert.equal(userinfo.eMail, 'jan.novak@example.cz');
    assert.equal(userinfo.phone_number, '+420601000001');
    assert.equal(userinfo.phonenumber, '+420601000001');
    assert.deepEqual(userinfo.address, {
      formatted: 'Náměstí Míru 820/9\n12000 Praha\nCZ',
      street_address: 'Náměstí Míru 820/9',
      locality: 'Praha',
      postal_code: '12000',
      country: 'CZ',
    });
    const currentAddress = Buffer.from(String(userinfo.CurrentAddress), 'base64').toString('utf8');
    for (const [element, value] of [['LocatorDesignator', '820/9'], ['Thoroughfare', 'Náměstí Míru'], ['PostName', 'Praha'], ['PostCode', '12000'], ['CvaddressArea', 'Vinohrady']]) {
      assert.match(currentAddress, new RegExp(`<eidas-natural:${element} xmlns:eidas-natural="http://eidas.europa.eu/attributes/naturalperson">${value}</eidas-natural:${element}>`));
    }
    assert.match(Buffer.from(String(userinfo.tradresaid), 'base64').toString('utf8'), /<TrAdresaId>21715731<\/TrAdresaId>/);
  });

  it('answers isAgeOver for the age the SeP asks, and age without the date of birth', async () => {
    const sep = await brana.registerSep({ allowedAttributes: ['age', 'isAgeOver'] });
    const adult = await completeLogin(brana.url.origin, sep, { means: 'eobcanka', login: '100000001', scope: 'openid', claims: { userinfo: { isAgeOver: { value: 18 }, age: null } } });
    assert.equal(adult.userinfo.isAgeOver, true);
    assert.equal(adult.userinfo.age, yearsSince('1980-04-12'));

    const petrAge = yearsSince('2009-06-30');
    for (const [threshold, expected] of [[petrAge, true], [petrAge + 1, false]] as const) {
      const young = await completeLogin(brana.url.origin, sep, { means: 'eobcanka', login: '100000003', scope: 'openid', claims: { userinfo: { isAgeOver: { value: threshold }, age: null, DateOfBirth: null, birthdate: null } } });
      assert.equal(young.userinfo.isAgeOver, expected, `isAgeOver ${threshold}`);
      assert.equal(young.userinfo.age, petrAge);
      assert.equal(young.userinfo.DateOfBirth, undefined, 'the date of birth itself is not released');
      assert.equal(young.userinfo.birthdate, undefined);
    }
  });

  it('names each attribute on the consent page, in Czech', async () => {
    const sep = await brana.registerSep({ allowedAttributes: ALL });
    const started = await startLogin(brana.url.origin, sep, { scope: 'openid address phone', claims: { userinfo: { isAgeOver: { value: 18 } } } });
    const idp = await loginAtIdp(started.citizen, await chooseMeans(started.citizen, started.response, 'eobcanka'), '100000001');
    const consent = await returnToBrana(started.citizen, idp);
    for (const label of ['Adresa pobytu', 'Kód adresy v registru RÚIAN', 'Telefonní číslo', 'Zda jste starší než požadovaný věk']) assert.match(consent.text, new RegExp(label));
  });
});
