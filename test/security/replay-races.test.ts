import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { codesIssuedTo, recordsOfLogin } from '../support/audit.ts';
import { startAttackBed, type AttackBed } from '../support/attack-bed.ts';
import { base64 } from '../support/independent-idp.ts';
import { Citizen, postToAcs, userinfo } from '../support/login-driver.ts';
import { codeFor, tokenRequest } from '../support/oidc-attacker.ts';
import { startUpstreamLogin } from '../support/upstream-login.ts';

/**
 * Replays fired at the same moment, on a real SQLite file and a real PostgreSQL server: of several
 * copies of one SAML answer, or of one code, exactly one may win — the store's atomic consume, not
 * the order requests happen to arrive in, decides.
 */

const ADMIN_URL = process.env.BRANA_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const COPIES = 6;

async function withDatabase<T>(run: (databaseUrl: string | undefined) => Promise<T>, backend: 'sqlite' | 'postgres'): Promise<T> {
  if (backend === 'sqlite') return run(undefined);
  const name = `brana_issue6_race_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
    try {
      return await run(ADMIN_URL.replace(/\/[^/]*$/, `/${name}`));
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  } finally {
    await admin.end();
  }
}

for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`replay races (${backend})`, () => {
    it('accepts one of several copies of a SAML answer posted at once, and resolves the person once', async () => {
      await withDatabase(async (databaseUrl) => {
        const bed: AttackBed = await startAttackBed({ env: databaseUrl ? { DATABASE_URL: databaseUrl } : {} });
        try {
          const sep = await bed.brana.registerSep();
          const login = await startUpstreamLogin(bed.brana.url.origin, sep, 'eobcanka');
          const answer = base64(await bed.idp.eobcanka.answer(login));
          // The genuine browser and attackers' browsers (without its cookies) post the same answer together.
          const browsers = [login.citizen, ...Array.from({ length: COPIES - 1 }, () => new Citizen(bed.brana.url.origin))];
          const pages = await Promise.all(browsers.map((citizen) => postToAcs(citizen, login.acs, { SAMLResponse: answer })));
          for (const page of pages) assert.ok(page.status < 500, `answered ${page.status}`);
          const records = await recordsOfLogin(bed.brana.broker, login.codeVerifier);
          assert.equal(records.filter((r) => r.event === 'identity_resolved').length, 1, 'resolved exactly once');
          assert.equal(records.filter((r) => r.event === 'error').map((r) => r.reason).filter((r) => r === 'replayed_response').length, COPIES - 1);
          const consented = pages.filter((page) => page.status === 200 && /name="decision"/.test(page.text));
          assert.ok(consented.length <= 1, 'at most one browser reaches consent');
          assert.equal(await codesIssuedTo(bed.brana.broker, sep.clientId), 0);
        } finally {
          await bed.close();
        }
      }, backend);
    });

    it('redeems one of several copies of a code sent at once, and then revokes what it gave', async () => {
      await withDatabase(async (databaseUrl) => {
        const bed: AttackBed = await startAttackBed({ env: databaseUrl ? { DATABASE_URL: databaseUrl } : {} });
        try {
          const origin = bed.brana.url.origin;
          const sep = await bed.brana.registerSep();
          const code = await codeFor(origin, sep);
          const form = { grant_type: 'authorization_code', code: code.code, redirect_uri: sep.redirectUri, code_verifier: code.codeVerifier };
          const answers = await Promise.all(Array.from({ length: COPIES }, () => tokenRequest(origin, form, { id: sep.clientId, secret: sep.clientSecret })));
          for (const answer of answers) assert.ok(answer.status < 500, `answered ${answer.status}`);
          const winners = answers.filter((answer) => answer.status === 200);
          assert.equal(winners.length, 1, 'exactly one redemption wins');
          for (const loser of answers.filter((answer) => answer.status !== 200)) assert.equal(loser.body.error, 'invalid_grant');
          // A code used twice is a stolen code: the grant, and the winner's token with it, is revoked.
          assert.equal((await userinfo(origin, String(winners[0]!.body.access_token))).status, 401);
        } finally {
          await bed.close();
        }
      }, backend);
    });
  });
}
