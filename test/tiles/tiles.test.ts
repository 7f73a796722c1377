import assert from 'node:assert/strict';
import supertest from 'supertest';
import { LogoRejected, inspectLogo } from '../../src/tiles/logo.ts';
import { JPEG_LOGO, PNG_LOGO, solidPng } from '../support/images.ts';
import { completeLogin } from '../support/login-driver.ts';
import { MANY_REGISTRATIONS, adminToken, registrationMetadata, reviewAndApprove, selfRegister, type SelfRegistered } from '../support/self-service.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

describe('tile logos are images, decided by their bytes', () => {
  it('accepts a PNG and a JPEG, and says what they are', () => {
    assert.deepEqual(inspectLogo(PNG_LOGO), { type: 'image/png', width: 96, height: 96 });
    assert.deepEqual(inspectLogo(JPEG_LOGO), { type: 'image/jpeg', width: 96, height: 96 });
    assert.deepEqual(inspectLogo(solidPng(40, 300)), { type: 'image/png', width: 40, height: 300 });
  });

  const damagedIdat = Buffer.from(PNG_LOGO);
  damagedIdat[PNG_LOGO.indexOf("IDAT") + 10] = damagedIdat[PNG_LOGO.indexOf("IDAT") + 10]! ^ 0xff;
  const refused: Array<[string, Buffer, RegExp]> = [
    ['an SVG with a script', Buffer.from('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'), /is an SVG image: Brána accepts only PNG or JPEG/],
    ['an HTML page called logo.png', Buffer.from('<html><body><script>alert(1)</script></body></html>'), /is not a PNG or JPEG image/],
    ['a truncated PNG', PNG_LOGO.subarray(0, PNG_LOGO.length - 20), /truncated PNG/],
    ['a PNG with a damaged chunk', damagedIdat, /damaged PNG image \(chunk IDAT\)/],
    ['a PNG with something appended', Buffer.concat([PNG_LOGO, Buffer.from('<script>alert(1)</script>')]), /data after the end of the PNG/],
    ['a truncated JPEG', JPEG_LOGO.subarray(0, JPEG_LOGO.length - 2), /truncated JPEG/],
    ['a PNG signature with nothing behind it', PNG_LOGO.subarray(0, 8), /truncated PNG/],
    ['a 16×16 icon', solidPng(16, 16), /between 32 and 2048 pixels on each side \(it is 16×16\)/],
    ['nothing', Buffer.alloc(0), /is empty/],
    ['a file over 256 KiB', Buffer.concat([PNG_LOGO, Buffer.alloc(300 * 1024)]), /larger than 256 KiB/],
  ];
  for (const [what, bytes, message] of refused) {
    it(`refuses ${what}`, () => {
      assert.throws(() => inspectLogo(bytes), (err: unknown) => err instanceof LogoRejected && message.test(err.message));
    });
  }
});

describe('Citizen-Portal tiles: request, conditions, approval, catalogue', () => {
  let brana: TestBroker;
  let admin: string;
  const api = () => supertest(brana.url.origin);

  function tileRequest(sep: SelfRegistered, overrides: Record<string, unknown> = {}, conditions: Record<string, unknown> = {}) {
    const origin = new URL((sep.body.redirect_uris as string[])[0]!).origin;
    return {
      name: { cs: 'Portál občana Hradce Králové', en: 'Hradec Králové citizen portal' },
      description: { cs: 'Poplatky, podání a rezervace na úřadě.', en: 'Fees, filings and appointments.' },
      link: `${origin}/`,
      logo: PNG_LOGO.toString('base64'),
      conditions: { ownPortalUrl: `${origin}/`, servesPrivateContent: true, loginWithoutFurtherRegistration: true, ...conditions },
      ...overrides,
    };
  }
  const requestTile = (sep: SelfRegistered, body: unknown) => api().put(`/reg/${sep.clientId}/tile`).set('Authorization', `Bearer ${sep.registrationAccessToken}`).send(body as object);
  const tileCount = async () => Number(((await brana.broker.db('tile').count({ n: '*' })) as Array<{ n: number }>)[0]!.n);
  const requestedRecords = async () => (await brana.broker.log.query({ event: 'tile_requested' })).length;

  /** A self-registered SeP, approved, with `logins` completed logins through Brána. */
  async function connectedSep(logins = 1): Promise<SelfRegistered> {
    const sep = await selfRegister(brana, registrationMetadata());
    assert.equal((await reviewAndApprove(brana.url.origin, admin, sep.clientId)).status, 200);
    for (let i = 0; i < logins; i += 1) {
      await completeLogin(brana.url.origin, { clientId: sep.clientId, clientSecret: sep.clientSecret, redirectUri: (sep.body.redirect_uris as string[])[0]! }, { means: 'eobcanka', login: '100000001' });
    }
    return sep;
  }

  before(async () => {
    brana = await startTestBroker({ env: MANY_REGISTRATIONS });
    admin = await adminToken(brana);
  });
  after(async () => brana.close());

  it('refuses a tile for a pending SeP, and writes nothing', async () => {
    const pending = await selfRegister(brana, registrationMetadata());
    const [tiles, records] = [await tileCount(), await requestedRecords()];
    const response = await requestTile(pending, tileRequest(pending));
    assert.equal(response.status, 403);
    assert.equal(response.body.error, 'unapproved_sep');
    assert.equal(await tileCount(), tiles);
    assert.equal(await requestedRecords(), records);
  });

  it('refuses a tile for a portal with no completed login through Brána', async () => {
    const sep = await connectedSep(0);
    const response = await requestTile(sep, tileRequest(sep));
    assert.equal(response.status, 400);
    assert.equal(response.body.error, 'invalid_tile');
    assert.ok(response.body.problems.some((p: string) => /^conditions: the portal has no completed login through Brána/.test(p)));
  });

  describe('for a connected SeP', () => {
    let sep: SelfRegistered;
    before(async () => {
      sep = await connectedSep(1);
    });

    const wrong: Array<[string, (s: SelfRegistered) => unknown, RegExp]> = [
      ['a logo that is not an image', (s) => tileRequest(s, { logo: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>').toString('base64') }), /^logo: is an SVG image/],
      ['a logo that is not base64', (s) => tileRequest(s, { logo: '<img src=x onerror=alert(1)>' }), /^logo: must be the image in base64/],
      ['private content not declared', (s) => tileRequest(s, {}, { servesPrivateContent: false }), /^conditions\.servesPrivateContent: the Citizen Portal lists only portals that serve private content/],
      ['login conditioned on a further registration', (s) => tileRequest(s, {}, { loginWithoutFurtherRegistration: false }), /^conditions\.loginWithoutFurtherRegistration: /],
      ['a portal on another site', (s) => tileRequest(s, {}, { ownPortalUrl: 'https://www.example.org/' }), /^conditions\.ownPortalUrl: is not on the site of the SeP's return URLs/],
      ['a link away from the portal', (s) => tileRequest(s, { link: 'https://phishing.example.net/' }), /^link: must lead to the portal/],
      ['an http link', (s) => tileRequest(s, { link: 'http://portal.hradeckralove.example.cz/' }), /^link: must use https/],
      ['a missing description', (s) => ({ ...(tileRequest(s) as object), description: undefined }), /^description: /],
    ];
    for (const [what, body, message] of wrong) {
      it(`refuses ${what}, naming the field, and writes nothing`, async () => {
        const [tiles, records] = [await tileCount(), await requestedRecords()];
        const response = await requestTile(sep, body(sep));
        assert.equal(response.status, 400, response.text);
        assert.equal(response.body.error, 'invalid_tile');
        assert.ok(response.body.problems.some((p: string) => message.test(p)), JSON.stringify(response.body.problems));
        assert.equal(await tileCount(), tiles);
        assert.equal(await requestedRecords(), records);
      });
    }

    it('refuses a request without this SeP\'s registration access token', async () => {
      const other = await connectedSep(0);
      const response = await api().put(`/reg/${sep.clientId}/tile`).set('Authorization', `Bearer ${other.registrationAccessToken}`).send(tileRequest(sep));
      assert.equal(response.status, 401);
      assert.equal((await api().put(`/reg/${sep.clientId}/tile`).send(tileRequest(sep))).status, 401);
    });

    it('publishes a tile only after an administrator approves it, as JSON and as an embeddable page', async () => {
      const requested = await requestTile(sep, tileRequest(sep));
      assert.equal(requested.status, 201, requested.text);
      assert.equal(requested.body.status, 'pending');
      assert.equal(requested.body.conditions.connectedThroughBroker.completedLogins, 1);
      const id = requested.body.id as number;
      assert.ok(!(await api().get('/tiles.json')).body.tiles.some((t: { id: number }) => t.id === id), 'not published before approval');
      assert.equal((await api().get(`/tiles/${id}/logo`)).status, 404);

      const review = await api().get('/admin/tiles?status=pending').set('Authorization', `Bearer ${admin}`);
      assert.ok(review.body.some((t: { id: number; logo: string }) => t.id === id && t.logo.startsWith('data:image/png;base64,')));
      const approved = await api().post(`/admin/tiles/${id}/approve`).set('Authorization', `Bearer ${admin}`);
      assert.equal(approved.status, 200, approved.text);

      const catalogue = await api().get('/tiles.json');
      assert.equal(catalogue.headers['access-control-allow-origin'], '*');
      const published = catalogue.body.tiles.find((t: { id: number }) => t.id === id);
      assert.equal(published.name.cs, 'Portál občana Hradce Králové');
      assert.equal(published.organisation.name, 'Statutární město Hradec Králové');
      assert.equal(published.logo.url, `${brana.url.origin}/tiles/${id}/logo`);

      const logo = await api().get(`/tiles/${id}/logo`).buffer(true);
      assert.equal(logo.status, 200);
      assert.equal(logo.headers['content-type'], 'image/png');
      assert.equal(logo.headers['x-content-type-options'], 'nosniff');
      assert.match(String(logo.headers['content-security-policy']), /sandbox/);
      assert.ok(Buffer.from(logo.body as Buffer).equals(PNG_LOGO));

      const page = await api().get('/tiles?lang=en');
      assert.equal(page.status, 200);
      assert.match(page.text, /<html lang="en">/);
      assert.match(page.text, /Hradec Králové citizen portal/);
      assert.match(page.text, /target="_top"/);
      assert.match(String(page.headers['content-security-policy']), /frame-ancestors https:/);
      assert.equal(page.headers['x-frame-options'], undefined, 'the Citizen Portal may frame it');

      const events = (await brana.broker.log.query({ sepId: sep.clientId })).map((r) => r.event).filter((e) => e.startsWith('tile_'));
      assert.deepEqual(events, ['tile_requested', 'tile_approved']);
    });

    it('replaces a published tile only when the new one is approved, and withdraws it on an administrator\'s word', async () => {
      const first = (await api().get('/tiles.json')).body.tiles.find((t: { sepId: string }) => t.sepId === sep.clientId);
      assert.ok(first, 'the tile from the previous test is published');
      const second = await requestTile(sep, tileRequest(sep, { name: { cs: 'Hradec Králové – e-podatelna', en: 'Hradec Králové e-filing' }, logo: JPEG_LOGO.toString('base64') }));
      assert.equal(second.status, 201, second.text);
      assert.equal((await api().get('/tiles.json')).body.tiles.find((t: { sepId: string }) => t.sepId === sep.clientId).id, first.id, 'the old tile stays until approval');
      await api().post(`/admin/tiles/${second.body.id}/approve`).set('Authorization', `Bearer ${admin}`);
      const mine = (await api().get('/tiles.json')).body.tiles.filter((t: { sepId: string }) => t.sepId === sep.clientId);
      assert.deepEqual(mine.map((t: { id: number; logo: { type: string } }) => [t.id, t.logo.type]), [[second.body.id, 'image/jpeg']]);

      const own = await api().get(`/reg/${sep.clientId}/tile`).set('Authorization', `Bearer ${sep.registrationAccessToken}`);
      assert.deepEqual(own.body.map((t: { status: string }) => t.status), ['superseded', 'approved']);

      assert.equal((await api().post(`/admin/tiles/${second.body.id}/reject`).set('Authorization', `Bearer ${admin}`).send({ reason: 'the portal asks for a further registration' })).status, 200);
      assert.ok(!(await api().get('/tiles.json')).body.tiles.some((t: { sepId: string }) => t.sepId === sep.clientId));
      assert.equal((await brana.broker.log.query({ sepId: sep.clientId, event: 'tile_rejected' }))[0]?.reason, 'withdrawn');
      assert.equal((await api().post(`/admin/tiles/${second.body.id}/approve`).set('Authorization', `Bearer ${admin}`)).status, 409);
    });

    it('takes a tile off the catalogue when its SeP is disabled', async () => {
      const other = await connectedSep(1);
      const requested = await requestTile(other, tileRequest(other));
      await api().post(`/admin/tiles/${requested.body.id}/approve`).set('Authorization', `Bearer ${admin}`);
      assert.ok((await api().get('/tiles.json')).body.tiles.some((t: { id: number }) => t.id === requested.body.id));
      await brana.broker.registration.setStatus(other.clientId, 'disabled', 'test');
      assert.ok(!(await api().get('/tiles.json')).body.tiles.some((t: { id: number }) => t.id === requested.body.id));
      assert.equal((await api().get(`/tiles/${requested.body.id}/logo`)).status, 404);
    });
  });
});
