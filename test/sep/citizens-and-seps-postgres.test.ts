import assert from 'node:assert/strict';
import supertest from 'supertest';
import { openAccount } from '../support/account.ts';
import { createTestDatabase, type TestDatabase } from '../support/databases.ts';
import { hiddenFields } from '../support/html.ts';
import { PNG_LOGO } from '../support/images.ts';
import { Citizen, completeLogin } from '../support/login-driver.ts';
import { adminToken, registrationMetadata, reviewAndApprove, selfRegister } from '../support/self-service.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

/**
 * Issue 4 on a real PostgreSQL server: migration 004, a self-registered SeP approved and logging a
 * citizen in, a tile with its logo bytes, My account with the history found by pseudonyms, and a
 * revocation — every new table and query on the second backend.
 */
describe('registrations, tiles and My account on PostgreSQL', () => {
  let database: TestDatabase;
  let brana: TestBroker;
  before(async () => {
    database = await createTestDatabase('postgres');
    brana = await startTestBroker({ databaseUrl: database.url });
  });
  after(async () => {
    await brana?.close();
    await database?.drop();
  });

  it('registers, approves, logs in, publishes a tile and lets the citizen revoke, all on PostgreSQL', async () => {
    const api = supertest(brana.url.origin);
    const admin = await adminToken(brana);
    const sep = await selfRegister(brana, registrationMetadata());
    assert.equal((await reviewAndApprove(brana.url.origin, admin, sep.clientId)).status, 200);
    const redirectUri = (sep.body.redirect_uris as string[])[0]!;
    await completeLogin(brana.url.origin, { clientId: sep.clientId, clientSecret: sep.clientSecret, redirectUri }, { means: 'eobcanka', login: '100000001', scope: 'openid profile', permanent: true });

    const origin = new URL(redirectUri).origin;
    const tile = await api
      .put(`/reg/${sep.clientId}/tile`)
      .set('Authorization', `Bearer ${sep.registrationAccessToken}`)
      .send({ name: { cs: 'Portál', en: 'Portal' }, description: { cs: 'Popis', en: 'Description' }, link: `${origin}/`, logo: PNG_LOGO.toString('base64'), conditions: { ownPortalUrl: `${origin}/`, servesPrivateContent: true, loginWithoutFurtherRegistration: true } });
    assert.equal(tile.status, 201, tile.text);
    await api.post(`/admin/tiles/${tile.body.id}/approve`).set('Authorization', `Bearer ${admin}`);
    const published = (await api.get('/tiles.json')).body.tiles as Array<{ id: number; organisation: { id: string } }>;
    assert.deepEqual(published.map((t) => [t.id, t.organisation.id]), [[tile.body.id, '00268810']]);
    const logo = await api.get(`/tiles/${tile.body.id}/logo`).buffer(true);
    assert.ok(Buffer.from(logo.body as Buffer).equals(PNG_LOGO), 'the logo bytes come back whole from bytea');

    const citizen = new Citizen(brana.url.origin);
    const account = await openAccount(citizen, 'mojeid', 'jnovak');
    assert.match(account.text, /Portál občana Hradce Králové/);
    const revoke = /action="(\/account\/consents\/\d+\/revoke)"/.exec(account.text)![1]!;
    const done = await citizen.follow(await citizen.post(revoke, { csrf: hiddenFields(account.text).csrf! }));
    assert.match(done.text, /Souhlas byl odvolán/);
    assert.equal((await brana.broker.log.count({ sepId: sep.clientId, event: 'token_issued' })), 1);
    assert.equal((await brana.broker.log.query({ sepId: sep.clientId, event: 'consent_revoked' })).length, 1);
  });
});
