/**
 * The population register (ROB) as identity resolution sees it. The embedded register serves the
 * development test citizens; a real register replaces it behind this interface.
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
