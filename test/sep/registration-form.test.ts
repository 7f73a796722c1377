import assert from 'node:assert/strict';
import supertest from 'supertest';
import { decodeEntities } from '../support/html.ts';
import { MANY_REGISTRATIONS, initialAccessToken } from '../support/self-service.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

function form(token: string, overrides: Record<string, string | string[]> = {}): Record<string, string | string[]> {
  return {
    token,
    nameCs: 'Portál města Blansko',
    nameEn: 'Blansko town portal',
    description: 'Podání a poplatky online.',
    infoUrl: 'https://www.blansko.cz/',
    organisationId: '00279943',
    organisationName: 'Město Blansko',
    spType: 'public',
    legalBasis: '',
    group: `blansko-${process.pid}`,
    minimumLoa: 'substantial',
    attributes: ['CurrentGivenName', 'CurrentFamilyName'],
    redirectUris: 'https://portal.blansko.cz/callback\r\n',
    postLogoutRedirectUris: '',
    ...overrides,
  };
}

const code = (html: string, id: string) => decodeEntities(new RegExp(`<code id="${id}">([^<]+)</code>`).exec(html)?.[1] ?? '');

describe('the registration form for people (/register)', () => {
  let brana: TestBroker;
  const agent = () => supertest(brana.url.origin);
  const post = (fields: Record<string, string | string[]>, language?: 'en') => {
    const request = agent().post('/register').type('form');
    if (language) request.set('Cookie', 'brana_lang=en');
    return request.send(new URLSearchParams(Object.entries(fields).flatMap(([key, value]) => (Array.isArray(value) ? value.map((item) => [key, item]) : [[key, value]]))).toString());
  };
  const pending = async () => (await brana.broker.seps.list({ status: 'pending' })).length;
  before(async () => {
    brana = await startTestBroker({ env: MANY_REGISTRATIONS });
  });
  after(async () => brana.close());

  it('shows the form in Czech with a label for every field, and in English', async () => {
    const page = await agent().get('/register');
    assert.equal(page.status, 200);
    assert.match(page.text, /<html lang="cs">/);
    for (const id of ['token', 'nameCs', 'nameEn', 'description', 'infoUrl', 'organisationId', 'organisationName', 'legalBasis', 'group', 'minimumLoa', 'redirectUris', 'postLogoutRedirectUris', 'attribute-eMail', 'spType-private']) {
      assert.match(page.text, new RegExp(`<label for="${id}">`), `a label for ${id}`);
    }
    const english = await agent().get('/register').set('Cookie', 'brana_lang=en');
    assert.match(english.text, /Register a service with Brána/);
  });

  it('registers a pending SeP and shows its credentials once; the registration token reads it through RFC 7592', async () => {
    const before = await pending();
    const done = await post(form(await initialAccessToken(brana)));
    assert.equal(done.status, 200, done.text.slice(0, 2000));
    assert.match(done.text, /čeká na schválení/);
    const clientId = code(done.text, 'client-id');
    const sep = await brana.broker.seps.find(clientId);
    assert.equal(sep?.status, 'pending');
    assert.equal(sep?.organisation.name, 'Město Blansko');
    assert.equal(await pending(), before + 1);
    assert.equal(done.headers['cache-control'], 'no-store');
    const read = await agent().get(`/reg/${clientId}`).set('Authorization', `Bearer ${code(done.text, 'registration-access-token')}`);
    assert.equal(read.status, 200);
    assert.equal(read.body.client_secret, code(done.text, 'client-secret'));
    assert.equal((await brana.broker.log.query({ sepId: clientId, event: 'sep_registered' }))[0]?.detail.actor, 'self-service (web form)');
  });

  const refusals: Array<[string, Record<string, string | string[]>, RegExp, 'cs' | 'en']> = [
    ['an http return address', { redirectUris: 'http://portal.blansko.cz/callback' }, /Návratové adresy po přihlášení[^<]*<\/a>: musí používat https/, 'cs'],
    ['a wrong IČO', { organisationId: '00279944' }, /IČO<\/a>: musí být platné IČO/, 'cs'],
    ['a private SeP without a law', { spType: 'private' }, /musí uvést zákon, který jí ukládá ztotožňovat osoby/, 'cs'],
    ['an empty name, with zod\'s own message in Czech', { nameCs: '' }, /Název služby česky<\/a>: Hodnota je příliš malá/, 'cs'],
    ['an http return address, in English', { redirectUris: 'http://portal.blansko.cz/callback' }, /Return addresses after login[^<]*<\/a>: must use https/, 'en'],
  ];
  for (const [what, change, message, language] of refusals) {
    it(`refuses ${what} at its field, keeps what was typed, and writes nothing`, async () => {
      const before = await pending();
      const page = await post(form(await initialAccessToken(brana), change), language === 'en' ? 'en' : undefined);
      assert.equal(page.status, 400);
      assert.match(page.text, /role="alert"/);
      assert.match(page.text, message);
      assert.match(page.text, /aria-invalid="true"/);
      assert.match(page.text, /value="Město Blansko"/, 'what was typed stays');
      assert.ok(!page.text.includes('name="token" value="brana'), 'the registration code is not echoed back');
      assert.equal(await pending(), before);
    });
  }

  it('refuses a form without a valid registration code, or posted from another site', async () => {
    const before = await pending();
    const noToken = await post(form('not-a-token-at-all-but-long-enough'));
    assert.equal(noToken.status, 400);
    assert.match(noToken.text, /registrační kód neplatí nebo vypršel/);
    const crossSite = await agent().post('/register').set('Origin', 'https://evil.example').type('form').send(new URLSearchParams(form(await initialAccessToken(brana)) as Record<string, string>).toString());
    assert.equal(crossSite.status, 400);
    assert.equal(await pending(), before);
  });
});
