import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import forge from 'node-forge';

/** A node the proxy can send requests to. */
export interface Backend {
  name: string;
  port: number;
}

/**
 * The load balancer of a test cluster: terminates TLS (as nginx or Caddy does in production), adds
 * X-Forwarded-Proto/-For/-Host, and sends each request to the node the test chooses, so that a test
 * can put each step of one login on a node of its choice. Citizens and SePs see one https origin.
 */
export interface RoutingProxy {
  origin: string;
  /** The proxy's self-signed certificate, for clients to trust. */
  ca: string;
  routeTo(backend: Backend): void;
  /**
   * The next request to this path (method and path, without the query) reaches the node, which does
   * all its work and answers; the proxy then throws that answer away and tells the client 502, as
   * when a node dies after its last write and before its response leaves (or a load balancer gives
   * up on a slow node). Nothing of the lost answer reaches the client: no redirect, no cookie.
   */
  loseNextResponse(method: string, path: string): void;
  /** Which node answered which request, in order. */
  log: Array<{ method: string; path: string; backend: string; status: number }>;
  close(): Promise<void>;
}

function localhostCertificate(): { key: string; cert: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const key = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const certificate = forge.pki.createCertificate();
  certificate.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ format: 'pem', type: 'spki' }).toString());
  certificate.serialNumber = `01${randomBytes(8).toString('hex')}`;
  certificate.validity.notBefore = new Date(Date.now() - 60_000);
  certificate.validity.notAfter = new Date(Date.now() + 86_400_000);
  const name = [{ name: 'commonName', value: 'localhost' }];
  certificate.setSubject(name);
  certificate.setIssuer(name);
  certificate.setExtensions([
    { name: 'basicConstraints', cA: true },
    { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] },
  ]);
  certificate.sign(forge.pki.privateKeyFromPem(key), forge.md.sha256.create());
  return { key, cert: forge.pki.certificateToPem(certificate) };
}

export async function startRoutingProxy(): Promise<RoutingProxy> {
  const { key, cert } = localhostCertificate();
  let target: Backend | null = null;
  let lose: { method: string; path: string } | null = null;
  const log: RoutingProxy['log'] = [];
  const server = https.createServer({ key, cert }, (req, res) => {
    const backend = target;
    if (!backend) {
      res.writeHead(502).end('no backend chosen');
      return;
    }
    const requestPath = (req.url ?? '').split('?')[0]!;
    const lost = lose !== null && lose.method === req.method && lose.path === requestPath;
    if (lost) lose = null;
    const upstream = http.request(
      {
        host: '127.0.0.1',
        port: backend.port,
        method: req.method,
        path: req.url,
        agent: false,
        headers: { ...req.headers, 'x-forwarded-proto': 'https', 'x-forwarded-for': req.socket.remoteAddress ?? '', 'x-forwarded-host': req.headers.host ?? '' },
      },
      (answer) => {
        log.push({ method: req.method ?? '', path: requestPath, backend: backend.name, status: answer.statusCode ?? 0 });
        if (lost) {
          answer.resume();
          answer.once('end', () => res.writeHead(502).end(`node ${backend.name} did not answer (the test lost its response)`));
          return;
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', (err) => {
      log.push({ method: req.method ?? '', path: (req.url ?? '').split('?')[0]!, backend: backend.name, status: 502 });
      if (!res.headersSent) res.writeHead(502).end(`node ${backend.name} did not answer: ${err.message}`);
      else res.destroy();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    origin: `https://localhost:${port}`,
    ca: cert,
    routeTo(backend) {
      target = backend;
    },
    loseNextResponse(method, path) {
      lose = { method, path };
    },
    log,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
