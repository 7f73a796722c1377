import { createHash, X509Certificate } from 'node:crypto';
import type { Element } from '@xmldom/xmldom';
import { ConfigurationError } from '../../config/configuration-error.ts';
import { pemFromCertificateBody } from '../../keys/certificate.ts';
import { parseDuration, pickEntity, type IdpMetadata } from './idp-metadata.ts';
import { parseSamlMetadata, verifyMetadataSignature } from './signed-metadata.ts';
import { NS, XmlRejected, attributeOf, childElements, descendants, isElement, parseStrictXml, textOf } from './xml.ts';

/** A certificate that expires within this is worth a warning: the IdP's rollover is due. */
export const CERTIFICATE_WARNING_MS = 30 * 86_400_000;

const BINDINGS: Readonly<Record<string, string>> = {
  'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect': 'HTTP-Redirect',
  'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST': 'HTTP-POST',
  'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact': 'HTTP-Artifact',
  'urn:oasis:names:tc:SAML:2.0:bindings:SOAP': 'SOAP',
  'urn:oasis:names:tc:SAML:2.0:bindings:PAOS': 'PAOS',
};
const PERSISTENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent';

/** One thing wrong with a document: an error makes the means unusable, a warning is due soon. */
export interface DiagnosedProblem {
  severity: 'error' | 'warning';
  field: string;
  problem: string;
}

export interface MetadataDiagnosis {
  /** What an operator checks against what the IdP's administrator says (non-secret). */
  facts: Record<string, unknown>;
  problems: DiagnosedProblem[];
  /** The metadata exactly as Brána's own parser reads it; null when it refuses the document. */
  metadata: IdpMetadata | null;
}

/** The problem part of a ConfigurationError (its message also names the source and field). */
function problemOf(err: ConfigurationError): DiagnosedProblem {
  return { severity: 'error', field: err.field, problem: err.message.slice(`${err.source}: ${err.field}: `.length) };
}

function fingerprint(certificate: X509Certificate): string {
  return createHash('sha256').update(certificate.raw).digest('hex');
}

/**
 * Everything wrong with an IdP's SAML metadata at once, where Brána's own reading stops at the first
 * problem: the signature against the trust anchors, validUntil, each signing certificate, the SSO
 * bindings; and what the IdP says it offers (NameID formats, WantAuthnRequestsSigned). Brána's
 * parser then reads the document as a node would, so that nothing it refuses is missed here.
 */
export function diagnoseSamlMetadata(text: string, options: { source: string; entityId?: string; trustAnchors: readonly string[]; now: number }): MetadataDiagnosis {
  const { source, now } = options;
  const problems: DiagnosedProblem[] = [];
  const facts: Record<string, unknown> = { sha256: createHash('sha256').update(text).digest('hex') };
  const error = (field: string, problem: string) => problems.push({ severity: 'error', field, problem });
  const warning = (field: string, problem: string) => problems.push({ severity: 'warning', field, problem });

  let readable = text;
  if (options.trustAnchors.length) {
    const anchors = options.trustAnchors.map((pem) => fingerprint(new X509Certificate(pem)));
    try {
      readable = verifyMetadataSignature(text, source, options.trustAnchors);
      facts.signature = { verified: true, trustAnchors: anchors };
    } catch (err) {
      if (!(err instanceof ConfigurationError)) throw err;
      problems.push(problemOf(err));
      // The rest is read from the unverified text only to report it; Brána itself reads none of it.
      facts.signature = { verified: false, trustAnchors: anchors, note: 'the facts below are read from unverified text' };
    }
  } else {
    facts.signature = { verified: false, note: 'no saml.metadataTrustAnchor: the metadata is trusted as the operator placed it' };
  }

  let entity: Element;
  try {
    entity = pickEntity(parseStrictXml(readable).documentElement as Element, source, options.entityId);
  } catch (err) {
    if (err instanceof XmlRejected) error('(document)', `not readable XML: ${err.message}`);
    else if (err instanceof ConfigurationError) problems.push(problemOf(err));
    else throw err;
    return { facts, problems, metadata: null };
  }
  facts.entityId = entity.getAttribute('entityID') ?? null;

  const validUntilText = attributeOf(entity, 'validUntil') ?? (isElement(entity.parentNode) ? attributeOf(entity.parentNode, 'validUntil') : undefined);
  facts.validUntil = validUntilText ?? null;
  const validUntil = validUntilText ? Date.parse(validUntilText) : Number.NaN;
  if (validUntilText && !Number.isNaN(validUntil) && validUntil <= now) {
    error('EntityDescriptor/@validUntil', `expired at ${new Date(validUntil).toISOString()}: Brána does not use expired metadata (the means is stopped); the IdP must publish a fresh document`);
  }
  const cacheDuration = attributeOf(entity, 'cacheDuration');
  facts.cacheDuration = cacheDuration ? { value: cacheDuration, ms: parseDuration(cacheDuration) ?? null } : null;

  const idp = childElements(entity, NS.metadata, 'IDPSSODescriptor')[0];
  if (!idp) {
    error('IDPSSODescriptor', 'is missing: this is not an identity provider');
    return { facts, problems, metadata: null };
  }

  const certificates: Array<Record<string, unknown>> = [];
  for (const keyDescriptor of childElements(idp, NS.metadata, 'KeyDescriptor')) {
    const use = keyDescriptor.getAttribute('use') || 'signing and encryption';
    if (use === 'encryption') continue;
    for (const element of descendants(keyDescriptor, NS.dsig, 'X509Certificate')) {
      let certificate: X509Certificate;
      try {
        certificate = new X509Certificate(pemFromCertificateBody(textOf(element)));
      } catch {
        error('KeyDescriptor/X509Certificate', 'is not a valid certificate');
        continue;
      }
      const notAfter = Date.parse(certificate.validTo);
      const sha256 = fingerprint(certificate);
      certificates.push({ use, subject: certificate.subject.replace(/\n/g, ', '), sha256, notBefore: new Date(certificate.validFrom).toISOString(), notAfter: new Date(notAfter).toISOString() });
      const named = `certificate ${certificate.subject.replace(/\n/g, ', ')} (SHA-256 ${sha256.slice(0, 16)}…)`;
      if (notAfter <= now) error('KeyDescriptor/X509Certificate', `${named} expired at ${new Date(notAfter).toISOString()}: Brána does not trust it`);
      else if (notAfter - now <= CERTIFICATE_WARNING_MS) warning('KeyDescriptor/X509Certificate', `${named} expires at ${new Date(notAfter).toISOString()}, within 30 days: ask for the IdP's next certificate in its metadata`);
    }
  }
  facts.signingCertificates = certificates;

  const services = childElements(idp, NS.metadata, 'SingleSignOnService').map((service) => {
    const binding = service.getAttribute('Binding') ?? '';
    return { binding: BINDINGS[binding] ?? binding, location: service.getAttribute('Location') ?? '' };
  });
  facts.singleSignOnServices = services;
  const usable = services.filter((service) => ['HTTP-Redirect', 'HTTP-POST'].includes(service.binding) && /^https?:\/\//.test(service.location));
  if (!usable.length) {
    error('IDPSSODescriptor/SingleSignOnService', `has no HTTP-Redirect or HTTP-POST endpoint, which Brána needs (offered: ${services.map((service) => service.binding).join(', ') || 'none'})`);
  }
  for (const service of usable) if (service.location.startsWith('http://')) warning('IDPSSODescriptor/SingleSignOnService', `${service.binding} ${service.location} is not https`);

  const nameIdFormats = childElements(idp, NS.metadata, 'NameIDFormat').map((element) => textOf(element).trim());
  facts.nameIdFormats = nameIdFormats;
  if (nameIdFormats.length && !nameIdFormats.includes(PERSISTENT)) {
    warning('IDPSSODescriptor/NameIDFormat', `does not offer ${PERSISTENT}, which Brána asks for: the IdP may answer InvalidNameIDPolicy`);
  }
  facts.wantAuthnRequestsSigned = idp.getAttribute('WantAuthnRequestsSigned') === 'true';

  // The verdict of the parser every node uses, for whatever the reading above does not check.
  let metadata: IdpMetadata | null = null;
  try {
    metadata = parseSamlMetadata(text, { source, ...(options.entityId ? { entityId: options.entityId } : {}), trustAnchors: options.trustAnchors }).value;
  } catch (err) {
    if (!(err instanceof ConfigurationError)) throw err;
    const found = problemOf(err);
    if (!problems.some((problem) => problem.severity === 'error' && problem.field === found.field)) problems.push(found);
  }
  return { facts, problems, metadata };
}
