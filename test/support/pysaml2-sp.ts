import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { requirePysaml2 } from './pysaml2-idp.ts';

const run = promisify(execFile);
const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'pysaml2-sp.py');
/** Debian's interpreter: the one python3-pysaml2 installs into. */
const PYTHON = '/usr/bin/python3';

export interface Pysaml2Request {
  id: string;
  /** HTTP-Redirect: the URL the browser is sent to. */
  url?: string;
  /** HTTP-POST: the form the browser posts. */
  action?: string;
  fields?: Record<string, string>;
}

export interface Pysaml2Login {
  name_id: string;
  name_id_format: string;
  authn_context: string;
  attributes: Record<string, string[]>;
  issuer: string;
  session_index: string;
}

/**
 * pysaml2 (Debian python3-pysaml2) as a SAML SeP of Brána: test/support/pysaml2-sp.py, one process
 * per step (metadata, a signed AuthnRequest, reading the Response), with its own key made by the
 * openssl command line and Brána's IdP metadata as its only trust.
 */
export class Pysaml2Sp {
  readonly dir: string;
  readonly entityId: string;
  readonly acs: string;

  private constructor(dir: string, entityId: string, acs: string) {
    this.dir = dir;
    this.entityId = entityId;
    this.acs = acs;
  }

  static create(idpMetadataXml: string): Pysaml2Sp {
    requirePysaml2();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-pysaml2-sp-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-sha256', '-nodes', '-days', '2', '-subj', '/CN=pysaml2 test SeP', '-keyout', path.join(dir, 'sp.key'), '-out', path.join(dir, 'sp.crt')], { stdio: 'ignore' });
    const sp = new Pysaml2Sp(dir, `https://pysaml2-sep.example.cz/${path.basename(dir)}`, 'https://pysaml2-sep.example.cz/acs');
    fs.writeFileSync(path.join(dir, 'settings.json'), JSON.stringify({ entity_id: sp.entityId, acs: sp.acs }));
    fs.writeFileSync(path.join(dir, 'idp.xml'), idpMetadataXml);
    return sp;
  }

  private async call(args: string[]): Promise<unknown> {
    try {
      const { stdout } = await run(PYTHON, [SCRIPT, this.dir, ...args], { maxBuffer: 16 * 1024 * 1024 });
      return JSON.parse(stdout) as unknown;
    } catch (err) {
      const failure = err as { stderr?: string; code?: number };
      throw new Error(`pysaml2 SP ${args[0]} failed (${failure.code}): ${failure.stderr ?? String(err)}`);
    }
  }

  async metadata(): Promise<string> {
    return ((await this.call(['metadata'])) as { xml: string }).xml;
  }

  async request(binding: 'redirect' | 'post', relayState: string): Promise<Pysaml2Request> {
    return (await this.call(['request', binding, relayState])) as Pysaml2Request;
  }

  /** pysaml2 checks the Response against its request and decrypts the Assertion; a refusal rejects. */
  async response(requestId: string, samlResponse: string): Promise<Pysaml2Login> {
    const file = path.join(this.dir, `response-${Date.now()}.b64`);
    fs.writeFileSync(file, samlResponse);
    return (await this.call(['response', requestId, file])) as Pysaml2Login;
  }

  /** pysaml2's signed LogoutRequest for Brána (HTTP-Redirect). */
  async logoutRequest(nameId: string, sessionIndex: string, relayState: string): Promise<{ id: string; url: string }> {
    return (await this.call(['logout-request', nameId, sessionIndex, relayState])) as { id: string; url: string };
  }

  /** A LogoutRequest Brána sent this SP, its signature verified and read by pysaml2; a refusal rejects. */
  async logoutReceived(url: string): Promise<{ name_id: string; session_indexes: string[]; issuer: string }> {
    return (await this.call(['logout-received', url])) as { name_id: string; session_indexes: string[]; issuer: string };
  }

  /** Brána's LogoutResponse, its signature verified and read by pysaml2. */
  async logoutResponse(url: string): Promise<{ status: string; in_response_to: string }> {
    return (await this.call(['logout-response', url])) as { status: string; in_response_to: string };
  }

  /** Where its SingleLogoutService is (HTTP-Redirect). */
  get slo(): string {
    return this.acs.replace('/acs', '/slo');
  }

  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
