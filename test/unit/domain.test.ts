import assert from 'node:assert/strict';
import { requiredLoa } from '../../src/domain/required-loa.ts';
import { qualifyingMeans } from '../../src/means/qualifying-means.ts';
import { isValidIco } from '../../src/sep/sep.ts';
import { Pseudonyms } from '../../src/pseudonym/pseudonym.ts';
import { releaseDecision } from '../../src/consent/release-policy.ts';
import { attributeOfSamlName } from '../../src/domain/attributes.ts';
import { ageOn } from '../../src/oidc/account.ts';

describe('the domain rules', () => {
  it('takes the strictest LoA of registration, acr_values, NIA scopes and an essential acr claim', () => {
    const high = 'http://eidas.europa.eu/LoA/high';
    const substantial = 'http://eidas.europa.eu/LoA/substantial';
    assert.equal(requiredLoa('low', {}), 'low');
    assert.equal(requiredLoa('substantial', { acr_values: 'http://eidas.europa.eu/LoA/low' }), 'substantial', 'a SeP cannot ask for less than it registered');
    assert.equal(requiredLoa('low', { acr_values: `${substantial} ${high}` }), 'substantial', 'several acceptable values mean the weakest of them');
    assert.equal(requiredLoa('low', { scope: 'openid loahigh' }), 'high');
    assert.equal(requiredLoa('low', { claims: JSON.stringify({ id_token: { acr: { essential: true, value: high } } }) }), 'high');
    assert.equal(requiredLoa('low', { claims: JSON.stringify({ id_token: { acr: { value: high } } }) }), 'low', 'a voluntary acr claim is no minimum');
    assert.equal(requiredLoa('low', { acr_values: 'urn:something:else' }), 'low');
  });

  it('offers only means registered for the minimum and allowed for the SeP', () => {
    const all = [
      { id: 'eobcanka', loa: 'high' as const },
      { id: 'bankid', loa: 'substantial' as const },
      { id: 'isds', loa: 'low' as const },
    ];
    assert.deepEqual(qualifyingMeans(all, 'substantial', null).map((m) => m.id), ['eobcanka', 'bankid']);
    assert.deepEqual(qualifyingMeans(all, 'low', ['isds', 'bankid']).map((m) => m.id), ['bankid', 'isds']);
    assert.deepEqual(qualifyingMeans(all, 'high', ['bankid']), []);
  });

  it('checks IČO check digits', () => {
    for (const ico of ['00268810', '00007064', '25596641', '00064581']) assert.ok(isValidIco(ico), ico);
    for (const ico of ['00268811', '1234567', '0026881a', '']) assert.ok(!isValidIco(ico), ico);
  });

  it('computes pseudonyms that are stable, per group, and depend on the secret', () => {
    const a = new Pseudonyms(Buffer.alloc(32, 1));
    const b = new Pseudonyms(Buffer.alloc(32, 2));
    assert.equal(a.forGroup('person-1', 'g1'), a.forGroup('person-1', 'g1'));
    assert.notEqual(a.forGroup('person-1', 'g1'), a.forGroup('person-1', 'g2'));
    assert.notEqual(a.forGroup('person-1', 'g1'), a.forGroup('person-2', 'g1'));
    assert.notEqual(a.forGroup('person-1', 'g1'), b.forGroup('person-1', 'g1'));
    // no ambiguity from concatenation
    assert.notEqual(a.forGroup('ab', 'c'), a.forGroup('a', 'bc'));
    assert.equal(a.personIdentifier('person-1', 'g1'), `CZ/CZ/${a.forGroup('person-1', 'g1')}`);
    assert.throws(() => new Pseudonyms(Buffer.alloc(16)));
  });

  it('releases only what was asked for and the SeP may have', () => {
    const decision = releaseDecision({ scope: 'openid profile email', claims: JSON.stringify({ userinfo: { phone_number: null } }) }, ['CurrentGivenName', 'eMail', 'phonenumber']);
    assert.deepEqual(decision.consentable, ['CurrentGivenName', 'eMail', 'phonenumber']);
    assert.deepEqual(decision.refused, ['CurrentFamilyName', 'DateOfBirth', 'PlaceOfBirth', 'countryCodeOfBirth']);
    assert.deepEqual(releaseDecision({ scope: 'openid' }, ['CurrentGivenName']).consentable, []);
  });

  it('accepts the three spellings of the Czech attribute namespace', () => {
    for (const host of ['schemas.eidentita.cz', 'schemas.eidentity.cz', 'schemas.identitaobcana.cz']) {
      assert.equal(attributeOfSamlName(`http://${host}/moris/2016/identity/claims/phonenumber`), 'phonenumber');
    }
    assert.equal(attributeOfSamlName('http://schemas.example.cz/moris/2016/identity/claims/phonenumber'), undefined);
  });

  it('counts age in whole years as a citizen does', () => {
    assert.equal(ageOn('2008-11-25', new Date('2026-11-25T00:00:00Z')), 18);
    assert.equal(ageOn('2008-11-26', new Date('2026-11-25T23:00:00Z')), 17);
    assert.equal(ageOn('2008-02-29', new Date('2026-02-28T12:00:00Z')), 17);
  });
});
