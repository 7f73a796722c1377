import { ConfigurationError } from '../../config/configuration-error.ts';
import { pemFromCertificateBody, certificateNotAfter } from '../../keys/certificate.ts';
import { NS, XmlRejected, attributeOf, childElements, descendants, isElement, parseStrictXml, textOf } from './xml.ts';
import type { Element } from '@xmldom/xmldom';

const BINDING_REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
const BINDING_POST = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';

/** What Brána takes from an identity provider's SAML metadata. */
export interface IdpMetadata {
  entityId: string;
  singleSignOn: { redirect?: string; post?: string };
  /** Every certificate the IdP may sign with now: several during a rollover. */
  signingCertificates: string[];
  validUntil?: Date;
  cacheDurationMs?: number;
}

/** ISO 8601 durations as metadata uses them (PnYnMnDTnHnMnS), in milliseconds. */
export function parseDuration(value: string): number | undefined {
  const match = /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(value);
  if (!match || value === 'P' || value.endsWith('T')) return undefined;
  const [, y, mo, d, h, mi, s] = match.map((part) => (part === undefined ? 0 : Number(part)));
  return ((((y! * 365 + mo! * 30 + d!) * 24 + h!) * 60 + mi!) * 60 + s!) * 1000;
}

/** The one identity provider a metadata document describes (an aggregate must name it by entity id). */
export function pickEntity(root: Element, source: string, expectedEntityId?: string): Element {
  if (root.namespaceURI === NS.metadata && root.localName === 'EntityDescriptor') return root;
  if (root.namespaceURI === NS.metadata && root.localName === 'EntitiesDescriptor') {
    const entities = descendants(root, NS.metadata, 'EntityDescriptor').filter((entity) => childElements(entity, NS.metadata, 'IDPSSODescriptor').length > 0);
    const chosen = expectedEntityId ? entities.filter((e) => e.getAttribute('entityID') === expectedEntityId) : entities;
    if (chosen.length !== 1) {
      throw new ConfigurationError(source, 'EntitiesDescriptor', expectedEntityId ? `has no identity provider ${expectedEntityId}` : 'holds several identity providers: name one with saml.entityId');
    }
    return chosen[0]!;
  }
  throw new ConfigurationError(source, 'EntityDescriptor', 'the root element is not SAML 2.0 metadata');
}

export function parseIdpMetadata(xml: string, source: string, expectedEntityId?: string): IdpMetadata {
  let root: Element;
  try {
    root = parseStrictXml(xml).documentElement as Element;
  } catch (err) {
    throw new ConfigurationError(source, '(document)', err instanceof XmlRejected ? `not readable XML: ${err.message}` : String(err));
  }
  const entity = pickEntity(root, source, expectedEntityId);
  const entityId = entity.getAttribute('entityID') ?? '';
  if (!entityId) throw new ConfigurationError(source, 'EntityDescriptor/@entityID', 'is missing');
  if (expectedEntityId && entityId !== expectedEntityId) {
    throw new ConfigurationError(source, 'EntityDescriptor/@entityID', `is ${entityId}, expected ${expectedEntityId}`);
  }
  const [idp, ...more] = childElements(entity, NS.metadata, 'IDPSSODescriptor');
  if (!idp || more.length) throw new ConfigurationError(source, 'IDPSSODescriptor', 'must appear exactly once');
  if (!(idp.getAttribute('protocolSupportEnumeration') ?? '').split(/\s+/).includes(NS.protocol)) {
    throw new ConfigurationError(source, 'IDPSSODescriptor/@protocolSupportEnumeration', 'does not name SAML 2.0');
  }

  const singleSignOn: IdpMetadata['singleSignOn'] = {};
  for (const service of childElements(idp, NS.metadata, 'SingleSignOnService')) {
    const location = service.getAttribute('Location') ?? '';
    const binding = service.getAttribute('Binding');
    if (!/^https?:\/\//.test(location)) continue;
    if (binding === BINDING_REDIRECT) singleSignOn.redirect ??= location;
    if (binding === BINDING_POST) singleSignOn.post ??= location;
  }
  if (!singleSignOn.redirect && !singleSignOn.post) {
    throw new ConfigurationError(source, 'IDPSSODescriptor/SingleSignOnService', 'has no HTTP-Redirect or HTTP-POST endpoint');
  }

  const signingCertificates: string[] = [];
  for (const keyDescriptor of childElements(idp, NS.metadata, 'KeyDescriptor')) {
    const use = keyDescriptor.getAttribute('use');
    if (use && use !== 'signing') continue;
    for (const certificate of descendants(keyDescriptor, NS.dsig, 'X509Certificate')) {
      const pem = pemFromCertificateBody(textOf(certificate));
      try {
        if (certificateNotAfter(pem).getTime() < Date.now()) continue; // an expired key is retired
      } catch {
        throw new ConfigurationError(source, 'KeyDescriptor/X509Certificate', 'is not a valid certificate');
      }
      if (!signingCertificates.includes(pem)) signingCertificates.push(pem);
    }
  }
  if (!signingCertificates.length) throw new ConfigurationError(source, 'IDPSSODescriptor/KeyDescriptor', 'has no valid signing certificate');

  const validUntilText = attributeOf(entity, 'validUntil') ?? (isElement(entity.parentNode) ? attributeOf(entity.parentNode, 'validUntil') : undefined);
  const validUntil = validUntilText ? new Date(validUntilText) : undefined;
  if (validUntil && Number.isNaN(validUntil.getTime())) throw new ConfigurationError(source, 'EntityDescriptor/@validUntil', 'is not a date');
  const cacheDurationText = attributeOf(entity, 'cacheDuration');
  const cacheDurationMs = cacheDurationText ? parseDuration(cacheDurationText) : undefined;
  if (cacheDurationText && cacheDurationMs === undefined) throw new ConfigurationError(source, 'EntityDescriptor/@cacheDuration', 'is not an ISO 8601 duration');

  return { entityId, singleSignOn, signingCertificates, ...(validUntil ? { validUntil } : {}), ...(cacheDurationMs !== undefined ? { cacheDurationMs } : {}) };
}
