import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { AssertionLogRow } from '../../src/audit/assertion-log.ts';
import { readJsonlExport } from '../../src/audit/export.ts';
import { verifyChain, type ChainEntry } from '../../src/audit/verification.ts';
import { accessibilityProblems, describeViolations, launchChromium, screenshot } from '../support/browser.ts';
import { staff } from '../support/console.ts';
import { PNG_LOGO } from '../support/images.ts';
import { asDatabaseOperator } from '../support/databases.ts';
import { completeLogin } from '../support/login-driver.ts';
import { registrationOf } from '../../src/sep/sep.ts';
import { sepDocument, startTestBroker, type TestBroker } from '../support/test-broker.ts';

/**
 * The consoles in a real browser (Debian's Chromium through playwright-core), with axe-core on
 * every console page: an auditor finds a citizen's login, verifies it and exports it; a tampered
 * record shows as broken; an administrator approves a change from its diff, and an approval of a
 * registration that changed after the page was shown is refused; an operator reads the health of
 * the federation; a citizen without a role gets 403; every console action is in the log with who
 * did it. One broker and one browser for the whole suite; a browser context per person.
 */
describe('the staff consoles in a real browser', function () {
  this.timeout(180_000);
  let brana: TestBroker;
  let browser: Browser;
  let downloads: string;

  before(async () => {
    brana = await startTestBroker();
    browser = await launchChromium();
    downloads = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-console-'));
    for (const [registerId, role, name] of [
      ['AIFO-0001-JN', 'auditor', 'Jan Novák'],
      ['AIFO-0002-MS', 'administrator', 'Marie Svobodová'],
      ['AIFO-0003-PD', 'operator', 'Petr Dvořák'],
    ]) {
      const granted = await staff(brana, ['grant', registerId!, '--role', role!, '--name', name!]);
      assert.equal(granted.code, 0, granted.stderr);
    }
  });
  after(async () => {
    await browser?.close();
    await brana?.close();
    if (downloads) fs.rmSync(downloads, { recursive: true, force: true });
  });

  /** axe-core on the page: no serious or critical violation; a screenshot either way. */
  async function accessible(page: Page, name: string): Promise<void> {
    await screenshot(page, name);
    const problems = await accessibilityProblems(page, name);
    assert.deepEqual(problems, [], `${name}:\n${describeViolations(problems)}`);
  }

  /** Signs in to the console in this page with eObčanka (LoA high) as the test citizen with this card number. */
  async function signIn(page: Page, card: string): Promise<void> {
    await page.goto(`${brana.url.origin}/console/`);
    await page.getByRole('heading', { level: 1, name: 'Konzole Brány' }).waitFor();
    await page.getByRole('link', { name: 'Přihlásit se (vysoká úroveň záruky)' }).click();
    await page.waitForURL((url) => url.pathname.startsWith('/interaction/'));
    await page.locator('button[value="eobcanka"]').click();
    await page.waitForURL(/\/dev-idp\/[^/]+\/sso/);
    await page.locator(`input[name="login"][value="${card}"]`).check();
    await page.getByRole('button', { name: /^(Přihlásit|Log in)$/ }).click();
    await page.waitForURL((url) => url.pathname.startsWith('/console'));
  }

  const recordsOf = (event: string) => brana.broker.log.query({ event });

  describe('an auditor', () => {
    let context: BrowserContext;
    let page: Page;
    let loginSeq: number;

    before(async () => {
      // A citizen (Josef Procházka, AIFO-0006-JP) logs in at a SeP: the login the auditor looks for.
      const sep = await brana.registerSep({ name: { cs: 'Portál obce Lhota', en: 'Lhota portal' } });
      await completeLogin(brana.url.origin, sep, { means: 'eobcanka', login: '100000006', scope: 'openid profile' });
      const [issued] = (await recordsOf('token_issued')).filter((record) => record.sepId === sep.clientId);
      loginSeq = issued!.seq;
      await brana.broker.audit.checkpoints.make();
      context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'cs-CZ', acceptDownloads: true });
      page = await context.newPage();
    });
    after(async () => context?.close());

    it('signs in through Brána at LoA high and sees the sections of the auditor role', async () => {
      await signIn(page, '100000001');
      await page.getByText('Jste přihlášeni jako Jan Novák (auditor).').waitFor();
      await accessible(page, 'console-01-home');
      await page.getByRole('navigation', { name: 'Části konzole' }).getByRole('link', { name: 'Protokol' }).click();
      await page.getByRole('heading', { level: 1, name: 'Protokol o přihlášeních' }).waitFor();
      await accessible(page, 'console-02-audit-search');
    });

    it('is refused a search for a person without a reason, and nothing is searched', async () => {
      const before = (await recordsOf('audit_queried')).length;
      await page.getByLabel('Osoba', { exact: true }).fill('AIFO-0006-JP');
      await page.getByRole('button', { name: 'Hledat' }).click();
      await page.getByRole('alert').filter({ hasText: 'důvod: hledáte-li osobu, uveďte důvod' }).waitFor();
      assert.equal((await recordsOf('audit_queried')).length, before);
      await accessible(page, 'console-03-audit-refused');
    });

    /** On the search page: the citizen's logins by register id, with the reason of the case. */
    async function searchForTheLogin(): Promise<void> {
      await page.getByLabel('Osoba', { exact: true }).fill('AIFO-0006-JP');
      await page.getByLabel('Důvod hledání (povinný při hledání osoby)').fill('Spis 12/2026, žádost soudu');
      await page.getByLabel('Druh události').selectOption('token_issued');
      await page.getByRole('button', { name: 'Hledat' }).click();
      await page.getByRole('heading', { level: 2, name: 'Nalezené záznamy' }).waitFor();
    }

    it('finds the citizen\'s login by register id with a stated reason, and the search is logged with it', async () => {
      await searchForTheLogin();
      const rows = page.locator('table.records tbody tr');
      assert.equal(await rows.count(), 1);
      assert.match((await rows.first().textContent()) ?? '', /token_issued[\s\S]*eobcanka[\s\S]*high/);
      await accessible(page, 'console-04-audit-results');

      const [search] = (await recordsOf('audit_queried')).filter((record) => record.detail.via === 'console' && record.detail.reason);
      assert.ok(search, 'the search is in the log');
      assert.equal(search!.detail.actor, 'staff:Jan Novák');
      assert.equal(search!.detail.reason, 'Spis 12/2026, žádost soudu');
      assert.match(JSON.stringify(search!.detail.filter), /"registerIdSha256":"[0-9a-f]{64}"/);
      assert.ok(!JSON.stringify(search).includes('AIFO-0006-JP'), 'the register id searched for is in the log only as its digest');
    });

    it('opens the record: its fields, its place in the chain, and that the chain and the signed checkpoint verify', async () => {
      await page.getByRole('link', { name: `Záznam ${loginSeq}` }).click();
      await page.getByRole('heading', { level: 1, name: `Záznam ${loginSeq} protokolu` }).waitFor();
      assert.match((await page.locator('#verdict').textContent()) ?? '', /je neporušený a kontrolní body jsou platně podepsané/);
      assert.equal(await page.locator('#hash-matches').textContent(), 'ano');
      assert.equal(await page.locator('#sealed').textContent(), 'ano');
      assert.match((await page.locator('#closing').textContent()) ?? '', /^u záznamu \d+, podepsán/);
      await accessible(page, 'console-05-record');
      const [viewed] = (await recordsOf('audit_queried')).filter((record) => record.detail.what === 'record');
      assert.equal(viewed!.detail.seq, loginSeq);
      assert.equal(viewed!.detail.actor, 'staff:Jan Novák');
    });

    it('exports the login as the signed bundle, which verifies with the audit public key alone', async () => {
      // The results were the answer to a POST, never kept by the browser: the auditor searches again.
      await page.getByRole('link', { name: 'Zpět na hledání' }).click();
      await searchForTheLogin();
      await page.getByRole('heading', { level: 2, name: 'Export nalezených záznamů' }).waitFor();
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Stáhnout podepsaný export (JSON Lines)' }).click()]);
      const file = path.join(downloads, 'export.jsonl');
      await download.saveAs(file);
      const lines = readJsonlExport(fs.readFileSync(file, 'utf8'));
      const records = lines.flatMap((line) => (line.kind === 'record' ? [line.record] : []));
      assert.deepEqual(records.map((record) => [record.seq, record.event]), [[loginSeq, 'token_issued']]);
      const report = await verifyChain({
        entries: lines.flatMap((line): ChainEntry[] => (line.kind === 'record' || line.kind === 'digest' ? [line.entry] : [])),
        checkpoints: lines.flatMap((line) => (line.kind === 'checkpoint' ? [line.jws] : [])),
        publicJwks: brana.broker.audit.keys.publicJwks,
      });
      assert.equal(report.intact, true, JSON.stringify(report.problems));
      assert.ok(report.checkpoints.valid >= 1);
      const [exported] = (await recordsOf('audit_exported')).filter((record) => record.detail.format === 'jsonl');
      assert.equal(exported!.detail.actor, 'staff:Jan Novák');
      assert.equal(exported!.detail.reason, 'Spis 12/2026, žádost soudu');
    });

    it('prints a report a court can read: what was released, to whom, when, at which LoA, and that it verifies', async () => {
      await page.getByRole('button', { name: 'Zpráva k tisku' }).click();
      await page.getByRole('heading', { level: 1, name: 'Výpis z protokolu o přihlášeních' }).waitFor();
      assert.match((await page.locator('#report-verdict').textContent()) ?? '', /Ověřeno: 1 záznam, řetězec až k podepsanému kontrolnímu bodu \(klíč [^)]+\) je neporušený/);
      const row = page.locator('table.records tbody tr');
      assert.equal(await row.count(), 1);
      assert.match((await row.textContent()) ?? '', /token_issued[\s\S]*Portál obce Lhota[\s\S]*eObčanka[\s\S]*high[\s\S]*CurrentGivenName/);
      await accessible(page, 'console-06-report');
      await page.emulateMedia({ media: 'print' });
      assert.equal(await page.getByRole('navigation', { name: 'Části konzole' }).isVisible(), false, 'the printed report carries no navigation');
      await screenshot(page, 'console-07-report-print');
      await page.emulateMedia({ media: 'screen' });
      assert.equal((await recordsOf('audit_exported')).filter((record) => record.detail.format === 'report').length, 1);
    });

    it('verifies the whole log with a progress indicator, and the verification is logged', async () => {
      // Enough records for the verification to report its progress (every thousand records).
      const bulk = Array.from({ length: 2500 }, (_, i) => ({ event: 'request_received' as const, outcome: 'success' as const, sepId: 'bulk-sep', requestId: `bulk-${i}`, detail: { n: i } }));
      await brana.broker.db.transaction((trx) => brana.broker.log.appendMany(bulk, trx));
      await page.goto(`${brana.url.origin}/console/audit/`);
      await page.getByRole('button', { name: 'Ověřit' }).click();
      await page.locator('#verify-result').filter({ hasText: /^Neporušeno: \d+ záznamů \(1–\d+\)/ }).waitFor();
      const steps = page.locator('.progress-step');
      assert.ok((await steps.count()) >= 2, 'the page reported its progress as it went');
      assert.equal(await steps.last().isVisible(), true);
      assert.equal(await steps.first().isVisible(), false, 'only the newest step shows');
      assert.match((await steps.last().textContent()) ?? '', /Ověřeno (\d+) z \1 záznamů…/, 'the last step says all were verified');
      await accessible(page, 'console-075-verify');
      const [verified] = (await recordsOf('audit_queried')).filter((record) => record.detail.what === 'verify');
      assert.equal(verified!.detail.actor, 'staff:Jan Novák');
    });

    it('shows a record altered in the database as broken', async () => {
      const row = (await brana.broker.db('assertion_log').where({ seq: loginSeq }).first()) as AssertionLogRow;
      await asDatabaseOperator(brana.broker.db, (db) => db('assertion_log').where({ seq: loginSeq }).update({ loa: 'low' }));
      try {
        await page.goto(`${brana.url.origin}/console/audit/records/${loginSeq}`);
        await page.locator('#verdict').filter({ hasText: 'Řetězec v okolí záznamu je PORUŠEN' }).waitFor();
        assert.match((await page.locator('#verdict').textContent()) ?? '', new RegExp(`the content of record ${loginSeq} does not match its hash`));
        assert.equal(await page.locator('#hash-matches').textContent(), 'NE');
        await accessible(page, 'console-08-record-broken');
      } finally {
        await asDatabaseOperator(brana.broker.db, (db) => db('assertion_log').where({ seq: loginSeq }).update({ loa: row.loa }));
      }
    });

    it('reads the console in English', async () => {
      await page.getByRole('link', { name: 'English' }).click();
      await page.getByRole('heading', { level: 1, name: `Log record ${loginSeq}` }).waitFor();
      assert.equal(await page.locator('html').getAttribute('lang'), 'en');
      await accessible(page, 'console-09-record-english');
      await page.getByRole('link', { name: 'Česky' }).click();
      await page.getByRole('heading', { level: 1, name: `Záznam ${loginSeq} protokolu` }).waitFor();
    });
  });

  describe('an administrator', () => {
    let context: BrowserContext;
    let page: Page;
    let changing: string;
    let pending: string;

    before(async () => {
      // An active SeP asks for one more attribute; another SeP registered itself and waits.
      const active = await brana.broker.registration.register(sepDocument({ name: { cs: 'Portál Žďáru', en: 'Žďár portal' } }), 'active', 'test');
      changing = active.sep.clientId;
      await brana.broker.registration.updateBySep(changing, { ...registrationOf(active.sep), allowedAttributes: [...active.sep.allowedAttributes, 'PlaceOfBirth'] }, changing);
      pending = (await brana.broker.registration.register(sepDocument({ name: { cs: 'Portál Lhotky', en: 'Lhotka portal' } }), 'pending', 'test')).sep.clientId;
      context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'cs-CZ' });
      page = await context.newPage();
      await signIn(page, '100000002');
      await page.getByText('Jste přihlášeni jako Marie Svobodová (správce).').waitFor();
    });
    after(async () => context?.close());

    it('sees what waits, and the change side by side with the registration in force', async () => {
      await page.getByRole('navigation', { name: 'Části konzole' }).getByRole('link', { name: 'Registrace služeb' }).click();
      await page.getByRole('heading', { level: 2, name: 'Čeká na rozhodnutí' }).waitFor();
      await accessible(page, 'console-10-admin');
      await page.getByRole('link', { name: 'Posoudit: Portál Žďáru' }).click();
      await page.getByRole('heading', { level: 1, name: 'Služba Portál Žďáru' }).waitFor();
      const changed = page.locator('table.diff tr.changed');
      assert.deepEqual(await changed.evaluateAll((rows) => rows.map((row) => row.getAttribute('data-field'))), ['allowedAttributes']);
      assert.equal(await changed.locator('ins').textContent(), 'PlaceOfBirth');
      await accessible(page, 'console-11-sep-diff');
    });

    it('approves exactly that version: the change is in force, and the approval is logged with the administrator\'s name and digest', async () => {
      const digest = await page.locator('#digest').textContent();
      await page.getByRole('button', { name: 'Schválit tuto verzi' }).click();
      await page.getByRole('status').filter({ hasText: 'Schváleno. Verze, kterou jste posoudili, platí.' }).waitFor();
      assert.ok((await brana.broker.seps.find(changing))!.allowedAttributes.includes('PlaceOfBirth'));
      const [approved] = (await recordsOf('sep_approved')).filter((record) => record.sepId === changing);
      assert.equal(approved!.detail.actor, 'staff:Marie Svobodová');
      assert.equal(approved!.detail.digest, digest);
      await accessible(page, 'console-12-sep-approved');
    });

    it('is refused the approval of a registration that changed after the page was shown, and nothing is approved', async () => {
      await page.goto(`${brana.url.origin}/console/admin/seps/${pending}`);
      await page.getByRole('heading', { level: 1, name: 'Služba Portál Lhotky' }).waitFor();
      const shown = await page.locator('#digest').textContent();
      // Meanwhile the SeP rewrites its request (RFC 7592 PUT): it now asks for the e-mail as well.
      const current = (await brana.broker.seps.find(pending))!;
      await brana.broker.registration.updateBySep(pending, { ...registrationOf(current), allowedAttributes: [...current.allowedAttributes, 'phonenumber'] }, pending);

      await page.getByRole('button', { name: 'Schválit tuto verzi' }).click();
      await page.getByRole('alert').filter({ hasText: 'Služba svou žádost od zobrazení stránky změnila. Nic se nestalo' }).waitFor();
      assert.equal((await brana.broker.seps.find(pending))!.status, 'pending');
      assert.equal((await recordsOf('sep_approved')).filter((record) => record.sepId === pending).length, 0);
      const now = await page.locator('#digest').textContent();
      assert.notEqual(now, shown, 'the page shows the new version to review');
      await accessible(page, 'console-13-sep-stale');

      // The refusal too names the version: this one, shown now.
      await page.getByLabel('Důvod zamítnutí (dostane ho služba)').fill('Žádá víc údajů, než potřebuje.');
      await page.getByRole('button', { name: 'Zamítnout tuto verzi' }).click();
      await page.getByRole('status').filter({ hasText: 'Zamítnuto.' }).waitFor();
      assert.equal((await brana.broker.seps.find(pending))!.status, 'disabled');
      const [refused] = (await recordsOf('sep_rejected')).filter((record) => record.sepId === pending);
      assert.equal(refused!.detail.actor, 'staff:Marie Svobodová');
      assert.equal(await page.getByRole('button', { name: 'Obnovit službu' }).count(), 0, 'a refused registration cannot be reinstated');
    });

    it('suspends an active SeP and reinstates it, each with a reason in the log', async () => {
      await page.goto(`${brana.url.origin}/console/admin/seps/${changing}`);
      await page.getByLabel('Důvod pozastavení').fill('Únik dat u provozovatele, šetří se.');
      await page.getByRole('button', { name: 'Pozastavit službu' }).click();
      await page.getByRole('status').filter({ hasText: 'Služba je pozastavena' }).waitFor();
      assert.equal((await brana.broker.seps.find(changing))!.status, 'disabled');
      await accessible(page, 'console-14-sep-suspended');
      await page.getByLabel('Důvod obnovení').fill('Šetření skončilo.');
      await page.getByRole('button', { name: 'Obnovit službu' }).click();
      await page.getByRole('status').filter({ hasText: 'Služba je opět aktivní.' }).waitFor();
      assert.equal((await brana.broker.seps.find(changing))!.status, 'active');
      const changes = (await recordsOf('sep_status_changed')).filter((record) => record.sepId === changing);
      assert.deepEqual(changes.map((record) => [record.detail.from, record.detail.to, record.reason, record.detail.actor]), [
        ['active', 'disabled', 'Únik dat u provozovatele, šetří se.', 'staff:Marie Svobodová'],
        ['disabled', 'active', 'Šetření skončilo.', 'staff:Marie Svobodová'],
      ]);
    });

    it('approves a tile seeing its logo, and the approval is logged with the administrator\'s name', async () => {
      const sep = await brana.registerSep({ name: { cs: 'Portál Kutné Hory', en: 'Kutná Hora portal' } });
      await completeLogin(brana.url.origin, sep, { means: 'eobcanka', login: '100000006', scope: 'openid profile' });
      const site = new URL(sep.redirectUri).origin;
      const tile = await brana.broker.tileRequests.request(
        sep.clientId,
        {
          name: { cs: 'Kutná Hora online', en: 'Kutná Hora online' },
          description: { cs: 'Úřad města Kutná Hora', en: 'Kutná Hora town hall' },
          link: `${site}/`,
          logo: PNG_LOGO.toString('base64'),
          conditions: { ownPortalUrl: `${site}/`, servesPrivateContent: true, loginWithoutFurtherRegistration: true },
        },
        sep.clientId,
      );
      await page.getByRole('navigation', { name: 'Části konzole' }).getByRole('link', { name: 'Dlaždice' }).click();
      const entry = page.locator(`li[data-tile="${tile.id}"]`);
      const logo = entry.getByRole('img', { name: 'Logo: Kutná Hora online' });
      await logo.waitFor();
      assert.ok(await logo.evaluate((image) => (image as HTMLImageElement).naturalWidth > 0), 'the logo is shown as it would be published');
      await accessible(page, 'console-145-tiles');
      await entry.getByRole('button', { name: 'Schválit dlaždici Kutná Hora online' }).click();
      await page.getByRole('status').filter({ hasText: 'Dlaždice je schválena a zveřejněna.' }).waitFor();
      assert.equal((await brana.broker.tiles.list({ status: 'approved' })).map((published) => published.id).includes(tile.id), true);
      const [approved] = await recordsOf('tile_approved');
      assert.equal(approved!.detail.actor, 'staff:Marie Svobodová');
    });

    it('issues an initial access token, shown once, and lists it with its uses left and expiry', async () => {
      await page.getByRole('navigation', { name: 'Části konzole' }).getByRole('link', { name: 'Přístupové tokeny' }).click();
      await page.getByLabel('Počet registrací (nejvýše 100)').fill('2');
      await page.getByRole('button', { name: 'Vydat token' }).click();
      const token = (await page.locator('#issued-token').textContent()) ?? '';
      assert.ok(token.length > 20);
      const row = page.locator('table tbody tr').first();
      assert.match((await row.textContent()) ?? '', /2 \/ 2[\s\S]*platný/);
      await accessible(page, 'console-15-tokens');
      const [issued] = await recordsOf('sep_initial_token_issued');
      assert.equal(issued!.detail.actor, 'staff:Marie Svobodová');
      assert.equal(issued!.detail.uses, 2);
      assert.ok(!JSON.stringify(issued).includes(token), 'the log keeps only the token\'s hash');
    });
  });

  describe('an operator', () => {
    it('sees each means\' health, the signing keys, readiness and the same numbers as /stats', async () => {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'cs-CZ' });
      try {
        const page = await context.newPage();
        await signIn(page, '100000003');
        await page.getByRole('navigation', { name: 'Části konzole' }).getByRole('link', { name: 'Provoz' }).click();
        await page.getByRole('heading', { level: 1, name: 'Provoz federace' }).waitFor();
        const eobcanka = page.locator('tr[data-means="eobcanka"]');
        assert.match((await eobcanka.textContent()) ?? '', /aktuální/);
        assert.match((await eobcanka.locator('.days').first().textContent()) ?? '', /^\d+$/, 'days to the certificate\'s expiry');
        assert.equal(await page.locator('#readiness').textContent(), 'Uzel je připraven přijímat provoz.');
        assert.ok(await page.getByRole('cell', { name: 'signing', exact: false }).or(page.getByText('podepisuje')).first().isVisible());

        const { token } = await brana.broker.operators.issue('monitor', 'test monitor');
        const numbers = (await (await fetch(`${brana.url.origin}/stats.json`, { headers: { authorization: `Bearer ${token}` } })).json()) as { totals: { logins: number; failures: number } };
        const totals = (await page.locator('.stats-totals').textContent()) ?? '';
        assert.match(totals, new RegExp(`${numbers.totals.logins}\\s+přihlášení`));
        assert.match(totals, new RegExp(`${numbers.totals.failures}\\s+neúspěšných přihlášení`));
        await accessible(page, 'console-16-operations');
      } finally {
        await context.close();
      }
    });
  });

  describe('a citizen without a role', () => {
    it('gets the 403 page, and the refused sign-in is in the log', async () => {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'cs-CZ' });
      try {
        const page = await context.newPage();
        const responses: number[] = [];
        page.on('response', (response) => {
          if (new URL(response.url()).pathname === '/console/callback') responses.push(response.status());
        });
        await signIn(page, '100000005');
        await page.getByRole('heading', { level: 1, name: 'Přístup odepřen' }).waitFor();
        assert.deepEqual(responses, [403]);
        assert.equal(await page.getByRole('navigation', { name: 'Části konzole' }).count(), 0);
        await accessible(page, 'console-17-forbidden');
        const refused = (await recordsOf('console_login')).filter((record) => record.outcome === 'failure');
        assert.deepEqual(refused.map((record) => record.reason), ['no_staff_role']);
      } finally {
        await context.close();
      }
    });
  });

  describe('the log, afterwards', () => {
    it('has every console action, with who did it', async () => {
      const byActor = async (event: string) => (await recordsOf(event)).map((record) => record.detail.actor).filter((actor) => typeof actor === 'string' && actor.startsWith('staff:'));
      assert.deepEqual(await byActor('console_login'), ['staff:Jan Novák', 'staff:Marie Svobodová', 'staff:Petr Dvořák']);
      assert.ok((await byActor('audit_queried')).length >= 3);
      assert.deepEqual(await byActor('audit_exported'), ['staff:Jan Novák', 'staff:Jan Novák']);
      assert.deepEqual(await byActor('sep_approved'), ['staff:Marie Svobodová']);
      assert.deepEqual(await byActor('sep_rejected'), ['staff:Marie Svobodová']);
      assert.deepEqual(await byActor('sep_status_changed'), ['staff:Marie Svobodová', 'staff:Marie Svobodová']);
      assert.deepEqual(await byActor('sep_initial_token_issued'), ['staff:Marie Svobodová']);
      assert.deepEqual(await byActor('tile_approved'), ['staff:Marie Svobodová']);
    });
  });
});
