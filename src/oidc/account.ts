import type { Account, AccountClaims, ClaimsParameterMember, FindAccount, KoaContextWithOIDC } from 'oidc-provider';
import { currentAddressBase64, oidcAddress, ruianAddressBase64 } from '../identity/address.ts';
import type { ForeignPersonStore } from '../identity/foreign-person-store.ts';
import type { PersonStore } from '../identity/person-store.ts';
import type { PopulationRegister, PostalAddress, RegisterRecord } from '../identity/population-register.ts';
import { isForeignPerson } from '../identity/resolution.ts';
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
 * What Brána knows about a person: a population register record, or for a foreign person (eIDAS)
 * the few facts their eID asserted.
 */
export interface PersonFacts {
  givenName: string;
  familyName: string;
  dateOfBirth: string;
  placeOfBirth?: string;
  countryCodeOfBirth?: string;
  address?: PostalAddress;
  email?: string | null;
  phone?: string | null;
  idDocument?: RegisterRecord['idDocument'];
}

/**
 * Every claim Brána can state about a person, in both vocabularies; oidc-provider then keeps only
 * what the grant allows (the SeP's permitted attributes that the citizen consented to).
 */
export function claimsOf(record: PersonFacts, personIdentifier: string, requested: { [key: string]: null | ClaimsParameterMember }, now = new Date()): AccountClaims {
  const claims: Record<string, unknown> = {
    PersonIdentifier: personIdentifier,
    CurrentGivenName: record.givenName,
    given_name: record.givenName,
    CurrentFamilyName: record.familyName,
    family_name: record.familyName,
    DateOfBirth: record.dateOfBirth,
    birthdate: record.dateOfBirth,
    age: ageOn(record.dateOfBirth, now),
  };
  if (record.placeOfBirth) claims.PlaceOfBirth = record.placeOfBirth;
  if (record.countryCodeOfBirth) claims.countryCodeOfBirth = record.countryCodeOfBirth;
  if (record.address) {
    claims.CurrentAddress = currentAddressBase64(record.address);
    claims.address = oidcAddress(record.address);
    claims.tradresaid = ruianAddressBase64(record.address);
  }
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

/**
 * oidc-provider's findAccount: the person by Brána's id, their data from the population register (or,
 * for a foreign person, from what their eID asserted at this login).
 */
export function accountFinder(persons: PersonStore, register: PopulationRegister, pseudonyms: Pseudonyms, foreign?: ForeignPersonStore): FindAccount {
  return async (ctx: KoaContextWithOIDC, personId: string): Promise<Account | undefined> => {
    const person = await persons.find(personId);
    if (!person) return undefined;
    const client = ctx.oidc.client;
    return {
      accountId: person.id,
      async claims(_use, _scope, requested) {
        const record: PersonFacts | undefined = isForeignPerson(person) ? await foreign?.find(person.id) : await register.findById(person.registerId);
        if (!record || !client) return { sub: person.id };
        return { ...claimsOf(record, pseudonyms.personIdentifier(person.id, groupOfClient(client)), requested ?? {}), sub: person.id };
      },
    };
  };
}
