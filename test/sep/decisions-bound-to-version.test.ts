import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AuditTrail } from '../../src/audit/audit-trail.ts';
import { ApprovalRefused, approvalDigest, NothingToDecide, SepRegistration } from '../../src/sep/sep-registration.ts';
import { SepStore } from '../../src/sep/sep-store.ts';
import { registrationOf } from '../../src/sep/sep.ts';
import { openTestTrail } from '../support/audit-trail.ts';
import { BACKENDS, createTestDatabase, type TestDatabase } from '../support/databases.ts';
import { sepDocument } from '../support/test-broker.ts';

/**
 * An administrator's decision acts on exactly the version reviewed (issue 17, and the outside
 * review's finding): a refusal names its digest as an approval does, a SeP's update racing an
 * approval on PostgreSQL never slips in between the check and the write, and only a suspension is
 * undone by a reinstatement.
 */
for (const backend of BACKENDS) {
  describe(`decisions on a SeP, bound to the version reviewed, on ${backend}`, () => {
    let store: TestDatabase;
    let trail: AuditTrail;
    let seps: SepStore;
    let registration: SepRegistration;

    before(async () => {
      store = await createTestDatabase(backend);
      trail = await openTestTrail(store.db);
      seps = new SepStore(store.db);
      registration = new SepRegistration(store.db, seps, trail.log, { allowLoopbackHttp: false, knownMeans: [] });
    });
    after(async () => {
      await trail.checkpoints.stop();
      await store.drop();
    });

    const recordsOf = async (event: string, sepId: string) => (await trail.log.query({ event, sepId })).length;

    it('refuses a refusal of a version other than the one named, and changes nothing', async () => {
      const { sep } = await registration.register(sepDocument(), 'pending', 'test');
      const reviewed = approvalDigest(sep)!;
      await registration.updateBySep(sep.clientId, { ...registrationOf(sep), description: 'Přepsaná žádost' }, sep.clientId);
      await assert.rejects(registration.reject(sep.clientId, 'admin:test', 'Nevyhovuje.', reviewed), (err: unknown) => err instanceof ApprovalRefused && err.code === 'stale_review');
      assert.equal((await seps.find(sep.clientId))!.status, 'pending');
      assert.equal(await recordsOf('sep_rejected', sep.clientId), 0);

      await registration.reject(sep.clientId, 'admin:test', 'Nevyhovuje.', approvalDigest((await seps.find(sep.clientId))!)!);
      assert.equal((await seps.find(sep.clientId))!.status, 'disabled');
      assert.equal(await recordsOf('sep_rejected', sep.clientId), 1);
    });

    it('suspends an active SeP and reinstates it; a refused registration is never reinstated', async () => {
      const { sep } = await registration.register(sepDocument(), 'active', 'test');
      await registration.suspend(sep.clientId, 'admin:test', 'Šetření');
      assert.equal((await seps.find(sep.clientId))!.status, 'disabled');
      await assert.rejects(registration.suspend(sep.clientId, 'admin:test', 'Znovu'), NothingToDecide);
      await registration.reinstate(sep.clientId, 'admin:test', 'Hotovo');
      assert.equal((await seps.find(sep.clientId))!.status, 'active');
      assert.equal(await recordsOf('sep_status_changed', sep.clientId), 2);

      const refused = (await registration.register(sepDocument(), 'pending', 'test')).sep;
      await registration.reject(refused.clientId, 'admin:test', 'Ne.');
      await assert.rejects(registration.reinstate(refused.clientId, 'admin:test', 'Zkusím to'), NothingToDecide);
      assert.equal((await seps.find(refused.clientId))!.status, 'disabled');
      assert.equal(await recordsOf('sep_status_changed', refused.clientId), 0);
    });

    if (backend === 'postgres') {
      it('does not approve a version a SeP\'s update committed while the approval waited: the approval reads the row it changes under lock', async () => {
        const { sep } = await registration.register(sepDocument(), 'pending', 'test');
        const reviewed = approvalDigest(sep)!;
        // A SeP's own update is under way: it holds the row and rewrites the request.
        const update = await store.db.transaction();
        await seps.findForChange(sep.clientId, update);
        await seps.replaceRegistration(sep.clientId, { ...registrationOf(sep), allowedAttributes: ['CurrentGivenName', 'CurrentFamilyName', 'DateOfBirth', 'eMail', 'idnumber'] }, update);
        const approval = registration.approve(sep.clientId, 'admin:test', reviewed).then(
          () => 'approved',
          (err: unknown) => (err instanceof ApprovalRefused ? err.code : String(err)),
        );
        await sleep(300);
        await update.commit();
        assert.equal(await approval, 'stale_review', 'the approval sees the version committed while it waited, and refuses');
        const after = (await seps.find(sep.clientId))!;
        assert.equal(after.status, 'pending');
        assert.ok(after.allowedAttributes.includes('idnumber'));
        assert.equal(await recordsOf('sep_approved', sep.clientId), 0);
      });
    }
  });
}
