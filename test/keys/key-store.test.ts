import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { ConfigurationError } from '../../src/config/configuration-error.ts';
import { generateSelfSignedCertificate } from '../../src/keys/certificate.ts';
import { readOrCreateCertifiedKey } from '../../src/keys/key-store.ts';

const run = promisify(execFile);
const ENTRY = path.join(path.dirname(fileURLToPath(import.meta.url)), '../support/entries/load-keys.ts');

describe('key material on first start', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-keys-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('is the same for nodes that start together on an empty folder, and every certificate belongs to its key', async () => {
    const keysDir = path.join(dir, 'keys');
    const outputs = await Promise.all(Array.from({ length: 4 }, () => run(process.execPath, [ENTRY, keysDir], { env: { ...process.env, LOG_LEVEL: 'error' } })));
    const seen = outputs.map(({ stdout }) => stdout);
    assert.equal(new Set(seen).size, 1, `the nodes disagree:\n${seen.join('\n')}`);
    // Each process also checked that the certificate it read belongs to the key it read.
    assert.deepEqual(fs.readdirSync(keysDir).filter((name) => name.endsWith('.tmp')), [], 'no temporary files stay behind');
  });

  it('refuses a certificate that does not belong to its key, naming the file', async () => {
    await readOrCreateCertifiedKey(dir, 'saml-signing', 'test');
    fs.writeFileSync(path.join(dir, 'saml-signing.crt.pem'), generateSelfSignedCertificate('someone else').certificatePem);
    await assert.rejects(
      readOrCreateCertifiedKey(dir, 'saml-signing', 'test'),
      (err: unknown) => err instanceof ConfigurationError && /saml-signing\.crt\.pem: \(certificate\): does not belong to the key in saml-signing\.key\.pem/.test(err.message),
    );
  });

  it('makes a certificate for a key that lost its own (a node stopped between the two files)', async () => {
    const { privateKeyPem } = generateSelfSignedCertificate('x');
    fs.writeFileSync(path.join(dir, 'saml-signing.key.pem'), privateKeyPem);
    const pair = await readOrCreateCertifiedKey(dir, 'saml-signing', 'test');
    assert.equal(pair.privateKeyPem, privateKeyPem);
    assert.ok(fs.existsSync(path.join(dir, 'saml-signing.crt.pem')));
  });
});
