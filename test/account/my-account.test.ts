import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ACCOUNT_CLIENT_ID } from '../../src/account/account-sep.ts';
import { openAccount } from '../support/account.ts';
import { hiddenFields } from '../support/html.ts';
import { Citizen, authorizationResponse, chooseMeans, completeLogin, loginAtIdp, postToAcs, startLogin, type Sep } from '../support/login-driver.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

/**
 * A login at a SeP in a fresh browser (no Brána session to reuse), up to the point where Brána
 * either asks for consent or answers the SeP.
 */
async function loginUntilConsentOrSep(origin: string, sep: Sep, scope: string, login = '100000001') {
  const started = await startLogin(origin, sep, { scope, idpHint: 'eobcanka' });
  const idp = await loginAtIdp(started.citizen, started.response, login);
  return postToAcs(started.citizen, idp.acs, idp.fields);
}

const isConsentPage = (page: { status: number; text: string }) => page.status === 200 && /name="decision"/.test(page.text);

describe('consent a citizen controls, and My account', () => {
  let brana: TestBroker;
  before(async () => {
    brana = await startTestBroker();
  });
  after(async () => brana.close());

  it('does not ask again for a permanent consent to exactly the same data, and asks again for a different set', async () => {
    const sep = await brana.registerSep({ allowedAttributes: ['CurrentGivenName', 'CurrentFamilyName', 'DateOfBirth', 'PlaceOfBirth', 'countryCodeOfBirth', 'eMail'] });
    const first = await completeLogin(brana.url.origin, sep, { means: 'eobcanka', login: '100000001', scope: 'openid profile', permanent: true });
    assert.equal(first.userinfo.given_name, 'Jan');

    const same = await loginUntilConsentOrSep(brana.url.origin, sep, 'openid profile');
    assert.ok(!isConsentPage(same), 'the same set is not asked again');
    assert.ok(authorizationResponse(same, sep).get('code'));

    const wider = await loginUntilConsentOrSep(brana.url.origin, sep, 'openid profile email');
    assert.ok(isConsentPage(wider), 'a different set is asked again');
    assert.match(wider.text, /E-mailová adresa/);
  });

  it('says on the consent page who asks, for what, and what a permanent consent means', async () => {
    const sep = await brana.registerSep();
    const page = await loginUntilConsentOrSep(brana.url.origin, sep, 'openid profile email');
    assert.ok(isConsentPage(page));
    for (const text of ['Testovací portál', 'Statutární město Hradec Králové', 'IČO 00268810', 'Jméno', 'Příjmení', 'Datum narození', 'E-mailová adresa', 'přesně tento seznam údajů', 'odvolat v části Můj účet']) {
      assert.ok(page.text.includes(text), `the consent page says ${text}`);
    }
  });

  it('shows a citizen their logins (SeP, means, LoA, attribute names but no values) and their permanent consents, and lets them revoke one', async () => {
    const sep = await brana.registerSep({ name: { cs: 'Portál Hradce Králové', en: 'Hradec Králové portal' } });
    const citizen = new Citizen(brana.url.origin);
    await completeLogin(brana.url.origin, sep, { means: 'eobcanka', login: '100000002', scope: 'openid profile', permanent: true, citizen });

    // Any means opens the account: Marie logged in to the SeP with eObčanka and opens it with mojeID.
    const account = await openAccount(citizen, 'mojeid', 'msvobodova');
    assert.match(account.text, /<h1>Můj účet<\/h1>/);
    const history = account.text.slice(account.text.indexOf('id="history-heading"'), account.text.indexOf('id="consents-heading"'));
    assert.match(history, /Portál Hradce Králové/);
    assert.match(history, /eObčanka/);
    assert.match(history, /vysoká úroveň záruky/);
    assert.match(history, /Identifikátor osoby pro tuto službu \(pseudonym\), Jméno, Příjmení, Datum narození/);
    assert.match(history, /Přihlášení do Mého účtu/);
    for (const value of ['Marie', 'Svobodová', '1975-11-03', 'Brno']) assert.ok(!account.text.includes(value), `the account shows no attribute value (${value})`);

    const consents = account.text.slice(account.text.indexOf('id="consents-heading"'));
    assert.match(consents, /Portál Hradce Králové/);
    const revokeAction = /action="(\/account\/consents\/\d+\/revoke)"/.exec(consents)![1]!;
    const revoked = await citizen.follow(await citizen.post(revokeAction, { csrf: hiddenFields(account.text).csrf! }));
    assert.equal(revoked.status, 200);
    assert.match(revoked.text, /Souhlas byl odvolán/);
    assert.match(revoked.text, /Nemáte žádný trvalý souhlas/);

    const records = await brana.broker.log.query({ sepId: sep.clientId, event: 'consent_revoked' });
    assert.equal(records.length, 1);
    const issued = (await brana.broker.log.query({ sepId: sep.clientId, event: 'token_issued' }))[0]!;
    assert.equal(records[0]!.pseudonym, issued.pseudonym);
    assert.equal(issued.means, 'eobcanka');
    assert.equal(issued.loa, 'high');
    assert.deepEqual(records[0]!.detail.attributes, ['CurrentFamilyName', 'CurrentGivenName', 'DateOfBirth']);

    assert.ok(isConsentPage(await loginUntilConsentOrSep(brana.url.origin, sep, 'openid profile', '100000002')), 'a revoked consent means the next login asks again');
  });

  it('revokes all permanent consents at once', async () => {
    const one = await brana.registerSep();
    const two = await brana.registerSep({ group: 'ockovaci-portal' });
    const citizen = new Citizen(brana.url.origin);
    await completeLogin(brana.url.origin, one, { means: 'mojeid', login: 'jcerna', scope: 'openid profile', permanent: true });
    await completeLogin(brana.url.origin, two, { means: 'mojeid', login: 'jcerna', scope: 'openid email', permanent: true });
    const account = await openAccount(citizen, 'mojeid', 'jcerna');
    assert.equal((account.text.match(/\/account\/consents\/\d+\/revoke/g) ?? []).length, 2);
    const done = await citizen.follow(await citizen.post('/account/consents/revoke-all', { csrf: hiddenFields(account.text).csrf! }));
    assert.match(done.text, /Odvolané souhlasy: 2/);
    assert.equal((await brana.broker.log.query({ event: 'consent_revoked' })).filter((r) => r.sepId === one.clientId || r.sepId === two.clientId).length, 2);
  });

  it('opens for a foreign person too, through the eIDAS node, with their own logins', async () => {
    const sep = await brana.registerSep({ eidasEnabled: true, minimumLoa: 'low', name: { cs: 'Portál pro cizince', en: 'Portal for foreigners' } });
    await completeLogin(brana.url.origin, sep, { means: 'eidas', login: 'DE-erika.mustermann', scope: 'openid profile', permanent: true });
    const account = await openAccount(new Citizen(brana.url.origin), 'eidas', 'DE-erika.mustermann');
    const history = account.text.slice(account.text.indexOf('id="history-heading"'), account.text.indexOf('id="consents-heading"'));
    assert.match(history, /Portál pro cizince/);
    assert.match(account.text.slice(account.text.indexOf('id="consents-heading"')), /Portál pro cizince/);
    assert.ok(!account.text.includes('Erika'));
  });

  it('shows one citizen nothing of another', async () => {
    const sep = await brana.registerSep({ name: { cs: 'Jen pro Jana', en: 'Only for Jan' } });
    await completeLogin(brana.url.origin, sep, { means: 'eobcanka', login: '100000001', scope: 'openid profile', permanent: true });
    const other = new Citizen(brana.url.origin);
    const account = await openAccount(other, 'eobcanka', '100000005');
    assert.match(account.text, /Přihlášení do Mého účtu/);
    assert.ok(!account.text.includes('Jen pro Jana'));
    assert.match(account.text, /Nemáte žádný trvalý souhlas/);
  });

  it('refuses a revocation without the form token, from another origin, or without an open account, and revokes nothing', async () => {
    const sep = await brana.registerSep();
    const citizen = new Citizen(brana.url.origin);
    await completeLogin(brana.url.origin, sep, { means: 'eobcanka', login: '100000006', scope: 'openid profile', permanent: true, citizen });
    const account = await openAccount(citizen, 'eobcanka', '100000006');
    const action = /action="(\/account\/consents\/\d+\/revoke)"/.exec(account.text)![1]!;
    const csrf = hiddenFields(account.text).csrf!;

    assert.equal((await citizen.post(action, { csrf: 'x'.repeat(43) })).status, 400);
    const crossSite = await citizen.agent.post(action).set('Origin', 'https://evil.example').type('form').send({ csrf }).redirects(0);
    assert.equal(crossSite.status, 400);
    const stranger = new Citizen(brana.url.origin);
    assert.equal((await stranger.post(action, { csrf })).status, 400);
    const everything = await stranger.post('/account/consents/revoke-all', { csrf });
    assert.equal(everything.status, 400);

    assert.equal((await brana.broker.log.query({ sepId: sep.clientId, event: 'consent_revoked' })).length, 0);
    const still = await citizen.get('/account');
    assert.ok(still.text.includes(action), 'the consent is still there');
  });

  it('opens My account only with the code of its own login: a wrong state or a replayed code is refused', async () => {
    const citizen = new Citizen(brana.url.origin);
    const start = await citizen.follow(await citizen.get('/account/login'));
    const idp = await loginAtIdp(citizen, await chooseMeans(citizen, start, 'eobcanka'), '100000001');
    let response = await citizen.post(idp.acs, idp.fields);
    while (response.status === 303 && !String(response.headers.location).includes('/account/callback')) response = await citizen.get(response.headers.location as string);
    const callback = new URL(response.headers.location as string, brana.url);
    assert.equal(callback.pathname, '/account/callback');

    const wrongState = new URL(callback);
    wrongState.searchParams.set('state', 'not-the-state');
    assert.equal((await citizen.get(wrongState.pathname + wrongState.search)).status, 400);

    const opened = await citizen.get(callback.pathname + callback.search);
    assert.equal(opened.status, 303);
    assert.equal(opened.headers.location, '/account');
    const loginsRecorded = (await brana.broker.log.query({ event: 'account_login' })).length;
    const replay = await citizen.get(callback.pathname + callback.search);
    assert.equal(replay.status, 400, 'the login it belonged to is over');
    // Even with a fresh login of its own (a new state), a used code opens nothing.
    const fresh = await citizen.get('/account/login');
    const freshState = new URL(fresh.headers.location as string, brana.url).searchParams.get('state')!;
    const reused = await citizen.get(`/account/callback?code=${encodeURIComponent(callback.searchParams.get('code')!)}&state=${freshState}`);
    assert.equal(reused.status, 400);
    assert.equal((await brana.broker.log.query({ event: 'account_login' })).length, loginsRecorded, 'no further account login was recorded');

    // The code of another client never opens it.
    const sep = await brana.registerSep();
    const started = await startLogin(brana.url.origin, sep, { scope: 'openid', idpHint: 'eobcanka' });
    const idp2 = await loginAtIdp(started.citizen, started.response, '100000001');
    const foreign = authorizationResponse(await postToAcs(started.citizen, idp2.acs, idp2.fields), sep).get('code')!;
    const thief = new Citizen(brana.url.origin);
    const thiefStart = await thief.get('/account/login');
    const state = new URL(thiefStart.headers.location as string, brana.url).searchParams.get('state')!;
    const stolen = await thief.get(`/account/callback?code=${encodeURIComponent(foreign)}&state=${state}`);
    assert.equal(stolen.status, 400);
    const accountLogins = await brana.broker.log.query({ event: 'account_login' });
    assert.equal(accountLogins.length, loginsRecorded);
    assert.ok(accountLogins.every((r) => r.sepId === ACCOUNT_CLIENT_ID));
  });

  it('logs out of My account through Brána\'s logout page', async () => {
    const citizen = new Citizen(brana.url.origin);
    const account = await openAccount(citizen, 'eobcanka', '100000001');
    const out = await citizen.post('/account/logout', { csrf: hiddenFields(account.text).csrf! });
    assert.equal(out.status, 303);
    assert.match(String(out.headers.location), /^\/session\/end\?client_id=brana-account$/);
    const logoutPage = await citizen.follow(out);
    assert.equal(logoutPage.status, 200);
    assert.match(logoutPage.text, /Chcete se odhlásit z Brány\?/);
    const closed = await citizen.get('/account');
    assert.match(closed.text, /Přihlásit se do Mého účtu/);
  });

  it('registers its own SeP once, and follows Brána to a new public URL without touching its status', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-account-sep-'));
    const databaseUrl = `sqlite:${path.join(dir, 'brana.sqlite')}`;
    try {
      const first = await startTestBroker({ databaseUrl });
      const before = await first.broker.seps.find(ACCOUNT_CLIENT_ID);
      await first.broker.registration.setStatus(ACCOUNT_CLIENT_ID, 'disabled', 'an administrator');
      await first.close();
      const second = await startTestBroker({ databaseUrl });
      try {
        const after = await second.broker.seps.find(ACCOUNT_CLIENT_ID);
        assert.deepEqual(after?.redirectUris, [`${second.url.origin}/account/callback`]);
        assert.notDeepEqual(after?.redirectUris, before?.redirectUris);
        assert.equal(after?.group, 'brana-account');
        assert.deepEqual(after?.allowedAttributes, []);
        assert.equal(after?.status, 'disabled', 'an administrator\'s decision stays');
        const records = await second.broker.log.query({ sepId: ACCOUNT_CLIENT_ID });
        assert.deepEqual(records.map((r) => [r.event, r.detail.actor]), [['sep_registered', 'brana'], ['sep_status_changed', 'an administrator'], ['sep_updated', 'brana']]);
        assert.deepEqual(records[2]!.detail.changed, ['infoUrl', 'redirectUris']);
      } finally {
        await second.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
