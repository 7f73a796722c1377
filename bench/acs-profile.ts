/**
 * The SAML validation of one means alone, in-process, for profiling (node --cpu-prof): N AuthnRequests
 * are made through the adapter, N signed and encrypted answers are built beforehand with the
 * development IdP's key, then only the adapter's correlate + handleAnswer run, N times.
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof bench/acs-profile.ts [N]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createBroker } from '../src/broker.ts';
import { readEnvironment } from '../src/config/environment.ts';
import { buildSamlResponse } from '../src/devidp/saml-response-builder.ts';
import { readServiceProviderMetadata } from '../src/devidp/sp-metadata-reader.ts';
import { attribute } from '../src/domain/attributes.ts';
import type { ExpectedRequest } from '../src/upstream/contract.ts';

const count = Number(process.argv[2] ?? 300);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-acs-'));
const env = readEnvironment({ BRANA_MODE: 'development', BRANA_DATA_DIR: path.join(dir, 'data'), BRANA_KEYS_DIR: path.join(dir, 'keys'), BRANA_DEMO_SEP_PORT: '0', LOG_LEVEL: 'error' });
const broker = await createBroker(env);
try {
  const entry = broker.registry.saml('eobcanka')!;
  const idpDir = path.join(env.keysDir, 'dev-idp');
  const idp = { entityId: entry.development!.entityId, privateKeyPem: fs.readFileSync(path.join(idpDir, 'eobcanka.key.pem'), 'utf8'), certificatePem: fs.readFileSync(path.join(idpDir, 'eobcanka.crt.pem'), 'utf8') };
  const sp = readServiceProviderMetadata(entry.adapter.serviceProviderMetadata());
  const responses: Array<{ SAMLResponse: string; expected: ExpectedRequest }> = [];
  for (let i = 0; i < count; i += 1) {
    const handoff = await entry.adapter.startLogin({ minimumLoa: 'substantial', forceAuthn: false, spType: 'public' });
    const expected: ExpectedRequest = { requestId: handoff.requestId, means: 'eobcanka', minimumLoa: 'substantial', forceAuthn: false, createdAt: Date.now() };
    const xml = await buildSamlResponse({
      idp,
      sp: { entityId: sp.entityId, acsUrl: sp.acsUrl, encryptionCertificatePem: sp.encryptionCertificatePem },
      inResponseTo: handoff.requestId,
      subject: 'bench',
      loa: 'high',
      attributes: ['CurrentGivenName', 'CurrentFamilyName', 'DateOfBirth', 'PlaceOfBirth'].map((id) => ({ name: attribute(id as 'DateOfBirth').samlName, values: ['x'] })),
    });
    responses.push({ SAMLResponse: Buffer.from(xml).toString('base64'), expected });
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (const { SAMLResponse, expected } of responses) await entry.adapter.handleAnswer(entry.adapter.correlate({ SAMLResponse }), expected);
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(`${count} validations: ${(wall / count).toFixed(2)} ms wall, ${((cpu.user + cpu.system) / 1000 / count).toFixed(2)} ms CPU each\n`);
} finally {
  await broker.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
