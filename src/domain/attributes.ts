/**
 * The eIDAS natural-person attribute set as Brána knows it: one row per attribute, with its SAML name,
 * the OIDC claims that carry it (NIA's name first, then the standard OIDC name where one exists),
 * the standard scope that asks for it, and how a citizen reads it on the consent page.
 * Attribute names are the unit of SeP permission, consent and logging; claims are how they travel.
 */
const EIDAS = 'http://eidas.europa.eu/attributes/naturalperson/';
const STORK = 'http://www.stork.gov.eu/1.0/';
const CZ = 'http://schemas.eidentita.cz/moris/2016/identity/claims/';

export interface AttributeDefinition {
  readonly id: string;
  readonly samlName: string;
  readonly claims: readonly string[];
  /** The standard OIDC scope that requests this attribute, if any. */
  readonly scope?: 'profile' | 'email' | 'address' | 'phone';
  readonly label: { readonly cs: string; readonly en: string };
}

const DEFINITIONS = [
  { id: 'PersonIdentifier', samlName: `${EIDAS}PersonIdentifier`, claims: ['PersonIdentifier'], label: { cs: 'Identifikátor osoby pro tuto službu (pseudonym)', en: 'Person identifier for this service (pseudonym)' } },
  { id: 'CurrentGivenName', samlName: `${EIDAS}CurrentGivenName`, claims: ['CurrentGivenName', 'given_name'], scope: 'profile', label: { cs: 'Jméno', en: 'Given name' } },
  { id: 'CurrentFamilyName', samlName: `${EIDAS}CurrentFamilyName`, claims: ['CurrentFamilyName', 'family_name'], scope: 'profile', label: { cs: 'Příjmení', en: 'Family name' } },
  { id: 'DateOfBirth', samlName: `${EIDAS}DateOfBirth`, claims: ['DateOfBirth', 'birthdate'], scope: 'profile', label: { cs: 'Datum narození', en: 'Date of birth' } },
  { id: 'PlaceOfBirth', samlName: `${EIDAS}PlaceOfBirth`, claims: ['PlaceOfBirth'], scope: 'profile', label: { cs: 'Místo narození', en: 'Place of birth' } },
  { id: 'countryCodeOfBirth', samlName: `${STORK}countryCodeOfBirth`, claims: ['countryCodeOfBirth'], scope: 'profile', label: { cs: 'Stát narození', en: 'Country of birth' } },
  { id: 'CurrentAddress', samlName: `${EIDAS}CurrentAddress`, claims: ['CurrentAddress', 'address'], scope: 'address', label: { cs: 'Adresa pobytu', en: 'Current address' } },
  { id: 'tradresaid', samlName: `${CZ}tradresaid`, claims: ['tradresaid'], scope: 'address', label: { cs: 'Kód adresy v registru RÚIAN', en: 'Address code in the RÚIAN register' } },
  { id: 'eMail', samlName: `${STORK}eMail`, claims: ['eMail', 'email'], scope: 'email', label: { cs: 'E-mailová adresa', en: 'E-mail address' } },
  { id: 'phonenumber', samlName: `${CZ}phonenumber`, claims: ['phonenumber', 'phone_number'], scope: 'phone', label: { cs: 'Telefonní číslo', en: 'Phone number' } },
  { id: 'age', samlName: `${STORK}age`, claims: ['age'], label: { cs: 'Věk', en: 'Age' } },
  { id: 'isAgeOver', samlName: `${STORK}isAgeOver`, claims: ['isAgeOver'], label: { cs: 'Zda jste starší než požadovaný věk', en: 'Whether you are over the requested age' } },
  { id: 'idtype', samlName: `${CZ}idtype`, claims: ['idtype'], label: { cs: 'Druh dokladu totožnosti', en: 'Type of identity document' } },
  { id: 'idnumber', samlName: `${CZ}idnumber`, claims: ['idnumber'], label: { cs: 'Číslo dokladu totožnosti', en: 'Identity document number' } },
] as const satisfies readonly AttributeDefinition[];

export type AttributeId = (typeof DEFINITIONS)[number]['id'];

export const ATTRIBUTES: readonly AttributeDefinition[] = DEFINITIONS;
export const ATTRIBUTE_IDS: readonly AttributeId[] = DEFINITIONS.map((d) => d.id);

const byId = new Map<string, AttributeDefinition>(DEFINITIONS.map((d) => [d.id, d]));
const byClaim = new Map<string, AttributeDefinition>(DEFINITIONS.flatMap((d) => d.claims.map((c) => [c, d] as const)));

export function isAttributeId(value: unknown): value is AttributeId {
  return typeof value === 'string' && byId.has(value);
}

export function attribute(id: AttributeId): AttributeDefinition {
  const definition = byId.get(id);
  if (!definition) throw new Error(`unknown attribute ${id}`);
  return definition;
}

/** Attributes in the order a citizen reads them (given name before family name…), not alphabetically. */
export function inReadingOrder(ids: readonly AttributeId[]): AttributeId[] {
  return [...ids].sort((a, b) => ATTRIBUTE_IDS.indexOf(a) - ATTRIBUTE_IDS.indexOf(b));
}

/** The attribute a claim name carries, if it is one of ours. */
export function attributeOfClaim(claim: string): AttributeId | undefined {
  return byClaim.get(claim)?.id as AttributeId | undefined;
}

/** Attributes a SeP never needs consent or permission for: its own pseudonym. */
export const ALWAYS_RELEASED: readonly AttributeId[] = ['PersonIdentifier'];

/**
 * oidc-provider's `claims` configuration: which claims each scope stands for. The `openid` scope
 * carries the pseudonym and how the citizen logged in (LoA, means, time), so every ID token states them.
 */
export function scopeClaims(): Record<string, string[]> {
  const config: Record<string, string[]> = { openid: ['sub', 'PersonIdentifier', 'acr', 'amr', 'auth_time'] };
  for (const definition of DEFINITIONS) {
    if ('scope' in definition) (config[definition.scope] ??= []).push(...definition.claims);
  }
  return config;
}

export function allClaimNames(): string[] {
  return DEFINITIONS.flatMap((d) => [...d.claims]);
}

/**
 * The Czech claims namespace appears in the wild under three spellings; all three are accepted on
 * input and mapped to the one Brána uses.
 */
const CZECH_NAMESPACE_SPELLINGS = [
  'http://schemas.eidentity.cz/moris/2016/identity/claims/',
  'http://schemas.identitaobcana.cz/moris/2016/identity/claims/',
];

export function normaliseSamlAttributeName(name: string): string {
  for (const spelling of CZECH_NAMESPACE_SPELLINGS) {
    if (name.startsWith(spelling)) return CZ + name.slice(spelling.length);
  }
  return name;
}

const bySamlName = new Map<string, AttributeDefinition>(DEFINITIONS.map((d) => [d.samlName, d]));

export function attributeOfSamlName(name: string): AttributeId | undefined {
  return bySamlName.get(normaliseSamlAttributeName(name))?.id as AttributeId | undefined;
}
