import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as jose from 'jose';
import supertest from 'supertest';
import { rotateSigningKeys } from '../../src/operations/key-rotation.ts';
import { SIGNING_KEYS_FILE } from '../../src/keys/signing-keys.ts';
import { completeLogin } from '../support/login-driver.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

describe('signing key rotation on a running node', () => {
  let brana: TestBroker;
  let keysDir: string;
  before(async () => {
    keysDir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-rotation-keys-'));
    brana = await startTestBroker({ env: { BRANA_KEYS_DIR: keysDir } });
  });
  after(async () => {
    await brana.close();
    fs.rmSync(keysDir, { recursive: true, force: true });
  });

  const jwks = async () => (await supertest(brana.url.origin).get('/jwks').expect(200)).body as jose.JSONWebKeySet;
  const kidOf = (jwt: string) => jose.decodeProtectedHeader(jwt).kid;

  it('signs with the new key once it is active, keeps the old one published, and every token still verifies', async () => {
    const sep = await brana.registerSep();
    const before = await completeLogin(brana.url.origin, sep, { means: 'eobcanka', login: '100000001' });
    const oldKid = kidOf(before.tokens.id_token);

    // Staged: the new keys are published at once but do not sign yet.
    const staged = await rotateSigningKeys(path.join(keysDir, SIGNING_KEYS_FILE), brana.broker.db, brana.broker.log, { activateInMs: 3_600_000, retainMs: 700_000, actor: 'test' });
    assert.equal(await brana.broker.signingKeys.check('signal'), true);
    const published = (await jwks()).keys.map((key) => key.kid);
    for (const added of staged.added) assert.ok(published.includes(added.kid));
    const meanwhile = await completeLogin(brana.url.origin, sep, { means: 'eobcanka', login: '100000001' });
    assert.equal(kidOf(meanwhile.tokens.id_token), oldKid, 'a published key does not sign before its time');

    // Immediate: the next rotation signs at once (as after SIGHUP to every node).
    const now = await rotateSigningKeys(path.join(keysDir, SIGNING_KEYS_FILE), brana.broker.db, brana.broker.log, { activateInMs: 0, retainMs: 700_000, actor: 'test' });
    assert.equal(await brana.broker.signingKeys.check('signal'), true);
    const after = await completeLogin(brana.url.origin, sep, { means: 'eobcanka', login: '100000001' });
    const newRs = now.added.find((key) => key.alg === 'RS256')!.kid;
    assert.equal(kidOf(after.tokens.id_token), newRs);

    const keySet = jose.createLocalJWKSet(await jwks());
    for (const login of [before, meanwhile, after]) {
      const { payload } = await jose.jwtVerify(login.tokens.id_token, keySet, { issuer: brana.url.origin, audience: sep.clientId });
      assert.equal(payload.sub, before.idToken.sub);
    }
    assert.ok(!(await jwks()).keys.some((key) => 'd' in key), 'only public keys are published');
    const records = (await brana.broker.log.query({ event: 'keys_rotated' })).filter((record) => record.detail.purpose === 'oidc-signing');
    assert.equal(records.length, 2);
    assert.deepEqual(records.map((record) => record.detail.actor), ['test', 'test']);
  });
});
