import { constants, createDecipheriv, privateDecrypt, type KeyObject } from 'node:crypto';
import type { Element } from '@xmldom/xmldom';
import { NS, descendants, singleChild, textOf } from './xml.ts';

const AES: Record<string, { cipher: string; ivLength: number; gcm: boolean }> = {
  'http://www.w3.org/2001/04/xmlenc#aes128-cbc': { cipher: 'aes-128-cbc', ivLength: 16, gcm: false },
  'http://www.w3.org/2001/04/xmlenc#aes256-cbc': { cipher: 'aes-256-cbc', ivLength: 16, gcm: false },
  'http://www.w3.org/2009/xmlenc11#aes128-gcm': { cipher: 'aes-128-gcm', ivLength: 12, gcm: true },
  'http://www.w3.org/2009/xmlenc11#aes256-gcm': { cipher: 'aes-256-gcm', ivLength: 12, gcm: true },
};

function cipherValue(parent: Element, what: string): Buffer {
  const data = singleChild(parent, NS.xenc, 'CipherData');
  const value = data ? singleChild(data, NS.xenc, 'CipherValue') : undefined;
  if (!value) throw new Error(`${what} has no CipherValue`);
  return Buffer.from(textOf(value).replace(/\s+/g, ''), 'base64');
}

/**
 * Decrypts an EncryptedAssertion already parsed by the response guard, with the key already parsed:
 * RSA-OAEP-MGF1P key transport, then AES-CBC (XML Encryption padding) or AES-GCM. The guard has
 * allow-listed the algorithms and checked there is exactly one EncryptedKey (inside KeyInfo or, in
 * the WIF style NIA uses, beside the EncryptedData). Any failure throws; the caller turns it into the
 * one outward "invalid response".
 */
export function decryptAssertion(encrypted: Element, key: KeyObject): string {
  const data = singleChild(encrypted, NS.xenc, 'EncryptedData');
  const [encryptedKey] = descendants(encrypted, NS.xenc, 'EncryptedKey');
  if (!data || !encryptedKey) throw new Error('no EncryptedData or EncryptedKey');
  const keyMethod = singleChild(encryptedKey, NS.xenc, 'EncryptionMethod');
  const oaepDigest = keyMethod ? singleChild(keyMethod, NS.dsig, 'DigestMethod')?.getAttribute('Algorithm') : undefined;
  const symmetricKey = privateDecrypt(
    { key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: oaepDigest === 'http://www.w3.org/2001/04/xmlenc#sha256' ? 'sha256' : 'sha1' },
    cipherValue(encryptedKey, 'EncryptedKey'),
  );
  const algorithm = AES[singleChild(data, NS.xenc, 'EncryptionMethod')?.getAttribute('Algorithm') ?? ''];
  if (!algorithm) throw new Error('unsupported data encryption');
  const content = cipherValue(data, 'EncryptedData');
  const iv = content.subarray(0, algorithm.ivLength);
  if (algorithm.gcm) {
    const decipher = createDecipheriv(algorithm.cipher as 'aes-256-gcm', symmetricKey, iv);
    decipher.setAuthTag(content.subarray(content.length - 16));
    return Buffer.concat([decipher.update(content.subarray(algorithm.ivLength, content.length - 16)), decipher.final()]).toString('utf8');
  }
  const decipher = createDecipheriv(algorithm.cipher, symmetricKey, iv);
  decipher.setAutoPadding(false); // XML Encryption pads with arbitrary bytes and a final length byte
  const padded = Buffer.concat([decipher.update(content.subarray(algorithm.ivLength)), decipher.final()]);
  const padding = padded[padded.length - 1] ?? 0;
  if (padding < 1 || padding > 16 || padding > padded.length) throw new Error('bad padding');
  return padded.subarray(0, padded.length - padding).toString('utf8');
}
