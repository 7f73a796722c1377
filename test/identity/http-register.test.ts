import assert from 'node:assert/strict';
import { readTestCitizens } from '../../src/devidp/test-citizens.ts';
import { HttpRegister } from '../../src/identity/http-register.ts';
import { RegisterUnavailable } from '../../src/identity/population-register.ts';
import { registerCheck } from '../../src/operations/readiness-checks.ts';
import { RegisterService } from '../support/register-service.ts';

const TIMEOUT_MS = 300;
const JAN = { givenName: 'Jan', familyName: 'Novák', dateOfBirth: '1980-04-12' };

async function unavailable(promise: Promise<unknown>, reason: RegisterUnavailable['reason']): Promise<RegisterUnavailable> {
  const err = await promise.then(
    () => assert.fail('expected RegisterUnavailable'),
    (caught: unknown) => caught,
  );
  assert.ok(err instanceof RegisterUnavailable, `expected RegisterUnavailable, got ${String(err)}`);
  assert.equal(err.reason, reason, err.message);
  return err;
}

describe('the population register over HTTP (the contract of docs/POPULATION-REGISTER.md)', () => {
  let service: RegisterService;
  let register: HttpRegister;
  before(async () => {
    service = await RegisterService.start();
    register = new HttpRegister({ url: service.url, timeoutMs: TIMEOUT_MS, bearerToken: 'register-token-1', retryDelayMs: 10 });
  });
  beforeEach(() => service.reset());
  after(async () => service.close());

  it('finds a person by name and date of birth, sending them in the body with the bearer token', async () => {
    const match = await register.match({ ...JAN, familyName: 'NOVÁK ' });
    assert.equal(match.kind, 'found');
    assert.deepEqual(match.kind === 'found' && match.record, readTestCitizens()[0]!.register);
    assert.deepEqual(service.requests, [{ method: 'POST', path: '/rob/v1/match', authorization: 'Bearer register-token-1', body: { ...JAN, familyName: 'NOVÁK ' } }]);
  });

  it('answers not_found and ambiguous as the register does; the place of birth tells twins apart', async () => {
    assert.deepEqual(await register.match({ ...JAN, dateOfBirth: '1980-04-13' }), { kind: 'not_found' });
    const twins = { givenName: 'Josef', familyName: 'Procházka', dateOfBirth: '1962-09-15' };
    assert.deepEqual(await register.match(twins), { kind: 'ambiguous' });
    const found = await register.match({ ...twins, placeOfBirth: 'Olomouc' });
    assert.equal(found.kind === 'found' && found.record.registerId, 'AIFO-0006-JP');
    assert.deepEqual(service.requests.at(-1)!.body, { ...twins, placeOfBirth: 'Olomouc' });
  });

  it('finds a record by register id, and nobody (not an error) on 404', async () => {
    assert.equal((await register.findById('AIFO-0002-MS'))?.familyName, 'Svobodová');
    assert.equal(await register.findById('AIFO-9999-XX'), undefined);
    assert.deepEqual(
      service.requests.map((r) => [r.method, r.path, r.body]),
      [
        ['GET', '/rob/v1/persons/AIFO-0002-MS', undefined],
        ['GET', '/rob/v1/persons/AIFO-9999-XX', undefined],
      ],
    );
  });

  it('retries a 5xx and a dropped connection, and takes the answer that follows', async () => {
    service.next = [{ status: 500 }, { hangUp: true }];
    assert.equal((await register.match(JAN)).kind, 'found');
    assert.equal(service.requests.length, 3);
  });

  it('gives up after two retries of a register that keeps failing', async () => {
    service.always = { status: 503 };
    const err = await unavailable(register.match(JAN), 'status');
    assert.match(err.message, /HTTP 503/);
    assert.equal(service.requests.length, 3, 'one attempt and two retries');
  });

  it('does not retry a 4xx: a refused token or request will not get better', async () => {
    service.next = [{ status: 401, body: '{"error":"invalid_token"}' }];
    await unavailable(register.match(JAN), 'status');
    service.next = [{ status: 400 }];
    await unavailable(register.findById('AIFO-0001-JN'), 'status');
    assert.equal(service.requests.length, 2);
  });

  it('counts an answer slower than the timeout as unavailable, without retrying it', async () => {
    service.always = { delayMs: TIMEOUT_MS + 300 };
    const started = Date.now();
    const err = await unavailable(register.findById('AIFO-0001-JN'), 'timeout');
    assert.match(err.message, new RegExp(`no answer within ${TIMEOUT_MS} ms`));
    assert.ok(Date.now() - started < TIMEOUT_MS + 250, 'the citizen waits one timeout, not three');
    assert.equal(service.requests.length, 1);
  });

  const malformed: Array<[string, string, () => Promise<unknown>]> = [
    ['a body that is not JSON', 'not json {', () => register.match(JAN)],
    ['an unknown result', '{"result":"maybe"}', () => register.match(JAN)],
    ['found without a record', '{"result":"found"}', () => register.match(JAN)],
    ['a record with a malformed date of birth', JSON.stringify({ result: 'found', record: { ...readTestCitizens()[0]!.register, dateOfBirth: '12.4.1980' } }), () => register.match(JAN)],
    ['a record without an address', JSON.stringify({ ...readTestCitizens()[0]!.register, address: undefined }), () => register.findById('AIFO-0001-JN')],
    ['the record of another person', JSON.stringify(readTestCitizens()[1]!.register), () => register.findById('AIFO-0001-JN')],
  ];
  for (const [what, body, lookUp] of malformed) {
    it(`counts ${what} as unavailable, not as an answer`, async () => {
      service.next = [{ status: 200, body }];
      await unavailable(lookUp(), 'malformed');
      assert.equal(service.requests.length, 1, 'a malformed answer is not retried');
    });
  }

  it('counts a register that cannot be reached as unavailable', async () => {
    const closed = await RegisterService.start();
    const url = closed.url;
    await closed.close();
    const err = await unavailable(new HttpRegister({ url, timeoutMs: TIMEOUT_MS, bearerToken: null, retryDelayMs: 10 }).match(JAN), 'unreachable');
    assert.match(err.message, /ECONNREFUSED/);
  });

  it('sends no Authorization header without a token, and never puts the token in an error', async () => {
    const anonymous = new HttpRegister({ url: service.url, timeoutMs: TIMEOUT_MS, bearerToken: null });
    await anonymous.findById('AIFO-0001-JN');
    assert.equal(service.requests[0]!.authorization, undefined);
    service.always = { status: 500 };
    const err = await unavailable(register.findById('AIFO-0001-JN'), 'status');
    assert.ok(!err.message.includes('register-token-1'));
  });

  describe('readiness', () => {
    it('is ready while the register answers its health check, asked at most once per cache period', async () => {
      let clock = 0;
      const check = registerCheck(() => register.probe(), 5000, () => clock);
      assert.deepEqual(await check(), { ok: true, detail: 'reachable' });
      assert.deepEqual(await check(), { ok: true, detail: 'reachable' });
      assert.deepEqual(service.requests.map((r) => [r.method, r.path, r.authorization]), [['GET', '/rob/v1/health', 'Bearer register-token-1']]);
      service.always = { status: 503 };
      clock += 4999;
      assert.equal((await check()).ok, true, 'still the cached answer');
      clock += 1;
      assert.deepEqual(await check(), { ok: false, detail: 'population register unavailable: health answered HTTP 503' });
      assert.equal(service.requests.length, 2);
    });

    it('is not ready when the register is too slow, within a bounded time', async () => {
      service.always = { delayMs: 2000 };
      const started = Date.now();
      const result = await registerCheck(() => register.probe())();
      assert.equal(result.ok, false);
      assert.match(String(result.detail), /no answer within 300 ms/);
      assert.ok(Date.now() - started < 1000);
    });

    it('an embedded register is always ready', async () => {
      assert.deepEqual(await registerCheck(null)(), { ok: true, detail: 'embedded' });
    });
  });
});
