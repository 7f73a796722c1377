import fs from 'node:fs';
import path from 'node:path';
import { buildSamlResponse, type ResponseSpec, type SigningIdentity } from '../../src/devidp/saml-response-builder.ts';
import { readServiceProviderMetadata } from '../../src/devidp/sp-metadata-reader.ts';
import { attribute } from '../../src/domain/attributes.ts';
import { generateSelfSignedCertificate } from '../../src/keys/certificate.ts';
import type { TestBroker } from './test-broker.ts';

/** The real signing identity of a means' development IdP (its key from keys/dev-idp). */
export function developmentIdp(brana: TestBroker, means: string): SigningIdentity {
  const dir = path.join(brana.keysDir, 'dev-idp');
  return {
    entityId: brana.broker.registry.saml(means)!.development!.entityId,
    privateKeyPem: fs.readFileSync(path.join(dir, `${means}.key.pem`), 'utf8'),
    certificatePem: fs.readFileSync(path.join(dir, `${means}.crt.pem`), 'utf8'),
  };
}

let attackerKey: SigningIdentity | undefined;
/** A key no metadata names. */
export function attacker(entityId: string): SigningIdentity {
  attackerKey ??= { entityId: '', ...generateSelfSignedCertificate('attacker') };
  return { ...attackerKey, entityId };
}

/** What Brána's SP for a means looks like to an IdP: entity id, ACS, encryption certificate. */
export function serviceProvider(brana: TestBroker, means: string): ResponseSpec['sp'] {
  const sp = readServiceProviderMetadata(brana.broker.registry.saml(means)!.adapter.serviceProviderMetadata());
  return { entityId: sp.entityId, acsUrl: sp.acsUrl, encryptionCertificatePem: sp.encryptionCertificatePem };
}

export const JAN_NOVAK = [
  { name: attribute('CurrentGivenName').samlName, values: ['Jan'] },
  { name: attribute('CurrentFamilyName').samlName, values: ['Novák'] },
  { name: attribute('DateOfBirth').samlName, values: ['1980-04-12'] },
  { name: attribute('PlaceOfBirth').samlName, values: ['Praha'] },
];

/** A response as the means' IdP would send it for Jan Novák, with `change` applied; base64 for the ACS form. */
export async function forgedResponse(brana: TestBroker, means: string, inResponseTo: string, change: Partial<ResponseSpec> = {}): Promise<string> {
  const xml = await buildSamlResponse({
    idp: developmentIdp(brana, means),
    sp: serviceProvider(brana, means),
    inResponseTo,
    subject: 'forged-subject',
    loa: brana.broker.registry.get(means)!.means.loa,
    attributes: JAN_NOVAK,
    ...change,
  });
  return Buffer.from(xml, 'utf8').toString('base64');
}
