import fs from 'node:fs';
import { X509Certificate } from 'node:crypto';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import type { AssertionLog } from '../audit/assertion-log.ts';
import { operatorAdded, operatorRevoked } from '../audit/audit-events.ts';
import { LogNotIntact, registerAuditCommands } from '../audit/audit-commands.ts';
import { openAuditTrail, type AuditTrail } from '../audit/audit-trail.ts';
import { OPERATOR_ROLES, OperatorCredentials, isOperatorRole } from '../access/operator-credentials.ts';
import { ConfigurationError } from '../config/configuration-error.ts';
import { readEnvironment, type Environment } from '../config/environment.ts';
import { KeyRotationRefused, rotateSigningKeys, signingKeyStates } from '../operations/key-rotation.ts';
import { SIGNING_KEYS_FILE } from '../keys/signing-keys.ts';
import { logToStandardError } from '../log/logger.ts';
import { CLOCK_TOLERANCE_SECONDS, ID_TOKEN_LIFETIME_SECONDS } from '../oidc/provider.ts';
import { readIdentityMeansFolder } from '../means/identity-means.ts';
import { reviewOf } from '../admin/sep-administration.ts';
import { InitialAccessTokenUses } from '../oidc/initial-access-token-uses.ts';
import { DEFAULT_INITIAL_TOKEN_DAYS, DEFAULT_INITIAL_TOKEN_USES, MAX_INITIAL_TOKEN_DAYS, MAX_INITIAL_TOKEN_USES, issueInitialAccessToken, registrationDesk } from '../oidc/initial-access-tokens.ts';
import { ApprovalRefused, NothingToDecide, RegistrationRejected, SepRegistration, UnknownSep, approvalDigest, type SamlRegistration } from '../sep/sep-registration.ts';
import { samlIdpEndpoints } from '../saml-idp/idp-metadata.ts';
import { parseServiceProviderMetadata } from '../saml-idp/sp-metadata.ts';
import { verifyMetadataSignature } from '../upstream/saml/signed-metadata.ts';
import { SamlSepStore } from '../sep/saml-service-provider.ts';
import { SepAlreadyRegistered, SepStore } from '../sep/sep-store.ts';
import { migrate, openDatabase, type Database } from '../store/database.ts';
import { RequestWrites, forgetWritesSoFar, withRequestWrites } from '../store/request-writes.ts';
import { TileNotAllowed, TileRequests } from '../tiles/tile-requests.ts';
import { TileStore } from '../tiles/tile-store.ts';
import type { TileStatus } from '../tiles/tile.ts';
import { describeDatabaseError, isDatabaseUnavailable } from '../store/database-unavailable.ts';
import { addMeansCommands, MeansNotUsable } from './means-commands.ts';
import { addMetadataCommands } from './metadata-commands.ts';
import { addStaffCommands } from './staff-commands.ts';
import { OperatorError } from './operator-error.ts';

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

interface StoreContext {
  env: Environment;
  db: Database;
  seps: SepStore;
  registration: SepRegistration;
  log: AssertionLog;
  audit: AuditTrail;
  operators: OperatorCredentials;
  publicUrl: URL;
  tiles: TileStore;
  tileRequests: TileRequests;
}

async function withStore<T>(action: (context: StoreContext) => Promise<T>): Promise<T> {
  const env = readEnvironment();
  const db = openDatabase(env.databaseUrl, { poolMax: env.databasePoolMax, timeoutMs: env.databaseTimeoutMs });
  try {
    await migrate(db);
    const seps = new SepStore(db);
    const audit = await openAuditTrail(db, env.keysDir, env.audit);
    const log = audit.log;
    const knownMeans = readIdentityMeansFolder(env.providersDir).map((means) => means.id);
    const registration = new SepRegistration(db, seps, log, { allowLoopbackHttp: env.mode === 'development', knownMeans, environment: env.sepEnvironment });
    const tiles = new TileStore(db);
    const tileRequests = new TileRequests({ db, tiles, seps, log, allowLoopbackHttp: env.mode === 'development' });
    // Bringing the schema up to date and opening the log are not the command's change.
    forgetWritesSoFar();
    try {
      return await action({ env, db, seps, registration, log, audit, operators: new OperatorCredentials(db), publicUrl: env.publicUrl, tiles, tileRequests });
    } finally {
      await audit.stop();
    }
  } finally {
    await db.destroy();
  }
}

/** The largest SP metadata fetched from a URL, and how long the fetch may take. */
const SAML_METADATA_FETCH = { maxBytes: 512 * 1024, timeoutMs: 10_000 };

/**
 * A SAML SeP's SP metadata, from a file or an https URL, read and checked: problems name the file
 * (or URL) and the field. Its ACS endpoints become the registration's return URLs, so the document
 * must not name others.
 */
async function readSamlRegistration(source: string, documentFile: string, document: Record<string, unknown>, env: Environment, trustAnchorFile?: string): Promise<SamlRegistration> {
  if (document.redirectUris !== undefined) throw new OperatorError(`${documentFile}: redirectUris: a SAML SeP's return URLs are the ACS endpoints of its metadata; leave redirectUris out`);
  let xml: string;
  if (/^https:\/\//.test(source)) {
    let response: globalThis.Response;
    try {
      response = await fetch(source, { signal: AbortSignal.timeout(SAML_METADATA_FETCH.timeoutMs), redirect: 'error' });
    } catch (err) {
      throw new OperatorError(`${source}: cannot be fetched (${(err as Error).message})`);
    }
    if (!response.ok) throw new OperatorError(`${source}: answered HTTP ${response.status}`);
    xml = await response.text();
    if (xml.length > SAML_METADATA_FETCH.maxBytes) throw new OperatorError(`${source}: is larger than ${SAML_METADATA_FETCH.maxBytes} bytes`);
  } else if (/^[a-z]+:\/\//i.test(source)) {
    throw new OperatorError(`${source}: SP metadata is read from a file or an https URL only`);
  } else {
    try {
      xml = fs.readFileSync(source, 'utf8');
    } catch (err) {
      throw new OperatorError(`${source}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
  let anchor: string | undefined;
  if (trustAnchorFile !== undefined) {
    try {
      anchor = fs.readFileSync(trustAnchorFile, 'utf8');
      new X509Certificate(anchor);
    } catch (err) {
      throw new OperatorError(`${trustAnchorFile}: is not a readable PEM certificate (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
  try {
    // With a trust anchor only what its signature covers is read, never the unsigned text around it.
    const readable = anchor ? verifyMetadataSignature(xml, source, [anchor]) : xml;
    return { serviceProvider: parseServiceProviderMetadata(readable, source, { allowLoopbackHttp: env.mode === 'development' }), metadata: { xml, source } };
  } catch (err) {
    if (err instanceof ConfigurationError) throw new OperatorError(err.message);
    throw err;
  }
}

function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new OperatorError(`${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new OperatorError(`${file}: is not valid JSON (${(err as Error).message})`);
  }
}

export function buildProgram(): Command {
  const program = new Command('brana').description('Brána identity federation broker: operator commands').exitOverride();
  const sep = program.command('sep').description('SeP (service provider) registrations');

  sep
    .command('register')
    .description('register a SeP from a JSON document; prints its client id and secret (a SAML SeP: its entity id)')
    .requiredOption('--file <file>', 'the registration document (JSON)')
    .option('--saml-metadata <file-or-url>', 'a SAML SeP: its SP metadata (a file, or an https URL); its ACS endpoints are its return URLs')
    .option('--saml-metadata-trust-anchor <pem-file>', 'read the SP metadata only if it is signed by this certificate (a federation\'s metadata signer)')
    .option('--pending', 'register as pending approval instead of active')
    .action(async (options: { file: string; samlMetadata?: string; samlMetadataTrustAnchor?: string; pending?: boolean }) => {
      const document = readJsonFile(options.file) as Record<string, unknown>;
      const env = readEnvironment();
      if (options.samlMetadataTrustAnchor !== undefined && options.samlMetadata === undefined) throw new OperatorError('--saml-metadata-trust-anchor: needs --saml-metadata');
      const saml = options.samlMetadata === undefined ? undefined : await readSamlRegistration(options.samlMetadata, options.file, document, env, options.samlMetadataTrustAnchor);
      await withStore(async ({ registration, publicUrl }) => {
        try {
          const registered = await registration.register(saml ? { ...document, redirectUris: saml.serviceProvider.assertionConsumerServices.map((service) => service.url) } : document, options.pending ? 'pending' : 'active', 'cli', saml ? { saml } : {});
          if (saml) print({ clientId: registered.sep.clientId, entityId: saml.serviceProvider.entityId, status: registered.sep.status, group: registered.sep.group, idpMetadata: samlIdpEndpoints(publicUrl).metadataUrl });
          else print({ clientId: registered.sep.clientId, clientSecret: registered.clientSecret, status: registered.sep.status, group: registered.sep.group });
        } catch (err) {
          if (err instanceof RegistrationRejected) throw new OperatorError(err.problems.map((problem) => `${problem.startsWith('entityID') && options.samlMetadata ? options.samlMetadata : options.file}: ${problem}`).join('\n'));
          if (err instanceof SepAlreadyRegistered) throw new OperatorError(`${options.file}: clientId: ${err.message}`);
          throw err;
        }
      });
    });

  sep
    .command('saml-metadata <clientId>')
    .description('replace a SAML SeP\'s SP metadata (a certificate rollover, a moved ACS); the entity ID must stay the same')
    .option('--saml-metadata <file-or-url>', 'the new SP metadata (a file, or an https URL); by default fetched again from the https URL it was registered from')
    .option('--saml-metadata-trust-anchor <pem-file>', 'read the SP metadata only if it is signed by this certificate')
    .action(async (clientId: string, options: { samlMetadata?: string; samlMetadataTrustAnchor?: string }) => {
      const source = options.samlMetadata ?? (await withStore(async ({ db }) => (await new SamlSepStore(db).find(clientId))?.metadataSource));
      if (source === undefined) throw new OperatorError(`${clientId}: no SAML SeP with this client id`);
      if (options.samlMetadata === undefined && !/^https:\/\//.test(source)) throw new OperatorError(`--saml-metadata: required: SeP ${clientId} was registered from ${source}, not from an https URL`);
      const saml = await readSamlRegistration(source, '(none)', {}, readEnvironment(), options.samlMetadataTrustAnchor);
      await withStore(async ({ registration }) => {
        try {
          print({ clientId, entityId: saml.serviceProvider.entityId, changed: await registration.replaceSamlMetadata(clientId, saml, 'cli') });
        } catch (err) {
          if (err instanceof RegistrationRejected) throw new OperatorError(err.problems.map((problem) => `${problem.startsWith('clientId') ? clientId : source}: ${problem}`).join('\n'));
          throw err;
        }
      });
    });

  sep
    .command('list')
    .description('list registered SePs')
    .option('--pending', 'only those waiting for an administrator: new registrations and requested changes')
    .action(async (options: { pending?: boolean }) => {
      await withStore(async ({ seps }) => {
        const all = await seps.list();
        const shown = options.pending ? all.filter((item) => item.status === 'pending' || item.requestedRegistration !== null) : all;
        print(shown.map((item) => ({ clientId: item.clientId, name: item.name.cs, status: item.status, group: item.group, environment: item.environment, changePending: item.requestedRegistration !== null, approvalDigest: approvalDigest(item) })));
      });
    });

  sep
    .command('show <clientId>')
    .description('show one registration for review (without its secret): in force, the change asked for, the other members of its group')
    .action(async (clientId: string) => {
      await withStore(async ({ db, seps, registration }) => {
        const found = await seps.find(clientId);
        if (!found) throw new OperatorError(`no SeP with client id ${clientId}`);
        print(await reviewOf(seps, registration, found, new SamlSepStore(db)));
      });
    });

  sep
    .command('approve <clientId>')
    .description('approve a pending registration (it can log citizens in) or the change a SeP asked for (it comes into force), exactly as reviewed')
    .option('--digest <digest>', 'the approval.digest `brana sep show <clientId>` printed for the version you reviewed (required)')
    .action(async (clientId: string, options: { digest?: string }) => {
      if (options.digest === undefined) throw new OperatorError('--digest: required: the approval.digest that `brana sep show` printed for the version you reviewed');
      if (!/^[0-9a-f]{64}$/.test(options.digest)) throw new OperatorError('--digest: must be the 64 hex digits of approval.digest');
      const digest = options.digest;
      await withStore(async ({ registration }) => {
        try {
          print({ clientId, ...(await registration.approve(clientId, 'cli', digest)) });
        } catch (err) {
          if (err instanceof UnknownSep || err instanceof NothingToDecide || err instanceof ApprovalRefused) throw new OperatorError(err.message);
          throw err;
        }
      });
    });

  sep
    .command('reject <clientId>')
    .description('refuse a pending registration (it is disabled) or a requested change (it is dropped)')
    .requiredOption('--reason <text>', 'why, for the SeP and the assertion log')
    .action(async (clientId: string, options: { reason: string }) => {
      if (!options.reason.trim()) throw new OperatorError('--reason: must not be empty');
      await withStore(async ({ registration }) => {
        try {
          print({ clientId, ...(await registration.reject(clientId, 'cli', options.reason.trim())) });
        } catch (err) {
          if (err instanceof UnknownSep || err instanceof NothingToDecide) throw new OperatorError(err.message);
          throw err;
        }
      });
    });

  sep
    .command('rotate-secret <clientId>')
    .description('give a SeP a new client secret; the old one stops working at once')
    .action(async (clientId: string) => {
      await withStore(async ({ registration }) => {
        const secret = await registration.rotateSecret(clientId, 'cli');
        if (!secret) throw new OperatorError(`no SeP with client id ${clientId}`);
        print({ clientId, clientSecret: secret });
      });
    });

  sep
    .command('initial-token')
    .description('issue an initial access token with which a SeP registers itself (RFC 7591); printed once')
    .option('--days <days>', `how long it is valid (at most ${MAX_INITIAL_TOKEN_DAYS})`, String(DEFAULT_INITIAL_TOKEN_DAYS))
    .option('--uses <uses>', `how many SePs it may register (at most ${MAX_INITIAL_TOKEN_USES})`, String(DEFAULT_INITIAL_TOKEN_USES))
    .action(async (options: { days: string; uses: string }) => {
      const days = Number(options.days);
      if (!Number.isFinite(days) || days <= 0 || days > MAX_INITIAL_TOKEN_DAYS) throw new OperatorError(`--days: must be a number of days between 0 and ${MAX_INITIAL_TOKEN_DAYS}`);
      const uses = Number(options.uses);
      if (!/^\d{1,3}$/.test(options.uses) || uses < 1 || uses > MAX_INITIAL_TOKEN_USES) throw new OperatorError(`--uses: must be a whole number of registrations between 1 and ${MAX_INITIAL_TOKEN_USES}`);
      await withStore(async ({ db, seps, registration, log, publicUrl }) => {
        const tokenUses = new InitialAccessTokenUses(db);
        const desk = registrationDesk(db, { registration, seps, publicUrl, tokenUses });
        const issued = await issueInitialAccessToken(desk, { tokenUses }, log, 'cli', { days, uses });
        print({ initialAccessToken: issued.token, expiresAt: new Date(issued.expiresAt).toISOString(), uses: issued.uses, registrationEndpoint: new URL('/reg', publicUrl).href });
      });
    });

  for (const [name, status] of [['disable', 'disabled'], ['enable', 'active']] as const) {
    sep
      .command(`${name} <clientId>`)
      .description(`${name} a SeP: ${status === 'disabled' ? 'its logins and tokens are refused at once' : 'it can log citizens in again'}`)
      .action(async (clientId: string) => {
        await withStore(async ({ registration }) => {
          if (!(await registration.setStatus(clientId, status, 'cli'))) throw new OperatorError(`no SeP with client id ${clientId}`);
          print({ clientId, status });
        });
      });
  }
  sep
    .command('log-values <clientId> <switch>')
    .description('turn logging of attribute values for this SeP on or off (off: only attribute names are logged)')
    .action(async (clientId: string, value: string) => {
      if (value !== 'on' && value !== 'off') throw new OperatorError('<switch>: must be on or off');
      await withStore(async ({ registration }) => {
        if (!(await registration.setAttributeValueLogging(clientId, value === 'on', 'cli'))) throw new OperatorError(`no SeP with client id ${clientId}`);
        print({ clientId, logAttributeValues: value === 'on' });
      });
      });

  const tile = program.command('tile').description('Citizen-Portal tiles (dlaždice) requested by SePs');
  const tileNumber = (id: string) => {
    if (!/^\d{1,12}$/.test(id)) throw new OperatorError(`${id}: is not a tile number`);
    return Number(id);
  };
  const decided = async (action: () => Promise<unknown>) => {
    try {
      print(await action());
    } catch (err) {
      if (err instanceof TileNotAllowed) throw new OperatorError(err.message);
      throw err;
    }
  };
  tile
    .command('list')
    .description('list tiles (without their logos)')
    .option('--status <status>', 'pending, approved, rejected, withdrawn or superseded')
    .action(async (options: { status?: string }) => {
      await withStore(async ({ tiles }) => print(await tiles.list({ status: options.status as TileStatus | undefined })));
    });
  tile
    .command('approve <id>')
    .description('publish a pending tile on the catalogue (it replaces the SeP\'s earlier tile)')
    .action(async (id: string) => {
      await withStore(async ({ tileRequests }) => decided(() => tileRequests.approve(tileNumber(id), 'cli')));
    });
  tile
    .command('reject <id>')
    .description('refuse a pending tile, or withdraw a published one')
    .requiredOption('--reason <text>', 'why, for the SeP and the assertion log')
    .action(async (id: string, options: { reason: string }) => {
      if (!options.reason.trim()) throw new OperatorError('--reason: must not be empty');
      await withStore(async ({ tileRequests }) => decided(() => tileRequests.reject(tileNumber(id), 'cli', options.reason.trim())));
    });

  const operator = program.command('operator').description('credentials of administrators and auditors');
  operator
    .command('add')
    .description('issue a bearer credential; the token is printed once and never stored')
    .requiredOption('--role <role>', `one of ${OPERATOR_ROLES.join(', ')}`)
    .requiredOption('--name <name>', 'who holds it (a person or a system)')
    .action(async (options: { role: string; name: string }) => {
      if (!isOperatorRole(options.role)) throw new OperatorError(`--role: must be one of ${OPERATOR_ROLES.join(', ')}`);
      const role = options.role;
      const name = options.name.trim();
      if (!/^[\p{L}\p{N} ._@-]{1,100}$/u.test(name)) throw new OperatorError('--name: 1 to 100 letters, digits, spaces, dots, dashes, underscores or @');
      await withStore(async ({ db, operators, log }) => {
        const issued = await db.transaction(async (trx) => {
          const result = await operators.issue(role, name, trx);
          await log.append(operatorAdded({ actor: 'cli', role, name }), trx);
          return result;
        });
        print({ role, name, token: issued.token });
      });
    });
  operator
    .command('list')
    .description('list operator credentials (never the tokens)')
    .action(async () => {
      await withStore(async ({ operators }) => {
        print((await operators.list()).map((o) => ({ name: o.name, role: o.role, createdAt: new Date(o.createdAt).toISOString(), revoked: o.revokedAt !== null })));
      });
    });
  operator
    .command('revoke <name>')
    .description('revoke every active credential of this name')
    .action(async (name: string) => {
      await withStore(async ({ db, operators, log }) => {
        const count = await db.transaction(async (trx) => {
          const revoked = await operators.revoke(name, trx);
          if (revoked) await log.append(operatorRevoked({ actor: 'cli', name, count: revoked }), trx);
          return revoked;
        });
        if (!count) throw new OperatorError(`no active credential named ${name}`);
        print({ name, revoked: count });
      });
    });
  addMetadataCommands(program);
  addMeansCommands(program);
  addStaffCommands(program, withStore);
  registerAuditCommands(program, {
    withStore,
    fail: (message) => {
      throw new OperatorError(message);
    },
    print,
  });

  const keys = program.command('keys').description('ID-token signing keys in the shared keys folder');

  keys
    .command('rotate')
    .description('add new signing keys; older ones stay published until every token they signed has expired')
    .option('--activate-in <seconds>', 'when the new keys start to sign; by then every node must have re-read the keys (default: twice BRANA_KEYS_RELOAD_SECONDS; 0 only if you send every node SIGHUP at once)')
    .action(async (options: { activateIn?: string }) => {
      await withStore(async ({ env, db, log }) => {
        if (options.activateIn !== undefined && !/^\d{1,7}$/.test(options.activateIn)) throw new OperatorError(`--activate-in: must be a whole number of seconds (got ${options.activateIn})`);
        const activateIn = options.activateIn === undefined ? 2 * env.keysReloadSeconds : Number(options.activateIn);
        const file = path.join(env.keysDir, SIGNING_KEYS_FILE);
        try {
          const summary = await rotateSigningKeys(file, db, log, {
            activateInMs: activateIn * 1000,
            // The longest an ID token signed just before the switch lives, plus one re-read interval for a late node.
            retainMs: (ID_TOKEN_LIFETIME_SECONDS + CLOCK_TOLERANCE_SECONDS + env.keysReloadSeconds) * 1000,
            actor: 'cli',
          });
          print({ ...summary, pickUp: `every node re-reads ${file} within ${env.keysReloadSeconds} s (BRANA_KEYS_RELOAD_SECONDS), or at once on SIGHUP` });
        } catch (err) {
          if (err instanceof KeyRotationRefused) throw new OperatorError(err.message);
          throw err;
        }
      });
    });

  keys
    .command('list')
    .description('list the signing keys and their schedule (public information only)')
    .action(() => {
      const env = readEnvironment();
      const file = path.join(env.keysDir, SIGNING_KEYS_FILE);
      if (!fs.existsSync(file)) throw new OperatorError(`${file}: no signing keys yet (Brána generates them on its first start)`);
      print(signingKeyStates(file));
    });
  return program;
}

export async function runCli(argv: string[]): Promise<number> {
  logToStandardError();
  const writes = new RequestWrites();
  try {
    await withRequestWrites(writes, () => buildProgram().parseAsync(argv, { from: 'user' }));
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof MeansNotUsable) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    if (err instanceof LogNotIntact) {
      process.stderr.write(`${err.message}\n`);
      return 3;
    }
    if (err instanceof OperatorError || err instanceof ConfigurationError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    if (isDatabaseUnavailable(err)) {
      // "Nothing was changed" only when no write of the command was committed or sent to commit.
      const outcome = writes.mayHaveChanged ? 'part of the command may have been done; check before trying again' : 'nothing was changed, try again';
      process.stderr.write(`brana: the database cannot be reached (${describeDatabaseError(err).error}); ${outcome}\n`);
      return 1;
    }
    process.stderr.write(`brana: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}

if (import.meta.main ?? process.argv[1]?.endsWith('brana.ts')) {
  process.exitCode = await runCli(process.argv.slice(2));
}
