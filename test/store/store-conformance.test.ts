import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { errors } from 'oidc-provider';
import { ConsoleSessions } from '../../src/access/console-sessions.ts';
import { AccountSessions } from '../../src/account/account-sessions.ts';
import type { AssertionLog } from '../../src/audit/assertion-log.ts';
import { ConsentStore } from '../../src/consent/consent-store.ts';
import { ForeignPersonStore } from '../../src/identity/foreign-person-store.ts';
import { PersonStore } from '../../src/identity/person-store.ts';
import { sweepExpiredRows } from '../../src/operations/expired-rows.ts';
import { SepRegistration } from '../../src/sep/sep-registration.ts';
import { SepAlreadyRegistered, SepStore } from '../../src/sep/sep-store.ts';
import { migrate, openDatabase, type Database } from '../../src/store/database.ts';
import { KnexModelAdapter } from '../../src/store/oidc-model-store.ts';
import { UpstreamRequestStore, REQUEST_RETENTION_MS } from '../../src/upstream/upstream-request-store.ts';
import { openTestTrail } from '../support/audit-trail.ts';
import { BACKENDS, createTestDatabase } from '../support/databases.ts';
import { createPostgresDatabase } from '../support/postgres.ts';
import { sepDocument } from '../support/test-broker.ts';

/**
 * One store suite for every backend (after Dex's storage conformance tests): each store module is
 * exercised the same way on a SQLite file and on a fresh PostgreSQL database, including the races a
 * cluster produces (two nodes consuming one code, answering one request, resolving one person).
 */
const unique = (prefix: string) => `${prefix}-${randomBytes(6).toString('hex')}`;

/** Every record follows the one before it (the hash chain's links; verifying the hashes is the audit suite's). */
async function chainIsIntact(db: Database): Promise<number> {
  const rows = (await db('assertion_log').orderBy('seq', 'asc')) as Array<{ seq: number; prev_hash: string; hash: string }>;
  for (const [i, row] of rows.entries()) if (i > 0) assert.equal(row.prev_hash, rows[i - 1]!.hash, `record ${row.seq} does not follow the one before it`);
  return rows.length;
}

for (const backend of BACKENDS) {
  describe(`the store on ${backend === 'sqlite' ? 'SQLite' : 'PostgreSQL'} (one conformance suite for every backend)`, () => {
    let db: Database;
    let close: () => Promise<void>;
    let seps: SepStore;
    let log: AssertionLog;
    let requests: UpstreamRequestStore;
    let persons: PersonStore;
    let consents: ConsentStore;
    let foreignPersons: ForeignPersonStore;
    let accountSessions: AccountSessions;
    let consoleSessions: ConsoleSessions;

    before(async () => {
      const database = await createTestDatabase(backend);
      ({ db } = database);
      close = () => database.drop();
      seps = new SepStore(db);
      ({ log } = await openTestTrail(db));
      requests = new UpstreamRequestStore(db);
      persons = new PersonStore(db);
      consents = new ConsentStore(db);
      foreignPersons = new ForeignPersonStore(db);
      accountSessions = new AccountSessions(db);
      consoleSessions = new ConsoleSessions(db);
    });
    after(async () => close());

    it('migrates once: a second run changes nothing', async () => {
      const before = (await db('knex_migrations').select('name')) as Array<{ name: string }>;
      await migrate(db);
      const after = (await db('knex_migrations').select('name')) as Array<{ name: string }>;
      assert.deepEqual(after, before);
      assert.ok(before.some((row) => row.name === '001_initial.ts'));
    });

    describe('SeP registrations', () => {
      it('round-trips a registration: lists, booleans, times as numbers; the secret only on request', async () => {
        const registration = new SepRegistration(db, seps, log, { allowLoopbackHttp: false, knownMeans: ['eobcanka', 'mojeid'] });
        const document = sepDocument({ allowedMeans: ['eobcanka'], eidasEnabled: true, group: unique('group') });
        const { sep, clientSecret } = await registration.register(document, 'active', 'test');
        const found = await seps.find(sep.clientId);
        assert.deepEqual(found, sep);
        assert.equal(found!.eidasEnabled, true);
        assert.deepEqual(found!.allowedMeans, ['eobcanka']);
        assert.equal(typeof found!.createdAt, 'number');
        assert.equal((await seps.findWithSecret(sep.clientId))!.clientSecret, clientSecret);
        assert.deepEqual((await seps.listGroup(sep.group)).map((s) => s.clientId), [sep.clientId]);
        assert.ok((await seps.list()).some((s) => s.clientId === sep.clientId));
      });

      it('refuses a second registration of one client id and keeps the first', async () => {
        const registration = new SepRegistration(db, seps, log, { allowLoopbackHttp: false, knownMeans: [] });
        const document = sepDocument();
        const first = await registration.register(document, 'active', 'test');
        await assert.rejects(registration.register({ ...document, name: { cs: 'Jiný', en: 'Other' } }, 'active', 'test'), SepAlreadyRegistered);
        assert.deepEqual((await seps.find(first.sep.clientId))!.name, first.sep.name);
        assert.equal((await log.query({ sepId: first.sep.clientId, event: 'sep_registered' })).length, 1);
      });

      it('changes a status and says whether the SeP existed', async () => {
        const registration = new SepRegistration(db, seps, log, { allowLoopbackHttp: false, knownMeans: [] });
        const { sep } = await registration.register(sepDocument(), 'pending', 'test');
        assert.equal(await seps.setStatus(sep.clientId, 'active'), true);
        assert.equal((await seps.find(sep.clientId))!.status, 'active');
        assert.equal(await seps.setStatus(unique('none'), 'active'), false);
      });
    });

    describe("oidc-provider's models", () => {
      it('stores, finds by id and uid, updates and destroys', async () => {
        const sessions = new KnexModelAdapter(db, 'Session');
        const id = unique('session');
        await sessions.upsert(id, { uid: `${id}-uid`, accountId: 'a' }, 60);
        assert.deepEqual(await sessions.find(id), { uid: `${id}-uid`, accountId: 'a' });
        assert.deepEqual(await sessions.findByUid(`${id}-uid`), { uid: `${id}-uid`, accountId: 'a' });
        await sessions.upsert(id, { uid: `${id}-uid`, accountId: 'b' }, 60);
        assert.equal((await sessions.find(id))!.accountId, 'b');
        await sessions.destroy(id);
        assert.equal(await sessions.find(id), undefined);
      });

      it('does not return an expired model, and keeps models apart by name', async () => {
        const interactions = new KnexModelAdapter(db, 'Interaction');
        const id = unique('interaction');
        await interactions.upsert(id, { uid: id }, 60);
        assert.equal(await new KnexModelAdapter(db, 'Session').find(id), undefined);
        await db('oidc_model').where({ model: 'Interaction', id }).update({ expires_at: Date.now() - 1 });
        assert.equal(await interactions.find(id), undefined);
      });

      it('consumes a code once: of five racing token requests exactly one wins, and reuse revokes the grant', async () => {
        const codes = new KnexModelAdapter(db, 'AuthorizationCode');
        const tokens = new KnexModelAdapter(db, 'AccessToken');
        const grantId = unique('grant');
        const code = unique('code');
        await codes.upsert(code, { grantId, clientId: 'c' }, 60);
        await tokens.upsert(unique('token'), { grantId, clientId: 'c' }, 60);
        const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => codes.consume(code)));
        assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1);
        for (const lost of outcomes.filter((o) => o.status === 'rejected')) assert.ok((lost as PromiseRejectedResult).reason instanceof errors.InvalidGrant);
        assert.equal(await db('oidc_model').where({ grant_id: grantId }).count({ n: '*' }).then((r) => Number(r[0]!.n)), 0, 'the grant and its tokens are gone');
      });

      it('marks a consumed model as consumed when found', async () => {
        const codes = new KnexModelAdapter(db, 'AuthorizationCode');
        const code = unique('code');
        await codes.upsert(code, { grantId: unique('grant') }, 60);
        await codes.consume(code);
        assert.equal(typeof (await codes.find(code))!.consumed, 'number');
      });

      it('revokes by grant id only the rows of that grant', async () => {
        const tokens = new KnexModelAdapter(db, 'AccessToken');
        const [mine, other] = [unique('grant'), unique('grant')];
        const [a, b] = [unique('token'), unique('token')];
        await tokens.upsert(a, { grantId: mine }, 60);
        await tokens.upsert(b, { grantId: other }, 60);
        await tokens.revokeByGrantId(mine);
        assert.equal(await tokens.find(a), undefined);
        assert.ok(await tokens.find(b));
      });
    });

    describe('upstream requests and assertion ids', () => {
      const record = (requestId: string, means = 'eobcanka') =>
        requests.record({ requestId, means, interactionUid: unique('uid'), sepId: 'sep', sepRequestId: null, minimumLoa: 'substantial', forceAuthn: false });

      it('finds an outstanding request only for its own means, and not once answered', async () => {
        const id = unique('_req');
        await record(id);
        assert.equal((await requests.findOutstanding(id, 'eobcanka'))!.requestId, id);
        assert.equal(await requests.findOutstanding(id, 'mojeid'), undefined);
        assert.equal(await db.transaction((trx) => requests.consume(id, 'eobcanka', trx)), true);
        assert.equal(await requests.findOutstanding(id, 'eobcanka'), undefined);
      });

      it('lets exactly one of several racing answers consume a request', async () => {
        const id = unique('_req');
        await record(id);
        const outcomes = await Promise.all(Array.from({ length: 5 }, () => db.transaction((trx) => requests.consume(id, 'eobcanka', trx))));
        assert.deepEqual(outcomes.filter(Boolean), [true]);
      });

      it('does not consume an expired request', async () => {
        const id = unique('_req');
        await record(id);
        await db('upstream_request').where({ request_id: id }).update({ expires_at: Date.now() - 1 });
        assert.equal(await db.transaction((trx) => requests.consume(id, 'eobcanka', trx)), false);
      });

      it('records a success for the interaction, and a failure', async () => {
        const id = unique('_req');
        await record(id);
        const request = (await requests.find(id))!;
        const person = (await db.transaction((trx) => persons.findOrCreate(unique('register'), trx))).person;
        assert.equal(await db.transaction((trx) => requests.consume(id, 'eobcanka', trx, { personId: person.id, acr: 'high', authnInstant: 1_700_000_000_000 })), true);
        const answer = (await requests.successfulAnswerFor(request.interactionUid, id))!;
        assert.equal(answer.personId, person.id);
        assert.equal(answer.authnInstant, 1_700_000_000_000);
        assert.equal(answer.forceAuthn, false);

        const failed = unique('_req');
        await record(failed);
        await requests.recordFailure(failed);
        const stored = (await requests.find(failed))!;
        assert.equal(stored.outcome, 'failure');
        assert.equal(typeof stored.consumedAt, 'number');
      });

      it('remembers an assertion id once: a replay, even racing, is caught', async () => {
        const assertionId = unique('_a');
        const expires = Date.now() + 60_000;
        const outcomes = await Promise.all(
          Array.from({ length: 5 }, () =>
            db.transaction(async (trx) => {
              const fresh = await requests.rememberAssertion('eobcanka', assertionId, expires, trx);
              await trx('upstream_assertion').where({ assertion_id: assertionId }).first();
              return fresh;
            }),
          ),
        );
        assert.deepEqual(outcomes.filter(Boolean), [true]);
        assert.equal(await db.transaction((trx) => requests.rememberAssertion('eobcanka', assertionId, expires, trx)), false);
        assert.equal(await db.transaction((trx) => requests.rememberAssertion('mojeid', assertionId, expires, trx)), true, 'ids are per means');
      });
    });

    describe('persons and consents', () => {
      it('creates a person once, even when several logins resolve them at the same moment', async () => {
        const registerId = unique('register');
        // Each login goes on in its transaction after the resolution, as the ACS does: the lost race
        // must not have broken it.
        const results = await Promise.all(
          Array.from({ length: 5 }, () =>
            db.transaction(async (trx) => {
              const result = await persons.findOrCreate(registerId, trx);
              await log.append({ event: 'identity_resolved', outcome: 'success', sepId: registerId }, trx);
              return result;
            }),
          ),
        );
        assert.equal((await log.query({ sepId: registerId })).length, 5);
        assert.equal(new Set(results.map((r) => r.person.id)).size, 1);
        assert.equal(results.filter((r) => r.created).length, 1);
        assert.deepEqual(await persons.find(results[0]!.person.id), { id: results[0]!.person.id, registerId });
      });

      it('keeps one permanent consent per SeP for exactly one attribute set; revokes one or all', async () => {
        const person = (await db.transaction((trx) => persons.findOrCreate(unique('register'), trx))).person;
        await db.transaction((trx) => consents.grantPermanent(person.id, 'sep-a', ['DateOfBirth', 'CurrentGivenName'], trx));
        assert.ok(await consents.findPermanent(person.id, 'sep-a', ['CurrentGivenName', 'DateOfBirth']), 'order does not matter');
        assert.equal(await consents.findPermanent(person.id, 'sep-a', ['CurrentGivenName']), undefined, 'another set is not covered');
        await db.transaction((trx) => consents.grantPermanent(person.id, 'sep-a', ['CurrentGivenName'], trx));
        await db.transaction((trx) => consents.grantPermanent(person.id, 'sep-b', ['eMail'], trx));
        assert.deepEqual((await consents.listActive(person.id)).map((c) => c.sepId).sort(), ['sep-a', 'sep-b']);
        const [first] = await consents.listActive(person.id);
        assert.equal(await consents.revoke(person.id, first!.id), 1);
        assert.equal(await consents.revoke(person.id, undefined), 1);
        assert.deepEqual(await consents.listActive(person.id), []);
      });

      it('writes nothing of a consent whose transaction fails', async () => {
        const person = (await db.transaction((trx) => persons.findOrCreate(unique('register'), trx))).person;
        await assert.rejects(
          db.transaction(async (trx) => {
            await consents.grantPermanent(person.id, 'sep-c', ['eMail'], trx);
            await log.append({ event: 'consent_given', outcome: 'success', sepId: 'sep-c' }, trx);
            throw new Error('the node died here');
          }),
          /the node died here/,
        );
        assert.deepEqual(await consents.listActive(person.id), []);
        assert.deepEqual(await log.query({ sepId: 'sep-c' }), []);
      });
    });

    describe('the assertion log', () => {
      it('stays one unbroken chain when many records are appended at once', async () => {
        await Promise.all(Array.from({ length: 20 }, (_, i) => log.append({ event: 'request_received', outcome: 'success', sepId: `chain-${i}` })));
        assert.ok((await chainIsIntact(db)) >= 20);
      });

      it('returns records in order, filtered by SeP and request id', async () => {
        const sepId = unique('sep');
        await log.append({ event: 'request_received', outcome: 'success', sepId, requestId: 'r1', detail: { scope: 'openid' } });
        await log.append({ event: 'token_issued', outcome: 'success', sepId, requestId: 'r1', loa: 'high' });
        await log.append({ event: 'request_received', outcome: 'success', sepId, requestId: 'r2' });
        const records = await log.query({ sepId, requestId: 'r1' });
        assert.deepEqual(records.map((r) => r.event), ['request_received', 'token_issued']);
        assert.deepEqual(records[0]!.detail, { scope: 'openid' });
        assert.equal(typeof records[0]!.at, 'number');
        assert.ok(records[0]!.seq < records[1]!.seq);
      });
    });

    describe('expired rows', () => {
      it('are removed; rows still in use stay', async () => {
        const now = Date.now();
        const sessions = new KnexModelAdapter(db, 'Session');
        const [live, dead] = [unique('live'), unique('dead')];
        await sessions.upsert(live, { uid: live }, 3600);
        await sessions.upsert(dead, { uid: dead }, 3600);
        await db('oidc_model').where({ model: 'Session', id: dead }).update({ expires_at: now - 1000 });

        const [oldRequest, recentRequest] = [unique('_req'), unique('_req')];
        for (const id of [oldRequest, recentRequest]) {
          await requests.record({ requestId: id, means: 'eobcanka', interactionUid: 'u', sepId: 's', sepRequestId: null, minimumLoa: 'low', forceAuthn: false });
        }
        await db('upstream_request').where({ request_id: oldRequest }).update({ expires_at: now - REQUEST_RETENTION_MS - 1000 });
        await db('upstream_request').where({ request_id: recentRequest }).update({ expires_at: now - 1000 });
        const [oldAssertion, liveAssertion] = [unique('_a'), unique('_a')];
        await db.transaction(async (trx) => {
          await requests.rememberAssertion('eobcanka', oldAssertion, now - 1000, trx);
          await requests.rememberAssertion('eobcanka', liveAssertion, now + 60_000, trx);
        });

        const [gone, staying] = await db.transaction(async (trx) => [(await persons.findOrCreate(unique('foreign'), trx)).person, (await persons.findOrCreate(unique('foreign'), trx)).person]);
        const facts = { givenName: 'Anna', familyName: 'Schmidt', dateOfBirth: '1990-01-01', issuingCountry: 'DE' };
        await foreignPersons.save(gone!.id, facts, db, now - 9 * 3600 * 1000);
        await foreignPersons.save(staying!.id, facts, db, now);

        const accountLogin = (await accountSessions.startLogin()).id;
        const consoleLogin = (await consoleSessions.startLogin()).id;

        assert.ok(((await sweepExpiredRows(db, { requests, foreignPersons, accountSessions, consoleSessions }, now)) ?? 0) >= 4);
        assert.ok(await accountSessions.pendingLogin(accountLogin), 'a My account login in progress stays');
        assert.ok(await consoleSessions.pendingLogin(consoleLogin), 'a console sign-in in progress stays');
        assert.equal(await foreignPersons.find(gone!.id, now - 9 * 3600 * 1000), undefined, 'foreign attributes past their time are deleted');
        assert.ok(await foreignPersons.find(staying!.id, now));
        assert.equal(await sessions.find(dead), undefined);
        assert.equal(await db('oidc_model').where({ id: dead }).first(), undefined);
        assert.ok(await sessions.find(live));
        assert.equal(await requests.find(oldRequest), undefined);
        assert.ok(await requests.find(recentRequest), 'an expired request stays a day for support questions');
        assert.equal(await db('upstream_assertion').where({ assertion_id: oldAssertion }).first(), undefined);
        assert.ok(await db('upstream_assertion').where({ assertion_id: liveAssertion }).first());

        // Half an hour later the unfinished My account login is gone.
        await sweepExpiredRows(db, { requests, foreignPersons, accountSessions, consoleSessions }, now + 31 * 60 * 1000);
        assert.equal(Number((await db('account_session').count({ n: '*' }))[0]!.n), 0);
        assert.equal(Number((await db('console_session').count({ n: '*' }))[0]!.n), 0, 'and so is the unfinished console sign-in (15 minutes)');
      });

      it('are removed in batches, however many there are', async () => {
        const expiredAt = Date.now() - 1000;
        const prefix = unique('bulk');
        const rows = Array.from({ length: 12_000 }, (_, i) => ({ model: 'Interaction', id: `${prefix}-${i}`, payload: '{}', expires_at: expiredAt }));
        for (let i = 0; i < rows.length; i += 500) await db('oidc_model').insert(rows.slice(i, i + 500));
        await sweepExpiredRows(db, { requests, foreignPersons, accountSessions, consoleSessions });
        assert.equal(Number((await db('oidc_model').where('id', 'like', `${prefix}-%`).count({ n: '*' }))[0]!.n), 0);
      });
    });
  });
}

describe('PostgreSQL: nodes that start together', () => {
  it('migrate a fresh database one after the other, without a lock error', async () => {
    const database = await createPostgresDatabase('migrate');
    const nodes = [openDatabase(database.url), openDatabase(database.url), openDatabase(database.url)];
    try {
      await Promise.all(nodes.map((db) => migrate(db)));
      const applied = (await nodes[0]!('knex_migrations').select('name')) as Array<{ name: string }>;
      assert.equal(applied.filter((row) => row.name === '001_initial.ts').length, 1);
    } finally {
      await Promise.all(nodes.map((db) => db.destroy()));
      await database.drop();
    }
  });
});
