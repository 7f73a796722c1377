import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { accessibilityProblems, describeViolations, focusIsVisible, horizontalOverflow, launchChromium, screenshot, startDemoSep, tabTo, type DemoSep } from '../support/browser.ts';
import { PNG_LOGO } from '../support/images.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

/**
 * The whole journey in a real browser (Debian's Chromium through playwright-core): demo SeP →
 * selection → development IdP → consent → back at the SeP with the claims → My account → revoke →
 * logout, with axe-core on every Brána page, parts of it by keyboard only, and on a phone-sized
 * screen. Screenshots and axe reports go to test-artifacts/browser/.
 */
describe('a citizen in a real browser', function () {
  this.timeout(120_000);
  let brana: TestBroker;
  let demo: DemoSep;
  let browser: Browser;

  before(async () => {
    brana = await startTestBroker();
    demo = await startDemoSep(brana);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await demo?.close();
    await brana?.close();
  });

  /** axe-core on the page: no serious or critical violation; a screenshot either way. */
  async function accessible(page: Page, name: string): Promise<void> {
    await screenshot(page, name);
    const problems = await accessibilityProblems(page, name);
    assert.deepEqual(problems, [], `${name}:\n${describeViolations(problems)}`);
  }

  const onBrana = (page: Page, path: string | RegExp) => page.waitForURL((url) => url.origin === brana.url.origin && (typeof path === 'string' ? url.pathname.startsWith(path) : path.test(url.pathname)));

  /** At the development IdP: log in as the test citizen with this login. */
  async function logInAtIdp(page: Page, login: string): Promise<void> {
    await page.waitForURL(/\/dev-idp\/[^/]+\/sso/);
    await page.locator(`input[name="login"][value="${login}"]`).check();
    await page.getByRole('button', { name: /^(Přihlásit|Log in)$/ }).click();
  }

  it('runs an axe-core that finds what it should (a page with an unlabelled field and an image without text)', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.setContent('<!DOCTYPE html><html><head><title>x</title></head><body><main><img src="data:image/png;base64,iVBORw0KGgo="><input type="text"></main></body></html>');
      const problems = await accessibilityProblems(page, '00-axe-self-check');
      assert.deepEqual(problems.map((p) => p.id).sort(), ['html-has-lang', 'image-alt', 'label']);
    } finally {
      await context.close();
    }
  });

  describe('on a desktop screen, in Czech and then English', () => {
    let context: BrowserContext;
    let page: Page;
    before(async () => {
      context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'cs-CZ' });
      page = await context.newPage();
    });
    after(async () => context?.close());

    it('logs in at the demo SeP through selection, identity means and consent, by keyboard, and shows the released claims', async () => {
      await page.goto(`${demo.origin}/`);
      await page.getByRole('button', { name: 'Přihlásit se přes Bránu' }).click();

      await onBrana(page, '/interaction/');
      await page.getByRole('heading', { level: 1, name: /Přihlášení do služby Portál občana \(ukázka\)/ }).waitFor();
      await accessible(page, '01-selection');
      await tabTo(page, 'button[value="eobcanka"]');
      assert.ok(await focusIsVisible(page), 'the focused means shows its focus');
      await page.keyboard.press('Enter');

      await logInAtIdp(page, '100000001');

      await onBrana(page, '/interaction/');
      await page.getByRole('heading', { level: 1, name: 'Souhlas s předáním údajů' }).waitFor();
      assert.ok(await page.getByText('Portál občana (ukázka)').first().isVisible());
      for (const attribute of ['Jméno', 'Příjmení', 'Datum narození', 'Adresa pobytu', 'E-mailová adresa']) {
        assert.ok(await page.getByRole('listitem').filter({ hasText: new RegExp(`^${attribute}$`) }).isVisible(), `the consent page names ${attribute}`);
      }
      await accessible(page, '02-consent');
      await tabTo(page, '#permanent');
      assert.ok(await focusIsVisible(page));
      await page.keyboard.press('Space');
      assert.ok(await page.locator('#permanent').isChecked(), 'the keyboard ticks the permanent consent');
      await tabTo(page, 'button[value="agree"]');
      await page.keyboard.press('Enter');

      await page.waitForURL(`${demo.origin}/`);
      await page.getByRole('heading', { name: 'Jste přihlášeni' }).waitFor();
      assert.equal(await page.locator('[data-claim="given_name"]').textContent(), 'Jan');
      assert.equal(await page.locator('[data-claim="family_name"]').textContent(), 'Novák');
      assert.equal(await page.locator('#acr').textContent(), 'http://eidas.europa.eu/LoA/high');
      assert.match((await page.locator('#person-identifier').textContent()) ?? '', /^CZ\/CZ\/[A-Za-z0-9_-]{43}$/);
      await screenshot(page, '03-demo-sep-logged-in');
    });

    it('opens My account with another means and shows the login and the permanent consent, then switches to English', async () => {
      await page.locator('#brana-account').click();
      await onBrana(page, '/account');
      await accessible(page, '04-account-login');
      await page.getByRole('link', { name: 'Přihlásit se do Mého účtu' }).click();

      await onBrana(page, '/interaction/');
      await page.getByRole('button', { name: /mojeID/ }).click();
      await logInAtIdp(page, 'jnovak');

      await page.waitForURL(`${brana.url.origin}/account`);
      await page.getByRole('heading', { level: 1, name: 'Můj účet' }).waitFor();
      const history = page.locator('section[aria-labelledby="history-heading"]');
      const login = history.getByRole('listitem').filter({ hasText: 'Portál občana (ukázka)' });
      assert.match((await login.textContent()) ?? '', /eObčanka[\s\S]*vysoká úroveň záruky[\s\S]*Jméno, Příjmení, Datum narození, Adresa pobytu, E-mailová adresa/);
      assert.ok(!((await history.textContent()) ?? '').includes('Novák'), 'names of data, never their values');
      await page.getByRole('button', { name: 'Odvolat souhlas pro službu Portál občana (ukázka)' }).waitFor();
      await accessible(page, '05-account');

      await page.getByRole('link', { name: 'English' }).click();
      await page.getByRole('heading', { level: 1, name: 'My account' }).waitFor();
      assert.equal(await page.locator('html').getAttribute('lang'), 'en');
      await accessible(page, '06-account-english');
    });

    it('revokes the permanent consent and logs out through Brána\'s logout page, still in English', async () => {
      await page.getByRole('button', { name: 'Revoke the consent for Citizen Portal (demo)' }).click();
      await page.getByRole('status').filter({ hasText: 'The consent was revoked.' }).waitFor();
      await page.getByText('You have no permanent consent.').waitFor();
      await accessible(page, '07-account-revoked');
      const revoked = await brana.broker.log.query({ event: 'consent_revoked' });
      assert.equal(revoked.length, 1);

      await page.getByRole('button', { name: 'Log out' }).click();
      await onBrana(page, '/session/end');
      await page.getByRole('heading', { level: 1, name: 'Do you want to log out of Brána?' }).waitFor();
      await accessible(page, '08-logout');
      await page.getByRole('button', { name: 'Yes, log out' }).click();
      await page.getByRole('status').filter({ hasText: 'You have been logged out.' }).waitFor();
      await accessible(page, '09-logged-out');
      await page.goto(`${brana.url.origin}/account`);
      await page.getByRole('link', { name: 'Log in to My account' }).waitFor();
    });
  });

  describe('on a phone-sized screen', () => {
    let context: BrowserContext;
    let page: Page;
    before(async () => {
      context = await browser.newContext({ viewport: { width: 360, height: 740 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: 'cs-CZ' });
      page = await context.newPage();
    });
    after(async () => context?.close());

    it('asks for consent again after the revocation, fits the screen, and honours a refusal', async () => {
      await page.goto(`${demo.origin}/`);
      await page.getByRole('button', { name: 'Přihlásit se přes Bránu' }).click();
      await onBrana(page, '/interaction/');
      await page.getByRole('button', { name: /eObčanka/ }).waitFor();
      assert.equal(await horizontalOverflow(page), 0, 'the selection page fits a 360 px screen');
      await accessible(page, '10-phone-selection');
      await page.getByRole('button', { name: /eObčanka/ }).click();
      await logInAtIdp(page, '100000001');

      await page.getByRole('heading', { level: 1, name: 'Souhlas s předáním údajů' }).waitFor();
      assert.equal(await horizontalOverflow(page), 0, 'the consent page fits a 360 px screen');
      await accessible(page, '11-phone-consent');
      await page.getByRole('button', { name: 'Nesouhlasím' }).click();

      await page.waitForURL((url) => url.origin === demo.origin);
      assert.equal(await page.locator('#error-code').textContent(), 'access_denied');
      assert.equal((await brana.broker.log.query({ sepId: 'demo-portal-obcana', event: 'token_issued' })).length, 1, 'only the first login released anything');
      assert.equal((await brana.broker.log.query({ sepId: 'demo-portal-obcana', event: 'consent_refused' })).length, 1);
      await screenshot(page, '12-phone-demo-refused');
    });

    it('shows a calm page with what to do next when the citizen cancels at the identity means, and My account fits the screen', async () => {
      // A new browser: the one above has a Brána session, which would skip the selection.
      await context.close();
      context = await browser.newContext({ viewport: { width: 360, height: 740 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: 'cs-CZ' });
      page = await context.newPage();
      await page.goto(`${demo.origin}/`);
      await page.getByRole('button', { name: 'Přihlásit se přes Bránu' }).click();
      await page.getByRole('button', { name: /mojeID/ }).click();
      await page.waitForURL(/\/dev-idp\/mojeid\/sso/);
      await page.getByRole('button', { name: 'Zrušit' }).click();

      await onBrana(page, /\/interaction\/[^/]+\/failed/);
      await page.getByRole('heading', { level: 1, name: 'Přihlášení bylo zrušeno' }).waitFor();
      await page.getByRole('status').filter({ hasText: 'Přihlášení prostředkem mojeID jste zrušili.' }).waitFor();
      await page.getByRole('link', { name: 'Zpět na výběr prostředku' }).waitFor();
      await page.getByRole('button', { name: 'eObčanka' }).waitFor();
      assert.equal(await horizontalOverflow(page), 0);
      await accessible(page, '13-phone-error');

      await page.goto(`${brana.url.origin}/account`);
      await page.getByRole('link', { name: 'Přihlásit se do Mého účtu' }).click();
      await page.getByRole('button', { name: /eObčanka/ }).click();
      await logInAtIdp(page, '100000001');
      await page.waitForURL(`${brana.url.origin}/account`);
      assert.equal(await horizontalOverflow(page), 0, 'My account fits a 360 px screen');
      await accessible(page, '14-phone-account');
    });
  });

  describe('the pages for SePs and the Citizen Portal', () => {
    it('has an accessible registration form, also when it shows problems', async () => {
      const context = await browser.newContext({ viewport: { width: 1024, height: 900 } });
      try {
        const page = await context.newPage();
        await page.goto(`${brana.url.origin}/register`);
        await accessible(page, '15-register');
        await page.getByLabel('Adresa s informacemi o službě (https)').fill('http://www.example.cz/');
        await page.getByRole('button', { name: 'Odeslat registraci' }).click();
        await page.getByRole('alert').waitFor();
        assert.equal(await page.getByLabel('Adresa s informacemi o službě (https)').getAttribute('aria-invalid'), 'true');
        await accessible(page, '16-register-problems');
        await page.setViewportSize({ width: 360, height: 740 });
        assert.equal(await horizontalOverflow(page), 0);
      } finally {
        await context.close();
      }
    });

    it('shows the approved tiles on a page the Citizen Portal can frame, and that other framing is refused', async () => {
      // The demo SeP has completed a login above, so it is connected through the broker.
      const tile = await brana.broker.tileRequests.request(
        'demo-portal-obcana',
        {
          name: { cs: 'Portál občana (ukázka)', en: 'Citizen Portal (demo)' },
          description: { cs: 'Ukázkový portál přihlašovaný přes Bránu.', en: 'A demo portal logging in through Brána.' },
          link: `${demo.origin}/`,
          logo: PNG_LOGO.toString('base64'),
          conditions: { ownPortalUrl: `${demo.origin}/`, servesPrivateContent: true, loginWithoutFurtherRegistration: true },
        },
        'test',
      );
      await brana.broker.tileRequests.approve(tile.id, 'test');
      const context = await browser.newContext({ viewport: { width: 1024, height: 700 } });
      try {
        const page = await context.newPage();
        await page.goto(`${brana.url.origin}/tiles`);
        await page.getByRole('link', { name: 'Portál občana (ukázka)' }).waitFor();
        assert.ok(await page.locator('img').evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth === 96), 'the logo is an image the browser decodes');
        await accessible(page, '17-tiles');

        // A Citizen-Portal page on this machine (development allows loopback framers) embeds it…
        const framer = (src: string) => `<!DOCTYPE html><html lang="cs"><head><title>Portál občana</title></head><body><iframe title="Portály obcí" src="${src}" width="800" height="400"></iframe></body></html>`;
        const portal = http.createServer((req, res) => {
          res.setHeader('Content-Type', 'text/html; charset=utf-8');
          res.end(framer(`${brana.url.origin}${req.url === '/clickjack' ? '/account' : '/tiles'}`));
        });
        await new Promise<void>((resolve) => portal.listen(0, '127.0.0.1', resolve));
        const portalOrigin = `http://localhost:${(portal.address() as AddressInfo).port}`;
        try {
          await page.goto(`${portalOrigin}/embed`);
          const framed = page.frameLocator('iframe').getByRole('link', { name: 'Portál občana (ukázka)' });
          await framed.waitFor();
          assert.equal(await framed.getAttribute('target'), '_top');
          await screenshot(page, '18-tiles-framed');

          // …while a page of Brána itself may be framed by nobody.
          await page.goto(`${portalOrigin}/clickjack`, { waitUntil: 'load' });
          const frame = page.frames().find((f) => f !== page.mainFrame());
          assert.ok(frame);
          // The frame follows /account's redirects (to the login it starts) before the browser refuses
          // the page that forbids framing; the parent's load event may come first.
          for (let waited = 0; !frame.url().startsWith('chrome-error:') && waited < 5000; waited += 100) await new Promise((resolve) => setTimeout(resolve, 100));
          assert.match(frame.url(), /^chrome-error:/, 'the browser refused to render the account page inside a frame');
        } finally {
          portal.closeAllConnections();
          await new Promise((resolve) => portal.close(resolve));
        }
      } finally {
        await context.close();
      }
    });
  });
});
