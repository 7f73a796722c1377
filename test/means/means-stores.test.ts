import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { FOREIGN_FACTS_TTL_MS, ForeignPersonStore } from '../../src/identity/foreign-person-store.ts';
import { PersonStore } from '../../src/identity/person-store.ts';
import { KnexModelAdapter } from '../../src/store/oidc-model-store.ts';
import { migrate, openDatabase, type Database } from '../../src/store/database.ts';
import { MetadataCache } from '../../src/upstream/metadata/metadata-cache.ts';

const POSTGRES_ADMIN = 'postgres://postgres@127.0.0.1:5432/postgres';

/** The stores issue 3 added, on a real SQLite file and a real PostgreSQL server alike. */
for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`the identity means' stores on ${backend}`, () => {
    let db: Database;
    let cleanup: () => Promise<void>;

    before(async () => {
      if (backend === 'sqlite') {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-means-store-'));
        db = openDatabase(`sqlite:${path.join(dir, 'brana.sqlite')}`);
        cleanup = async () => fs.rmSync(dir, { recursive: true, force: true });
      } else {
        const name = `brana_issue3_${process.pid}_${randomBytes(4).toString('hex')}`;
        const admin = new pg.Client({ connectionString: POSTGRES_ADMIN });
        await admin.connect();
        await admin.query(`CREATE DATABASE ${name}`);
        await admin.end();
        db = openDatabase(POSTGRES_ADMIN.replace(/\/postgres$/, `/${name}`));
        cleanup = async () => {
          const dropper = new pg.Client({ connectionString: POSTGRES_ADMIN });
          await dropper.connect();
          await dropper.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
          await dropper.end();
        };
      }
      await migrate(db);
    });
    after(async () => {
      await db.destroy();
      await cleanup();
    });

    it('keeps the last good metadata through recorded failures, and a failure for a means never loaded', async () => {
      const cache = new MetadataCache(db);
      await cache.saveGood({ means: 'eobcanka', source: 'https://idp/metadata', document: '<a/>', sha256: 'a'.repeat(64), fetchedAt: 1_000, cacheDurationMs: 3_600_000, nextRefreshAt: 2_000 });
      await cache.saveGood({ means: 'eobcanka', source: 'https://idp/metadata', document: '<b/>', sha256: 'b'.repeat(64), fetchedAt: 3_000, validUntil: 9_000, nextRefreshAt: 4_000 });
      await cache.recordFailure({ means: 'eobcanka', source: 'https://idp/metadata', attemptAt: 5_000, error: 'HTTP 503', nextRefreshAt: 6_000 });
      await cache.recordFailure({ means: 'bankid', source: 'https://bank/.well-known/openid-configuration', attemptAt: 5_000, error: 'x'.repeat(800), nextRefreshAt: 6_000 });
      const good = (await cache.find('eobcanka'))!;
      assert.equal(good.document, '<b/>');
      assert.equal(good.fetchedAt, 3_000);
      assert.equal(good.validUntil, 9_000);
      assert.equal(good.cacheDurationMs, null);
      assert.equal(good.lastAttemptAt, 5_000);
      assert.equal(good.lastError, 'HTTP 503');
      assert.equal(good.nextRefreshAt, 6_000);
      const never = (await cache.find('bankid'))!;
      assert.equal(never.document, null);
      assert.equal(never.lastError!.length, 500);
      assert.deepEqual((await cache.list()).map((row) => row.means), ['bankid', 'eobcanka']);
      await cache.saveGood({ means: 'eobcanka', source: 'https://idp/metadata', document: '<c/>', sha256: 'c'.repeat(64), fetchedAt: 7_000, nextRefreshAt: 8_000 });
      assert.equal((await cache.find('eobcanka'))!.lastError, null, 'a good refresh clears the failure');
    });

    it('keeps a foreign person\'s facts for a session\'s life, replaces them at the next login, then forgets them', async () => {
      const persons = new PersonStore(db);
      const foreign = new ForeignPersonStore(db);
      const { person } = await persons.findOrCreate(`eidas:DE:${randomUUID()}`, db);
      const now = Date.now();
      await foreign.save(person.id, { givenName: 'Erika', familyName: 'Mustermann', dateOfBirth: '1984-08-12', issuingCountry: 'DE' }, db, now);
      await foreign.save(person.id, { givenName: 'Erika', familyName: 'Musterfrau', dateOfBirth: '1984-08-12', placeOfBirth: 'Berlin', issuingCountry: 'DE' }, db, now);
      assert.equal((await foreign.find(person.id, now))!.familyName, 'Musterfrau');
      assert.equal(await foreign.find(person.id, now + FOREIGN_FACTS_TTL_MS), undefined, 'expired facts are not served');
      assert.equal(await foreign.removeExpired(now + FOREIGN_FACTS_TTL_MS - 1), 0);
      assert.equal(await foreign.removeExpired(now + FOREIGN_FACTS_TTL_MS), 1);
    });

    it('keeps a development OpenID Provider\'s state apart from the broker\'s own', async () => {
      const broker = new KnexModelAdapter(db, 'AuthorizationCode');
      const bank = new KnexModelAdapter(db, 'AuthorizationCode', undefined, 'dev:bankid');
      await broker.upsert('same-id', { grantId: 'g1', accountId: 'broker' }, 60);
      await bank.upsert('same-id', { grantId: 'g2', accountId: 'bank' }, 60);
      assert.equal((await broker.find('same-id'))!.accountId, 'broker');
      assert.equal((await bank.find('same-id'))!.accountId, 'bank');
      await bank.consume('same-id');
      assert.ok((await bank.find('same-id'))!.consumed);
      assert.equal((await broker.find('same-id'))!.consumed, undefined);
      await bank.revokeByGrantId('g2');
      assert.equal(await bank.find('same-id'), undefined);
      assert.ok(await broker.find('same-id'));
    });
  });
}
