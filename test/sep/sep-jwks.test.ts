import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { RegistrationRejected } from '../../src/sep/sep-registration.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

/** SePs that authenticate with private_key_jwt register their public keys (a JWK Set). */
describe('a SeP registered for private_key_jwt', () => {
  let brana: TestBroker;
  before(async () => {
    brana = await startTestBroker();
  });
  after(async () => brana.close());

  const keyPair = () => generateKeyPairSync('rsa', { modulusLength: 2048 });

  async function problems(document: Record<string, unknown>): Promise<string[]> {
    try {
      await brana.registerSep(document);
    } catch (err) {
      if (err instanceof RegistrationRejected) return err.problems;
      throw err;
    }
    return [];
  }

  it('is refused without keys, or with a private or symmetric key, naming the field; nothing is written', async () => {
    const before = await brana.broker.seps.list();
    assert.deepEqual(await problems({ tokenEndpointAuthMethod: 'private_key_jwt' }), ["jwks: private_key_jwt needs the SeP's public keys (a JWK Set)"]);
    const privateJwk = keyPair().privateKey.export({ format: 'jwk' });
    assert.deepEqual(await problems({ tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [privateJwk] } }), ['jwks.keys.0: must hold public keys only']);
    assert.deepEqual(await problems({ tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } }).then((p) => p.map((line) => line.split(':')[0])), ['jwks.keys.0.kty']);
    assert.equal((await brana.broker.seps.list()).length, before.length);
  });

  it('is registered with its public keys, which Brána then offers oidc-provider as the client\'s jwks', async () => {
    const jwk = keyPair().publicKey.export({ format: 'jwk' });
    const sep = await brana.registerSep({ tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [{ ...jwk, kid: 'one' }] } });
    const stored = await brana.broker.seps.find(sep.clientId);
    assert.equal(stored?.tokenEndpointAuthMethod, 'private_key_jwt');
    assert.deepEqual(stored?.jwks, { keys: [{ ...jwk, kid: 'one' }] });
    const client = await brana.broker.provider.Client.find(sep.clientId);
    assert.equal(client?.tokenEndpointAuthMethod, 'private_key_jwt');
  });
});
