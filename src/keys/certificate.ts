import { X509Certificate, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

export interface KeyPairWithCertificate {
  /** PKCS#8 PEM */
  privateKeyPem: string;
  /** X.509 PEM */
  certificatePem: string;
}

/**
 * A fresh RSA-2048 key (generated natively) and a self-signed certificate for it (built by
 * node-forge, as Node's crypto cannot issue certificates). SAML trusts keys, not CAs.
 */
export function generateSelfSignedCertificate(commonName: string, validDays = 3650): KeyPairWithCertificate {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privateKeyPem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  return { privateKeyPem, certificatePem: selfSignedCertificateFor(privateKeyPem, commonName, validDays) };
}

/** A self-signed certificate for an existing RSA key (PKCS#8 PEM). */
export function selfSignedCertificateFor(privateKeyPem: string, commonName: string, validDays = 3650): string {
  const publicKey = createPublicKey(privateKeyPem);
  const certificate = forge.pki.createCertificate();
  certificate.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ format: 'pem', type: 'spki' }).toString());
  certificate.serialNumber = `01${randomBytes(12).toString('hex')}`;
  certificate.validity.notBefore = new Date(Date.now() - 60_000);
  certificate.validity.notAfter = new Date(Date.now() + validDays * 86_400_000);
  const name = [{ name: 'commonName', value: commonName.replace(/[,=+<>#;\\"]/g, ' ') }];
  certificate.setSubject(name);
  certificate.setIssuer(name);
  certificate.setExtensions([{ name: 'basicConstraints', cA: false }]);
  certificate.sign(forge.pki.privateKeyFromPem(privateKeyPem), forge.md.sha256.create());
  return forge.pki.certificateToPem(certificate);
}

/** The base64 body of a PEM certificate, as SAML metadata carries it in ds:X509Certificate. */
export function certificateBody(pem: string): string {
  return pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
}

export function pemFromCertificateBody(body: string): string {
  const clean = body.replace(/\s+/g, '');
  const lines = clean.match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

/** Parses a certificate, throwing if it is not one; returns its expiry. */
export function certificateNotAfter(pem: string): Date {
  return new Date(new X509Certificate(pem).validTo);
}
