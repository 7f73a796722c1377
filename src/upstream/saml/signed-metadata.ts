import { createHash, X509Certificate } from 'node:crypto';
import type { Element } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';
import { ConfigurationError } from '../../config/configuration-error.ts';
import { UpstreamRejected } from '../contract.ts';
import type { ParsedMetadata } from '../metadata/metadata-source.ts';
import { parseIdpMetadata, type IdpMetadata } from './idp-metadata.ts';
import { checkSignatures, checkUniqueIds } from './response-guard.ts';
import { NS, XmlRejected, childElements, parseStrictXml } from './xml.ts';

/**
 * Checks the enveloped signature on a metadata document against the configured trust anchors and
 * returns the XML that signature covers — only that is read afterwards, never the unsigned text
 * around it. The signature must sit on the root element and cover all of it.
 */
export function verifyMetadataSignature(xml: string, source: string, trustAnchors: readonly string[]): string {
  let root: Element;
  try {
    const document = parseStrictXml(xml);
    root = document.documentElement as Element;
    checkSignatures(document);
    checkUniqueIds(document);
  } catch (err) {
    if (err instanceof XmlRejected) throw new ConfigurationError(source, '(document)', `not readable XML: ${err.message}`);
    if (err instanceof UpstreamRejected) throw new ConfigurationError(source, 'Signature', `is refused: ${err.message}`);
    throw err;
  }
  const signatures = childElements(root, NS.dsig, 'Signature');
  if (signatures.length === 0) throw new ConfigurationError(source, 'Signature', 'is missing: the metadata must be signed by the configured trust anchor');
  if (signatures.length > 1) throw new ConfigurationError(source, 'Signature', 'appears more than once on the root element');
  const rootId = root.getAttribute('ID');
  for (const anchor of trustAnchors) {
    const signature = new SignedXml({ publicCert: anchor, getCertFromKeyInfo: () => null });
    signature.loadSignature(signatures[0]! as unknown as Node);
    const references = signature.getReferences();
    const uri = references[0]?.uri;
    if (references.length !== 1 || !(uri === '' || (rootId && uri === `#${rootId}`))) {
      throw new ConfigurationError(source, 'Signature', 'must have one reference to the whole document');
    }
    let valid = false;
    try {
      valid = signature.checkSignature(xml);
    } catch {
      valid = false;
    }
    const signed = valid ? signature.getSignedReferences() : [];
    if (signed.length === 1) return signed[0]!;
  }
  throw new ConfigurationError(source, 'Signature', 'is not valid for the configured trust anchor');
}

function fingerprint(pem: string): string {
  return createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
}

/** An identity provider's SAML metadata: signature (when a trust anchor is configured), then content. */
export function parseSamlMetadata(text: string, options: { source: string; entityId?: string; trustAnchors: readonly string[] }): ParsedMetadata<IdpMetadata> {
  const readable = options.trustAnchors.length ? verifyMetadataSignature(text, options.source, options.trustAnchors) : text;
  const idp = parseIdpMetadata(readable, options.source, options.entityId);
  return {
    value: idp,
    ...(idp.validUntil ? { validUntil: idp.validUntil } : {}),
    ...(idp.cacheDurationMs !== undefined ? { cacheDurationMs: idp.cacheDurationMs } : {}),
    summary: {
      entityId: idp.entityId,
      signed: options.trustAnchors.length > 0,
      signingCertificates: idp.signingCertificates.map((pem) => ({ sha256: fingerprint(pem), notAfter: new Date(new X509Certificate(pem).validTo).toISOString() })),
    },
  };
}
