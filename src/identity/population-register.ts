/**
 * The population register (ROB) as identity resolution sees it. Two adapters: the embedded register
 * (a JSON file: the development test citizens, or a pilot's own data) and the HTTP register (a
 * register service, contract in docs/POPULATION-REGISTER.md).
 */
export interface RegisterRecord {
  /** The register's own stable identifier for the person (an agenda identifier, not a birth number). */
  registerId: string;
  givenName: string;
  familyName: string;
  dateOfBirth: string;
  placeOfBirth: string;
  countryCodeOfBirth: string;
  address: PostalAddress;
  email: string | null;
  phone: string | null;
  idDocument: { type: string; number: string } | null;
}

export interface PostalAddress {
  street: string;
  houseNumber: string;
  town: string;
  townPart: string;
  postCode: string;
  country: string;
  /** RÚIAN address point code. */
  ruianCode: string;
}

/** What an identity means asserted about a person, as far as matching needs it. */
export interface IdentityQuery {
  givenName: string;
  familyName: string;
  dateOfBirth: string;
  placeOfBirth?: string;
}

export type RegisterMatch =
  | { kind: 'found'; record: RegisterRecord }
  | { kind: 'not_found' }
  | { kind: 'ambiguous' };

export interface PopulationRegister {
  match(query: IdentityQuery): Promise<RegisterMatch>;
  findById(registerId: string): Promise<RegisterRecord | undefined>;
}

/**
 * The register could not answer: unreachable, too slow, an error status, or an answer outside the
 * contract. No one can be resolved meanwhile; the citizen is told to try again in a few minutes.
 * The message names the cause for operators, never a person's data or the register's token.
 */
export class RegisterUnavailable extends Error {
  readonly reason: 'timeout' | 'unreachable' | 'status' | 'malformed';

  constructor(reason: RegisterUnavailable['reason'], detail: string) {
    super(`population register unavailable: ${detail}`);
    this.name = 'RegisterUnavailable';
    this.reason = reason;
  }
}
