import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { SAML } from '@node-saml/node-saml';
import { privateKeyOf } from '../../src/keys/private-keys.ts';

/**
 * The node-saml patch (patches/@node-saml+node-saml+5.1.0.patch, docs/BENCHMARKS.md "Patches"): an
 * AuthnRequest on the Redirect binding is signed with a KeyObject the caller parsed once, instead of
 * a PEM text node-saml hands to OpenSSL to parse and set up again at every signature. Without the
 * patch node-saml refuses a KeyObject ("privateKey is not in PEM format or in base64 format").
 */
describe('node-saml signing with a KeyObject (patched)', () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

  function writer(key: unknown): SAML {
    return new SAML({
      issuer: 'https://brana.example/saml/eobcanka/metadata',
      callbackUrl: 'https://brana.example/saml/eobcanka/acs',
      entryPoint: 'https://idp.example/sso',
      idpCert: 'MIIB',
      privateKey: key as string,
      signatureAlgorithm: 'sha256',
      authnRequestBinding: 'HTTP-Redirect',
      generateUniqueId: () => '_request1',
    });
  }

  /** The octets SAML Bindings §3.4.4.1 signs, in the order node-saml sends them, and the signature. */
  function signedOctets(url: string): { octets: string; signature: Buffer } {
    const query = new URL(url).search.slice(1);
    const parts = query.split('&');
    const signature = parts.find((part) => part.startsWith('Signature='))!;
    return { octets: parts.filter((part) => !part.startsWith('Signature=')).join('&'), signature: Buffer.from(decodeURIComponent(signature.slice('Signature='.length)), 'base64') };
  }

  it('signs the Redirect query with the KeyObject, and the signature verifies with the public key', async () => {
    const url = await writer(privateKeyOf(pem)).getAuthorizeUrlAsync('relay', undefined, {});
    const { octets, signature } = signedOctets(url);
    assert.match(octets, /^SAMLRequest=[^&]+&RelayState=relay&SigAlg=http%3A%2F%2Fwww\.w3\.org%2F2001%2F04%2Fxmldsig-more%23rsa-sha256$/);
    assert.ok(verify('sha256', Buffer.from(octets), publicKey, signature));
  });

  it('still signs with a PEM text, as before', async () => {
    const { octets, signature } = signedOctets(await writer(pem).getAuthorizeUrlAsync('relay', undefined, {}));
    assert.ok(verify('sha256', Buffer.from(octets), publicKey, signature));
  });

  it('refuses a private key that is neither a KeyObject nor PEM or base64, as before', async () => {
    await assert.rejects(writer('not a key').getAuthorizeUrlAsync('relay', undefined, {}), /privateKey is not in PEM format or in base64 format/);
  });

  it('parses a key once per process: the same PEM gives the same KeyObject', () => {
    assert.equal(privateKeyOf(pem), privateKeyOf(pem));
    assert.equal(privateKeyOf(pem).asymmetricKeyType, 'rsa');
    assert.deepEqual(createPublicKey(privateKeyOf(pem)).export({ format: 'jwk' }), publicKey.export({ format: 'jwk' }));
  });
});
