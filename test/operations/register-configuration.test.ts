import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import supertest from 'supertest';
import { ConfigurationErrors } from '../../src/config/configuration-error.ts';
import { readEnvironment } from '../../src/config/environment.ts';
import { holdsTestCitizens, readTestCitizens, TEST_CITIZENS_FILE } from '../../src/devidp/test-citizens.ts';
import type { RegisterRecord } from '../../src/identity/population-register.ts';
import { runBrokerToEnd, startBrokerProcess } from '../support/broker-process.ts';
import { RegisterService } from '../support/register-service.ts';
import { startRoutingProxy } from '../support/routing-proxy.ts';
import { idpKey, idpMetadataXml, providersFolder, samlMeansFile } from '../support/external-idp.ts';

const PRODUCTION = { BRANA_MODE: 'production', BRANA_PUBLIC_URL: 'https://brana.example.cz' };

/** The problems readEnvironment reports, as `VARIABLE: problem` lines. */
function problemsOf(env: Record<string, string>): string[] {
  try {
    readEnvironment(env);
  } catch (err) {
    assert.ok(err instanceof ConfigurationErrors, String(err));
    return err.message.split('\n').map((line) => line.replace(/^environment: /, ''));
  }
  return [];
}

describe('which population register a node uses, checked at start', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-register-config-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  describe('the settings', () => {
    it('nothing configured is no register: the broker then uses the test citizens in development (npm start just works) and only there', () => {
      assert.equal(readEnvironment({}).populationRegister, null);
      assert.equal(readEnvironment(PRODUCTION).populationRegister, null);
    });

    it('a register service: its URL, the token from the variable it names, a timeout', () => {
      const env = readEnvironment({
        ...PRODUCTION,
        BRANA_POPULATION_REGISTER_URL: 'https://rob.example.cz/v1',
        BRANA_POPULATION_REGISTER_TOKEN_ENV: 'ROB_TOKEN',
        ROB_TOKEN: 's3cret-token',
        BRANA_POPULATION_REGISTER_TIMEOUT_MS: '1500',
      });
      assert.deepEqual(env.populationRegister, { kind: 'http', url: new URL('https://rob.example.cz/v1'), bearerToken: 's3cret-token', timeoutMs: 1500 });
      const plain = readEnvironment({ BRANA_POPULATION_REGISTER_URL: 'http://127.0.0.1:8081/' }).populationRegister;
      assert.deepEqual(plain, { kind: 'http', url: new URL('http://127.0.0.1:8081/'), bearerToken: null, timeoutMs: 3000 });
    });

    it('a pilot may run production with its own register file, never one holding the test citizens', () => {
      const pilot = path.join(dir, 'pilot.json');
      fs.writeFileSync(pilot, JSON.stringify({ citizens: [{ register: { registerId: 'PILOT-1' } }] }));
      assert.deepEqual(readEnvironment({ ...PRODUCTION, BRANA_POPULATION_REGISTER: pilot }).populationRegister, { kind: 'embedded', file: pilot });
      assert.equal(holdsTestCitizens(pilot), false);
      const copy = path.join(dir, 'copy.json');
      const citizens = JSON.parse(fs.readFileSync(TEST_CITIZENS_FILE, 'utf8')) as { citizens: unknown[] };
      fs.writeFileSync(copy, JSON.stringify({ citizens: [...citizens.citizens.slice(2, 3), { register: { registerId: 'PILOT-1' } }] }));
      const link = path.join(dir, 'link.json');
      fs.symlinkSync(TEST_CITIZENS_FILE, link);
      // Told apart by the composition root, which refuses such a file in production (the start is tested below).
      for (const file of [TEST_CITIZENS_FILE, copy, link]) assert.equal(holdsTestCitizens(file), true, file);
      assert.equal(readEnvironment({ BRANA_POPULATION_REGISTER: copy }).populationRegister?.kind, 'embedded', 'development may use them');
    });

    const wrong: Array<[string, Record<string, string>, string]> = [
      ['a file and a URL', { BRANA_POPULATION_REGISTER: TEST_CITIZENS_FILE, BRANA_POPULATION_REGISTER_URL: 'http://localhost:8081/' }, 'BRANA_POPULATION_REGISTER_URL: is set together with BRANA_POPULATION_REGISTER'],
      ['plain http in production', { ...PRODUCTION, BRANA_POPULATION_REGISTER_URL: 'http://127.0.0.1:8081/' }, 'BRANA_POPULATION_REGISTER_URL: must be an https URL in production mode'],
      ['plain http off loopback', { BRANA_POPULATION_REGISTER_URL: 'http://rob.example.cz/' }, 'BRANA_POPULATION_REGISTER_URL: may use plain http only on loopback'],
      ['credentials in the URL', { BRANA_POPULATION_REGISTER_URL: 'https://brana:pw@rob.example.cz/' }, 'BRANA_POPULATION_REGISTER_URL: must be the http(s) base URL'],
      ['a token variable that is not set', { BRANA_POPULATION_REGISTER_URL: 'https://rob.example.cz/', BRANA_POPULATION_REGISTER_TOKEN_ENV: 'ROB_TOKEN' }, 'BRANA_POPULATION_REGISTER_TOKEN_ENV: names an environment variable that is not set or is empty'],
      ['a token instead of its variable name', { BRANA_POPULATION_REGISTER_URL: 'https://rob.example.cz/', BRANA_POPULATION_REGISTER_TOKEN_ENV: 'eyJ.secret-token' }, 'BRANA_POPULATION_REGISTER_TOKEN_ENV: must be the name of an environment variable'],
      ['a token variable without a register service', { BRANA_POPULATION_REGISTER_TOKEN_ENV: 'ROB_TOKEN', ROB_TOKEN: 'x' }, 'BRANA_POPULATION_REGISTER_TOKEN_ENV: applies only to a register service'],
      ['a timeout that is too short', { BRANA_POPULATION_REGISTER_URL: 'https://rob.example.cz/', BRANA_POPULATION_REGISTER_TIMEOUT_MS: '5' }, 'BRANA_POPULATION_REGISTER_TIMEOUT_MS: must be a whole number from 100 to 60000'],
      ['a file that is not a register', { BRANA_POPULATION_REGISTER: path.join(process.cwd(), 'package.json') }, 'is not a register file: it has no "citizens" list'],
    ];
    for (const [what, env, problem] of wrong) {
      it(`refuses ${what}, in one line`, () => {
        const problems = problemsOf(env);
        assert.equal(problems.length, 1, problems.join('\n'));
        assert.ok(problems[0]!.includes(problem), problems[0]);
        assert.ok(!problems[0]!.includes('eyJ.secret-token'), 'a token put in the wrong variable is not repeated');
      });
    }
  });

  describe('a production node', () => {
    let env: Record<string, string>;
    before(() => {
      // One SAML means pointed at an operator's metadata file: what production accepts instead of the development IdPs.
      const providers = providersFolder({
        keep: [],
        extra: { external: samlMeansFile({}, { metadata: 'external.xml' }) },
        files: { 'external.xml': idpMetadataXml({ entityId: 'https://idp.example.cz', ssoUrl: 'https://idp.example.cz/sso', certificates: [idpKey(0).certificatePem] }) },
      });
      env = {
        ...PRODUCTION,
        DATABASE_URL: `sqlite:${path.join(dir, 'brana.sqlite')}`,
        BRANA_KEYS_DIR: path.join(dir, 'keys'),
        BRANA_PROVIDERS_DIR: providers,
        LOG_LEVEL: 'error',
      };
    });

    it('refuses to start without a population register, in one clear line', async () => {
      const result = await runBrokerToEnd(env);
      assert.equal(result.code, 2, result.stderr);
      assert.equal(
        result.stderr,
        "Brána cannot start: environment: BRANA_POPULATION_REGISTER_URL: production mode needs a population register (the register service's https URL, or BRANA_POPULATION_REGISTER with a pilot's register file); the development test citizens are never used in production\n",
      );
    });

    it('refuses to start with the development test citizens as its register', async () => {
      const result = await runBrokerToEnd({ ...env, BRANA_POPULATION_REGISTER: TEST_CITIZENS_FILE });
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /^Brána cannot start: environment: BRANA_POPULATION_REGISTER: file .+ holds the development test citizens: production mode never resolves real people against test data\n$/);
    });

    it('starts with a register service over https and is ready when it answers, with the token sent and never shown', async () => {
      // The register service behind TLS (the test's own certificate, trusted by the node as an operator's CA would be).
      const pilot: RegisterRecord = { ...readTestCitizens()[0]!.register, registerId: 'PILOT-0001' };
      const service = await RegisterService.start([pilot]);
      const tls = await startRoutingProxy();
      tls.routeTo({ name: 'register', port: Number(service.url.port) });
      const ca = path.join(dir, 'register-ca.pem');
      fs.writeFileSync(ca, tls.ca);
      const node = await startBrokerProcess('production', {
        ...env,
        NODE_EXTRA_CA_CERTS: ca,
        BRANA_POPULATION_REGISTER_URL: `${tls.origin}/rob/v1`,
        BRANA_POPULATION_REGISTER_TOKEN_ENV: 'ROB_TOKEN',
        ROB_TOKEN: 'rob-production-token',
      });
      try {
        const ready = await supertest(node.origin).get('/readyz').expect(200);
        assert.equal(ready.body.checks.register.ok, true);
        assert.ok(service.requests.some((request) => request.path === '/rob/v1/health' && request.authorization === 'Bearer rob-production-token'), 'asked over https with the token');
        assert.ok(!node.output().includes('rob-production-token'), 'the token is never shown');
      } finally {
        await node.kill();
        await tls.close();
        await service.close();
      }
    });

    it('starts with a register service, and is not ready while that register cannot be reached', async () => {
      // Nothing listens on port 9 of loopback: the register is configured but down.
      const node = await startBrokerProcess('production', { ...env, BRANA_POPULATION_REGISTER_URL: 'https://127.0.0.1:9/rob/v1', BRANA_POPULATION_REGISTER_TOKEN_ENV: 'ROB_TOKEN', ROB_TOKEN: 'never-printed' });
      try {
        const ready = await supertest(node.origin).get('/readyz').expect(503);
        assert.equal(ready.body.checks.register.ok, false);
        assert.match(ready.body.checks.register.detail, /^population register unavailable: health: /);
        assert.equal(ready.body.checks.database.ok, true);
        assert.ok(!node.output().includes('never-printed') && !JSON.stringify(ready.body).includes('never-printed'), 'the token is never shown');
      } finally {
        await node.kill();
      }
    });
  });
});
