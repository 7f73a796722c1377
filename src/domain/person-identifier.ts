/**
 * The eIDAS PersonIdentifier: `<issuing country>/<destination country>/<identifier>` (eIDAS SAML
 * Attribute Profile). NIA gives its SePs `CZ/CZ/<pseudonym>`; a foreign person arriving through the
 * eIDAS node carries e.g. `DE/CZ/<identifier>`, unique within the issuing country and meant for us.
 */
export interface PersonIdentifier {
  issuingCountry: string;
  destinationCountry: string;
  identifier: string;
}

const FORMAT = /^([A-Z]{2})\/([A-Z]{2})\/([\x21-\x7e]{1,256})$/;

export function parsePersonIdentifier(value: string): PersonIdentifier | undefined {
  const match = FORMAT.exec(value.trim());
  if (!match) return undefined;
  return { issuingCountry: match[1]!, destinationCountry: match[2]!, identifier: match[3]! };
}

export function formatPersonIdentifier(value: PersonIdentifier): string {
  return `${value.issuingCountry}/${value.destinationCountry}/${value.identifier}`;
}
