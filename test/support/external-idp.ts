import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateRawSync } from 'node:zlib';
import { SignedXml } from 'xml-crypto';
import { buildSamlResponse, type ResponseSpec, type SigningIdentity } from '../../src/devidp/saml-response-builder.ts';
import { readServiceProviderMetadata } from '../../src/devidp/sp-metadata-reader.ts';
import { escapeXml } from '../../src/domain/xml-escape.ts';
import { certificateBody, generateSelfSignedCertificate, type KeyPairWithCertificate } from '../../src/keys/certificate.ts';
import { JAN_NOVAK } from './saml-forge.ts';
import type { TestBroker } from './test-broker.ts';

/**
 * A SAML identity provider outside Brána, as an operator would point a means at one: its metadata
 * is a file the test writes (and rewrites, for rollovers), its keys are the test's. Nothing of the
 * embedded development IdPs is used.
 */

const PROVIDERS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../providers');

let keyPool: KeyPairWithCertificate[] = [];
/** A fresh key and certificate (generated once per run and reused: RSA generation is slow). */
export function idpKey(index: number): KeyPairWithCertificate {
  while (keyPool.length <= index) keyPool = [...keyPool, generateSelfSignedCertificate(`test idp key ${keyPool.length}`)];
  return keyPool[index]!;
}

export interface MetadataOptions {
  entityId: string;
  ssoUrl: string;
  certificates: string[];
  validUntil?: Date;
  cacheDuration?: string;
  id?: string;
  /** The binding of its single sign-on service (HTTP-Redirect unless said). */
  ssoBinding?: 'HTTP-Redirect' | 'HTTP-POST';
}

export function idpMetadataXml(options: MetadataOptions): string {
  const keys = options.certificates
    .map((pem) => `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${certificateBody(pem)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`)
    .join('');
  return (
    `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" ID="${options.id ?? '_metadata'}" entityID="${escapeXml(options.entityId)}"` +
    (options.validUntil ? ` validUntil="${options.validUntil.toISOString()}"` : '') +
    (options.cacheDuration ? ` cacheDuration="${options.cacheDuration}"` : '') +
    `><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">${keys}` +
    `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:${options.ssoBinding ?? 'HTTP-Redirect'}" Location="${escapeXml(options.ssoUrl)}"/>` +
    `</md:IDPSSODescriptor></md:EntityDescriptor>`
  );
}

/** Signs metadata as a federation operator does: an enveloped RSA-SHA256 signature on the element with this ID (the root). */
export function signMetadata(xml: string, signer: KeyPairWithCertificate, id = '_metadata'): string {
  const signature = new SignedXml({
    privateKey: signer.privateKeyPem,
    publicCert: signer.certificatePem,
    signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  });
  signature.addReference({
    xpath: `//*[@ID='${id}']`,
    digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256',
    transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#'],
  });
  signature.computeSignature(xml, { prefix: 'ds', location: { reference: `//*[@ID='${id}']/*[1]`, action: 'before' } });
  return signature.getSignedXml();
}

/**
 * A providers folder for a test: the repository's means (by id, each with its logo) plus extra
 * means files written here. Returns the folder.
 */
export function providersFolder(options: { keep: string[]; extra: Record<string, Record<string, unknown>>; files?: Record<string, string> }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-providers-'));
  fs.mkdirSync(path.join(dir, 'logos'));
  for (const id of options.keep) {
    fs.copyFileSync(path.join(PROVIDERS, `${id}.json`), path.join(dir, `${id}.json`));
    fs.copyFileSync(path.join(PROVIDERS, 'logos', `${id}.svg`), path.join(dir, 'logos', `${id}.svg`));
  }
  for (const [name, content] of Object.entries(options.files ?? {})) fs.writeFileSync(path.join(dir, name), content);
  for (const [id, document] of Object.entries(options.extra)) fs.writeFileSync(path.join(dir, `${id}.json`), JSON.stringify({ id, ...document }));
  return dir;
}

/** A means file for a SAML means whose metadata is a file in the providers folder. */
export function samlMeansFile(overrides: Record<string, unknown> = {}, saml: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: { cs: 'Externí poskytovatel', en: 'External provider' },
    administrator: { cs: 'Správce', en: 'Administrator' },
    loa: 'substantial',
    protocol: 'saml',
    saml: { requestedAttributes: ['CurrentGivenName', 'CurrentFamilyName', 'DateOfBirth', 'PlaceOfBirth'], ...saml },
    ...overrides,
  };
}

/** The id of the AuthnRequest Brána sent in an HTTP-Redirect to an identity provider. */
export function authnRequestOf(location: string): { id: string; xml: string } {
  const encoded = new URL(location).searchParams.get('SAMLRequest');
  if (!encoded) throw new Error(`no SAMLRequest in ${location}`);
  const xml = inflateRawSync(Buffer.from(encoded, 'base64')).toString('utf8');
  const id = /\bID="([^"]+)"/.exec(xml)?.[1];
  if (!id) throw new Error('no ID in the AuthnRequest');
  return { id, xml };
}

/** A signed, encrypted answer from an external IdP for Jan Novák (or as changed), base64 for the ACS form. */
export async function externalResponse(brana: TestBroker, means: string, idp: SigningIdentity, inResponseTo: string, change: Partial<ResponseSpec> = {}): Promise<string> {
  const sp = readServiceProviderMetadata(brana.broker.registry.saml(means)!.adapter.serviceProviderMetadata());
  const xml = await buildSamlResponse({
    idp,
    sp: { entityId: sp.entityId, acsUrl: sp.acsUrl, encryptionCertificatePem: sp.encryptionCertificatePem },
    inResponseTo,
    subject: 'external-subject-jan',
    loa: 'substantial',
    attributes: JAN_NOVAK,
    ...change,
  });
  return Buffer.from(xml, 'utf8').toString('base64');
}
