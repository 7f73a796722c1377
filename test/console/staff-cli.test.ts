import assert from 'node:assert/strict';
import { CONSOLE_GROUP } from '../../src/console/console-sep.ts';
import { staff } from '../support/console.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

/** `brana staff grant|revoke|list`: every change in the log, every wrong command refused with nothing changed. */
describe('brana staff', () => {
  let brana: TestBroker;
  before(async () => {
    brana = await startTestBroker();
  });
  after(async () => brana?.close());

  const records = async () => [...(await brana.broker.log.query({ event: 'staff_granted' })), ...(await brana.broker.log.query({ event: 'staff_revoked' }))];
  const grants = async () => (await brana.broker.db('staff_role').select('register_id', 'role', 'name', 'granted_by')) as Array<Record<string, string>>;

  it('grants a role to a register id, and logs it by name and console pseudonym, never by the register id', async () => {
    const result = await staff(brana, ['grant', 'AIFO-0004-JC', '--role', 'administrator', '--name', 'Jana Černá']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), { registerId: 'AIFO-0004-JC', role: 'administrator', name: 'Jana Černá', granted: true });
    assert.deepEqual(await grants(), [{ register_id: 'AIFO-0004-JC', role: 'administrator', name: 'Jana Černá', granted_by: 'cli' }]);

    const [record] = await brana.broker.log.query({ event: 'staff_granted' });
    const person = await brana.broker.persons.findByRegisterId('AIFO-0004-JC');
    assert.equal(record!.pseudonym, brana.broker.pseudonyms.forGroup(person!.id, CONSOLE_GROUP));
    assert.deepEqual(record!.detail, { actor: 'cli', name: 'Jana Černá', role: 'administrator' });
    assert.ok(!JSON.stringify(record).includes('AIFO-0004-JC'), 'the register id is not in the log');
  });

  it('changes nothing when the person already holds the role', async () => {
    const before = (await records()).length;
    const result = await staff(brana, ['grant', 'AIFO-0004-JC', '--role', 'administrator', '--name', 'Jana Černá']);
    assert.equal(result.code, 0);
    assert.equal(JSON.parse(result.stdout).granted, false);
    assert.equal((await records()).length, before);
  });

  it('lists who holds which role', async () => {
    await staff(brana, ['grant', 'AIFO-0004-JC', '--role', 'auditor', '--name', 'Jana Černá']);
    const listed = JSON.parse((await staff(brana, ['list'])).stdout) as Array<Record<string, string>>;
    assert.deepEqual(listed.map((grant) => [grant.registerId, grant.role, grant.name, grant.grantedBy]), [
      ['AIFO-0004-JC', 'administrator', 'Jana Černá', 'cli'],
      ['AIFO-0004-JC', 'auditor', 'Jana Černá', 'cli'],
    ]);
  });

  for (const [why, args, message] of [
    ['an unknown role', ['grant', 'AIFO-0005-JP', '--role', 'admin', '--name', 'Josef'], /--role: must be one of auditor, administrator, operator/],
    ['no name', ['grant', 'AIFO-0005-JP', '--role', 'auditor', '--name', '  '], /--name: must be 1 to 200 characters on one line/],
    ['a register id that is not one', ['grant', 'AIFO 0005; DROP', '--role', 'auditor', '--name', 'Josef'], /register id: must be the id the population register gives/],
    ['a second role under another name (the log names one person one way)', ['grant', 'AIFO-0004-JC', '--role', 'operator', '--name', 'J. Černá'], /--name: AIFO-0004-JC holds the role administrator as "Jana Černá"; grant further roles under that name/],
    ['revoking a role the person does not hold', ['revoke', 'AIFO-0005-JP', '--role', 'auditor'], /AIFO-0005-JP does not hold the role auditor; nothing was changed/],
  ] as const) {
    it(`refuses ${why} with exit code 2, and changes nothing`, async () => {
      const [grantsBefore, recordsBefore] = [await grants(), (await records()).length];
      const result = await staff(brana, [...args]);
      assert.equal(result.code, 2);
      assert.match(result.stderr, message);
      assert.deepEqual(await grants(), grantsBefore);
      assert.equal((await records()).length, recordsBefore);
    });
  }

  it('revokes a role, and logs it with the name it was granted under', async () => {
    const result = await staff(brana, ['revoke', 'AIFO-0004-JC', '--role', 'auditor']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), { registerId: 'AIFO-0004-JC', role: 'auditor', name: 'Jana Černá', revoked: true });
    assert.deepEqual((await grants()).map((grant) => grant.role), ['administrator']);
    const [record] = await brana.broker.log.query({ event: 'staff_revoked' });
    assert.deepEqual(record!.detail, { actor: 'cli', name: 'Jana Černá', role: 'auditor' });
  });
});
