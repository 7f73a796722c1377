import http from 'node:http';
import { createBroker } from './broker.ts';
import { ConfigurationError } from './config/configuration-error.ts';
import { readEnvironment } from './config/environment.ts';
import { createDemoSep, DEMO_SEP_CLIENT_ID, demoSepRegistration } from './demo-sep/demo-sep.ts';
import { logger } from './log/logger.ts';
import { SepRegistration } from './sep/sep-registration.ts';
import { removeExpiredModels } from './oidc/model-adapter.ts';

/** `npm start`: one Brána node, and in development mode the demo SeP beside it. */
async function main(): Promise<void> {
  const env = readEnvironment();
  const broker = await createBroker(env);
  const servers: http.Server[] = [];

  const server = http.createServer(broker.app);
  await new Promise<void>((resolve) => server.listen(env.port, env.bindHost, resolve));
  servers.push(server);

  let demoUrl: string | null = null;
  if (env.mode === 'development' && env.demoSepPort !== null) {
    const origin = `http://localhost:${env.demoSepPort}`;
    const registration = new SepRegistration(broker.db, broker.seps, broker.log, { allowLoopbackHttp: true, knownMeans: broker.registry.ids() });
    let demo = await broker.seps.findWithSecret(DEMO_SEP_CLIENT_ID);
    if (!demo) {
      await registration.register(demoSepRegistration(origin), 'active', 'npm start (development)');
      demo = await broker.seps.findWithSecret(DEMO_SEP_CLIENT_ID);
    } else if (!demo.sep.redirectUris.includes(`${origin}/callback`)) {
      logger.warn('the demo SeP is registered for another port; delete data/ or use that port', { registered: demo.sep.redirectUris });
    }
    const demoServer = http.createServer(createDemoSep({ origin, issuer: env.publicUrl, clientSecret: demo!.clientSecret! }));
    await new Promise<void>((resolve) => demoServer.listen(env.demoSepPort!, env.bindHost, resolve));
    servers.push(demoServer);
    demoUrl = `${origin}/`;
  }

  const cleanup = setInterval(() => {
    Promise.all([removeExpiredModels(broker.db), broker.requests.removeExpired(), broker.foreignPersons.removeExpired()]).catch((err: unknown) =>
      logger.error('cleanup of expired rows failed', { error: (err as Error).message }),
    );
  }, 60_000);
  cleanup.unref();

  logger.info('Brána started', { mode: env.mode, issuer: env.publicUrl.origin, database: env.databaseUrl.replace(/\/\/[^@]*@/, '//…@') });
  const lines = [`Brána (${env.mode}) is listening at ${env.publicUrl.origin}/ (OpenID configuration: ${env.publicUrl.origin}/.well-known/openid-configuration)`];
  if (demoUrl) lines.push(`Open ${demoUrl} in a browser and log in through Brána with a development identity provider.`);
  process.stdout.write(`\n${lines.join('\n')}\n\n`);

  const stop = async () => {
    clearInterval(cleanup);
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    await broker.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
}

main().catch((err: unknown) => {
  if (err instanceof ConfigurationError) {
    process.stderr.write(`Brána cannot start: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`Brána failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
