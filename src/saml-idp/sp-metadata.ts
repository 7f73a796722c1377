import { X509Certificate } from 'node:crypto';
import type { Element } from '@xmldom/xmldom';
import { ConfigurationError } from '../config/configuration-error.ts';
import { pemFromCertificateBody } from '../keys/certificate.ts';
import { BINDING_POST, BINDING_REDIRECT, type AssertionConsumerService, type SamlServiceProvider } from '../sep/saml-service-provider.ts';
import { NS, XmlRejected, attributeOf, childElements, descendants, parseStrictXml, textOf } from '../upstream/saml/xml.ts';

/** Data encryptions Brána encrypts Assertions with, in the order it prefers them. */
export const ASSERTION_ENCRYPTIONS = [
  'http://www.w3.org/2009/xmlenc11#aes256-gcm',
  'http://www.w3.org/2009/xmlenc11#aes128-gcm',
  'http://www.w3.org/2001/04/xmlenc#aes256-cbc',
  'http://www.w3.org/2001/04/xmlenc#aes128-cbc',
] as const;

/** The largest SP metadata document Brána reads. */
export const MAX_SP_METADATA_LENGTH = 512 * 1024;

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** An ACS or SLO URL: https (plain http on loopback in development), no fragment, no user information. */
function endpointProblem(value: string, allowLoopbackHttp: boolean): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'is not an absolute URL';
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && allowLoopbackHttp && LOOPBACK_HOSTS.has(url.hostname))) return 'must use https';
  if (url.hash || value.includes('#')) return 'must not contain a fragment';
  if (url.username || url.password) return 'must not contain user information';
  return null;
}

function certificatesOf(sp: Element, use: 'signing' | 'encryption', source: string): string[] {
  const found: string[] = [];
  for (const descriptor of childElements(sp, NS.metadata, 'KeyDescriptor')) {
    const declared = descriptor.getAttribute('use');
    if (declared && declared !== use) continue;
    for (const element of descendants(descriptor, NS.dsig, 'X509Certificate')) {
      const pem = pemFromCertificateBody(textOf(element));
      let certificate: X509Certificate;
      try {
        certificate = new X509Certificate(pem);
      } catch {
        throw new ConfigurationError(source, `SPSSODescriptor/KeyDescriptor[@use=${use}]/X509Certificate`, 'is not a valid certificate');
      }
      if (certificate.publicKey.asymmetricKeyType !== 'rsa') throw new ConfigurationError(source, `SPSSODescriptor/KeyDescriptor[@use=${use}]`, 'must hold an RSA key');
      if (new Date(certificate.validTo).getTime() < Date.now()) continue; // an expired key is retired
      if (!found.includes(pem)) found.push(pem);
    }
  }
  return found;
}

/**
 * A SAML SeP's SP metadata, read strictly (no DOCTYPE, size bounded) into what Brána keeps: its
 * entity id, its AssertionConsumerServices (HTTP-POST only: the Response is posted), the certificates
 * its AuthnRequests are signed with, the one Brána encrypts assertions to, and its SLO endpoint.
 * A problem names the source and the field.
 */
export function parseServiceProviderMetadata(xml: string, source: string, options: { allowLoopbackHttp: boolean }): SamlServiceProvider {
  if (xml.length > MAX_SP_METADATA_LENGTH) throw new ConfigurationError(source, '(document)', `is larger than ${MAX_SP_METADATA_LENGTH} bytes`);
  let root: Element;
  try {
    root = parseStrictXml(xml).documentElement as Element;
  } catch (err) {
    throw new ConfigurationError(source, '(document)', err instanceof XmlRejected ? `not readable XML: ${err.message}` : String(err));
  }
  if (root.namespaceURI !== NS.metadata || root.localName !== 'EntityDescriptor') throw new ConfigurationError(source, 'EntityDescriptor', 'the root element is not one SAML 2.0 EntityDescriptor');
  const entityId = root.getAttribute('entityID') ?? '';
  if (!entityId || entityId.length > 1024) throw new ConfigurationError(source, 'EntityDescriptor/@entityID', 'is missing or longer than 1024 characters');
  const [sp, ...more] = childElements(root, NS.metadata, 'SPSSODescriptor');
  if (!sp || more.length) throw new ConfigurationError(source, 'SPSSODescriptor', 'must appear exactly once');
  if (!(sp.getAttribute('protocolSupportEnumeration') ?? '').split(/\s+/).includes(NS.protocol)) {
    throw new ConfigurationError(source, 'SPSSODescriptor/@protocolSupportEnumeration', 'does not name SAML 2.0');
  }

  const assertionConsumerServices: AssertionConsumerService[] = [];
  for (const [position, service] of childElements(sp, NS.metadata, 'AssertionConsumerService').entries()) {
    if (service.getAttribute('Binding') !== BINDING_POST) continue; // Brána posts its Responses
    const url = service.getAttribute('Location') ?? '';
    const problem = endpointProblem(url, options.allowLoopbackHttp);
    if (problem) throw new ConfigurationError(source, `SPSSODescriptor/AssertionConsumerService[${position}]/@Location`, problem);
    const indexText = attributeOf(service, 'index') ?? String(position);
    if (!/^\d{1,5}$/.test(indexText)) throw new ConfigurationError(source, `SPSSODescriptor/AssertionConsumerService[${position}]/@index`, 'is not an unsigned number');
    const index = Number(indexText);
    if (assertionConsumerServices.some((other) => other.index === index)) throw new ConfigurationError(source, `SPSSODescriptor/AssertionConsumerService[${position}]/@index`, `repeats index ${index}`);
    assertionConsumerServices.push({ index, url, binding: BINDING_POST, isDefault: service.getAttribute('isDefault') === 'true' });
  }
  if (!assertionConsumerServices.length) throw new ConfigurationError(source, 'SPSSODescriptor/AssertionConsumerService', 'has no HTTP-POST endpoint');

  const signingCertificates = certificatesOf(sp, 'signing', source);
  if (!signingCertificates.length) throw new ConfigurationError(source, 'SPSSODescriptor/KeyDescriptor[@use=signing]', 'has no valid signing certificate: Brána accepts signed AuthnRequests only');
  if (sp.getAttribute('AuthnRequestsSigned') === 'false') throw new ConfigurationError(source, 'SPSSODescriptor/@AuthnRequestsSigned', 'is false: Brána accepts signed AuthnRequests only');
  // An unqualified KeyDescriptor serves both uses; one marked for encryption wins.
  const explicitEncryption = childElements(sp, NS.metadata, 'KeyDescriptor').some((descriptor) => descriptor.getAttribute('use') === 'encryption');
  const encryption = explicitEncryption ? certificatesOf(sp, 'encryption', source).filter((pem) => childElements(sp, NS.metadata, 'KeyDescriptor').some((d) => d.getAttribute('use') === 'encryption' && descendants(d, NS.dsig, 'X509Certificate').some((c) => pemFromCertificateBody(textOf(c)) === pem))) : certificatesOf(sp, 'encryption', source);
  const encryptionCertificate = encryption[0] ?? null;
  if (!encryptionCertificate) throw new ConfigurationError(source, 'SPSSODescriptor/KeyDescriptor[@use=encryption]', 'has no valid encryption certificate: Brána encrypts every assertion');

  // The SP's own list of what it decrypts (md:EncryptionMethod under its encryption key), if it gives one.
  const listed = childElements(sp, NS.metadata, 'KeyDescriptor')
    .filter((descriptor) => (descriptor.getAttribute('use') ?? 'encryption') === 'encryption')
    .flatMap((descriptor) => childElements(descriptor, NS.metadata, 'EncryptionMethod').map((method) => method.getAttribute('Algorithm') ?? ''))
    .filter((algorithm) => !/rsa-oaep|rsa-1_5/.test(algorithm));
  const assertionEncryption = listed.length ? ASSERTION_ENCRYPTIONS.find((algorithm) => listed.includes(algorithm)) : ASSERTION_ENCRYPTIONS[0];
  if (!assertionEncryption) throw new ConfigurationError(source, 'SPSSODescriptor/KeyDescriptor/EncryptionMethod', `names no data encryption Brána uses (${ASSERTION_ENCRYPTIONS.join(', ')})`);

  let singleLogout: SamlServiceProvider['singleLogout'] = null;
  for (const service of childElements(sp, NS.metadata, 'SingleLogoutService')) {
    const binding = service.getAttribute('Binding') ?? '';
    if (binding !== BINDING_REDIRECT && binding !== BINDING_POST) continue;
    const url = service.getAttribute('Location') ?? '';
    const problem = endpointProblem(url, options.allowLoopbackHttp);
    if (problem) throw new ConfigurationError(source, 'SPSSODescriptor/SingleLogoutService/@Location', problem);
    if (!singleLogout || binding === BINDING_REDIRECT) singleLogout = { url, binding };
  }

  return {
    entityId,
    assertionConsumerServices,
    signingCertificates,
    encryptionCertificate,
    assertionEncryption,
    singleLogout,
    wantAssertionsSigned: sp.getAttribute('WantAssertionsSigned') === 'true',
  };
}

/** The ACS a Response goes to when the request names none: the default, else the lowest index. */
export function defaultAssertionConsumerService(sp: SamlServiceProvider): AssertionConsumerService {
  const sorted = [...sp.assertionConsumerServices].sort((a, b) => a.index - b.index);
  return sorted.find((service) => service.isDefault) ?? sorted[0]!;
}
