import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import supertest from 'supertest';
import { decodeEntities } from './html.ts';
import { freePort, requirePrerequisites, startServerProcess, type ServerProcess } from './interop-process.ts';

/**
 * SimpleSAMLphp 1.19 (the Debian package) run as a SAML IdP by a test: PHP's built-in server on
 * /usr/share/simplesamlphp/www, a config directory written here, a key made by openssl here. Its
 * users log in through SimpleSAMLphp's own login form (exampleauth:UserPass).
 *
 * Service providers are added as an operator does: Brána's SP metadata (XML) is dropped into the
 * metadata directory and `saml20-sp-remote.php` turns it into SimpleSAMLphp's metadata with
 * SimpleSAMLphp's own parser, plus the per-SP options (signing, encryption) of the configuration
 * under test. SimpleSAMLphp reads its metadata on every request, so SPs can be added while it runs.
 */

export const SSP_ROOT = '/usr/share/simplesamlphp';

/** A user of the IdP: username, password and the attributes SimpleSAMLphp releases (SAML name → values). */
export interface SspUser {
  username: string;
  password: string;
  attributes: Record<string, string[]>;
}

/** Per-SP options in SimpleSAMLphp's own names (saml20-sp-remote), e.g. `saml20.sign.response`. */
export type SspSpOptions = Record<string, string | number | boolean>;

export interface SimpleSamlPhpIdp {
  origin: string;
  entityId: string;
  /** The IdP's metadata as SimpleSAMLphp publishes it (saml2/idp/metadata.php). */
  metadata(): Promise<string>;
  /** Registers a service provider from its SAML metadata XML, with options. */
  addServiceProvider(name: string, metadataXml: string, options: SspSpOptions): void;
  /**
   * A browser at the IdP: follows Brána's redirect to SimpleSAMLphp, logs in through its form and
   * returns the HTTP-POST form SimpleSAMLphp answers with (action and fields), to carry to Brána.
   */
  login(location: string, username: string, password: string): Promise<{ acs: string; fields: Record<string, string> }>;
  /** SimpleSAMLphp's log (stderr of the PHP server). */
  log(): string;
  close(): Promise<void>;
}

export function requireSimpleSamlPhp(): void {
  requirePrerequisites([
    { what: 'PHP 8.2 command line (php)', debianPackage: 'php8.2-cli', command: 'php', args: ['-v'] },
    { what: 'PHP DOM extension', debianPackage: 'php8.2-xml', command: 'php', args: ['-r', 'exit(extension_loaded("dom") ? 0 : 1);'] },
    { what: 'PHP OpenSSL extension', debianPackage: 'php8.2-cli', command: 'php', args: ['-r', 'exit(extension_loaded("openssl") ? 0 : 1);'] },
    { what: `SimpleSAMLphp 1.19 in ${SSP_ROOT}`, debianPackage: 'simplesamlphp', command: 'test', args: ['-f', path.join(SSP_ROOT, 'www/_include.php')] },
    { what: 'openssl command line', debianPackage: 'openssl', command: 'openssl', args: ['version'] },
  ]);
}

/** A PHP literal for a JSON-like value (SimpleSAMLphp's configuration files are PHP). */
export const php = (value: unknown): string => {
  if (typeof value === 'string') return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  if (typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (Array.isArray(value)) return `[${value.map(php).join(', ')}]`;
  if (value && typeof value === 'object') return `[${Object.entries(value).map(([k, v]) => `${php(k)} => ${php(v)}`).join(', ')}]`;
  throw new Error(`no PHP literal for ${String(value)}`);
};

/** SimpleSAMLphp's config.php for a test instance in `dir` at `origin` (its logs on stderr). */
export function sspConfig(dir: string, origin: string, extra: Record<string, unknown>): string {
  return `<?php
$config = ${php({
    baseurlpath: `${origin}/`,
    certdir: path.join(dir, 'cert') + '/',
    loggingdir: path.join(dir, 'log') + '/',
    datadir: path.join(dir, 'data') + '/',
    tempdir: path.join(dir, 'tmp'),
    metadatadir: path.join(dir, 'metadata') + '/',
    secretsalt: 'brana-interop-test-salt-0123456789',
    'auth.adminpassword': 'not-used-by-the-test',
    technicalcontact_name: 'Brána tests',
    technicalcontact_email: 'tests@example.cz',
    timezone: 'Europe/Prague',
    'logging.level': 6, // SimpleSAML\\Logger::INFO: enough to see why a login failed
    'logging.handler': 'stderr',
    'store.type': 'phpsession',
    'session.cookie.secure': false,
    'session.phpsession.savepath': path.join(dir, 'sessions'),
    'language.default': 'en',
    ...extra,
  })};
`;
}

export async function startSimpleSamlPhp(options: { users: SspUser[]; idpOptions?: SspSpOptions }): Promise<SimpleSamlPhpIdp> {
  requireSimpleSamlPhp();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-ssp-'));
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const entityId = `${origin}/saml2/idp/metadata.php`;
  for (const sub of ['config', 'metadata', 'metadata/sp', 'cert', 'log', 'data', 'tmp', 'sessions']) fs.mkdirSync(path.join(dir, sub), { recursive: true });

  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-sha256', '-nodes', '-days', '2', '-subj', '/CN=SimpleSAMLphp test IdP',
    '-keyout', path.join(dir, 'cert/idp.key'), '-out', path.join(dir, 'cert/idp.crt')], { stdio: 'ignore' });

  fs.writeFileSync(path.join(dir, 'config/config.php'), sspConfig(dir, origin, { 'enable.saml20-idp': true, 'module.enable': { exampleauth: true, core: true, saml: true } }));

  const accounts = Object.fromEntries(options.users.map((user) => [`${user.username}:${user.password}`, user.attributes]));
  fs.writeFileSync(path.join(dir, 'config/authsources.php'), `<?php
$config = ${php({ admin: ['core:AdminPassword'], citizens: { 0: 'exampleauth:UserPass', ...accounts } })};
`);

  fs.writeFileSync(path.join(dir, 'metadata/saml20-idp-hosted.php'), `<?php
$metadata[${php(entityId)}] = ${php({
    host: '__DEFAULT__',
    privatekey: 'idp.key',
    certificate: 'idp.crt',
    auth: 'citizens',
    // Attribute names are URIs (eIDAS); a persistent NameID from the user's uid attribute.
    'attributes.NameFormat': 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri',
    'simplesaml.nameidattribute': 'uid',
    ...options.idpOptions,
  })};
`);

  // An operator converts an SP's metadata with SimpleSAMLphp's parser; here it runs on each request.
  fs.writeFileSync(path.join(dir, 'metadata/saml20-sp-remote.php'), `<?php
foreach (glob(__DIR__ . '/sp/*.xml') as $file) {
    $entity = \\SimpleSAML\\Metadata\\SAMLParser::parseString(file_get_contents($file));
    $sp = $entity->getMetadata20SP();
    $options = json_decode(file_get_contents(substr($file, 0, -4) . '.json'), true);
    $metadata[$sp['entityid']] = array_merge($sp, $options);
}
`);

  let server: ServerProcess;
  try {
    server = await startServerProcess('php', ['-q', '-d', `session.save_path=${path.join(dir, 'sessions')}`, '-S', `127.0.0.1:${port}`, '-t', path.join(SSP_ROOT, 'www')], {
      env: { SIMPLESAMLPHP_CONFIG_DIR: path.join(dir, 'config') },
      readyUrl: `${origin}/saml2/idp/metadata.php`,
    });
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    origin,
    entityId,
    async metadata() {
      const answer = await fetch(`${origin}/saml2/idp/metadata.php`);
      if (answer.status !== 200) throw new Error(`SimpleSAMLphp metadata answered ${answer.status}`);
      return answer.text();
    },
    addServiceProvider(name, metadataXml, spOptions) {
      fs.writeFileSync(path.join(dir, 'metadata/sp', `${name}.json`), JSON.stringify(spOptions));
      fs.writeFileSync(path.join(dir, 'metadata/sp', `${name}.xml`), metadataXml);
    },
    async login(location, username, password) {
      const browser = supertest.agent(origin);
      const local = (url: string) => {
        const target = new URL(decodeEntities(url), origin);
        if (target.origin !== origin) throw new Error(`SimpleSAMLphp sent the browser elsewhere: ${url}`);
        return target.pathname + target.search;
      };
      let page = await browser.get(local(location)).redirects(5);
      if (page.status !== 200 || !/name="password"/.test(page.text)) throw new Error(`SimpleSAMLphp did not show its login form (${page.status}): ${page.text.slice(0, 2000)}\n${server.output()}`);
      const authState = /name="AuthState" value="([^"]+)"/.exec(page.text)?.[1];
      if (!authState) throw new Error('no AuthState on the SimpleSAMLphp login form');
      const loginUrl = new URL(page.request.url);
      page = await browser.post(loginUrl.pathname + loginUrl.search).type('form').send({ username, password, AuthState: decodeEntities(authState) }).redirects(5);
      const action = /<form[^>]*\saction="([^"]+)"/.exec(page.text)?.[1];
      if (page.status !== 200 || !action) throw new Error(`SimpleSAMLphp did not answer with a form to post (${page.status}): ${page.text.slice(0, 2000)}\n${server.output()}`);
      const fields: Record<string, string> = {};
      for (const match of page.text.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) fields[match[1]!] = decodeEntities(match[2]!);
      return { acs: decodeEntities(action), fields };
    },
    log: () => server.output(),
    async close() {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
