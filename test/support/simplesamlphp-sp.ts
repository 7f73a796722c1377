import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import supertest from 'supertest';
import { decodeEntities } from './html.ts';
import { freePort, startServerProcess, type ServerProcess } from './interop-process.ts';
import { SSP_ROOT, php, requireSimpleSamlPhp, sspConfig } from './simplesamlphp-idp.ts';

/**
 * SimpleSAMLphp 1.19 (the Debian package) as a SAML SeP of Brána: PHP's built-in server on
 * /usr/share/simplesamlphp/www with a router that adds one page of the test's own (`/brana-sp.php`:
 * `requireAuth` with eIDAS RequestedAttributes, then what SimpleSAMLphp received, as JSON). Its
 * `default-sp` signs its AuthnRequests (HTTP-Redirect, RSA-SHA256), asks for a minimum LoA and a
 * persistent NameID, and trusts only Brána's IdP metadata, read with SimpleSAMLphp's own parser.
 */

const EIDAS = 'http://eidas.europa.eu/attributes/naturalperson/';

/** What SimpleSAMLphp's session holds after the login. */
export interface SspLogin {
  nameId: string;
  nameIdFormat: string;
  authnContext: string;
  attributes: Record<string, string[]>;
}

export interface SimpleSamlPhpSp {
  origin: string;
  entityId: string;
  /** Its SP metadata, as SimpleSAMLphp publishes it. */
  metadata(): Promise<string>;
  /** The SP's browser: opens the protected page; returns where SimpleSAMLphp sends it (Brána's SSO). */
  start(): Promise<string>;
  /** The SP's browser posts Brána's answer to the ACS; returns what SimpleSAMLphp's session holds, or its error page. */
  finish(acs: string, fields: Record<string, string>): Promise<{ login: SspLogin | null; status: number; page: string }>;
  /** The SP's browser asks to log out (`$as->logout`): returns where SimpleSAMLphp sends it (Brána's SLO). */
  logoutStart(): Promise<string>;
  /** The SP's browser (its cookies) opens a URL at SimpleSAMLphp: its status and where it sends the browser. */
  visit(url: string): Promise<{ status: number; location: string | undefined; page: string }>;
  /** The SP's side of a new browser: no SimpleSAMLphp session. */
  newBrowser(): void;
  /** Whether SimpleSAMLphp's session still holds the login. */
  loggedIn(): Promise<boolean>;
  log(): string;
  close(): Promise<void>;
}

export async function startSimpleSamlPhpSp(branaIdpMetadataXml: string): Promise<SimpleSamlPhpSp> {
  requireSimpleSamlPhp();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-ssp-sp-'));
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const entityId = `${origin}/module.php/saml/sp/metadata.php/default-sp`;
  for (const sub of ['config', 'metadata', 'cert', 'log', 'data', 'tmp', 'sessions']) fs.mkdirSync(path.join(dir, sub), { recursive: true });
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-sha256', '-nodes', '-days', '2', '-subj', '/CN=SimpleSAMLphp test SeP',
    '-keyout', path.join(dir, 'cert/sp.key'), '-out', path.join(dir, 'cert/sp.crt')], { stdio: 'ignore' });

  fs.writeFileSync(path.join(dir, 'config/config.php'), sspConfig(dir, origin, { 'module.enable': { core: true, saml: true } }));

  fs.writeFileSync(path.join(dir, 'config/authsources.php'), `<?php
$config = ${php({
    admin: ['core:AdminPassword'],
    'default-sp': {
      0: 'saml:SP',
      entityID: entityId,
      idp: /entityID="([^"]+)"/.exec(branaIdpMetadataXml)![1]!,
      privatekey: 'sp.key',
      certificate: 'sp.crt',
      'sign.authnrequest': true,
      'sign.logout': true,
      'redirect.sign': true,
      'signature.algorithm': 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
      'assertion.encryption': true,
      NameIDPolicy: { Format: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent', AllowCreate: true },
    },
  })};
`);

  fs.writeFileSync(path.join(dir, 'metadata/brana-idp.xml'), branaIdpMetadataXml);
  // Brána's IdP metadata through SimpleSAMLphp's own parser, with how this SeP asks for its LoA.
  fs.writeFileSync(path.join(dir, 'metadata/saml20-idp-remote.php'), `<?php
$entity = \\SimpleSAML\\Metadata\\SAMLParser::parseString(file_get_contents(__DIR__ . '/brana-idp.xml'));
$idp = $entity->getMetadata20IdP();
$idp['AuthnContextClassRef'] = 'http://eidas.europa.eu/LoA/substantial';
$idp['AuthnContextComparison'] = 'minimum';
$metadata[$idp['entityid']] = $idp;
`);

  fs.writeFileSync(path.join(dir, 'brana-sp.php'), `<?php
require_once ${php(path.join(SSP_ROOT, 'www/_include.php'))};
$as = new \\SimpleSAML\\Auth\\Simple('default-sp');
$requested = new DOMDocument();
$requested->loadXML('<eidas:RequestedAttributes xmlns:eidas="http://eidas.europa.eu/saml-extensions">'
  . '<eidas:RequestedAttribute Name="${EIDAS}CurrentGivenName" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri" isRequired="true"/>'
  . '<eidas:RequestedAttribute Name="${EIDAS}CurrentFamilyName" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri" isRequired="true"/>'
  . '</eidas:RequestedAttributes>');
$as->requireAuth(['saml:Extensions' => [new \\SAML2\\XML\\Chunk($requested->documentElement)], 'ReturnTo' => ${php(`${origin}/brana-sp.php`)}]);
$nameId = $as->getAuthData('saml:sp:NameID');
header('Content-Type: application/json');
echo json_encode([
  'nameId' => $nameId->getValue(),
  'nameIdFormat' => $nameId->getFormat(),
  'authnContext' => $as->getAuthData('saml:sp:AuthnContext'),
  'attributes' => $as->getAttributes(),
]);
`);
  fs.writeFileSync(path.join(dir, 'brana-logout.php'), `<?php
require_once ${php(path.join(SSP_ROOT, 'www/_include.php'))};
$as = new \\SimpleSAML\\Auth\\Simple('default-sp');
if (isset($_GET['check'])) {
  header('Content-Type: application/json');
  echo json_encode(['loggedIn' => $as->isAuthenticated()]);
  exit;
}
$as->logout(['ReturnTo' => ${php(`${origin}/brana-logout.php?check=1`)}, 'saml:logout:RelayState' => 'ssp-logout']);
`);
  fs.writeFileSync(path.join(dir, 'router.php'), `<?php
$page = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
if ($page === '/brana-sp.php' || $page === '/brana-logout.php') {
    require ${php(dir)} . $page;
    return true;
}
return false;
`);

  let server: ServerProcess;
  try {
    server = await startServerProcess('php', ['-q', '-d', `session.save_path=${path.join(dir, 'sessions')}`, '-S', `127.0.0.1:${port}`, '-t', path.join(SSP_ROOT, 'www'), path.join(dir, 'router.php')], {
      env: { SIMPLESAMLPHP_CONFIG_DIR: path.join(dir, 'config') },
      readyUrl: `${origin}/module.php/saml/sp/metadata.php/default-sp`,
    });
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  let browser = supertest.agent(origin);
  const local = (url: string) => {
    const target = new URL(decodeEntities(url), origin);
    if (target.origin !== origin) throw new Error(`not SimpleSAMLphp: ${url}`);
    return target.pathname + target.search;
  };

  return {
    origin,
    entityId,
    async metadata() {
      const answer = await fetch(`${origin}/module.php/saml/sp/metadata.php/default-sp`);
      if (answer.status !== 200) throw new Error(`SimpleSAMLphp SP metadata answered ${answer.status}`);
      return answer.text();
    },
    async start() {
      const page = await browser.get('/brana-sp.php').redirects(0);
      const location = page.headers.location as string | undefined;
      if (page.status !== 302 && page.status !== 303) throw new Error(`SimpleSAMLphp did not send the browser to Brána (${page.status}): ${page.text.slice(0, 2000)}\n${server.output()}`);
      return location!;
    },
    async finish(acs, fields) {
      let page = await browser.post(local(acs)).type('form').send(fields).redirects(0);
      if (page.status === 302 || page.status === 303) page = await browser.get(local(page.headers.location as string)).redirects(0);
      if (page.status !== 200 || !page.headers['content-type']?.includes('json')) return { login: null, status: page.status, page: page.text };
      return { login: page.body as SspLogin, status: page.status, page: page.text };
    },
    async logoutStart() {
      const page = await browser.get('/brana-logout.php').redirects(0);
      if (page.status !== 302 && page.status !== 303) throw new Error(`SimpleSAMLphp did not send the browser to Brána's SLO (${page.status}): ${page.text.slice(0, 2000)}\n${server.output()}`);
      return page.headers.location as string;
    },
    async visit(url) {
      const page = await browser.get(local(url)).redirects(0);
      return { status: page.status, location: page.headers.location as string | undefined, page: page.text };
    },
    newBrowser() {
      browser = supertest.agent(origin);
    },
    async loggedIn() {
      const page = await browser.get('/brana-logout.php?check=1').redirects(0);
      if (page.status !== 200) throw new Error(`SimpleSAMLphp's session check answered ${page.status}: ${page.text.slice(0, 1000)}\n${server.output().slice(-2000)}`);
      try {
        return (JSON.parse(page.text) as { loggedIn: boolean }).loggedIn;
      } catch {
        throw new Error(`SimpleSAMLphp's session check: ${page.text.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 1500)}`);
      }
    },
    log: () => server.output(),
    async close() {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
