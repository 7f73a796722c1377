import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * The xmlsec1 command-line tool (libxmlsec1 on OpenSSL) and the openssl CLI: a signer and encrypter
 * that shares no code with the libraries Brána checks with (xml-crypto, xml-encryption, xmldom), so
 * that a message it makes is a fair test of Brána and not of one library against itself.
 */

export const SAML_ID_ATTRIBUTES = [
  ['ID', 'urn:oasis:names:tc:SAML:2.0:protocol:Response'],
  ['ID', 'urn:oasis:names:tc:SAML:2.0:assertion:Assertion'],
  // A SeP's AuthnRequest on the HTTP-POST binding (Brána as a SAML IdP, saml-idp/).
  ['ID', 'urn:oasis:names:tc:SAML:2.0:protocol:AuthnRequest'],
] as const;

export interface KeyFiles {
  keyFile: string;
  certFile: string;
}

export type Signer = KeyFiles | { hmacKeyFile: string };
export interface SignOptions {
  includeCertificate?: boolean;
}

function signingKeyArgs(signer: Signer, options: SignOptions): string[] {
  return 'hmacKeyFile' in signer
    ? ['--hmackey', signer.hmacKeyFile]
    : ['--privkey-pem', options.includeCertificate === false ? signer.keyFile : `${signer.keyFile},${signer.certFile}`];
}

function idArgs(): string[] {
  return SAML_ID_ATTRIBUTES.flatMap(([attribute, element]) => [`--id-attr:${attribute}`, element]);
}

/** The declaration makes libxml2 write UTF-8 back, not character references. */
const DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>';
const unsignedDocument = (xml: string) => `${DECLARATION}${xml}`;

/** A scratch folder for one test run; fixtures are made in it at test time, so their times are fresh. */
export class XmlSecWorkspace {
  readonly dir: string;
  private counter = 0;

  constructor(prefix = 'brana-xmlsec-') {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  }

  file(name: string, content?: string | Buffer): string {
    this.counter += 1;
    const file = path.join(this.dir, `${this.counter}-${name}`);
    if (content !== undefined) fs.writeFileSync(file, content);
    return file;
  }

  /** A fresh RSA key and self-signed certificate made by the openssl CLI (an attacker's, say). */
  async newKeyPair(name: string, bits = 2048): Promise<KeyFiles> {
    const keyFile = this.file(`${name}.key.pem`);
    const certFile = this.file(`${name}.crt.pem`);
    await run('openssl', ['req', '-x509', '-newkey', `rsa:${bits}`, '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', `/CN=${name}`]);
    return { keyFile, certFile };
  }

  /**
   * Signs the first ds:Signature template in the document (its Reference URI says what it covers;
   * DigestValue and SignatureValue are filled in). With `hmacKeyFile`, the key is those raw bytes.
   */
  async sign(xml: string, signer: Signer, options: SignOptions = {}): Promise<string> {
    const input = this.file('unsigned.xml', unsignedDocument(xml));
    const output = this.file('signed.xml');
    await run('xmlsec1', ['--sign', ...signingKeyArgs(signer, options), ...idArgs(), '--output', output, input]);
    return withoutDeclaration(fs.readFileSync(output, 'utf8'));
  }

  /** Checks a signature with xmlsec1 itself (to be sure a fixture is what it claims to be). */
  async verifies(xml: string, certFile: string): Promise<boolean> {
    const input = this.file('verify.xml', xml);
    const idArgs = SAML_ID_ATTRIBUTES.flatMap(([attribute, element]) => [`--id-attr:${attribute}`, element]);
    try {
      await run('xmlsec1', ['--verify', '--insecure', '--pubkey-cert-pem', certFile, ...idArgs, input]);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Encrypts `plaintext` (an element's XML) into the xenc:EncryptedData template: a fresh session key
   * of the template's data algorithm, wrapped for the certificate with the template's key transport.
   */
  async encrypt(plaintext: string, template: string, recipientCertFile: string, sessionKey: 'aes-128' | 'aes-256'): Promise<string> {
    const data = this.file('plaintext.xml', plaintext);
    const input = this.file('encryption-template.xml', template);
    const output = this.file('encrypted.xml');
    await run('xmlsec1', ['--encrypt', '--pubkey-cert-pem', recipientCertFile, '--session-key', sessionKey, '--binary-data', data, '--output', output, input]);
    return withoutDeclaration(fs.readFileSync(output, 'utf8'));
  }

  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

interface PendingSignature {
  xml: string;
  input: string;
  signer: Signer;
  options: SignOptions;
  resolve(signed: string): void;
  reject(err: unknown): void;
}

/**
 * A workspace that signs many messages with one xmlsec1 process: signatures asked for within a few
 * milliseconds of each other with the same key are made together (xmlsec1 signs every file it is
 * given, writing each document after the other). Starting an xmlsec1 process costs far more than a
 * signature, so a suite that builds a hundred fixtures at once runs in a fraction of the time. The
 * messages are the same as `XmlSecWorkspace.sign` makes them.
 */
export class BatchingXmlSecWorkspace extends XmlSecWorkspace {
  private readonly pending = new Map<string, PendingSignature[]>();
  private timer: NodeJS.Timeout | undefined;

  override sign(xml: string, signer: Signer, options: SignOptions = {}): Promise<string> {
    const input = this.file('unsigned.xml', unsignedDocument(xml));
    return new Promise((resolve, reject) => {
      const key = JSON.stringify(signingKeyArgs(signer, options));
      this.pending.set(key, [...(this.pending.get(key) ?? []), { xml, input, signer, options, resolve, reject }]);
      this.timer ??= setTimeout(() => this.flush(), 5);
    });
  }

  private flush(): void {
    this.timer = undefined;
    const batches = [...this.pending.values()];
    this.pending.clear();
    for (const batch of batches) void this.signTogether(batch);
  }

  private async signTogether(batch: PendingSignature[]): Promise<void> {
    const [first] = batch;
    try {
      const { stdout } = await run('xmlsec1', ['--sign', ...signingKeyArgs(first!.signer, first!.options), ...idArgs(), ...batch.map((p) => p.input)], { maxBuffer: 256 * 1024 * 1024 });
      const documents = stdout.split(/^(?=<\?xml version="1\.0" encoding="UTF-8"\?>)/m).filter((d) => d.trim());
      if (documents.length !== batch.length) throw new Error(`xmlsec1 wrote ${documents.length} documents for ${batch.length}`);
      batch.forEach((p, i) => p.resolve(withoutDeclaration(documents[i]!)));
    } catch {
      // One template xmlsec1 cannot sign fails the whole run: sign each alone, so that each gets its own answer.
      for (const p of batch) super.sign(p.xml, p.signer, p.options).then(p.resolve, p.reject);
    }
  }
}

export function withoutDeclaration(xml: string): string {
  return xml.replace(/^<\?xml[^>]*\?>\s*/, '').trimEnd();
}

export function samlId(): string {
  return `_${randomBytes(20).toString('hex')}`;
}
