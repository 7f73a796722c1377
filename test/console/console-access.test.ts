import assert from 'node:assert/strict';
import { CONSOLE_CLIENT_ID, CONSOLE_GROUP } from '../../src/console/console-sep.ts';
import { csrfOf, signInToConsole, staff } from '../support/console.ts';
import { Citizen } from '../support/login-driver.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

/**
 * Who gets into the consoles, over HTTP: sign-in through Brána at LoA high only, a role from the
 * staff table (read at every request), the 403 page and its record for a person without one, a
 * form token on every POST, and cookies bound to the console.
 */
describe('the staff consoles: sign-in, roles and forms', () => {
  let brana: TestBroker;
  before(async () => {
    brana = await startTestBroker();
    assert.equal((await staff(brana, ['grant', 'AIFO-0001-JN', '--role', 'auditor', '--name', 'Jan Novák (audit)'])).code, 0);
  });
  after(async () => brana?.close());

  const consoleLogins = () => brana.broker.log.query({ event: 'console_login' });
  const openSessions = async () => Number((await brana.broker.db('console_session').whereNotNull('person_id').count({ n: '*' }))[0]!.n);

  it('offers only means of high level of assurance for signing in', async () => {
    const citizen = new Citizen(brana.url.origin);
    const selection = await citizen.follow(await citizen.get('/console/login'));
    assert.equal(selection.status, 200);
    assert.match(selection.text, /value="eobcanka"/);
    assert.doesNotMatch(selection.text, /value="bankid"/, "Bank iD (substantial) is not offered");
  });

  it('gives a person without a role the 403 page, logs the refused sign-in, and opens nothing', async () => {
    const before = await openSessions();
    const page = await signInToConsole(new Citizen(brana.url.origin), 'eobcanka', '100000002');
    assert.equal(page.status, 403);
    assert.match(page.text, /Přístup odepřen/);
    assert.match(page.text, /Nemáte v konzoli žádnou roli/);
    assert.equal(await openSessions(), before, 'no console session was opened');
    const refused = (await consoleLogins()).filter((record) => record.outcome === 'failure');
    assert.equal(refused.length, 1);
    assert.equal(refused[0]!.reason, 'no_staff_role');
    assert.equal(refused[0]!.sepId, CONSOLE_CLIENT_ID);
    assert.equal(refused[0]!.loa, 'high');
    const person = await brana.broker.persons.findByRegisterId('AIFO-0002-MS');
    assert.equal(refused[0]!.pseudonym, brana.broker.pseudonyms.forGroup(person!.id, CONSOLE_GROUP), 'the record names the person by their console pseudonym');
  });

  it('opens the console to an auditor, for the auditor part only, and logs the sign-in with the name and roles', async () => {
    const citizen = new Citizen(brana.url.origin);
    const home = await signInToConsole(citizen, 'eobcanka', '100000001');
    assert.equal(home.status, 200, home.text.slice(0, 500));
    assert.match(home.text, /Jste přihlášeni jako Jan Novák \(audit\) \(auditor\)/);
    const signedIn = (await consoleLogins()).filter((record) => record.outcome === 'success');
    assert.equal(signedIn.at(-1)!.detail.actor, 'staff:Jan Novák (audit)');
    assert.deepEqual(signedIn.at(-1)!.detail.roles, ['auditor']);

    assert.equal((await citizen.get('/console/audit/')).status, 200);
    const admin = await citizen.get('/console/admin/');
    assert.equal(admin.status, 403);
    assert.match(admin.text, /jen pro roli správce/);
    assert.equal((await citizen.get('/console/operations/')).status, 403);
  });

  it('keeps the session in a cookie of the console alone (HttpOnly, SameSite=Lax; on http without the __Host- prefix)', async () => {
    const response = await new Citizen(brana.url.origin).get('/console/login');
    const cookie = String(response.headers['set-cookie']);
    assert.match(cookie, /^brana_console=[A-Za-z0-9_-]{43}; Max-Age=900; Path=\/console; HttpOnly; SameSite=Lax$/);
  });

  it('refuses a POST without the session\'s form token, or from another origin, and does nothing', async () => {
    const citizen = new Citizen(brana.url.origin);
    const home = await signInToConsole(citizen, 'eobcanka', '100000001');
    const csrf = csrfOf(home.text);
    const queries = async () => (await brana.broker.log.query({ event: 'audit_queried' })).length;
    const before = await queries();

    const forged = await citizen.post('/console/audit/search', { event: 'token_issued' });
    assert.equal(forged.status, 403);
    const wrong = await citizen.post('/console/audit/search', { event: 'token_issued', csrf: `${csrf.slice(0, -2)}xx` });
    assert.equal(wrong.status, 403);
    const crossSite = await citizen.agent.post('/console/audit/search').set('Origin', 'https://evil.example').type('form').send({ event: 'token_issued', csrf }).redirects(0);
    assert.equal(crossSite.status, 403);
    assert.equal(await queries(), before, 'nothing was searched');

    const genuine = await citizen.post('/console/audit/search', { event: 'token_issued', csrf });
    assert.equal(genuine.status, 200);
    assert.equal(await queries(), before + 1);
  });

  it('does not open a record from another site\'s link in the auditor\'s name', async () => {
    const citizen = new Citizen(brana.url.origin);
    await signInToConsole(citizen, 'eobcanka', '100000001');
    const viewed = async () => (await brana.broker.log.query({ event: 'audit_queried' })).filter((record) => record.detail.what === 'record').length;
    const before = await viewed();
    const crossSite = await citizen.agent.get('/console/audit/records/1').set('Sec-Fetch-Site', 'cross-site').redirects(0);
    assert.equal(crossSite.status, 303);
    assert.equal(crossSite.headers.location, '/console/audit/');
    assert.equal(await viewed(), before);
    const own = await citizen.agent.get('/console/audit/records/1').set('Sec-Fetch-Site', 'same-origin').redirects(0);
    assert.equal(own.status, 200);
    assert.equal(await viewed(), before + 1);
  });

  it('takes a revoked role away at the next click, and the revocation is in the log', async () => {
    assert.equal((await staff(brana, ['grant', 'AIFO-0003-PD', '--role', 'operator', '--name', 'Petr Dvořák'])).code, 0);
    const citizen = new Citizen(brana.url.origin);
    assert.equal((await signInToConsole(citizen, 'eobcanka', '100000003')).status, 200);
    assert.equal((await citizen.get('/console/operations/')).status, 200);

    assert.equal((await staff(brana, ['revoke', 'AIFO-0003-PD', '--role', 'operator'])).code, 0);
    const after = await citizen.get('/console/operations/');
    assert.equal(after.status, 403);
    assert.match(after.text, /Nemáte v konzoli žádnou roli/);
    const [revoked] = await brana.broker.log.query({ event: 'staff_revoked' });
    assert.deepEqual(revoked!.detail, { actor: 'cli', name: 'Petr Dvořák', role: 'operator' });
  });

  it('ends the console with the sign-out and sends the person to Brána\'s logout', async () => {
    const citizen = new Citizen(brana.url.origin);
    const home = await signInToConsole(citizen, 'eobcanka', '100000001');
    const out = await citizen.post('/console/logout', { csrf: csrfOf(home.text) });
    assert.equal(out.status, 303);
    assert.equal(out.headers.location, `/session/end?client_id=${CONSOLE_CLIENT_ID}`);
    const again = await citizen.get('/console/audit/');
    assert.equal(again.status, 401);
    assert.match(again.text, /Přihlásit se \(vysoká úroveň záruky\)/);
  });
});

describe('the staff consoles on https', () => {
  let brana: TestBroker;
  before(async () => {
    brana = await startTestBroker({ env: { BRANA_PUBLIC_URL: 'https://brana.example.cz' } });
  });
  after(async () => brana?.close());

  it('names the session cookie __Host- (Secure, Path=/, no Domain)', async () => {
    const response = await new Citizen(`http://127.0.0.1:${(brana.server.address() as { port: number }).port}`).get('/console/login');
    assert.match(String(response.headers['set-cookie']), /^__Host-brana_console=[A-Za-z0-9_-]{43}; Max-Age=900; Path=\/; HttpOnly; Secure; SameSite=Lax$/);
  });
});
