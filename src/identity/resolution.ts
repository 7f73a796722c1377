import type { Queryable } from '../store/database.ts';
import type { UpstreamIdentity } from '../upstream/contract.ts';
import type { PopulationRegister } from './population-register.ts';
import type { Person, PersonStore } from './person-store.ts';

export class ResolutionFailed extends Error {
  readonly reason: 'insufficient_attributes' | 'not_found' | 'ambiguous';

  constructor(reason: ResolutionFailed['reason']) {
    super(`identity resolution failed: ${reason}`);
    this.reason = reason;
  }
}

/**
 * Identity resolution (ztotožnění): whichever means a citizen used, the identity it asserted is
 * matched against the population register, so the same citizen always reaches the same person.
 * Matching uses the register's identifying data (names, date and place of birth), never a mutable
 * contact attribute such as e-mail.
 */
export class IdentityResolution {
  private readonly register: PopulationRegister;
  private readonly persons: PersonStore;

  constructor(register: PopulationRegister, persons: PersonStore) {
    this.register = register;
    this.persons = persons;
  }

  async resolve(identity: UpstreamIdentity, trx: Queryable): Promise<{ person: Person; firstTime: boolean }> {
    const single = (values: string[] | undefined) => (values && values.length === 1 ? values[0]!.trim() : undefined);
    const givenName = single(identity.attributes.CurrentGivenName);
    const familyName = single(identity.attributes.CurrentFamilyName);
    const dateOfBirth = single(identity.attributes.DateOfBirth);
    const placeOfBirth = single(identity.attributes.PlaceOfBirth);
    if (!givenName || !familyName || !dateOfBirth || !/^\d{4}-\d{2}-\d{2}$/.test(dateOfBirth)) {
      throw new ResolutionFailed('insufficient_attributes');
    }
    const match = await this.register.match({ givenName, familyName, dateOfBirth, ...(placeOfBirth ? { placeOfBirth } : {}) });
    if (match.kind !== 'found') throw new ResolutionFailed(match.kind);
    const { person, created } = await this.persons.findOrCreate(match.record.registerId, trx);
    return { person, firstTime: created };
  }
}
