import type { Element } from '@xmldom/xmldom';
import { pemFromCertificateBody } from '../keys/certificate.ts';
import { NS, childElements, descendants, parseStrictXml, textOf } from '../upstream/saml/xml.ts';

/** What an identity provider needs to know of a service provider: read from its SAML metadata. */
export interface ServiceProviderInfo {
  entityId: string;
  acsUrl: string;
  signingCertificatePem: string;
  encryptionCertificatePem: string | null;
}

export function readServiceProviderMetadata(xml: string): ServiceProviderInfo {
  const entity = parseStrictXml(xml).documentElement as Element;
  const sp = childElements(entity, NS.metadata, 'SPSSODescriptor')[0];
  if (!sp) throw new Error('no SPSSODescriptor in service provider metadata');
  const acs = childElements(sp, NS.metadata, 'AssertionConsumerService').find(
    (service) => service.getAttribute('Binding') === 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST',
  );
  if (!acs) throw new Error('no HTTP-POST AssertionConsumerService in service provider metadata');
  const certificateFor = (use: string) => {
    const descriptor = childElements(sp, NS.metadata, 'KeyDescriptor').find((k) => k.getAttribute('use') === use);
    const certificate = descriptor ? descendants(descriptor, NS.dsig, 'X509Certificate')[0] : undefined;
    return certificate ? pemFromCertificateBody(textOf(certificate)) : null;
  };
  const signing = certificateFor('signing');
  if (!signing) throw new Error('no signing certificate in service provider metadata');
  return {
    entityId: entity.getAttribute('entityID') ?? '',
    acsUrl: acs.getAttribute('Location') ?? '',
    signingCertificatePem: signing,
    encryptionCertificatePem: certificateFor('encryption'),
  };
}
