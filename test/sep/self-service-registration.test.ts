import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, compactDecrypt, createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify, type JWK } from 'jose';
import supertest from 'supertest';
import { sepKeyFetch } from '../../src/oidc/provider.ts';
import { SepRegistration } from '../../src/sep/sep-registration.ts';
import { codesIssuedTo } from '../support/audit.ts';
import { authorizationResponse, chooseMeans, completeLogin, decideConsent, loginAtIdp, postToAcs, startLogin } from '../support/login-driver.ts';
import { MANY_REGISTRATIONS, adminToken, initialAccessToken, registrationMetadata, reviewAndApprove, selfRegister } from '../support/self-service.ts';
import { sepDocument, startTestBroker, type TestBroker } from '../support/test-broker.ts';

async function sepCount(brana: TestBroker): Promise<number> {
  return Number(((await brana.broker.db('sep').count({ n: '*' })) as Array<{ n: number }>)[0]!.n);
}

async function registeredRecords(brana: TestBroker): Promise<number> {
  return (await brana.broker.log.query({ event: 'sep_registered' })).length;
}

describe('SeP self-service registration (RFC 7591/7592) and approval', () => {
  let brana: TestBroker;
  let admin: string;
  const api = () => supertest(brana.url.origin);
  before(async () => {
    brana = await startTestBroker({ env: MANY_REGISTRATIONS });
    admin = await adminToken(brana);
  });
  after(async () => brana.close());

  const approve = (clientId: string) => reviewAndApprove(brana.url.origin, admin, clientId);

  it('registers a municipal portal as pending with an initial access token, and records it', async () => {
    const registered = await selfRegister(brana, registrationMetadata());
    assert.match(registered.clientId, /^sep-[A-Za-z0-9_-]{16}$/);
    assert.ok(registered.clientSecret.length >= 43);
    assert.ok(registered.registrationAccessToken);
    assert.equal(registered.registrationClientUri, `${brana.url.origin}/reg/${registered.clientId}`);
    assert.equal(registered.body.sep_status, 'pending');
    assert.equal((registered.body.brana_registration as { group: string }).group, `hk-self-service-${process.pid}`);

    const sep = await brana.broker.seps.find(registered.clientId);
    assert.equal(sep?.status, 'pending');
    assert.equal(sep?.environment, 'test', 'a test instance registers test SePs');
    const records = await brana.broker.log.query({ sepId: registered.clientId, event: 'sep_registered' });
    assert.equal(records[0]?.detail.actor, 'self-service (registration API)');
    assert.equal(records[0]?.detail.status, 'pending');
    const issued = await brana.broker.log.query({ event: 'sep_initial_token_issued' });
    assert.ok(issued.length >= 1);
    assert.ok(!JSON.stringify(issued).includes(registered.registrationAccessToken));
  });

  it('refuses a pending SeP at the authorization and token endpoints: no redirect to its unreviewed URL, no code', async () => {
    const registered = await selfRegister(brana, registrationMetadata());
    const redirectUri = (registered.body.redirect_uris as string[])[0]!;
    const started = await startLogin(brana.url.origin, { clientId: registered.clientId, clientSecret: registered.clientSecret, redirectUri });
    assert.equal(started.response.status, 400);
    assert.equal(started.response.headers.location, undefined);
    assert.match(started.response.text, /zatím není schválena pro přihlašování přes Bránu/);

    const token = await api().post('/token').auth(registered.clientId, registered.clientSecret).type('form').send({ grant_type: 'authorization_code', code: 'x'.repeat(43), redirect_uri: redirectUri, code_verifier: 'y'.repeat(43) });
    assert.equal(token.status, 400);
    assert.equal(token.body.error, 'unauthorized_client');
    assert.equal(token.body.access_token, undefined);
    assert.equal(await codesIssuedTo(brana.broker, registered.clientId), 0);
    const errors = await brana.broker.log.query({ event: 'error' });
    assert.ok(errors.some((record) => record.reason === 'unauthorized_client'));
  });

  it('lets a pending SeP read and update its registration; an administrator approves it and it logs citizens in', async () => {
    const registered = await selfRegister(brana, registrationMetadata());
    const path = new URL(registered.registrationClientUri).pathname;
    const read = await api().get(path).set('Authorization', `Bearer ${registered.registrationAccessToken}`);
    assert.equal(read.status, 200);
    assert.equal(read.body.client_secret, registered.clientSecret);
    assert.equal(read.body.sep_status, 'pending');

    // RFC 7592 clients send back what they read, minus what they may not send.
    const { registration_access_token: _t, registration_client_uri: _u, client_secret_expires_at: _e, client_id_issued_at: _i, ...echo } = read.body as Record<string, unknown>;
    const newRedirect = 'https://novy-portal.hradeckralove.example.cz/callback';
    const updated = await api()
      .put(path)
      .set('Authorization', `Bearer ${registered.registrationAccessToken}`)
      .send({ ...echo, redirect_uris: [newRedirect], brana_registration: { ...(echo.brana_registration as object), allowedAttributes: ['CurrentGivenName', 'CurrentFamilyName', 'DateOfBirth'] } });
    assert.equal(updated.status, 200, updated.text);
    assert.deepEqual(updated.body.redirect_uris, [newRedirect]);
    assert.deepEqual(updated.body.sep_allowed_attributes, ['CurrentGivenName', 'CurrentFamilyName', 'DateOfBirth']);
    assert.notEqual(updated.body.registration_access_token, registered.registrationAccessToken, 'the registration access token rotates');
    assert.equal((await api().get(path).set('Authorization', `Bearer ${registered.registrationAccessToken}`)).status, 401);

    const approved = await approve(registered.clientId);
    assert.equal(approved.status, 200, approved.text);
    assert.equal(approved.body.status, 'active');
    const login = await completeLogin(brana.url.origin, { clientId: registered.clientId, clientSecret: registered.clientSecret, redirectUri: newRedirect }, { means: 'eobcanka', login: '100000001', scope: 'openid profile' });
    assert.equal(login.userinfo.birthdate, '1980-04-12');
    assert.equal(login.userinfo.PlaceOfBirth, undefined);
    const events = (await brana.broker.log.query({ sepId: registered.clientId })).map((r) => r.event);
    assert.deepEqual(events.slice(0, 3), ['sep_registered', 'sep_updated', 'sep_approved']);
    assert.equal((await approve(registered.clientId)).status, 409, 'nothing left to approve');
  });

  it('keeps the approved attributes and group in force until an administrator approves a change an active SeP asks for', async () => {
    const registered = await selfRegister(brana, registrationMetadata());
    await approve(registered.clientId);
    const path = new URL(registered.registrationClientUri).pathname;
    const read = await api().get(path).set('Authorization', `Bearer ${registered.registrationAccessToken}`);
    const asked = await api()
      .put(path)
      .set('Authorization', `Bearer ${registered.registrationAccessToken}`)
      .send({
        client_id: registered.clientId,
        redirect_uris: read.body.redirect_uris,
        brana_registration: { ...read.body.brana_registration, allowedAttributes: ['CurrentGivenName', 'CurrentFamilyName', 'eMail'], minimumLoa: 'low' },
      });
    assert.equal(asked.status, 200, asked.text);
    assert.equal(asked.body.sep_change_pending, true);
    assert.deepEqual(asked.body.sep_allowed_attributes, ['CurrentGivenName', 'CurrentFamilyName'], 'not in force before approval');
    assert.equal(asked.body.sep_minimum_loa, 'substantial');
    assert.deepEqual(asked.body.brana_registration.allowedAttributes, ['CurrentGivenName', 'CurrentFamilyName', 'eMail']);

    const sep = { clientId: registered.clientId, clientSecret: registered.clientSecret, redirectUri: (read.body.redirect_uris as string[])[0]! };
    const before = await completeLogin(brana.url.origin, sep, { means: 'eobcanka', login: '100000001', scope: 'openid profile email' });
    assert.equal(before.userinfo.email, undefined, 'the requested e-mail is not released before approval');

    const review = await api().get(`/admin/seps/${registered.clientId}`).set('Authorization', `Bearer ${admin}`);
    assert.deepEqual(review.body.requestedChange.changed, ['allowedAttributes', 'minimumLoa']);
    assert.equal((await approve(registered.clientId)).status, 200);
    const after = await completeLogin(brana.url.origin, sep, { means: 'eobcanka', login: '100000001', scope: 'openid profile email' });
    assert.equal(after.userinfo.email, 'jan.novak@example.cz');
    assert.equal((await brana.broker.seps.find(registered.clientId))?.minimumLoa, 'low');
  });

  it('drops a change an administrator refuses, and disables a refused registration', async () => {
    const registered = await selfRegister(brana, registrationMetadata());
    const refused = await api().post(`/admin/seps/${registered.clientId}/reject`).set('Authorization', `Bearer ${admin}`).send({ reason: 'IČO does not match the portal' });
    assert.equal(refused.status, 200);
    assert.equal(refused.body.status, 'disabled');
    const read = await api().get(new URL(registered.registrationClientUri).pathname).set('Authorization', `Bearer ${registered.registrationAccessToken}`);
    assert.equal(read.status, 401, 'a refused registration is gone for its SeP');
    assert.equal((await api().post(`/admin/seps/${registered.clientId}/reject`).set('Authorization', `Bearer ${admin}`).send({})).status, 400);
    assert.equal((await api().post('/admin/seps/no-such-sep/approve').set('Authorization', `Bearer ${admin}`).send({ digest: '0'.repeat(64) })).status, 404);
  });

  const refusals: Array<[string, Record<string, unknown>, RegExp, string]> = [
    ['an http redirect URI', registrationMetadata({ redirect_uris: ['http://portal.hradeckralove.example.cz/callback'] }), /redirect_uris\.0: must use https/, 'invalid_redirect_uri'],
    ['a private-sector SeP without the law that obliges it', registrationMetadata({}, { spType: 'private' }), /brana_registration\.legalBasis: a private-sector SeP must state the law/, 'invalid_client_metadata'],
    ['a SeP that grants itself a group', registrationMetadata({ sep_group: 'portal-obcana' }), /sep_group: is set by Brána/, 'invalid_client_metadata'],
    ['a SeP that grants itself attributes', registrationMetadata({ sep_allowed_attributes: ['idnumber'] }), /sep_allowed_attributes: is set by Brána/, 'invalid_client_metadata'],
    ['a SeP that declares itself active', registrationMetadata({ sep_status: 'active' }), /sep_status: is set by Brána/, 'invalid_client_metadata'],
    ['a group of another organisation', registrationMetadata({}, { group: 'hradec-kralove', organisation: { id: '00064581', name: 'Hlavní město Praha' } }), /brana_registration\.group: belongs to another organisation/, 'invalid_client_metadata'],
    ['a name reserved for Brána', registrationMetadata({}, { group: 'brana-account' }), /brana_registration\.group: must not begin with brana-/, 'invalid_client_metadata'],
    ['a production registration on a test instance', registrationMetadata({}, { environment: 'production' }), /brana_registration\.environment: this Brána instance serves only test SePs/, 'invalid_client_metadata'],
    ['private_key_jwt without a key set', registrationMetadata({ token_endpoint_auth_method: 'private_key_jwt' }), /jwks: private_key_jwt needs the SeP's public keys/, 'invalid_client_metadata'],
    ['a private key among its keys', registrationMetadata({ token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ kty: 'RSA', n: 'x', e: 'AQAB', d: 'secret' }] } }), /jwks\.keys\.0: must hold public keys only/, 'invalid_client_metadata'],
    ['keys both inline and by URL', registrationMetadata({ jwks: { keys: [{ kty: 'RSA', n: 'x', e: 'AQAB' }] }, jwks_uri: 'https://portal.hradeckralove.example.cz/jwks' }), /jwks_uri: give the SeP's public keys either/, 'invalid_client_metadata'],
    ['a symmetric ID token encryption', registrationMetadata({ id_token_encrypted_response_alg: 'dir', jwks_uri: 'https://portal.hradeckralove.example.cz/jwks' }), /id_token_encrypted_response_alg: /, 'invalid_client_metadata'],
    ['no Brána registration at all', { redirect_uris: ['https://portal.example.cz/cb'] }, /brana_registration: is required/, 'invalid_client_metadata'],
    ['an unknown attribute', registrationMetadata({}, { allowedAttributes: ['ShoeSize'] }), /brana_registration\.allowedAttributes\.0: /, 'invalid_client_metadata'],
  ];
  // The registration API registers the demo Hradec Králové SeP's group to its own organisation first.
  before(async () => {
    await brana.registerSep({ group: 'hradec-kralove' });
  });
  for (const [what, metadata, message, error] of refusals) {
    it(`refuses ${what} with ${error}, and writes nothing`, async () => {
      const token = await initialAccessToken(brana, admin);
      const [seps, records] = [await sepCount(brana), await registeredRecords(brana)];
      const response = await api().post('/reg').set('Authorization', `Bearer ${token}`).send(metadata);
      assert.equal(response.status, 400, response.text);
      assert.equal(response.body.error, error);
      assert.match(response.body.error_description, message);
      assert.equal(response.body.client_id, undefined);
      assert.equal(await sepCount(brana), seps);
      assert.equal(await registeredRecords(brana), records);
    });
  }

  it('refuses a registration without a valid initial access token, and an admin API call without an admin credential', async () => {
    const none = await api().post('/reg').send(registrationMetadata());
    assert.equal(none.status, 401);
    assert.equal(none.body.error, 'invalid_token');
    const made = await api().post('/reg').set('Authorization', `Bearer ${'x'.repeat(43)}`).send(registrationMetadata());
    assert.equal(made.status, 401);
    const auditor = (await brana.broker.operators.issue('auditor', `auditor ${randomUUID()}`)).token;
    assert.equal((await api().post('/admin/initial-access-tokens').set('Authorization', `Bearer ${auditor}`).send({})).status, 403);
    assert.equal((await api().get('/admin/seps').set('Authorization', 'Bearer nonsense')).status, 401);
  });

  it('refuses an update by which an active SeP would grant itself attributes, and changes nothing', async () => {
    const registered = await selfRegister(brana, registrationMetadata());
    await approve(registered.clientId);
    const path = new URL(registered.registrationClientUri).pathname;
    const read = await api().get(path).set('Authorization', `Bearer ${registered.registrationAccessToken}`);
    const before = await brana.broker.seps.find(registered.clientId);
    const greedy = await api()
      .put(path)
      .set('Authorization', `Bearer ${registered.registrationAccessToken}`)
      .send({ client_id: registered.clientId, redirect_uris: ['https://elsewhere.example.cz/cb'], brana_registration: read.body.brana_registration, sep_allowed_attributes: ['idnumber', 'CurrentGivenName'] });
    assert.equal(greedy.status, 400);
    assert.match(greedy.body.error_description, /sep_allowed_attributes: is set by Brána/);
    assert.deepEqual(await brana.broker.seps.find(registered.clientId), before);
  });

  it('rotates a SeP\'s secret: the new one works at the token endpoint, the old one no longer', async () => {
    const registered = await selfRegister(brana, registrationMetadata());
    await approve(registered.clientId);
    const redirectUri = (registered.body.redirect_uris as string[])[0]!;
    const rotate = await api().post(`/reg/${registered.clientId}/client-secret`).set('Authorization', `Bearer ${registered.registrationAccessToken}`);
    assert.equal(rotate.status, 200);
    const secret = rotate.body.client_secret as string;
    assert.notEqual(secret, registered.clientSecret);
    assert.equal((await api().post(`/reg/${registered.clientId}/client-secret`).set('Authorization', `Bearer ${admin}`)).status, 401);

    const old = await api().post('/token').auth(registered.clientId, registered.clientSecret).type('form').send({ grant_type: 'authorization_code', code: 'x'.repeat(43), redirect_uri: redirectUri, code_verifier: 'y'.repeat(43) });
    assert.equal(old.body.error, 'invalid_client');
    const login = await completeLogin(brana.url.origin, { clientId: registered.clientId, clientSecret: secret, redirectUri }, { means: 'eobcanka', login: '100000001' });
    assert.ok(login.tokens.access_token);
    assert.equal((await brana.broker.log.query({ sepId: registered.clientId, event: 'sep_secret_rotated' })).length, 1);
  });

  it('serves only the SePs of its own environment: a production registration is not a client of a test instance', async () => {
    const productionDesk = new SepRegistration(brana.broker.db, brana.broker.seps, brana.broker.log, { allowLoopbackHttp: true, knownMeans: brana.broker.registry.ids(), environment: 'production' });
    const registered = await productionDesk.register(sepDocument(), 'active', 'test');
    assert.equal(registered.sep.environment, 'production');
    const refused = await startLogin(brana.url.origin, { clientId: registered.sep.clientId, clientSecret: registered.clientSecret, redirectUri: registered.sep.redirectUris[0]! });
    assert.equal(refused.response.status, 400);
    assert.equal(refused.response.headers.location, undefined);
    assert.equal(await codesIssuedTo(brana.broker, registered.sep.clientId), 0);
  });

  it('keeps oidc-provider\'s guard against fetching special-use addresses, except a loopback jwks_uri in development', async () => {
    const seen: Array<Record<string, unknown>> = [];
    const realFetch = globalThis.fetch;
    globalThis.fetch = (async (_url: unknown, options: Record<string, unknown>) => {
      seen.push(options);
      return new Response('{}');
    }) as typeof fetch;
    try {
      const guard = { guard: true };
      await sepKeyFetch(false)('http://127.0.0.1:1/jwks', { dispatcher: guard } as RequestInit);
      await sepKeyFetch(true)('https://keys.example.cz/jwks', { dispatcher: guard } as RequestInit);
      await sepKeyFetch(true)('http://localhost:1/jwks', { dispatcher: guard } as RequestInit);
    } finally {
      globalThis.fetch = realFetch;
    }
    assert.deepEqual(seen.map((options) => 'dispatcher' in options), [true, true, false]);
  });

  it('withdraws a registration (RFC 7592 delete): disabled, with its history kept', async () => {
    const registered = await selfRegister(brana, registrationMetadata());
    const path = new URL(registered.registrationClientUri).pathname;
    assert.equal((await api().delete(path).set('Authorization', `Bearer ${registered.registrationAccessToken}`)).status, 204);
    assert.equal((await brana.broker.seps.find(registered.clientId))?.status, 'disabled');
    assert.equal((await brana.broker.log.query({ sepId: registered.clientId, event: 'sep_status_changed' }))[0]?.reason, 'withdrawn_by_sep');
  });

  describe('private_key_jwt and encrypted ID tokens, with the SeP\'s keys on a real jwks server', () => {
    let jwksServer: http.Server;
    let jwksUri: string;
    let signing: CryptoKeyPair;
    let encryption: CryptoKeyPair;
    let fetches = 0;
    before(async () => {
      signing = await generateKeyPair('RS256', { extractable: true });
      encryption = await generateKeyPair('RSA-OAEP-256', { extractable: true });
      const keys: JWK[] = [
        { ...(await exportJWK(signing.publicKey)), kid: 'sig-1', use: 'sig', alg: 'RS256' },
        { ...(await exportJWK(encryption.publicKey)), kid: 'enc-1', use: 'enc', alg: 'RSA-OAEP-256' },
      ];
      jwksServer = http.createServer((_req, res) => {
        fetches += 1;
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ keys }));
      });
      await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
      jwksUri = `http://localhost:${(jwksServer.address() as AddressInfo).port}/jwks.json`;
    });
    after(async () => {
      jwksServer.closeAllConnections();
      await new Promise((resolve) => jwksServer.close(resolve));
    });

    async function clientAssertion(clientId: string, key: CryptoKey = signing.privateKey, kid = 'sig-1'): Promise<string> {
      return new SignJWT({})
        .setProtectedHeader({ alg: 'RS256', kid })
        .setIssuer(clientId)
        .setSubject(clientId)
        .setAudience(`${brana.url.origin}/token`)
        .setJti(randomBytes(16).toString('base64url'))
        .setIssuedAt()
        .setExpirationTime('60s')
        .sign(key);
    }

    it('takes the SeP\'s public keys inline (jwks) as well, and keeps them as a technical setting', async () => {
      const publicKey = { ...(await exportJWK(signing.publicKey)), kid: 'sig-1', use: 'sig', alg: 'RS256' };
      const registered = await selfRegister(brana, registrationMetadata({ token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [publicKey] } }));
      assert.deepEqual((registered.body.jwks as { keys: Array<{ kid: string }> }).keys.map((key) => key.kid), ['sig-1']);
      assert.equal(registered.body.jwks_uri, undefined);
      assert.deepEqual((await brana.broker.seps.find(registered.clientId))?.jwks?.keys.map((key) => key.kid), ['sig-1']);
    });

    it('authenticates the SeP by a signed client assertion and gives it an ID token encrypted to its key', async () => {
      const registered = await selfRegister(
        brana,
        registrationMetadata({ token_endpoint_auth_method: 'private_key_jwt', jwks_uri: jwksUri, id_token_encrypted_response_alg: 'RSA-OAEP-256', id_token_encrypted_response_enc: 'A256GCM' }),
      );
      assert.equal(registered.clientSecret, undefined, 'no shared secret for a key-based SeP');
      assert.equal(registered.body.id_token_encrypted_response_alg, 'RSA-OAEP-256');
      assert.equal((await approve(registered.clientId)).status, 200);
      const redirectUri = (registered.body.redirect_uris as string[])[0]!;

      const started = await startLogin(brana.url.origin, { clientId: registered.clientId, clientSecret: '', redirectUri }, { scope: 'openid profile' });
      const idp = await loginAtIdp(started.citizen, await chooseMeans(started.citizen, started.response, 'eobcanka'), '100000001');
      const consent = await postToAcs(started.citizen, idp.acs, idp.fields);
      const code = authorizationResponse(await decideConsent(started.citizen, consent, 'agree'), { clientId: registered.clientId, clientSecret: '', redirectUri }).get('code')!;
      const redeem = (assertion: string) =>
        api()
          .post('/token')
          .type('form')
          .send({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: started.codeVerifier, client_id: registered.clientId, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion });

      const stranger = await generateKeyPair('RS256');
      const forged = await redeem(await clientAssertion(registered.clientId, stranger.privateKey));
      assert.equal(forged.status, 401);
      assert.equal(forged.body.error, 'invalid_client');
      assert.equal(forged.body.id_token, undefined);

      const token = await redeem(await clientAssertion(registered.clientId));
      assert.equal(token.status, 200, token.text);
      assert.ok(fetches >= 1, 'Brána fetched the SeP\'s keys from its jwks_uri');
      const idToken = token.body.id_token as string;
      assert.equal(idToken.split('.').length, 5, 'the ID token is a JWE');
      const { plaintext, protectedHeader } = await compactDecrypt(idToken, encryption.privateKey);
      assert.equal(protectedHeader.alg, 'RSA-OAEP-256');
      assert.equal(protectedHeader.enc, 'A256GCM');
      assert.equal(protectedHeader.kid, 'enc-1');
      const jwks = createLocalJWKSet((await api().get('/jwks')).body);
      const { payload } = await jwtVerify(new TextDecoder().decode(plaintext), jwks, { issuer: brana.url.origin, audience: registered.clientId });
      assert.equal(payload.acr, 'http://eidas.europa.eu/LoA/high');
      assert.equal(payload.PersonIdentifier, `CZ/CZ/${payload.sub}`);
    });
  });
});
