import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { assertAccessible, horizontalOverflow, launchChromium } from '../support/browser.ts';
import { samlSep } from '../support/saml-sep.ts';
import { MANY_REGISTRATIONS, initialAccessToken } from '../support/self-service.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

/**
 * A municipal office registers its SAML service in a real browser: it chooses SAML, picks its SP
 * metadata file (the page reads it into the field), and sends the form; axe-core on the form, on its
 * problems and on the page that confirms the registration.
 */
describe('registering a SAML SeP with the /register form in a real browser', function () {
  this.timeout(60_000);
  let brana: TestBroker;
  let browser: Browser;

  before(async () => {
    brana = await startTestBroker({ env: MANY_REGISTRATIONS });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await brana?.close();
  });

  it('takes the SP metadata from a chosen file, shows problems at their fields, and confirms a pending SAML registration', async () => {
    const sp = await samlSep(brana, { register: false });
    const context = await browser.newContext({ viewport: { width: 1024, height: 900 }, locale: 'cs-CZ' });
    try {
      const page = await context.newPage();
      await page.goto(`${brana.url.origin}/register`);
      await assertAccessible(page, '30-register-saml');
      await page.getByLabel('Registrační kód od správce Brány', { exact: false }).fill(await initialAccessToken(brana));
      await page.getByLabel('Název služby česky').fill('Portál obce Lelekovice');
      await page.getByLabel('Název služby anglicky').fill('Lelekovice portal');
      await page.getByLabel('Popis služby').fill('Podání online.');
      await page.getByLabel('Adresa s informacemi o službě (https)').fill('https://www.lelekovice.cz/');
      await page.getByLabel('IČO').fill('00281999');
      await page.getByLabel('Název organizace').fill('Obec Lelekovice');
      await page.getByLabel('Skupina SeP', { exact: false }).fill(`lelekovice-browser-${process.pid}`);
      // A metadata URL and the file at once: one of the two is asked for.
      await page.getByLabel('Nebo adresa metadat SP (https)').fill('https://sp.lelekovice.cz/metadata');
      await page.getByLabel('Soubor s metadaty SP').setInputFiles({ name: 'sp-metadata.xml', mimeType: 'application/samlmetadata+xml', buffer: Buffer.from(sp.metadataXml) });
      await page.waitForFunction(() => (document.getElementById('samlMetadata') as HTMLTextAreaElement).value.includes('EntityDescriptor'));
      assert.equal(await page.locator('#protocol-saml').isChecked(), true, 'choosing a metadata file chooses SAML');
      await page.getByRole('button', { name: 'Odeslat registraci' }).click();
      await page.getByRole('alert').waitFor();
      assert.equal(await page.locator('#samlMetadata').getAttribute('aria-invalid'), 'true');
      await assertAccessible(page, '31-register-saml-problems');

      await page.getByLabel('Nebo adresa metadat SP (https)').fill('');
      await page.getByLabel('Registrační kód od správce Brány', { exact: false }).fill(await initialAccessToken(brana));
      await page.getByRole('button', { name: 'Odeslat registraci' }).click();
      await page.locator('#entity-id').waitFor();
      assert.equal(await page.locator('#entity-id').textContent(), sp.entityId);
      await assertAccessible(page, '32-register-saml-done');
      const clientId = (await page.locator('#client-id').textContent())!;
      const sep = (await brana.broker.seps.find(clientId))!;
      assert.equal(sep.protocol, 'saml');
      assert.equal(sep.status, 'pending');
      await page.setViewportSize({ width: 360, height: 740 });
      assert.equal(await horizontalOverflow(page), 0);
    } finally {
      await context.close();
    }
  });
});
