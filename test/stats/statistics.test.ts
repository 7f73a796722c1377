import assert from 'node:assert/strict';
import supertest from 'supertest';
import type { AuditRecord } from '../../src/audit/assertion-log.ts';
import type { AuditTrail } from '../../src/audit/audit-trail.ts';
import { openTestTrail } from '../support/audit-trail.ts';
import { BACKENDS, createTestDatabase, type TestDatabase } from '../support/databases.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

/** Seeds records at given instants (ISO with offset, as a Prague clock shows them). */
async function seed(trail: AuditTrail, setClock: (ms: number) => void, rows: Array<[string, AuditRecord, number?]>): Promise<void> {
  for (const [at, record, times = 1] of rows) {
    setClock(Date.parse(at));
    for (let i = 0; i < times; i += 1) await trail.log.append(record);
  }
}

const login = (sepId: string, means: string): AuditRecord => ({ event: 'token_issued', outcome: 'success', sepId, means, loa: 'high', pseudonym: 'p', detail: { attributes: [] } });
const resolved = (firstTime: boolean): AuditRecord => ({ event: 'identity_resolved', outcome: 'success', means: 'eobcanka', detail: { firstTime, attributesAsserted: [] } });
const failure = (reason: string): AuditRecord => ({ event: 'error', outcome: 'failure', reason });

for (const backend of BACKENDS) {
  describe(`statistics on ${backend}: the seed's numbers from the assertion log, in Prague weeks`, () => {
    let store: TestDatabase | undefined;
    let brana: TestBroker;
    let trail: AuditTrail;
    let http: ReturnType<typeof supertest>;
    let auditor: string;
    let admin: string;
    let monitor: string;
    let sepA: string;
    let sepB: string;
    let now = 0;

    before(async () => {
      store = backend === 'postgres' ? await createTestDatabase('postgres') : undefined;
      brana = await startTestBroker(store ? { databaseUrl: store.url } : {});
      http = supertest(brana.url.origin);
      auditor = (await brana.broker.operators.issue('auditor', 'auditor')).token;
      admin = (await brana.broker.operators.issue('admin', 'admin')).token;
      monitor = (await brana.broker.operators.issue('monitor', 'prometheus')).token;
      sepA = (await brana.registerSep({ name: { cs: 'Portál Hradce Králové', en: 'Hradec Králové portal' } })).clientId;
      sepB = (await brana.registerSep({ name: { cs: 'Očkovací portál <b>', en: 'Vaccination portal <b>' }, group: 'ockovani' })).clientId;
      trail = await openTestTrail(brana.broker.db, {}, () => now);
      // Three weeks around the change to summer time (Sunday 31 March 2024, 02:00 → 03:00).
      await seed(trail, (ms) => (now = ms), [
        ['2024-02-10T10:00:00+01:00', resolved(true), 2],
        ['2024-03-18T09:00:00+01:00', login(sepA, 'eobcanka'), 3],
        ['2024-03-19T09:00:00+01:00', login(sepB, 'mojeid')],
        ['2024-03-19T09:05:00+01:00', resolved(true), 2],
        ['2024-03-19T09:06:00+01:00', resolved(false)],
        ['2024-03-20T12:00:00+01:00', failure('status_AuthnFailed')],
        // Sunday night in Prague (summer time) is still week 13; an hour later it is week 14,
        // although in UTC both are on Sunday 31 March.
        ['2024-03-31T23:30:00+02:00', login(sepA, 'mojeid')],
        ['2024-04-01T00:30:00+02:00', login(sepA, 'eobcanka'), 2],
        ['2024-04-02T08:00:00+02:00', resolved(true)],
        ['2024-04-03T08:00:00+02:00', { event: 'consent_refused', outcome: 'failure', sepId: sepB, reason: 'refused_by_citizen' }, 2],
        ['2024-04-04T08:00:00+02:00', failure('status_AuthnFailed')],
        // After the period: not counted.
        ['2024-04-08T00:30:00+02:00', login(sepB, 'eobcanka'), 5],
      ]);
    });
    after(async () => {
      await trail.checkpoints.stop();
      await brana.close();
      await store?.drop();
    });

    it('counts logins per week and means, registrations, logins per SeP and failures by reason exactly', async () => {
      const response = await http.get('/stats.json').query({ until: '2024-04-07', weeks: '3' }).set('Authorization', `Bearer ${auditor}`);
      assert.equal(response.status, 200);
      const stats = response.body;
      assert.equal(stats.timeZone, 'Europe/Prague');
      assert.equal(stats.from, '2024-03-17T23:00:00.000Z');
      assert.equal(stats.to, '2024-04-07T22:00:00.000Z');
      assert.deepEqual(stats.weeks, [
        { week: '2024-W12', monday: '2024-03-18', logins: 4, byMeans: { eobcanka: 3, mojeid: 1 }, registrations: 2, registeredPersons: 4 },
        { week: '2024-W13', monday: '2024-03-25', logins: 1, byMeans: { mojeid: 1 }, registrations: 0, registeredPersons: 4 },
        { week: '2024-W14', monday: '2024-04-01', logins: 2, byMeans: { eobcanka: 2 }, registrations: 1, registeredPersons: 5 },
      ]);
      assert.deepEqual(stats.means, [
        { id: 'eobcanka', logins: 5, name: { cs: 'eObčanka', en: 'eObčanka (electronic ID card)' } },
        { id: 'mojeid', logins: 2, name: stats.means[1].name },
      ]);
      assert.deepEqual(stats.loginsBySep, [
        { sepId: sepA, logins: 6, name: { cs: 'Portál Hradce Králové', en: 'Hradec Králové portal' } },
        { sepId: sepB, logins: 1, name: { cs: 'Očkovací portál <b>', en: 'Vaccination portal <b>' } },
      ]);
      assert.deepEqual(stats.failuresByReason, [
        { reason: 'refused_by_citizen', count: 2 },
        { reason: 'status_AuthnFailed', count: 2 },
      ]);
      assert.deepEqual(stats.totals, { logins: 7, registrations: 3, registeredPersons: 5, failures: 4 });
    });

    it('draws the dashboard as server-side SVG, in Czech or English, with the names escaped', async () => {
      const page = await http.get('/stats').query({ until: '2024-04-07', weeks: '3' }).set('Authorization', `Bearer ${admin}`);
      assert.equal(page.status, 200);
      assert.match(page.text, /<h1>Statistiky přihlášení<\/h1>/);
      assert.equal((page.text.match(/<svg [^>]*role="img"/g) ?? []).length, 4);
      assert.match(page.text, /<title id="registrations-title">Nárůst registrací<\/title>/);
      assert.match(page.text, /<title>W14 · eObčanka: 2<\/title>/);
      assert.ok(page.text.includes('Očkovací portál &lt;b&gt;') && !page.text.includes('Očkovací portál <b>'));
      assert.ok(!/<script|https?:\/\/(?!www\.w3\.org)/.test(page.text.replace(/href="[^"]*"/g, '')), 'nothing to fetch, nothing to run');
      const english = await http.get('/stats').query({ until: '2024-04-07', weeks: '3' }).set('Cookie', 'brana_lang=en').set('Authorization', `Bearer ${monitor}`);
      assert.match(english.text, /<h1>Login statistics<\/h1>/);
      assert.match(english.text, /Growth of registrations/);
    });

    it('shows the 20 most frequent failure reasons and sums the rest in one row, however many kinds anyone writes', async () => {
      // Reasons such as oidc_<error> carry what an identity means (or anyone at its callback) wrote.
      const rows: Array<[string, AuditRecord, number?]> = Array.from({ length: 30 }, (_, i) => [`2024-06-0${3 + (i % 5)}T10:00:00+02:00`, failure(`oidc_invented_${String(i).padStart(2, '0')}`), i < 3 ? 5 : 1]);
      await seed(trail, (ms) => (now = ms), rows);
      const response = await http.get('/stats.json').query({ until: '2024-06-09', weeks: '1' }).set('Authorization', `Bearer ${auditor}`);
      assert.equal(response.status, 200);
      const reasons = response.body.failuresByReason as Array<{ reason: string; count: number }>;
      assert.equal(reasons.length, 21);
      assert.deepEqual(reasons.slice(0, 3).map((row) => row.count), [5, 5, 5]);
      assert.deepEqual(reasons.at(-1), { reason: '(other)', count: 10 });
      assert.equal(response.body.totals.failures, 3 * 5 + 27);
    });

    it('asks a browser for the credential and lets every operator role in, nobody else', async () => {
      const anonymous = await http.get('/stats');
      assert.equal(anonymous.status, 401);
      assert.match(String(anonymous.headers['www-authenticate']), /^Basic realm=/);
      const basic = await http.get('/stats.json').auth('anyone', monitor);
      assert.equal(basic.status, 200);
      assert.equal((await http.get('/stats.json').auth('anyone', `${monitor}x`)).status, 401);
      const invalid = await http.get('/stats.json').query({ weeks: '0', until: '2024-02-30' }).set('Authorization', `Bearer ${auditor}`);
      assert.equal(invalid.status, 400);
      assert.match(invalid.body.error_description, /weeks:/);
      assert.match(invalid.body.error_description, /until: must be a date/);
    });
  });
}
