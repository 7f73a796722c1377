import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigurationError } from '../../src/config/configuration-error.ts';
import { SigningKeyReload } from '../../src/keys/signing-key-reload.ts';
import { SIGNING_KEYS_FILE, SigningKeyRing, type SigningKeyView } from '../../src/keys/signing-keys.ts';
import { eventually } from '../support/eventually.ts';

const MINUTE = 60_000;
const T0 = Date.parse('2026-03-01T10:00:00Z');

describe('ID-token signing keys and their rotation schedule', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-signing-'));
    file = path.join(dir, SIGNING_KEYS_FILE);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads a key file written before rotation existed: every key signs from the start', async () => {
    const ring = await SigningKeyRing.generate();
    const legacy = { keys: ring.keys.map((key) => key.jwk) };
    const view = SigningKeyRing.parse(JSON.stringify(legacy), file).view(T0);
    assert.deepEqual(view.signing, { RS256: ring.keys[0]!.jwk.kid, ES256: ring.keys[1]!.jwk.kid });
    assert.equal(view.nextChange, null);
    assert.ok(view.jwks.keys.every((key) => typeof key.d === 'string'), 'oidc-provider is given private keys');
  });

  it('publishes new keys at once, signs with them from activeFrom, and drops the old ones once their tokens have expired', async () => {
    const original = await SigningKeyRing.generate();
    const activeFrom = T0 + 2 * MINUTE;
    const retain = 11 * MINUTE;
    const { ring, added, retiring, removed } = await original.rotated(T0, activeFrom, retain);
    assert.deepEqual(removed, []);
    assert.deepEqual(retiring.map((key) => key.publishUntil), [activeFrom + retain, activeFrom + retain]);
    const [oldRs, oldEs] = original.keys.map((key) => key.jwk.kid);
    const [newRs, newEs] = added.map((key) => key.jwk.kid);

    const before = ring.view(T0);
    assert.deepEqual(before.signing, { RS256: oldRs, ES256: oldEs }, 'the old keys sign until every node has the new ones');
    assert.deepEqual([...before.published].sort(), [oldRs, oldEs, newRs, newEs].sort(), 'but the new ones are published already');
    assert.deepEqual(before.jwks.keys.slice(0, 2).map((key) => key.kid), [oldRs, oldEs], 'oidc-provider signs with the first key of an algorithm');
    assert.equal(before.nextChange, activeFrom);

    const after = ring.view(activeFrom);
    assert.deepEqual(after.signing, { RS256: newRs, ES256: newEs });
    assert.deepEqual(after.jwks.keys.slice(0, 2).map((key) => key.kid), [newRs, newEs]);
    assert.ok(after.published.includes(oldRs!), 'tokens the old key signed can still be verified');
    assert.equal(after.nextChange, activeFrom + retain);
    assert.notEqual(after.fingerprint, before.fingerprint);

    const later = ring.view(activeFrom + retain);
    assert.deepEqual([...later.published].sort(), [newRs, newEs].sort());
    assert.equal(later.nextChange, null);

    // The next rotation removes what is no longer published from the file.
    const next = await ring.rotated(activeFrom + retain + 1, activeFrom + retain + MINUTE, retain);
    assert.deepEqual([...next.removed].sort(), [oldRs, oldEs].sort());
    assert.equal(next.ring.keys.length, 4);
  });

  it('survives its own file: what it writes it reads back identically', async () => {
    const ring = (await (await SigningKeyRing.generate()).rotated(T0, T0 + MINUTE, MINUTE)).ring;
    const again = SigningKeyRing.parse(ring.serialize(), file);
    assert.deepEqual(again.view(T0 + MINUTE), ring.view(T0 + MINUTE));
  });

  const broken: Array<[string, (doc: { keys: Array<Record<string, unknown>>; schedule?: Record<string, unknown> }) => unknown, RegExp]> = [
    ['is not JSON', () => '{"keys": [', /\(document\): is not valid JSON/],
    ['holds a public key only', (doc) => ({ keys: doc.keys.map(({ d: _d, ...pub }) => pub) }), /keys\.0\.d: /],
    ['uses an algorithm Brána does not sign with', (doc) => ({ keys: doc.keys.map((key) => ({ ...key, alg: 'HS256' })) }), /keys\.0\.alg: /],
    ['schedules a key it does not hold', (doc) => ({ ...doc, schedule: { nobody: { activeFrom: 0, publishUntil: null } } }), /schedule\.nobody: names no key/],
    ['has no key that signs now', (doc) => ({ keys: doc.keys, schedule: Object.fromEntries(doc.keys.map((key) => [key.kid, { activeFrom: Date.now() + 3_600_000, publishUntil: null }])) }), /schedule: no RS256 key signs at /],
  ];
  for (const [what, change, message] of broken) {
    it(`refuses a key file that ${what}, naming the file and the field`, async () => {
      const doc = JSON.parse((await SigningKeyRing.generate()).serialize()) as { keys: Array<Record<string, unknown>> };
      const changed = change(doc);
      assert.throws(
        () => SigningKeyRing.parse(typeof changed === 'string' ? changed : JSON.stringify(changed), file),
        (err: unknown) => err instanceof ConfigurationError && err.message.startsWith(`${file}: `) && message.test(err.message),
      );
    });
  }

  describe('on a running node', () => {
    it('picks up a rotated file when asked (SIGHUP) and tells its listeners once', async () => {
      fs.writeFileSync(file, (await SigningKeyRing.generate()).serialize());
      const reload = new SigningKeyReload(file, { intervalMs: 3_600_000 });
      const seen: SigningKeyView[] = [];
      reload.onChange((view) => seen.push(view));
      assert.equal(await reload.check('signal'), false, 'nothing changed yet');

      const { ring, added } = await SigningKeyRing.read(file).ring.rotated(Date.now(), Date.now(), MINUTE);
      fs.writeFileSync(file, ring.serialize());
      assert.equal(await reload.check('signal'), true);
      assert.equal(await reload.check('signal'), false);
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.signing.RS256, added[0]!.jwk.kid);
      assert.equal(reload.status().lastError, null);
    });

    it('keeps its keys when the file is broken, and says so', async () => {
      fs.writeFileSync(file, (await SigningKeyRing.generate()).serialize());
      const reload = new SigningKeyReload(file, { intervalMs: 3_600_000 });
      const before = reload.current();
      fs.writeFileSync(file, '{"keys": []}');
      assert.equal(await reload.check('signal'), false);
      assert.deepEqual(reload.current(), before);
      assert.match(reload.status().lastError ?? '', /keys: /);
    });

    it('switches to the new keys by itself when their time comes', async () => {
      const { ring, added } = await (await SigningKeyRing.generate()).rotated(Date.now(), Date.now() + 300, MINUTE);
      fs.writeFileSync(file, ring.serialize());
      const reload = new SigningKeyReload(file, { intervalMs: 3_600_000 });
      assert.notEqual(reload.current().signing.RS256, added[0]!.jwk.kid);
      reload.start();
      try {
        await eventually(() => reload.current().signing.RS256 === added[0]!.jwk.kid, 'the scheduled switch to the new key');
      } finally {
        reload.stop();
      }
    });
  });
});
