import { escapeXml } from '../domain/xml-escape.ts';
import type { PostalAddress } from './population-register.ts';

const EIDAS_NATURAL = 'http://eidas.europa.eu/attributes/naturalperson';

/** eIDAS CurrentAddressType content (the address elements), base64-encoded as the attribute carries it. */
export function currentAddressBase64(address: PostalAddress): string {
  const element = (name: string, value: string) => `<eidas-natural:${name} xmlns:eidas-natural="${EIDAS_NATURAL}">${escapeXml(value)}</eidas-natural:${name}>`;
  const xml =
    element('LocatorDesignator', address.houseNumber) +
    element('Thoroughfare', address.street) +
    element('PostName', address.town) +
    element('PostCode', address.postCode) +
    element('CvaddressArea', address.townPart);
  return Buffer.from(xml, 'utf8').toString('base64');
}

/** The RÚIAN address code as NIA's tradresaid attribute carries it: base64 of a small XML document. */
export function ruianAddressBase64(address: PostalAddress): string {
  return Buffer.from(`<TrAdresaId>${escapeXml(address.ruianCode)}</TrAdresaId>`, 'utf8').toString('base64');
}

/** The OIDC standard `address` claim. */
export function oidcAddress(address: PostalAddress): Record<string, string> {
  const streetAddress = `${address.street} ${address.houseNumber}`;
  return {
    formatted: `${streetAddress}\n${address.postCode} ${address.town}\n${address.country}`,
    street_address: streetAddress,
    locality: address.town,
    postal_code: address.postCode,
    country: address.country,
  };
}
