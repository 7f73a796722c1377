import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type supertest from 'supertest';
import { codesIssuedTo } from './audit.ts';
import { developmentIdpKeys, IndependentIdp, readServiceProvider, type IdentityProviderView } from './independent-idp.ts';
import { postToAcs } from './login-driver.ts';
import { startTestBroker, type TestBroker } from './test-broker.ts';
import type { UpstreamLogin } from './upstream-login.ts';
import { XmlSecWorkspace, type KeyFiles } from './xmlsec.ts';

const PROVIDERS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../providers');

/**
 * Three identity means for the attack suites: eObčanka and mojeID as shipped (the response must be
 * signed), and "nia-id", which accepts a response whose assertion alone is signed — the setting under
 * which assertion-level wrapping attacks are worth trying.
 */
function writeProviders(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.cpSync(path.join(PROVIDERS, 'logos'), path.join(dir, 'logos'), { recursive: true });
  for (const file of ['eobcanka.json', 'mojeid.json']) fs.copyFileSync(path.join(PROVIDERS, file), path.join(dir, file));
  fs.writeFileSync(
    path.join(dir, 'nia-id.json'),
    JSON.stringify({
      id: 'nia-id',
      order: 20,
      name: { cs: 'NIA ID', en: 'NIA ID' },
      administrator: { cs: 'Digitální a informační agentura', en: 'Digital and Information Agency' },
      loa: 'substantial',
      protocol: 'saml',
      saml: { metadata: null, requireSignedResponse: false, requireSignedAssertion: true },
    }),
  );
}

export interface AttackBed {
  brana: TestBroker;
  workspace: XmlSecWorkspace;
  /** The real keys of each means' IdP, driven through xmlsec1. */
  idp: Record<'eobcanka' | 'mojeid' | 'nia-id', IndependentIdp>;
  /** A key no metadata names. */
  attackerKeys: KeyFiles;
  close(): Promise<void>;
}

export async function startAttackBed(options: { env?: Record<string, string> } = {}): Promise<AttackBed> {
  const workspace = new XmlSecWorkspace();
  const providersDir = path.join(workspace.dir, 'providers');
  writeProviders(providersDir);
  // The attack suites post hundreds of answers from one address in a minute; rate limits are tested on their own.
  const generous = { BRANA_RATE_LIMIT_LOGIN: '100000', BRANA_RATE_LIMIT_ACS: '100000', BRANA_RATE_LIMIT_TOKEN_FAILURES: '100000' };
  const brana = await startTestBroker({ env: { BRANA_PROVIDERS_DIR: providersDir, ...generous, ...options.env } });
  const origin = brana.url.origin;
  const idp = {} as AttackBed['idp'];
  for (const means of ['eobcanka', 'mojeid', 'nia-id'] as const) {
    const view: IdentityProviderView = { means, entityId: `${origin}/dev-idp/${means}/metadata`, keys: developmentIdpKeys(brana.keysDir, means) };
    idp[means] = new IndependentIdp(view, await readServiceProvider(origin, means, workspace), workspace);
  }
  const attackerKeys = await workspace.newKeyPair('attacker');
  return {
    brana,
    workspace,
    idp,
    attackerKeys,
    async close() {
      await brana.close();
      workspace.remove();
    },
  };
}

export interface Outcome {
  status: number;
  /** The page with per-request values (interaction uid) replaced, for comparing refusals. */
  page: string;
  reason: string;
}

async function lastSeq(brana: TestBroker): Promise<number> {
  const row = (await brana.broker.db('assertion_log').max('seq as seq').first()) as { seq: number | string | null } | undefined;
  return Number(row?.seq ?? 0);
}

/**
 * The page with what differs between any two logins taken out: the interaction's id, and the
 * help-desk reference of the refusal (random, always 8 characters: it tells nothing of the reason).
 */
export function normalisedPage(text: string): string {
  const uids = new Set([...text.matchAll(/\/interaction\/([A-Za-z0-9_-]+)\//g)].map((m) => m[1]!));
  let page = text;
  for (const uid of uids) page = page.split(uid).join('UID');
  const references = new Set([...text.matchAll(/<strong class="reference">([2-9A-HJ-NP-Z]{8})<\/strong>/g)].map((m) => m[1]!));
  for (const reference of references) page = page.split(reference).join('REFERENCE');
  return page;
}

/** Posts a SAMLResponse to Brána's ACS as the citizen's browser would; follows Brána's redirects. */
export async function postResponse(login: UpstreamLogin, samlResponse: string, extra: Record<string, string> = {}): Promise<supertest.Response> {
  return postToAcs(login.citizen, login.acs, { SAMLResponse: samlResponse, ...extra });
}

/**
 * Asserts the answer is refused: a citizen error page (never 5xx), no code issued to the SeP, no
 * identity resolved, and exactly one error in the assertion log with one of the expected reasons.
 */
export async function expectRefused(bed: AttackBed, login: UpstreamLogin, samlResponse: string, reasons: readonly string[]): Promise<Outcome> {
  const before = await lastSeq(bed.brana);
  const page = await postResponse(login, samlResponse);
  assert.ok(page.status >= 400 && page.status < 500, `expected a refusal page, got ${page.status} ${String(page.headers.location ?? '')}`);
  assert.match(page.text, /Přihlášení se nezdařilo/);
  assert.equal(await codesIssuedTo(bed.brana.broker, login.sep.clientId), 0, 'no code issued');
  const records = (await bed.brana.broker.db('assertion_log').where('seq', '>', before).orderBy('seq')) as Array<{ event: string; reason: string | null }>;
  assert.ok(!records.some((r) => r.event === 'identity_resolved' || r.event === 'response_received' || r.event === 'token_issued'), `the answer got further: ${records.map((r) => r.event).join(', ')}`);
  const errors = records.filter((r) => r.event === 'error');
  assert.equal(errors.length, 1, 'one refusal in the assertion log');
  const reason = String(errors[0]!.reason);
  assert.ok(reasons.includes(reason), `reason ${reason} is not among ${reasons.join(', ')}`);
  return { status: page.status, page: normalisedPage(page.text), reason };
}

/** Asserts the answer is accepted: the citizen goes on to consent (or straight back to the SeP). */
export async function expectAccepted(login: UpstreamLogin, samlResponse: string): Promise<supertest.Response> {
  const next = await postResponse(login, samlResponse);
  const ok = (next.status === 200 && /name="decision"/.test(next.text)) || (next.status === 303 && String(next.headers.location).startsWith(login.sep.redirectUri));
  assert.ok(ok, `expected the answer to be accepted, got ${next.status}: ${next.text.slice(0, 400)}`);
  return next;
}
