import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { assertAccessible, launchChromium, screenshot, startDemoSep, type DemoSep } from '../support/browser.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

/**
 * The demo portal's SAML door in a real browser: the same pages as for an OIDC SeP (selection,
 * identity means, consent, axe-core on each), then the page that posts the Response to the SeP
 * (by its script, or by the citizen's button without it), and the portal showing the pseudonym it
 * shares with its OIDC door.
 */
describe('a citizen at a SAML SeP in a real browser', function () {
  this.timeout(60_000);
  let brana: TestBroker;
  let demo: DemoSep;
  let browser: Browser;

  before(async () => {
    brana = await startTestBroker();
    demo = await startDemoSep(brana, { saml: true });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await demo?.close();
    await brana?.close();
  });

  const accessible = assertAccessible;

  async function logIn(page: Page, door: string, name: string): Promise<string> {
    await page.goto(`${demo.origin}/`);
    await page.getByRole('button', { name: door, exact: true }).click();
    await page.waitForURL((url) => url.origin === brana.url.origin && url.pathname.startsWith('/interaction/'));
    await page.getByRole('heading', { level: 1, name: /Přihlášení do služby Portál občana/ }).waitFor();
    if (name) await accessible(page, `${name}-selection`);
    await page.locator('button[value="eobcanka"]').click();
    await page.waitForURL(/\/dev-idp\/[^/]+\/sso/);
    await page.locator('input[name="login"][value="100000001"]').check();
    await page.getByRole('button', { name: /^(Přihlásit|Log in)$/ }).click();
    await page.getByRole('heading', { level: 1, name: 'Souhlas s předáním údajů' }).waitFor();
    if (name) await accessible(page, `${name}-consent`);
    await page.locator('button[value="agree"]').click();
    await page.waitForURL(`${demo.origin}/`);
    await page.getByRole('heading', { name: 'Jste přihlášeni' }).waitFor();
    return (await page.locator('#sub').textContent()) ?? '';
  }

  it('logs in through the SAML door: the same pages, the Response posted to the portal, the pseudonym of its OIDC door', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'cs-CZ' });
    try {
      const page = await context.newPage();
      const samlPseudonym = await logIn(page, 'Přihlásit se přes Bránu (SAML 2.0)', '20-saml');
      assert.equal(await page.locator('#protocol').textContent(), 'SAML 2.0');
      assert.equal(await page.locator('#acr').textContent(), 'http://eidas.europa.eu/LoA/high');
      assert.equal(await page.locator('[data-claim="CurrentGivenName"]').textContent(), 'Jan');
      assert.equal(await page.locator('[data-claim="CurrentFamilyName"]').textContent(), 'Novák');
      assert.equal(await page.locator('#person-identifier').textContent(), `CZ/CZ/${samlPseudonym}`);
      await screenshot(page, '21-saml-demo-logged-in');

      const other = await browser.newContext({ locale: 'cs-CZ' });
      try {
        const oidcPseudonym = await logIn(await other.newPage(), 'Přihlásit se přes Bránu', '');
        assert.equal(oidcPseudonym, samlPseudonym, 'one SeP group, one pseudonym, whatever the protocol');
      } finally {
        await other.close();
      }
    } finally {
      await context.close();
    }
  });

  it('posts the Response with the citizen\'s button when its script does not run: an accessible page', async () => {
    const context = await browser.newContext({ locale: 'cs-CZ' });
    try {
      // The page's own script (which submits the form at once) does not arrive; axe-core still runs.
      await context.route('**/static/autosubmit.js', (route) => route.abort());
      const page = await context.newPage();
      await page.goto(`${demo.origin}/saml/login`);
      await page.waitForURL((url) => url.pathname.startsWith('/interaction/'));
      await page.locator('button[value="eobcanka"]').click();
      // Without its script every page that posts onward (to the identity means, back to Brána) waits for its button.
      const onward = async () => {
        await page.waitForLoadState();
        if (await page.locator('form#autopost').count()) await page.locator('form#autopost button').click();
      };
      await onward();
      await page.locator('input[name="login"][value="100000001"]').check();
      await page.getByRole('button', { name: /^(Přihlásit|Log in)$/ }).click();
      await onward();
      await page.getByRole('heading', { level: 1, name: 'Souhlas s předáním údajů' }).waitFor();
      await page.locator('button[value="agree"]').click();
      await page.locator('form#autopost').waitFor();
      assert.equal(await page.locator('form#autopost').getAttribute('action'), `${demo.origin}/saml/acs`);
      await accessible(page, '22-saml-response-post');
      await page.locator('form#autopost button').click();
      await page.waitForURL(`${demo.origin}/`);
      assert.equal(await page.locator('#protocol').textContent(), 'SAML 2.0');
    } finally {
      await context.close();
    }
  });

  it('tells the citizen, in Czech and in English, when the service sent a request Brána refuses: an accessible page', async () => {
    const context = await browser.newContext({ locale: 'cs-CZ' });
    try {
      const page = await context.newPage();
      const response = await page.goto(`${brana.url.origin}/saml-idp/sso?SAMLRequest=not-a-request`);
      assert.equal(response?.status(), 400);
      await page.getByText('Služba, ze které jste přišli, poslala žádost o přihlášení, kterou Brána nemůže přijmout.', { exact: false }).waitFor();
      await accessible(page, '23-saml-request-refused');
      await page.getByRole('link', { name: 'English' }).click();
      await page.getByText('The service you came from sent a login request that Brána cannot accept.', { exact: false }).waitFor();
      await accessible(page, '24-saml-request-refused-en');
    } finally {
      await context.close();
    }
  });
});
