import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createDemoSep, demoSepRegistration } from '../../src/demo-sep/demo-sep.ts';
import { demoSamlMetadata, demoSamlSepRegistration, demoSamlServiceProvider } from '../../src/demo-sep/demo-saml-sep.ts';
import { samlIdpEndpoints } from '../../src/saml-idp/idp-metadata.ts';
import { parseServiceProviderMetadata } from '../../src/saml-idp/sp-metadata.ts';
import { samlSepKeys } from './saml-sep.ts';
import type { TestBroker } from './test-broker.ts';

/** Debian's Chromium (`.ci/run` installs it); Playwright downloads no browser. */
export const CHROMIUM = process.env.BRANA_CHROMIUM ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
export const ARTIFACTS = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../test-artifacts/browser');

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS });
}

const AXE_SOURCE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: unknown; html: string }>;
}

/**
 * Runs axe-core in the page against WCAG 2.1 A/AA (the level law 99/2019 Sb. asks of Czech public
 * bodies) and best practices. Injected through the DevTools protocol, so the pages' own CSP
 * (script-src 'self') stays as it is. Every finding is saved beside the screenshots; the serious
 * and critical ones are returned.
 */
export async function accessibilityProblems(page: Page, name: string, options: AxeScope = {}): Promise<AxeViolation[]> {
  await page.evaluate(AXE_SOURCE);
  const violations = (await page.evaluate(async (iframes) => {
    const axe = (globalThis as unknown as { axe: { run(context: unknown, options: unknown): Promise<{ violations: unknown[] }> } }).axe;
    const result = await axe.run(document, { iframes, runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } });
    return result.violations;
  }, options.frames ?? true)) as AxeViolation[];
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  fs.writeFileSync(path.join(ARTIFACTS, `${name}.axe.json`), JSON.stringify(violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target) })), null, 2));
  return violations.filter((violation) => violation.impact === 'serious' || violation.impact === 'critical');
}

export function describeViolations(violations: AxeViolation[]): string {
  return violations.map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map((n) => JSON.stringify(n.target)).join(', ')}`).join('\n');
}

/** What axe-core looks at: `frames: false` leaves out framed pages of other sites (a SeP's logout page). */
export interface AxeScope {
  frames?: boolean;
}

/** axe-core on the page: no serious or critical violation; a screenshot either way. */
export async function assertAccessible(page: Page, name: string, options: AxeScope = {}): Promise<void> {
  await screenshot(page, name);
  const problems = await accessibilityProblems(page, name, options);
  if (problems.length) throw new Error(`${name}: serious or critical accessibility problems:\n${describeViolations(problems)}`);
}

/** A screenshot of the whole page: an artefact for people to look at, not an assertion. */
export async function screenshot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** How far the page is wider than its viewport (0: nothing to scroll sideways on a phone). */
export async function horizontalOverflow(page: Page): Promise<number> {
  return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}

/** Presses Tab until the focused element matches, as a keyboard user would; fails after `limit` presses. */
export async function tabTo(page: Page, selector: string, limit = 40): Promise<void> {
  for (let i = 0; i < limit; i += 1) {
    await page.keyboard.press('Tab');
    if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return;
  }
  throw new Error(`${selector} cannot be reached with the Tab key`);
}

/** Whether the focused element shows where the focus is (an outline or a box shadow). */
export async function focusIsVisible(page: Page): Promise<boolean> {
  return page.evaluate(() => {
    const element = document.activeElement;
    if (!element) return false;
    const style = getComputedStyle(element);
    return (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0) || style.boxShadow !== 'none';
  });
}

export interface DemoSep {
  origin: string;
  close(): Promise<void>;
}

/**
 * The demo "Portál občana" (src/demo-sep) beside a test broker, registered with it, on an ephemeral
 * port; with `saml`, its SAML door too (registered from its SP metadata, as `npm start` does).
 */
export async function startDemoSep(brana: TestBroker, options: { saml?: boolean } = {}): Promise<DemoSep> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://localhost:${(server.address() as AddressInfo).port}`;
  const registered = await brana.broker.registration.register(demoSepRegistration(origin), 'active', 'test');
  let saml: { sp: ReturnType<typeof demoSamlServiceProvider>; metadataXml: string } | undefined;
  if (options.saml) {
    const keys = samlSepKeys();
    const idp = samlIdpEndpoints(brana.url);
    const sp = demoSamlServiceProvider({ origin, idp: { ssoUrl: idp.ssoUrl, entityId: idp.entityId, certificatePem: brana.broker.keys.samlSigning.certificatePem }, ...keys });
    const metadataXml = demoSamlMetadata(sp, keys);
    const serviceProvider = parseServiceProviderMetadata(metadataXml, 'demo', { allowLoopbackHttp: true });
    await brana.broker.registration.register({ ...demoSamlSepRegistration(origin), redirectUris: serviceProvider.assertionConsumerServices.map((service) => service.url) }, 'active', 'test', {
      saml: { serviceProvider, metadata: { xml: metadataXml, source: 'demo' } },
    });
    saml = { sp, metadataXml };
  }
  server.on('request', createDemoSep({ origin, issuer: brana.url, clientSecret: registered.clientSecret, ...(saml ? { saml } : {}) }));
  return {
    origin,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
