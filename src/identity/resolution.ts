import { createHmac } from 'node:crypto';
import { parsePersonIdentifier } from '../domain/person-identifier.ts';
import type { Queryable } from '../store/database.ts';
import type { UpstreamIdentity } from '../upstream/contract.ts';
import type { ForeignPersonFacts, ForeignPersonStore } from './foreign-person-store.ts';
import type { PopulationRegister } from './population-register.ts';
import type { Person, PersonStore } from './person-store.ts';

export class ResolutionFailed extends Error {
  readonly reason: 'insufficient_attributes' | 'not_found' | 'ambiguous' | 'identifier_invalid';

  constructor(reason: ResolutionFailed['reason']) {
    super(`identity resolution failed: ${reason}`);
    this.reason = reason;
  }
}

/** A person as the register (or the eIDAS node) knows them, before they are recorded. */
export interface Identified {
  registerId: string;
  /** Brána's person for them, if it knows them already (a person row never changes). */
  known: Person | null;
  /** What a foreign person's eID asserted, kept for as long as a session can use it. */
  foreign: ForeignPersonFacts | null;
}

export interface ForeignResolution {
  /** The means that bring foreign persons (the eIDAS node). */
  crossBorderMeans: ReadonlySet<string>;
  store: ForeignPersonStore;
  /** Keys the hash under which a foreign identifier is remembered. */
  identifierKey: Buffer;
}

/**
 * Identity resolution (ztotožnění): whichever means a citizen used, the identity it asserted is
 * matched against the population register, so the same citizen always reaches the same person.
 * Matching uses the register's identifying data (names, date and place of birth), never a mutable
 * contact attribute such as e-mail.
 *
 * A foreign person (eIDAS) is in no Czech register: they are known by their eIDAS PersonIdentifier,
 * unique within the issuing country. Brána keeps only a keyed hash of it (so the table holds no
 * foreign identifier) and their asserted attributes for as long as a session can use them.
 */
export class IdentityResolution {
  private readonly register: PopulationRegister;
  private readonly persons: PersonStore;
  private readonly foreign: ForeignResolution | undefined;

  constructor(register: PopulationRegister, persons: PersonStore, foreign?: ForeignResolution) {
    this.register = register;
    this.persons = persons;
    this.foreign = foreign;
  }

  /**
   * Who the identity is, from the register (or, for a foreign person, from their eIDAS identifier),
   * and whether Brána knows them already: reads only, so it runs outside any transaction and a slow
   * register holds no lock.
   */
  async identify(identity: UpstreamIdentity): Promise<Identified> {
    const single = (values: string[] | undefined) => (values && values.length === 1 ? values[0]!.trim() : undefined);
    const givenName = single(identity.attributes.CurrentGivenName);
    const familyName = single(identity.attributes.CurrentFamilyName);
    const dateOfBirth = single(identity.attributes.DateOfBirth);
    const placeOfBirth = single(identity.attributes.PlaceOfBirth);
    if (!givenName || !familyName || !dateOfBirth || !/^\d{4}-\d{2}-\d{2}$/.test(dateOfBirth)) {
      throw new ResolutionFailed('insufficient_attributes');
    }
    if (this.foreign?.crossBorderMeans.has(identity.means)) {
      const value = single(identity.attributes.PersonIdentifier);
      if (!value) throw new ResolutionFailed('insufficient_attributes');
      const identifier = parsePersonIdentifier(value);
      // Issued for the Czech Republic by another country: a CZ identity never arrives through the eIDAS node.
      if (!identifier || identifier.destinationCountry !== 'CZ' || identifier.issuingCountry === 'CZ') throw new ResolutionFailed('identifier_invalid');
      const hash = createHmac('sha256', this.foreign.identifierKey).update(`${identifier.issuingCountry}/${identifier.identifier}`).digest('base64url');
      const registerId = `eidas:${identifier.issuingCountry}:${hash}`;
      return {
        registerId,
        known: (await this.persons.findByRegisterId(registerId)) ?? null,
        foreign: { givenName, familyName, dateOfBirth, ...(placeOfBirth ? { placeOfBirth } : {}), issuingCountry: identifier.issuingCountry },
      };
    }
    // A RegisterUnavailable passes through: no one can be resolved now, which is not "not found".
    const match = await this.register.match({ givenName, familyName, dateOfBirth, ...(placeOfBirth ? { placeOfBirth } : {}) });
    if (match.kind !== 'found') throw new ResolutionFailed(match.kind);
    return { registerId: match.record.registerId, known: (await this.persons.findByRegisterId(match.record.registerId)) ?? null, foreign: null };
  }

  /**
   * The person identified, as known already or created now (and a foreign person's attributes
   * kept), in the caller's transaction.
   */
  async record(identified: Identified, trx: Queryable): Promise<{ person: Person; firstTime: boolean }> {
    const { person, created } = identified.known ? { person: identified.known, created: false } : await this.persons.findOrCreate(identified.registerId, trx);
    if (identified.foreign && this.foreign) await this.foreign.store.save(person.id, identified.foreign, trx);
    return { person, firstTime: created };
  }
}

/** Whether a person was resolved through the eIDAS node (and so has no register record). */
export function isForeignPerson(person: Person): boolean {
  return person.registerId.startsWith('eidas:');
}
