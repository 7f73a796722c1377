import fs from 'node:fs';
import path from 'node:path';
import { X509Certificate, createPrivateKey, generateKeyPairSync, randomBytes, type JsonWebKey, type KeyObject } from 'node:crypto';
import * as jose from 'jose';
import { ConfigurationError } from '../config/configuration-error.ts';
import { selfSignedCertificateFor, type KeyPairWithCertificate } from './certificate.ts';
import { SIGNING_KEYS_FILE, SigningKeyRing } from './signing-keys.ts';
import { logger } from '../log/logger.ts';

/**
 * Brána's key material, generated into `keys/` on first start (that folder is git-ignored) and read
 * from there on every later start, so that every node of a cluster given the same folder agrees.
 */
export interface BrokerKeys {
  /** The ID-token signing keys and their rotation schedule (see signing-keys.ts); re-read while running. */
  signingKeysFile: string;
  /** Keys of the cookies oidc-provider signs. */
  cookieKeys: string[];
  /** The secret under which pseudonyms are computed; losing it changes every citizen's pseudonym. */
  pseudonymSecret: Buffer;
  /** Our SAML SP key and certificate for signing AuthnRequests. */
  samlSigning: KeyPairWithCertificate;
  /** Our SAML SP key and certificate that identity means encrypt assertions to. */
  samlEncryption: KeyPairWithCertificate & { privateKey: KeyObject };
}

/** The keys a SAML adapter needs: it signs requests with one and decrypts answers with the other. */
export type SamlKeys = Pick<BrokerKeys, 'samlSigning' | 'samlEncryption'>;

function writeSecretFile(file: string, content: string | Buffer): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temporary, content, { mode: 0o600 });
  // link() fails if another process created the file first; then that one's key wins.
  try {
    fs.linkSync(temporary, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    fs.unlinkSync(temporary);
  }
}

async function readOrCreate(file: string, create: () => Promise<string | Buffer>): Promise<Buffer> {
  if (!fs.existsSync(file)) {
    writeSecretFile(file, await create());
    logger.info('generated key material', { file: path.basename(file) });
  }
  return fs.readFileSync(file);
}

/**
 * A key and its certificate, created on first start. Nodes starting together on an empty folder may
 * both generate: the key is linked first (one wins), then a certificate is made for the key that won
 * and linked (again one wins), so key and certificate always belong together. A pair that does not
 * match (a hand-copied file) stops the start with a message naming the file.
 */
export async function readOrCreateCertifiedKey(dir: string, name: string, commonName: string): Promise<KeyPairWithCertificate> {
  const keyFile = path.join(dir, `${name}.key.pem`);
  const certFile = path.join(dir, `${name}.crt.pem`);
  if (!fs.existsSync(keyFile)) {
    writeSecretFile(keyFile, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }));
    logger.info('generated key material', { file: `${name}.key.pem` });
  }
  if (!fs.existsSync(certFile)) writeSecretFile(certFile, selfSignedCertificateFor(fs.readFileSync(keyFile, 'utf8'), commonName));
  return readCertifiedKey(keyFile, certFile, name);
}

/** A key and its certificate from their files; a pair that does not match is refused, naming the file. */
function readCertifiedKey(keyFile: string, certFile: string, name: string): KeyPairWithCertificate {
  const privateKeyPem = fs.readFileSync(keyFile, 'utf8');
  const certificatePem = fs.readFileSync(certFile, 'utf8');
  let matches = false;
  try {
    matches = new X509Certificate(certificatePem).checkPrivateKey(createPrivateKey(privateKeyPem));
  } catch {
    // an unreadable file does not match either
  }
  if (!matches) throw new ConfigurationError(certFile, '(certificate)', `does not belong to the key in ${name}.key.pem`);
  return { privateKeyPem, certificatePem };
}

/**
 * Brána's SAML keys as they are, for tools that must not create any (`brana means check`): null when
 * the folder holds none yet; a key and certificate that do not belong together are refused.
 */
export function readSamlKeys(keysDir: string): SamlKeys | null {
  const pairs = (['saml-signing', 'saml-encryption'] as const).map((name) => {
    const keyFile = path.join(keysDir, `${name}.key.pem`);
    const certFile = path.join(keysDir, `${name}.crt.pem`);
    return fs.existsSync(keyFile) && fs.existsSync(certFile) ? readCertifiedKey(keyFile, certFile, name) : null;
  });
  const [signing, encryption] = pairs;
  if (!signing || !encryption) return null;
  return { samlSigning: signing, samlEncryption: { ...encryption, privateKey: createPrivateKey(encryption.privateKeyPem) } };
}

/** The secret of the per-group pseudonyms (`pseudonym.secret`), created on first use. */
export async function readOrCreatePseudonymSecret(keysDir: string): Promise<Buffer> {
  return Buffer.from((await readOrCreate(path.join(keysDir, 'pseudonym.secret'), async () => randomBytes(32).toString('base64'))).toString('utf8').trim(), 'base64');
}

/** Where an operator puts the next SAML signing certificate, to announce it before the switch. */
export const NEXT_SAML_SIGNING_CERTIFICATE = 'saml-signing-next.crt.pem';

/**
 * The next SAML signing certificate, if the operator announced one: Brána's IdP metadata publishes
 * it beside the one in use, so that SePs trust both before Brána signs with the new key. Not a
 * certificate: the start is refused, naming the file.
 */
export function readNextSamlSigningCertificate(keysDir: string): string | null {
  const file = path.join(keysDir, NEXT_SAML_SIGNING_CERTIFICATE);
  if (!fs.existsSync(file)) return null;
  const pem = fs.readFileSync(file, 'utf8');
  try {
    new X509Certificate(pem);
  } catch {
    throw new ConfigurationError(file, '(certificate)', 'is not a PEM certificate');
  }
  return pem;
}

export async function loadBrokerKeys(keysDir: string, publicUrl: URL): Promise<BrokerKeys> {
  const signingKeysFile = path.join(keysDir, SIGNING_KEYS_FILE);
  await readOrCreate(signingKeysFile, async () => (await SigningKeyRing.generate()).serialize());
  const cookieKeys = JSON.parse(
    (await readOrCreate(path.join(keysDir, 'cookie-keys.json'), async () => JSON.stringify([randomBytes(32).toString('base64url')]))).toString('utf8'),
  ) as string[];
  const pseudonymSecret = await readOrCreatePseudonymSecret(keysDir);
  const samlSigning = await readOrCreateCertifiedKey(keysDir, 'saml-signing', `Brána SAML signing ${publicUrl.host}`);
  const samlEncryption = await readOrCreateCertifiedKey(keysDir, 'saml-encryption', `Brána SAML encryption ${publicUrl.host}`);
  return {
    signingKeysFile,
    cookieKeys,
    pseudonymSecret,
    samlSigning,
    samlEncryption: { ...samlEncryption, privateKey: createPrivateKey(samlEncryption.privateKeyPem) },
  };
}

/**
 * The assertion log's own key material, apart from every other key: an ES256 key that signs the
 * log's checkpoints (auditors verify with its public half alone) and the secret of the per-record
 * seal, which never leaves Brána's servers.
 */
export interface AuditKeys {
  signingKey: KeyObject;
  kid: string;
  /** The public halves of the audit signing keys, newest first. */
  publicJwks: { keys: jose.JWK[] };
  sealKey: Buffer;
  /** True when this call generated the signing key (the first start). */
  generated: boolean;
}

async function generateAuditSigningJwks(): Promise<string> {
  const { privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  const { d: _private, ...publicJwk } = jwk;
  return JSON.stringify({ keys: [{ ...jwk, alg: 'ES256', use: 'sig', kid: await jose.calculateJwkThumbprint(publicJwk) }] }, null, 2);
}

export async function loadAuditKeys(keysDir: string): Promise<AuditKeys> {
  const signingFile = path.join(keysDir, 'audit-signing.jwks.json');
  const generated = !fs.existsSync(signingFile);
  const jwks = JSON.parse((await readOrCreate(signingFile, generateAuditSigningJwks)).toString('utf8')) as { keys: jose.JWK[] };
  const current = jwks.keys[0];
  if (!current?.d || !current.kid || current.crv !== 'P-256') throw new ConfigurationError(signingFile, 'keys.0', 'must be a private ES256 (P-256) JWK with a kid');
  const publicJwks = { keys: jwks.keys.map(({ d: _private, ...publicJwk }) => publicJwk) };
  const sealKey = Buffer.from(
    (await readOrCreate(path.join(keysDir, 'audit-seal.secret'), async () => randomBytes(32).toString('base64'))).toString('utf8').trim(),
    'base64',
  );
  if (sealKey.length < 32) throw new ConfigurationError(path.join(keysDir, 'audit-seal.secret'), '(content)', 'must hold at least 32 bytes, base64-encoded');
  return { signingKey: createPrivateKey({ key: current as JsonWebKey, format: 'jwk' }), kid: current.kid, publicJwks, sealKey, generated };
}
