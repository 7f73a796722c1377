import assert from 'node:assert/strict';
import path from 'node:path';
import supertest from 'supertest';
import { InvalidAuditFilter, matchesAuditFilter, parseAuditFilter } from '../../src/audit/audit-filter.ts';
import type { StoredAuditRecord } from '../../src/audit/assertion-log.ts';
import { codesIssuedTo, recordsOfLogin } from '../support/audit.ts';
import { brana as branaCli } from '../support/cli.ts';
import { providersFolder } from '../support/external-idp.ts';
import { authnRequestIdOf, loginAtIdp, postToAcs, startLogin, type Citizen, type Sep } from '../support/login-driver.ts';
import { forgedResponse } from '../support/saml-forge.ts';
import { TestOpenIdProvider } from '../support/test-openid-provider.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

const SUBSTANTIAL = 'http://eidas.europa.eu/LoA/substantial';
const STATUS = 'urn:oasis:names:tc:SAML:2.0:status:';
const JAN = { sub: 'bank-subject-jan', claims: { given_name: 'Jan', family_name: 'Novák', birthdate: '1980-04-12', birthplace: 'Praha' } };
const REFERENCE = /<strong class="reference">([^<]+)<\/strong>/;

/** How the means answers: at a SAML means (mojeID) through the development IdP or forged; at an OIDC bank by its error. */
type Answer =
  | { saml: 'cancel' }
  | { saml: 'forged'; change: Parameters<typeof forgedResponse>[3] }
  | { oidcError: string };

interface Failure {
  what: string;
  minimumLoa?: 'substantial' | 'high';
  answer: Answer;
  status: number;
  heading: { cs: string; en: string };
  /** The message, in the page's status (a cancel) or alert (a failure). */
  role: 'status' | 'alert';
  message: { cs: RegExp; en: RegExp };
  /** The failed means offered again, by name. */
  retry: string | null;
  /** Exactly the other means offered, by id. */
  alternatives: string[];
  alternativesLabel: string;
  backToChoice: boolean;
  /** The log record's reason; its help-desk reference is on the page unless the citizen cancelled. */
  reason: string;
  referenceShown: boolean;
}

const FAILURES: Failure[] = [
  {
    what: 'the citizen cancels at a SAML means (RequestDenied)',
    answer: { saml: 'cancel' },
    status: 200,
    heading: { cs: 'Přihlášení bylo zrušeno', en: 'The login was cancelled' },
    role: 'status',
    message: { cs: /Přihlášení prostředkem mojeID jste zrušili\. Služba o vás nedostala žádné údaje\./, en: /You cancelled the login with mojeID\. The service has received no data about you\./ },
    retry: 'mojeID',
    alternatives: ['bankid', 'eobcanka', 'testbank'],
    alternativesLabel: 'Přihlásit se jiným prostředkem',
    backToChoice: true,
    reason: 'status_RequestDenied',
    referenceShown: false,
  },
  {
    what: 'the citizen cancels at an OIDC bank (access_denied)',
    answer: { oidcError: 'access_denied' },
    status: 200,
    heading: { cs: 'Přihlášení bylo zrušeno', en: 'The login was cancelled' },
    role: 'status',
    message: { cs: /Přihlášení prostředkem Testovací banka jste zrušili\./, en: /You cancelled the login with Test bank\./ },
    retry: 'Testovací banka',
    alternatives: ['bankid', 'eobcanka', 'mojeid'],
    alternativesLabel: 'Přihlásit se jiným prostředkem',
    backToChoice: true,
    reason: 'oidc_access_denied',
    referenceShown: false,
  },
  {
    what: 'the means cannot reach the required LoA (SAML NoAuthnContext)',
    minimumLoa: 'high',
    answer: { saml: 'forged', change: { status: { code: `${STATUS}Responder`, second: `${STATUS}NoAuthnContext` } } },
    status: 403,
    heading: { cs: 'Přihlášení se nezdařilo', en: 'The login did not succeed' },
    role: 'alert',
    message: {
      cs: /Služba vyžaduje alespoň vysokou úroveň záruky\. Přihlášení prostředkem mojeID této úrovně tentokrát nedosáhlo\./,
      en: /The service requires at least a high level of assurance\. Your login with mojeID did not reach that level this time\./,
    },
    retry: null,
    alternatives: ['eobcanka'],
    alternativesLabel: 'Přihlásit se prostředkem, který tuto úroveň záruky poskytuje',
    backToChoice: false,
    reason: 'status_NoAuthnContext',
    referenceShown: true,
  },
  {
    what: 'the means signs a LoA below the required one',
    minimumLoa: 'high',
    answer: { saml: 'forged', change: { loa: 'substantial' } },
    status: 403,
    heading: { cs: 'Přihlášení se nezdařilo', en: 'The login did not succeed' },
    role: 'alert',
    message: { cs: /Služba vyžaduje alespoň vysokou úroveň záruky\./, en: /The service requires at least a high level of assurance\./ },
    retry: null,
    alternatives: ['eobcanka'],
    alternativesLabel: 'Přihlásit se prostředkem, který tuto úroveň záruky poskytuje',
    backToChoice: false,
    reason: 'loa_below_minimum',
    referenceShown: true,
  },
  {
    what: 'the bank is temporarily unavailable',
    answer: { oidcError: 'temporarily_unavailable' },
    status: 503,
    heading: { cs: 'Přihlášení se nezdařilo', en: 'The login did not succeed' },
    role: 'alert',
    message: {
      cs: /Poskytovatel identity neodpověděl včas nebo není dostupný\. Přihlaste se prosím jiným prostředkem, nebo to zkuste později\./,
      en: /The identity provider did not answer in time or cannot be reached\. Please log in with another means, or try again later\./,
    },
    retry: 'Testovací banka',
    alternatives: ['bankid', 'eobcanka', 'mojeid'],
    alternativesLabel: 'Přihlásit se jiným prostředkem',
    backToChoice: false,
    reason: 'oidc_temporarily_unavailable',
    referenceShown: true,
  },
  {
    what: 'an answer that does not verify (unsigned)',
    answer: { saml: 'forged', change: { signAssertion: false, signResponse: false } },
    status: 400,
    heading: { cs: 'Přihlášení se nezdařilo', en: 'The login did not succeed' },
    role: 'alert',
    message: { cs: /Odpověď od poskytovatele identity se nepodařilo ověřit, proto jsme ji nepřijali\./, en: /The answer from the identity provider could not be verified, so we did not accept it\./ },
    retry: 'mojeID',
    alternatives: ['bankid', 'eobcanka', 'testbank'],
    alternativesLabel: 'Přihlásit se jiným prostředkem',
    backToChoice: false,
    reason: 'signature_invalid',
    referenceShown: true,
  },
];

function textOf(html: string): string {
  return html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
}

function offered(html: string): string[] {
  return [...html.matchAll(/name="means" value="([^"]+)" class="means-button"/g)].map((match) => match[1]!).sort();
}

describe('what the citizen is told when a login fails at the identity means', () => {
  let op: TestOpenIdProvider;
  let brana: TestBroker;

  before(async () => {
    op = new TestOpenIdProvider({ account: JAN, acr: SUBSTANTIAL });
    await op.start();
    const providers = providersFolder({
      keep: ['eobcanka', 'mojeid', 'bankid'],
      extra: {
        testbank: {
          name: { cs: 'Testovací banka', en: 'Test bank' },
          administrator: { cs: 'Testovací banka, a.s.', en: 'Test bank' },
          loa: 'substantial',
          protocol: 'oidc',
          oidc: { issuer: op.issuer, clientId: 'brana-testbank', clientSecretEnv: 'BRANA_TESTBANK_SECRET', timeoutSeconds: 10 },
        },
      },
    });
    process.env.BRANA_TESTBANK_SECRET = op.clientSecret;
    brana = await startTestBroker({ env: { BRANA_PROVIDERS_DIR: providers } });
    await op.registerClient(`${brana.url.origin}/oidc/testbank/callback`);
  });
  after(async () => {
    await brana.close();
    await op.stop();
    delete process.env.BRANA_TESTBANK_SECRET;
  });

  /** A login sent to the means, answered as the failure says; the page Brána shows, followed within Brána. */
  async function failWith(sep: Sep, answer: Answer): Promise<{ citizen: Citizen; codeVerifier: string; page: supertest.Response }> {
    if ('oidcError' in answer) {
      op.behaviour = { account: JAN, acr: SUBSTANTIAL, error: answer.oidcError };
      const started = await startLogin(brana.url.origin, sep, { scope: 'openid', idpHint: 'testbank' });
      let location = String(started.response.headers.location);
      const bank = supertest.agent(op.issuer);
      while (new URL(location, op.issuer).origin === new URL(op.issuer).origin) {
        const url = new URL(location, op.issuer);
        location = String((await bank.get(url.pathname + url.search).redirects(0)).headers.location);
      }
      return { citizen: started.citizen, codeVerifier: started.codeVerifier, page: await started.citizen.follow(await started.citizen.get(location)) };
    }
    const started = await startLogin(brana.url.origin, sep, { scope: 'openid', idpHint: 'mojeid' });
    const idp = await loginAtIdp(started.citizen, started.response, answer.saml === 'cancel' ? 'cancel' : 'jnovak');
    const fields = answer.saml === 'cancel' ? idp.fields : { SAMLResponse: await forgedResponse(brana, 'mojeid', authnRequestIdOf(idp.sealedRequest), answer.change) };
    return { citizen: started.citizen, codeVerifier: started.codeVerifier, page: await postToAcs(started.citizen, idp.acs, fields) };
  }

  for (const failure of FAILURES) {
    it(`${failure.what}: ${failure.status}, what happened in Czech and English, what to do next, the log record`, async () => {
      const sep = await brana.registerSep(failure.minimumLoa ? { minimumLoa: failure.minimumLoa } : {});
      const { citizen, codeVerifier, page } = await failWith(sep, failure.answer);

      assert.equal(page.status, failure.status, page.text.slice(0, 300));
      assert.match(page.text, new RegExp(`<h1>${failure.heading.cs}</h1>`));
      const notice = new RegExp(`role="${failure.role}"><p>([^<]+)</p>`).exec(page.text);
      assert.ok(notice, `the message is a ${failure.role}`);
      assert.match(notice[1]!, failure.message.cs);
      if (failure.retry) assert.match(page.text, new RegExp(`>Zkusit znovu: ${failure.retry}</button>`));
      else assert.doesNotMatch(page.text, /Zkusit znovu/);
      assert.deepEqual(offered(page.text), failure.alternatives);
      assert.match(textOf(page.text), new RegExp(`${failure.alternativesLabel}:`));
      assert.equal(/href="\/interaction\/[^/"]+\?choose=1">Zpět na výběr prostředku</.test(page.text), failure.backToChoice);
      assert.match(page.text, /Zrušit přihlášení a vrátit se do služby/);

      // One record of the refusal, with its reason and a reference; the page shows the reference unless the citizen cancelled.
      const errors = (await recordsOfLogin(brana.broker, codeVerifier)).filter((record) => record.event === 'error');
      assert.equal(errors.length, 1);
      assert.equal(errors[0]!.reason, failure.reason);
      const logged = String(errors[0]!.detail.reference);
      assert.match(logged, /^[2-9A-HJ-NP-Z]{8}$/);
      const shown = REFERENCE.exec(page.text)?.[1];
      if (failure.referenceShown) {
        assert.equal(shown, logged);
        assert.match(textOf(page.text), new RegExp(`Pokud se obrátíte na technickou podporu, uveďte tento kód: ${logged}`));
        // As a citizen dictates it: lower case, with a dash.
        const found = await brana.broker.log.query(parseAuditFilter({ reference: `${logged.slice(0, 4).toLowerCase()}-${logged.slice(4)}` }));
        assert.deepEqual(found.map((record) => record.seq), [errors[0]!.seq]);
      } else {
        assert.equal(shown, undefined, 'no help-desk code after a cancel');
      }
      assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 0);

      await citizen.get('/language?to=en&back=/');
      const english = await citizen.get(new URL(String(page.request.url)).pathname + new URL(String(page.request.url)).search);
      assert.equal(english.status, failure.status);
      assert.match(english.text, new RegExp(`<h1>${failure.heading.en}</h1>`));
      assert.match(english.text, failure.message.en);
      assert.match(english.text, /Cancel the login and return to the service/);
      if (failure.referenceShown) assert.match(textOf(english.text), new RegExp(`If you contact the help desk, please give them this code: ${logged}`));
    });
  }

  it('goes back from a cancel to the choice of every qualifying means, although idp_hint sent the citizen straight to one', async () => {
    const sep = await brana.registerSep();
    const { citizen, page } = await failWith(sep, { saml: 'cancel' });
    const back = /href="(\/interaction\/[^/"]+\?choose=1)"/.exec(page.text)![1]!;
    const selection = await citizen.get(back);
    assert.equal(selection.status, 200);
    assert.match(selection.text, /Vyberte, čím prokážete svou totožnost/);
    assert.deepEqual([...selection.text.matchAll(/name="means" value="([^"]+)"/g)].map((match) => match[1]).sort(), ['bankid', 'eobcanka', 'mojeid', 'testbank']);
    assert.match(selection.text, /Služba vyžaduje alespoň značnou úroveň záruky\./);
  });

  it('shows only a well-formed reference from the address, never whatever else is put there', async () => {
    const sep = await brana.registerSep();
    const { citizen, page } = await failWith(sep, { saml: 'forged', change: { signAssertion: false, signResponse: false } });
    const failed = new URL(String(page.request.url));
    for (const ref of ['<b>x</b>', 'CALL-0800-123-456', 'K7PM3QX0']) {
      failed.searchParams.set('ref', ref);
      const shown = await citizen.get(failed.pathname + failed.search);
      assert.equal(shown.status, 400);
      assert.doesNotMatch(shown.text, /class="reference"/, ref);
    }
  });

  it('lets an operator find the refusal by the code the citizen reads out: brana audit query --reference', async () => {
    const sep = await brana.registerSep();
    const { page } = await failWith(sep, { saml: 'forged', change: { signAssertion: false, signResponse: false } });
    const reference = REFERENCE.exec(page.text)![1]!;
    const env = { BRANA_MODE: 'development', BRANA_DATA_DIR: path.join(brana.dir, 'data'), BRANA_KEYS_DIR: brana.keysDir };
    const printed = await branaCli(['audit', 'query', '--event', 'error', '--reference', reference.toLowerCase()], env);
    assert.equal(printed.code, 0, printed.stderr);
    const records = JSON.parse(printed.stdout) as StoredAuditRecord[];
    assert.equal(records.length, 1);
    assert.equal(records[0]!.reason, 'signature_invalid');
    assert.equal(records[0]!.detail.reference, reference);

    const wrong = await branaCli(['audit', 'query', '--reference', 'K7PM-3QX0'], env);
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /--reference: must be the 8-character code/);
  });

  it('matches the reference the same way in exports (in memory) as in queries (SQL)', async () => {
    const sep = await brana.registerSep();
    const { codeVerifier } = await failWith(sep, { oidcError: 'temporarily_unavailable' });
    const record = (await recordsOfLogin(brana.broker, codeVerifier)).find((item) => item.event === 'error')!;
    const row = (await brana.broker.db('assertion_log').where({ seq: record.seq }).first()) as Parameters<typeof matchesAuditFilter>[0];
    assert.ok(matchesAuditFilter(row, parseAuditFilter({ reference: String(record.detail.reference) })));
    assert.ok(!matchesAuditFilter(row, parseAuditFilter({ reference: 'ABCDEFGH' })));
    assert.throws(() => parseAuditFilter({ reference: 'x' }), InvalidAuditFilter);
  });
});
