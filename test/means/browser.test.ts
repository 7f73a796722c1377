import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createDemoSep, demoSepRegistration } from '../../src/demo-sep/demo-sep.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

describe('the means in a real browser, from the demo SeP', () => {
  let brana: TestBroker;
  let demo: http.Server;
  let demoOrigin: string;
  let browser: Browser;
  before(async () => {
    brana = await startTestBroker();
    demo = http.createServer();
    await new Promise<void>((resolve) => demo.listen(0, '127.0.0.1', resolve));
    demoOrigin = `http://localhost:${(demo.address() as AddressInfo).port}`;
    const registered = await brana.registerSep(demoSepRegistration(demoOrigin));
    demo.on('request', createDemoSep({ origin: demoOrigin, issuer: brana.url, clientSecret: registered.clientSecret }));
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  });
  after(async () => {
    await browser?.close();
    demo.closeAllConnections();
    await new Promise((resolve) => demo.close(resolve));
    await brana.close();
  });

  /**
   * A fresh browser profile that records script errors, CSP violations and missing resources (an error
   * page answering 4xx and the favicon nobody serves are expected).
   */
  async function citizen(): Promise<{ page: Page; problems: string[] }> {
    const context = await browser.newContext();
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error' && !/^Failed to load resource/.test(message.text())) problems.push(message.text());
    });
    page.on('pageerror', (err) => problems.push(err.message));
    page.on('response', (response) => {
      if (response.request().resourceType() !== 'document' && response.status() >= 400 && !response.url().endsWith('/favicon.ico')) problems.push(`${response.status()} ${response.url()}`);
    });
    return { page, problems };
  }

  it('logs in through Bank iD: the embedded OpenID Provider\'s page, consent, the demo portal shows LoA and means', async () => {
    const { page, problems } = await citizen();
    await page.goto(`${demoOrigin}/`);
    await page.click('#login');
    await page.getByRole('button', { name: 'Bankovní identita', exact: true }).click();
    await page.waitForURL(/\/dev-oidc\/bankid\/interaction\//);
    assert.match(await page.textContent('main') ?? '', /Vývojový poskytovatel identity/);
    await page.getByLabel(/Jan Novák/).check();
    await page.getByRole('button', { name: 'Přihlásit', exact: true }).click();
    await page.getByRole('button', { name: 'Souhlasím a pokračuji' }).click();
    await page.waitForURL(`${demoOrigin}/`);
    assert.equal(await page.textContent('#acr'), 'http://eidas.europa.eu/LoA/substantial');
    assert.equal(await page.textContent('#amr'), '["bankid"]');
    assert.equal(await page.textContent('[data-claim="family_name"]'), 'Novák');
    assert.deepEqual(problems, []);
  });

  it('after a cancel at eObčanka, offers the other means, and a foreign eID finishes the login', async () => {
    const { page, problems } = await citizen();
    await page.goto(`${demoOrigin}/`);
    await page.click('#login');
    await page.getByRole('button', { name: 'eObčanka' }).click();
    await page.getByRole('button', { name: 'Zrušit' }).click();
    await page.waitForURL(/\/interaction\/[^/]+\/failed\?reason=cancelled/);
    assert.match(await page.textContent('[role="status"]') ?? '', /Přihlášení prostředkem eObčanka jste zrušili/);
    await page.getByRole('link', { name: 'English' }).click();
    assert.match(await page.textContent('[role="status"]') ?? '', /You cancelled the login with eObčanka/);
    await page.getByRole('button', { name: 'Foreign eID (eIDAS)' }).click();
    await page.getByLabel(/Erika Mustermann/).check();
    await page.getByRole('button', { name: 'Log in', exact: true }).click();
    await page.getByRole('button', { name: 'I agree and continue' }).click();
    await page.waitForURL(`${demoOrigin}/`);
    assert.equal(await page.textContent('#acr'), 'http://eidas.europa.eu/LoA/high');
    assert.equal(await page.textContent('#amr'), '["eidas"]');
    assert.equal(await page.textContent('[data-claim="given_name"]'), 'Erika');
    assert.deepEqual(problems, []);
  });
});
