import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createBroker, type Broker } from './broker.ts';
import { ConfigurationError } from './config/configuration-error.ts';
import { readEnvironment, type Environment } from './config/environment.ts';
import { createDemoSep, DEMO_SEP_CLIENT_ID, demoSepRegistration } from './demo-sep/demo-sep.ts';
import { DEMO_SAML_SEP_CLIENT_ID, demoSamlMetadata, demoSamlSepRegistration, demoSamlServiceProvider } from './demo-sep/demo-saml-sep.ts';
import { readOrCreateCertifiedKey } from './keys/key-store.ts';
import { samlIdpEndpoints } from './saml-idp/idp-metadata.ts';
import { parseServiceProviderMetadata } from './saml-idp/sp-metadata.ts';
import type { SAML } from '@node-saml/node-saml';
import { logger } from './log/logger.ts';
import { BROKER_NODE_FLAGS, runsWithBrokerNodeFlags } from './node-flags.ts';
import { sweepExpiredRows } from './operations/expired-rows.ts';
import { shutDownGracefully } from './operations/graceful-shutdown.ts';
import { SepRegistration } from './sep/sep-registration.ts';
import { SepAlreadyRegistered } from './sep/sep-store.ts';
import { describeDatabaseError } from './store/database-unavailable.ts';

const SWEEP_INTERVAL_MS = 60_000;

function listen(server: http.Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** The demo "Portál občana" beside the broker (development only), registered on first start. */
async function startDemoSep(env: Environment, broker: Broker, port: number): Promise<http.Server> {
  const origin = `http://localhost:${port}`;
  const registration = new SepRegistration(broker.db, broker.seps, broker.log, { allowLoopbackHttp: true, knownMeans: broker.registry.ids() });
  let demo = await broker.seps.findWithSecret(DEMO_SEP_CLIENT_ID);
  if (!demo) {
    try {
      await registration.register(demoSepRegistration(origin), 'active', 'npm start (development)');
    } catch (err) {
      // Another node registered it at the same moment.
      if (!(err instanceof SepAlreadyRegistered)) throw err;
    }
    demo = await broker.seps.findWithSecret(DEMO_SEP_CLIENT_ID);
  } else if (!demo.sep.redirectUris.includes(`${origin}/callback`)) {
    logger.warn('the demo SeP is registered for another port; delete data/ or use that port', { registered: demo.sep.redirectUris });
  }
  const saml = await registerDemoSamlSep(env, broker, registration, origin);
  const server = http.createServer(createDemoSep({ origin, issuer: env.publicUrl, clientSecret: demo!.clientSecret!, saml }));
  await listen(server, port, env.bindHost);
  return server;
}

/**
 * The demo portal's SAML door (node-saml as the SeP), registered from its SP metadata on first start;
 * its keys are kept in the keys folder so that the registration stays valid across restarts.
 */
async function registerDemoSamlSep(env: Environment, broker: Broker, registration: SepRegistration, origin: string): Promise<{ sp: SAML; metadataXml: string }> {
  const signing = await readOrCreateCertifiedKey(env.keysDir, 'demo-saml-sep-signing', 'Demo SeP (SAML) signing');
  const encryption = await readOrCreateCertifiedKey(env.keysDir, 'demo-saml-sep-encryption', 'Demo SeP (SAML) encryption');
  const idp = samlIdpEndpoints(env.publicUrl);
  const sp = demoSamlServiceProvider({ origin, idp: { ssoUrl: idp.ssoUrl, entityId: idp.entityId, certificatePem: broker.keys.samlSigning.certificatePem }, signing, encryption });
  const metadataXml = demoSamlMetadata(sp, { signing, encryption });
  const existing = await broker.seps.find(DEMO_SAML_SEP_CLIENT_ID);
  if (!existing) {
    const serviceProvider = parseServiceProviderMetadata(metadataXml, 'the demo SAML SeP', { allowLoopbackHttp: true });
    try {
      await registration.register(
        { ...demoSamlSepRegistration(origin), redirectUris: serviceProvider.assertionConsumerServices.map((service) => service.url) },
        'active',
        'npm start (development)',
        { saml: { serviceProvider, metadata: { xml: metadataXml, source: `${origin}/saml/metadata` } } },
      );
    } catch (err) {
      // Another node registered it at the same moment.
      if (!(err instanceof SepAlreadyRegistered)) throw err;
    }
  } else if (!existing.redirectUris.includes(`${origin}/saml/acs`)) {
    logger.warn('the demo SAML SeP is registered for another port; delete data/ or use that port', { registered: existing.redirectUris });
  }
  return { sp, metadataXml };
}

/**
 * `npm start`: one Brána node (and in development mode the demo SeP beside it). Signals: SIGTERM or
 * SIGINT stop it gracefully; SIGHUP re-reads the signing keys at once.
 */
async function main(): Promise<void> {
  const env = readEnvironment();
  const broker = await createBroker(env);
  const server = http.createServer(broker.app);
  const address = await listen(server, env.port, env.bindHost);
  const servers = [server];
  let demoUrl: string | null = null;
  if (env.demoSepPort !== null) {
    servers.push(await startDemoSep(env, broker, env.demoSepPort));
    demoUrl = `http://localhost:${env.demoSepPort}/`;
  }

  const sweep = setInterval(() => {
    sweepExpiredRows(broker.db, broker)
      .then((removed) => removed && logger.info('expired rows removed', { removed }))
      .catch((err: unknown) => logger.error('cleanup of expired rows failed', describeDatabaseError(err)));
  }, SWEEP_INTERVAL_MS);
  sweep.unref();

  process.on('SIGHUP', () => void broker.signingKeys.check('signal'));

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('Brána stopping', { signal, graceSeconds: env.shutdownGraceSeconds });
    clearInterval(sweep);
    const outcome = await shutDownGracefully(servers, { graceMs: env.shutdownGraceSeconds * 1000, readiness: broker.readiness });
    await broker.close();
    logger.info('Brána stopped', { outcome });
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));

  if (!runsWithBrokerNodeFlags()) {
    logger.warn(`started without ${BROKER_NODE_FLAGS.join(' ')}: every login costs a few per cent more CPU, and the heap keeps more reserve (run it as npm start or the Dockerfile does; README, "Performance")`);
  }
  logger.info('Brána started', { mode: env.mode, issuer: env.publicUrl.origin, listening: `${address.address}:${address.port}`, database: env.databaseUrl.replace(/\/\/[^@]*@/, '//…@') });
  const lines = [
    `Brána (${env.mode}) is listening at ${env.publicUrl.origin}/ (bound to ${address.address}:${address.port}; OpenID configuration: ${env.publicUrl.origin}/.well-known/openid-configuration)`,
  ];
  if (demoUrl) lines.push(`Open ${demoUrl} in a browser and log in through Brána with a development identity provider.`);
  process.stdout.write(`\n${lines.join('\n')}\n\n`);
}

main().catch((err: unknown) => {
  if (err instanceof ConfigurationError) {
    // One line per problem (every wrong environment variable is reported at once).
    process.stderr.write(err.message.split('\n').map((line) => `Brána cannot start: ${line}\n`).join(''));
    process.exit(2);
  }
  process.stderr.write(`Brána failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
