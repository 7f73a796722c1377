import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeEntities } from './html.ts';
import { freePort, requirePrerequisites, startServerProcess, type ServerProcess } from './interop-process.ts';

/**
 * pysaml2 (Debian python3-pysaml2) as a second, independent SAML IdP: the small server in
 * pysaml2-idp.py, run with Debian's Python. It logs the test citizen in at once (no login form) and
 * answers as each service provider's options say; Shibboleth IdP's defaults are SHIBBOLETH_DEFAULTS.
 */

const SERVER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'pysaml2-idp.py');
/** Debian's interpreter: the one python3-pysaml2 installs into (a PATH python3 may be another). */
const PYTHON = '/usr/bin/python3';

export const AES128_GCM = 'http://www.w3.org/2009/xmlenc11#aes128-gcm';

export interface Pysaml2SpOptions {
  sign_response: boolean;
  sign_assertion: boolean;
  encrypt_assertion: boolean;
  /** The data encryption of an encrypted assertion (key transport is always rsa-oaep-mgf1p). */
  data_encryption?: string;
  /** Signature and digest algorithms other than the configured rsa-sha256 and sha256 (pysaml2's own defaults are SHA-1). */
  sign_alg?: string;
  digest_alg?: string;
}

/** Shibboleth IdP 4/5 by default: the Response signed, the Assertion not, encrypted with AES-128-GCM. */
export const SHIBBOLETH_DEFAULTS: Pysaml2SpOptions = { sign_response: true, sign_assertion: false, encrypt_assertion: true, data_encryption: AES128_GCM };

export interface Pysaml2Citizen {
  nameId: string;
  authnContext: string;
  attributes: Record<string, string[]>;
}

export interface Pysaml2Idp {
  origin: string;
  entityId: string;
  metadata(): Promise<string>;
  addServiceProvider(name: string, metadataXml: string, entityId: string, options: Pysaml2SpOptions): void;
  /** A browser at the IdP: takes Brána's redirect, returns the auto-submit form the IdP answers with. */
  answer(location: string): Promise<{ acs: string; fields: Record<string, string> }>;
  log(): string;
  close(): Promise<void>;
}

export function requirePysaml2(): void {
  requirePrerequisites([
    { what: `Debian's Python 3 (${PYTHON})`, debianPackage: 'python3', command: PYTHON, args: ['--version'] },
    { what: 'pysaml2 for Debian Python', debianPackage: 'python3-pysaml2', command: PYTHON, args: ['-c', 'import saml2.server'] },
    { what: 'xmlsec1 with AES-GCM (pysaml2 signs and encrypts with it)', debianPackage: 'xmlsec1', command: 'sh', args: ['-c', 'xmlsec1 --list-transforms | grep -q aes128-gcm'] },
    { what: 'openssl command line', debianPackage: 'openssl', command: 'openssl', args: ['version'] },
  ]);
}

export async function startPysaml2Idp(citizen: Pysaml2Citizen): Promise<Pysaml2Idp> {
  requirePysaml2();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-pysaml2-'));
  fs.mkdirSync(path.join(dir, 'sp'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-sha256', '-nodes', '-days', '2', '-subj', '/CN=pysaml2 test IdP',
    '-keyout', path.join(dir, 'idp.key'), '-out', path.join(dir, 'idp.crt')], { stdio: 'ignore' });
  fs.writeFileSync(path.join(dir, 'citizen.json'), JSON.stringify({ name_id: citizen.nameId, authn_context: citizen.authnContext, attributes: citizen.attributes }));
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  let server: ServerProcess;
  try {
    server = await startServerProcess(PYTHON, [SERVER, String(port), dir], { readyUrl: `${origin}/metadata` });
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    origin,
    entityId: `${origin}/metadata`,
    async metadata() {
      const answer = await fetch(`${origin}/metadata`);
      if (answer.status !== 200) throw new Error(`pysaml2 metadata answered ${answer.status}`);
      return answer.text();
    },
    addServiceProvider(name, metadataXml, entityId, options) {
      fs.writeFileSync(path.join(dir, 'sp', `${name}.json`), JSON.stringify({ entity_id: entityId, ...options }));
      fs.writeFileSync(path.join(dir, 'sp', `${name}.xml`), metadataXml);
    },
    async answer(location) {
      if (!location.startsWith(`${origin}/`)) throw new Error(`not a redirect to the pysaml2 IdP: ${location}`);
      const answer = await fetch(location, { redirect: 'manual' });
      const page = await answer.text();
      if (answer.status !== 200) throw new Error(`pysaml2 IdP answered ${answer.status}: ${page.slice(0, 2000)}\n${server.output()}`);
      const action = /<form[^>]*action="([^"]+)"/.exec(page)?.[1];
      if (!action) throw new Error(`no form in the pysaml2 answer: ${page.slice(0, 2000)}`);
      const fields: Record<string, string> = {};
      for (const match of page.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) fields[match[1]!] = decodeEntities(match[2]!);
      return { acs: decodeEntities(action), fields };
    },
    log: () => server.output(),
    async close() {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
