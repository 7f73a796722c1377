import type { Account, AccountClaims, ClaimsParameterMember, FindAccount, KoaContextWithOIDC } from 'oidc-provider';
import { currentAddressBase64, oidcAddress, ruianAddressBase64 } from '../identity/address.ts';
import type { PersonStore } from '../identity/person-store.ts';
import type { PopulationRegister, RegisterRecord } from '../identity/population-register.ts';
import type { Pseudonyms } from '../pseudonym/pseudonym.ts';
import { groupOfClient } from './client-metadata.ts';

/** Whole years between a date of birth and a day, as a citizen counts their age. */
export function ageOn(dateOfBirth: string, on: Date): number {
  const [year, month, day] = dateOfBirth.split('-').map(Number) as [number, number, number];
  let age = on.getUTCFullYear() - year;
  if (on.getUTCMonth() + 1 < month || (on.getUTCMonth() + 1 === month && on.getUTCDate() < day)) age -= 1;
  return age;
}

/** The age a SeP asked about with isAgeOver (`{"isAgeOver": {"value": 18}}`), if it asked properly. */
function requestedAgeThreshold(request: null | ClaimsParameterMember | undefined): number | undefined {
  const value = request?.value ?? request?.values?.[0];
  const age = typeof value === 'number' ? value : typeof value === 'string' && /^\d{1,3}$/.test(value) ? Number(value) : undefined;
  return age !== undefined && age > 0 && age < 150 ? age : undefined;
}

/**
 * Every claim Brána can state about a person, in both vocabularies; oidc-provider then keeps only
 * what the grant allows (the SeP's permitted attributes that the citizen consented to).
 */
export function claimsOf(record: RegisterRecord, personIdentifier: string, requested: { [key: string]: null | ClaimsParameterMember }, now = new Date()): AccountClaims {
  const claims: Record<string, unknown> = {
    PersonIdentifier: personIdentifier,
    CurrentGivenName: record.givenName,
    given_name: record.givenName,
    CurrentFamilyName: record.familyName,
    family_name: record.familyName,
    DateOfBirth: record.dateOfBirth,
    birthdate: record.dateOfBirth,
    PlaceOfBirth: record.placeOfBirth,
    countryCodeOfBirth: record.countryCodeOfBirth,
    CurrentAddress: currentAddressBase64(record.address),
    address: oidcAddress(record.address),
    tradresaid: ruianAddressBase64(record.address),
    age: ageOn(record.dateOfBirth, now),
  };
  if (record.email) {
    claims.eMail = record.email;
    claims.email = record.email;
  }
  if (record.phone) {
    claims.phonenumber = record.phone;
    claims.phone_number = record.phone;
  }
  if (record.idDocument) {
    claims.idtype = record.idDocument.type;
    claims.idnumber = record.idDocument.number;
  }
  const threshold = requestedAgeThreshold(requested.isAgeOver);
  if (threshold !== undefined) claims.isAgeOver = ageOn(record.dateOfBirth, now) >= threshold;
  return claims as AccountClaims;
}

/** oidc-provider's findAccount: the person by Brána's id, their data from the population register. */
export function accountFinder(persons: PersonStore, register: PopulationRegister, pseudonyms: Pseudonyms): FindAccount {
  return async (ctx: KoaContextWithOIDC, personId: string): Promise<Account | undefined> => {
    const person = await persons.find(personId);
    if (!person) return undefined;
    const client = ctx.oidc.client;
    return {
      accountId: person.id,
      async claims(_use, _scope, requested) {
        const record = await register.findById(person.registerId);
        if (!record || !client) return { sub: person.id };
        return { ...claimsOf(record, pseudonyms.personIdentifier(person.id, groupOfClient(client)), requested ?? {}), sub: person.id };
      },
    };
  };
}
