import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { assertAccessible, launchChromium } from '../support/browser.ts';
import { decideConsent } from '../support/login-driver.ts';
import { samlAnswerOf, samlLogin, samlSep, sendToBrana, validatedBySep } from '../support/saml-sep.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

/**
 * Brána's logout page, which tells the session's other SePs in hidden frames, in a real browser:
 * accessible (axe-core), its frames allowed by its Content-Security-Policy and no other origin, and
 * without its script a visible way on to the SeP that asked.
 */
describe('the logout page that tells the other SePs, in a real browser', function () {
  this.timeout(60_000);
  let brana: TestBroker;
  let browser: Browser;

  before(async () => {
    brana = await startTestBroker();
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await brana?.close();
  });

  it('is accessible, frames exactly the SePs it tells, and offers the way on without its script', async () => {
    const first = await samlSep(brana, { sloBinding: 'HTTP-Redirect' });
    const second = await samlSep(brana, { sloBinding: 'HTTP-Redirect' });
    const { answer, citizen } = await samlLogin(brana, first, { means: 'eobcanka', login: '100000001' });
    const profile = await validatedBySep(first, answer);
    await validatedBySep(second, samlAnswerOf(await decideConsent(citizen, await citizen.follow(await sendToBrana(second, citizen)), 'agree')));
    // The first SeP's LogoutRequest names its SessionIndex: the browser that carries it needs no cookie.
    const logoutUrl = await first.saml.getLogoutUrlAsync(profile, 'x', {});
    const context = await browser.newContext({ locale: 'cs-CZ' });
    try {
      // The SePs of this test do not exist: their logout pages answer from here, at once.
      await context.route(/example\.cz\//, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<!DOCTYPE html><html lang="cs"><title>SeP</title><p>Odhlášeno.</p></html>' }));
      // The page as without its script (which would go on at once): the way on must be visible.
      await context.route(/\/static\/after-frames\.js$/, (route) => route.fulfill({ status: 200, contentType: 'text/javascript', body: '' }));
      const page = await context.newPage();
      const blocked: string[] = [];
      page.on('console', (message) => {
        if (/Content Security Policy/.test(message.text())) blocked.push(message.text());
      });
      // Not 'load': the frames point at SePs that do not exist in this test.
      const response = await page.goto(logoutUrl, { waitUntil: 'domcontentloaded' });
      assert.equal(response?.status(), 200);
      await page.getByRole('heading', { level: 1, name: 'Odhlášení' }).waitFor();
      assert.equal(await page.locator('iframe').count(), 1);
      assert.ok((await page.locator('iframe').getAttribute('src'))!.startsWith(second.sloUrl));
      assert.match(String(response?.headers()['content-security-policy']), new RegExp(`frame-src ${new URL(second.sloUrl).origin.replace(/\./g, '\\.')}$`));
      const onward = page.getByRole('link', { name: 'Pokračovat' });
      assert.ok((await onward.getAttribute('href'))!.startsWith(first.sloUrl));
      assert.deepEqual(blocked, [], 'the frame is not blocked by the page\'s own policy');
      // Brána's page; the framed pages are the SePs' own.
      await assertAccessible(page, '33-logout-propagation', { frames: false });
    } finally {
      await context.close();
    }
  });

  it('goes on by itself to the SeP that asked once the frames have loaded', async () => {
    const first = await samlSep(brana, { sloBinding: 'HTTP-Redirect' });
    const second = await samlSep(brana, { sloBinding: 'HTTP-Redirect' });
    const { answer, citizen } = await samlLogin(brana, first, { means: 'eobcanka', login: '100000001' });
    const profile = await validatedBySep(first, answer);
    await validatedBySep(second, samlAnswerOf(await decideConsent(citizen, await citizen.follow(await sendToBrana(second, citizen)), 'agree')));
    const context = await browser.newContext({ locale: 'cs-CZ' });
    try {
      const framed: string[] = [];
      await context.route(/example\.cz\//, (route) => {
        framed.push(route.request().url());
        return route.fulfill({ status: 200, contentType: 'text/html', body: '<!DOCTYPE html><html lang="cs"><title>SeP</title><p>Odhlášeno.</p></html>' });
      });
      const page = await context.newPage();
      await page.goto(await first.saml.getLogoutUrlAsync(profile, 'x', {}), { waitUntil: 'commit' });
      await page.waitForURL((url) => url.href.startsWith(first.sloUrl));
      assert.ok(framed[0]!.startsWith(second.sloUrl), 'the other SeP was told first');
      assert.ok(new URL(page.url()).searchParams.get('SAMLResponse'), 'then the SeP that asked got its LogoutResponse');
    } finally {
      await context.close();
    }
  });
});
