/**
 * A fast SAML identity provider for benchmarks, in its own process so its signing and encryption are
 * not counted as the broker's. It answers every AuthnRequest at once for one test citizen with a
 * signed (and, unless told otherwise, encrypted) assertion, as NIA's means do — as JSON, because the
 * load driver, not a browser, carries it to the ACS.
 *
 *   node bench/fast-idp.ts --port 0 --keys DIR --base-url http://127.0.0.1:PORT --sp-metadata FILE [--plain]
 * Prints "ready <port>" when listening.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { parseArgs } from 'node:util';
import type { AddressInfo } from 'node:net';
import { buildSamlResponse } from '../src/devidp/saml-response-builder.ts';
import { readServiceProviderMetadata } from '../src/devidp/sp-metadata-reader.ts';
import { attribute } from '../src/domain/attributes.ts';
import { certificateBody, generateSelfSignedCertificate } from '../src/keys/certificate.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    keys: { type: 'string' },
    'sp-metadata': { type: 'string' },
    plain: { type: 'boolean', default: false },
  },
});

const keysDir = values.keys!;
fs.mkdirSync(keysDir, { recursive: true });
const keyFile = path.join(keysDir, 'fast-idp.key.pem');
const certFile = path.join(keysDir, 'fast-idp.crt.pem');
if (!fs.existsSync(keyFile)) {
  const generated = generateSelfSignedCertificate('Brána benchmark IdP');
  fs.writeFileSync(keyFile, generated.privateKeyPem);
  fs.writeFileSync(certFile, generated.certificatePem);
}
const privateKeyPem = fs.readFileSync(keyFile, 'utf8');
const certificatePem = fs.readFileSync(certFile, 'utf8');

const ATTRIBUTES = [
  { name: attribute('CurrentGivenName').samlName, values: ['Jan'] },
  { name: attribute('CurrentFamilyName').samlName, values: ['Novák'] },
  { name: attribute('DateOfBirth').samlName, values: ['1980-04-12'] },
  { name: attribute('PlaceOfBirth').samlName, values: ['Praha'] },
];

let sp: ReturnType<typeof readServiceProviderMetadata> | undefined;
let baseUrl = '';

function metadata(): string {
  return (
    `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${baseUrl}/metadata">` +
    `<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` +
    `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${certificateBody(certificatePem)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>` +
    `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${baseUrl}/sso"/>` +
    `</md:IDPSSODescriptor></md:EntityDescriptor>`
  );
}

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url ?? '/', baseUrl);
    if (url.pathname === '/metadata') {
      res.writeHead(200, { 'content-type': 'application/samlmetadata+xml' }).end(metadata());
      return;
    }
    if (url.pathname !== '/sso') {
      res.writeHead(404).end();
      return;
    }
    sp ??= readServiceProviderMetadata(fs.readFileSync(values['sp-metadata']!, 'utf8'));
    const request = inflateRawSync(Buffer.from(url.searchParams.get('SAMLRequest') ?? '', 'base64')).toString('utf8');
    const id = /\sID="([^"]+)"/.exec(request)?.[1];
    if (!id) {
      res.writeHead(400).end('no request id');
      return;
    }
    const xml = await buildSamlResponse({
      idp: { entityId: `${baseUrl}/metadata`, privateKeyPem, certificatePem },
      sp: { entityId: sp.entityId, acsUrl: sp.acsUrl, encryptionCertificatePem: values.plain ? null : sp.encryptionCertificatePem },
      inResponseTo: id,
      subject: 'bench-subject-jan-novak',
      loa: 'high',
      attributes: ATTRIBUTES,
      encrypt: !values.plain,
    });
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ acs: sp.acsUrl, SAMLResponse: Buffer.from(xml).toString('base64') }));
  } catch (err) {
    res.writeHead(500).end(String(err));
  }
});

server.keepAliveTimeout = 60_000;
server.listen(Number(values.port), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  baseUrl = `http://127.0.0.1:${port}`;
  process.stdout.write(`ready ${port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
