import { createPrivateKey, type KeyObject } from 'node:crypto';

/**
 * A private key as a KeyObject, parsed once per process. OpenSSL keeps what it precomputes for a key
 * (RSA's Montgomery forms, blinding) with the key object, so signing again with the same KeyObject
 * costs half of signing with the PEM text, which is parsed and set up afresh at every signature:
 * 0.28 against 0.58 CPU-ms for RSA-2048 on the benchmark machine (issue 14).
 *
 * Keyed by the PEM text: Brána holds a handful of private keys (its SAML signing key, perhaps its
 * successor, a development IdP's), so the map stays small; it is emptied should it ever grow.
 */
const parsed = new Map<string, KeyObject>();
const MOST = 32;

export function privateKeyOf(pem: string): KeyObject {
  let key = parsed.get(pem);
  if (!key) {
    key = createPrivateKey(pem);
    if (parsed.size >= MOST) parsed.clear();
    parsed.set(pem, key);
  }
  return key;
}
