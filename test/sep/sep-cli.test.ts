import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from '../../src/store/database.ts';
import { sepDocument, startTestBroker } from '../support/test-broker.ts';
import supertest from 'supertest';
import { completeLogin, startLogin } from '../support/login-driver.ts';
import { PNG_LOGO } from '../support/images.ts';
import { registrationMetadata } from '../support/self-service.ts';
import { brana } from '../support/cli.ts';

describe('brana sep (the SeP registration CLI)', () => {
  let dir: string;
  let env: Record<string, string>;
  const write = (name: string, content: unknown) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
    return file;
  };
  const rowCount = async () => {
    const db = openDatabase(env.DATABASE_URL!);
    try {
      const seps = await db('sep').count({ n: '*' });
      const log = await db('assertion_log').where({ event: 'sep_registered' }).count({ n: '*' });
      return { seps: Number(seps[0]!.n), logged: Number(log[0]!.n) };
    } finally {
      await db.destroy();
    }
  };

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-cli-'));
    env = { DATABASE_URL: `sqlite:${path.join(dir, 'brana.sqlite')}`, BRANA_KEYS_DIR: path.join(dir, 'keys'), BRANA_MODE: 'production', BRANA_PUBLIC_URL: 'https://brana.example.cz' };
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('registers a SeP from a file and prints its client id and secret', async () => {
    const result = await brana(['sep', 'register', '--file', write('sep.json', sepDocument({ clientId: undefined }))], env);
    assert.equal(result.code, 0, result.stderr);
    const printed = JSON.parse(result.stdout) as { clientId: string; clientSecret: string; status: string };
    assert.match(printed.clientId, /^sep-[A-Za-z0-9_-]{16}$/);
    assert.ok(printed.clientSecret.length >= 43);
    assert.equal(printed.status, 'active');
    assert.deepEqual(await rowCount(), { seps: 1, logged: 1 });

    const shown = await brana(['sep', 'show', printed.clientId], env);
    assert.equal(shown.code, 0);
    assert.equal((JSON.parse(shown.stdout) as { group: string }).group, 'hradec-kralove');
    assert.ok(!shown.stdout.includes(printed.clientSecret), 'show never prints the secret');
    const listed = JSON.parse((await brana(['sep', 'list'], env)).stdout) as Array<{ clientId: string }>;
    assert.deepEqual(listed.map((s) => s.clientId), [printed.clientId]);
  });

  const invalid: Array<[string, Record<string, unknown>, RegExp]> = [
    ['an http redirect URI', { redirectUris: ['http://portal.example.cz/callback'] }, /redirectUris\.0: must use https/],
    ['a redirect URI with a fragment', { redirectUris: ['https://portal.example.cz/cb#x'] }, /redirectUris\.0: must not contain a fragment/],
    ['a wrong IČO check digit', { organisation: { id: '00268811', name: 'Město' } }, /organisation\.id: must be a valid IČO/],
    ['a private SeP without a legal basis', { spType: 'private' }, /legalBasis: a private-sector SeP must state the law/],
    ['an unknown attribute', { allowedAttributes: ['CurrentGivenName', 'ShoeSize'] }, /allowedAttributes\.1:/],
    ['an unknown identity means', { allowedMeans: ['eobcanka', 'telepathy'] }, /allowedMeans\.1: is not a configured identity means/],
    ['an unknown field', { colour: 'blue' }, /colour|Unrecognized key/],
    ['an LoA that does not exist', { minimumLoa: 'medium' }, /minimumLoa:/],
  ];
  for (const [what, change, message] of invalid) {
    it(`refuses ${what}, naming the file and field, and writes nothing`, async () => {
      const file = write('sep.json', sepDocument(change));
      const result = await brana(['sep', 'register', '--file', file], env);
      assert.equal(result.code, 2);
      assert.match(result.stderr, message);
      assert.ok(result.stderr.startsWith(`${file}: `), result.stderr);
      assert.equal(result.stdout, '');
      assert.deepEqual(await rowCount(), { seps: 0, logged: 0 });
    });
  }

  it('refuses a file that is not JSON, and a second registration of one client id', async () => {
    const broken = await brana(['sep', 'register', '--file', write('broken.json', '{ "name": ')], env);
    assert.equal(broken.code, 2);
    assert.match(broken.stderr, /broken\.json: is not valid JSON/);
    const document = sepDocument();
    assert.equal((await brana(['sep', 'register', '--file', write('a.json', document)], env)).code, 0);
    const twice = await brana(['sep', 'register', '--file', write('b.json', document)], env);
    assert.equal(twice.code, 2);
    assert.match(twice.stderr, /clientId: a SeP with client id .* is already registered/);
    assert.deepEqual(await rowCount(), { seps: 1, logged: 1 });
  });

  it('disables a SeP: its authorization requests are refused at once', async () => {
    const broker = await startTestBroker();
    try {
      const sep = await broker.registerSep();
      const brokerEnv = { DATABASE_URL: broker.broker.env.databaseUrl, BRANA_KEYS_DIR: broker.keysDir, BRANA_MODE: 'development' };
      const disabled = await brana(['sep', 'disable', sep.clientId], brokerEnv);
      assert.equal(disabled.code, 0, disabled.stderr);
      const refused = await startLogin(broker.url.origin, sep);
      assert.equal(refused.response.status, 400);
      assert.equal(refused.response.headers.location, undefined);
      const events = await broker.broker.log.query({ sepId: sep.clientId, event: 'sep_status_changed' });
      assert.deepEqual(events.map((e) => e.detail.to), ['disabled']);

      assert.equal((await brana(['sep', 'enable', sep.clientId], brokerEnv)).code, 0);
      assert.equal((await startLogin(broker.url.origin, sep)).response.status, 200);
      assert.equal((await brana(['sep', 'disable', 'no-such-client'], brokerEnv)).code, 2);
    } finally {
      await broker.close();
    }
  });

  it('approves a self-registered SeP and its tile, lists what waits, and rotates a secret', async () => {
    const broker = await startTestBroker();
    try {
      const brokerEnv = { DATABASE_URL: broker.broker.env.databaseUrl, BRANA_MODE: 'development', BRANA_PUBLIC_URL: broker.url.origin };
      const minted = await brana(['sep', 'initial-token', '--days', '2'], brokerEnv);
      assert.equal(minted.code, 0, minted.stderr);
      const { initialAccessToken, registrationEndpoint } = JSON.parse(minted.stdout) as { initialAccessToken: string; registrationEndpoint: string };
      assert.equal(registrationEndpoint, `${broker.url.origin}/reg`);
      const registered = await supertest(broker.url.origin).post('/reg').set('Authorization', `Bearer ${initialAccessToken}`).send(registrationMetadata());
      assert.equal(registered.status, 201, registered.text);
      const clientId = registered.body.client_id as string;

      const waiting = JSON.parse((await brana(['sep', 'list', '--pending'], brokerEnv)).stdout) as Array<{ clientId: string; status: string }>;
      assert.deepEqual(waiting.map((s) => [s.clientId, s.status]), [[clientId, 'pending']]);
      const shown = JSON.parse((await brana(['sep', 'show', clientId], brokerEnv)).stdout) as { approval: { awaiting: string; digest: string; establishesGroup: boolean } };
      assert.equal(shown.approval.awaiting, 'registration');
      assert.equal(waiting[0] && (waiting[0] as unknown as { approvalDigest: string }).approvalDigest, shown.approval.digest, 'sep list --pending shows the same digest');
      const unnamed = await brana(['sep', 'approve', clientId], brokerEnv);
      assert.equal(unnamed.code, 2);
      assert.match(unnamed.stderr, /--digest: required/);
      const stale = await brana(['sep', 'approve', clientId, '--digest', 'a'.repeat(64)], brokerEnv);
      assert.equal(stale.code, 2);
      assert.match(stale.stderr, /is not the version you reviewed/);
      assert.equal((await broker.broker.seps.find(clientId))?.status, 'pending', 'a refused approval changes nothing');
      const approved = await brana(['sep', 'approve', clientId, '--digest', shown.approval.digest], brokerEnv);
      assert.equal(approved.code, 0, approved.stderr);
      assert.equal((JSON.parse(approved.stdout) as { status: string }).status, 'active');
      const again = await brana(['sep', 'approve', clientId, '--digest', shown.approval.digest], brokerEnv);
      assert.equal(again.code, 2);
      assert.match(again.stderr, /has nothing waiting for approval/);
      assert.equal((await brana(['sep', 'reject', clientId, '--reason', 'x'], brokerEnv)).code, 2);

      const rotated = await brana(['sep', 'rotate-secret', clientId], brokerEnv);
      assert.equal(rotated.code, 0, rotated.stderr);
      const secret = (JSON.parse(rotated.stdout) as { clientSecret: string }).clientSecret;
      assert.notEqual(secret, registered.body.client_secret);
      const login = await completeLogin(broker.url.origin, { clientId, clientSecret: secret, redirectUri: registered.body.redirect_uris[0] }, { means: 'eobcanka', login: '100000001' });
      assert.ok(login.tokens.access_token);

      const events = (await broker.broker.log.query({ sepId: clientId })).map((e) => [e.event, e.detail.actor]);
      assert.deepEqual(events.slice(0, 3), [
        ['sep_registered', 'self-service (registration API)'],
        ['sep_approved', 'cli'],
        ['sep_secret_rotated', 'cli'],
      ]);
      // A tile the SeP requests is approved from the command line too.
      const tile = await supertest(broker.url.origin)
        .put(`/reg/${clientId}/tile`)
        .set('Authorization', `Bearer ${registered.body.registration_access_token}`)
        .send({
          name: { cs: 'Portál', en: 'Portal' },
          description: { cs: 'Popis', en: 'Description' },
          link: new URL(registered.body.redirect_uris[0]).origin,
          logo: PNG_LOGO.toString('base64'),
          conditions: { ownPortalUrl: new URL(registered.body.redirect_uris[0]).origin, servesPrivateContent: true, loginWithoutFurtherRegistration: true },
        });
      assert.equal(tile.status, 201, tile.text);
      const tiles = JSON.parse((await brana(['tile', 'list', '--status', 'pending'], brokerEnv)).stdout) as Array<{ id: number }>;
      assert.deepEqual(tiles.map((t) => t.id), [tile.body.id]);
      const published = await brana(['tile', 'approve', String(tile.body.id)], brokerEnv);
      assert.equal(published.code, 0, published.stderr);
      assert.equal((JSON.parse(published.stdout) as { status: string }).status, 'approved');
      assert.equal((await brana(['tile', 'approve', String(tile.body.id)], brokerEnv)).code, 2);
      assert.equal((await brana(['tile', 'reject', 'x1', '--reason', 'no'], brokerEnv)).code, 2);

      assert.equal((await brana(['sep', 'initial-token', '--days', '365'], brokerEnv)).code, 2);
      const noUse = await brana(['sep', 'initial-token', '--uses', '0'], brokerEnv);
      assert.equal(noUse.code, 2);
      assert.match(noUse.stderr, /--uses: must be a whole number of registrations between 1 and 100/);
      assert.equal((await brana(['sep', 'approve', 'no-such-client', '--digest', 'a'.repeat(64)], brokerEnv)).code, 2);
    } finally {
      await broker.close();
    }
  });
});
