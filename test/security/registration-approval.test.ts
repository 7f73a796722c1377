import assert from 'node:assert/strict';
import supertest from 'supertest';
import { codesIssuedTo } from '../support/audit.ts';
import { startLogin } from '../support/login-driver.ts';
import { MANY_REGISTRATIONS, adminToken, registrationMetadata, selfRegister, type SelfRegistered } from '../support/self-service.ts';
import { sepDocument, startTestBroker, type TestBroker } from '../support/test-broker.ts';

const PRAHA = { id: '00064581', name: 'Hlavní město Praha' };
const BLANSKO = { id: '00279943', name: 'Město Blansko' };
const EVERY_ATTRIBUTE = ['CurrentGivenName', 'CurrentFamilyName', 'DateOfBirth', 'PlaceOfBirth', 'CurrentAddress', 'eMail', 'idnumber', 'idtype', 'phonenumber'];

/**
 * Issue 13, item 1: an approval is bound to what the administrator reviewed, and the organisation
 * of a SeP group is established by an administrator, never by the SeP's form. Every refusal is
 * checked for what it must not have done: nothing approved, no group taken, no code issued.
 */
describe('Security: SeP registration and approval', () => {
  let brana: TestBroker;
  let admin: string;
  const api = () => supertest(brana.url.origin);
  const victimGroup = `praha-portal-${process.pid}`;

  before(async () => {
    brana = await startTestBroker({ env: MANY_REGISTRATIONS });
    admin = await adminToken(brana);
    // The victim: Prague's portals, registered by an operator, which establishes Prague's group.
    await brana.registerSep({ group: victimGroup, organisation: PRAHA });
  });
  after(async () => brana.close());

  const review = async (clientId: string) => {
    const response = await api().get(`/admin/seps/${clientId}`).set('Authorization', `Bearer ${admin}`);
    assert.equal(response.status, 200, response.text);
    return response.body as { status: string; group: string; approval: { awaiting: string; digest: string; group: string; groupOwner: { organisation: { id: string } } | null; establishesGroup: boolean; problems: string[] } | null };
  };
  const approve = (clientId: string, body: unknown) => api().post(`/admin/seps/${clientId}/approve`).set('Authorization', `Bearer ${admin}`).send(body as object);
  /** The SeP's own RFC 7592 update; Brána rotates its registration access token each time. */
  const rewrite = async (registered: SelfRegistered, redirectUris: string[], brana: Record<string, unknown>) => {
    const response = await api()
      .put(new URL(registered.registrationClientUri).pathname)
      .set('Authorization', `Bearer ${registered.registrationAccessToken}`)
      .send({ client_id: registered.clientId, redirect_uris: redirectUris, brana_registration: brana });
    if (response.body.registration_access_token) registered.registrationAccessToken = response.body.registration_access_token as string;
    return response;
  };
  const approvals = async (clientId: string) => (await brana.broker.log.query({ sepId: clientId, event: 'sep_approved' })).length;
  const harmless = () => registrationMetadata({}, { organisation: BLANSKO, group: `blansko-${process.pid}-${Math.random().toString(36).slice(2, 8)}`, allowedAttributes: ['CurrentGivenName'] });

  it('refuses the approval of a reviewed registration the SeP rewrote to a victim\'s organisation, group and every attribute (409), and grants nothing', async () => {
    const metadata = harmless();
    const registered = await selfRegister(brana, metadata);
    const reviewed = await review(registered.clientId);
    assert.equal(reviewed.approval?.awaiting, 'registration');
    assert.match(reviewed.approval!.digest, /^[0-9a-f]{64}$/);
    assert.equal(reviewed.approval?.establishesGroup, true, 'the review says the approval makes a new group');

    const swapped = await rewrite(registered, metadata.redirect_uris as string[], { ...(metadata.brana_registration as object), organisation: PRAHA, group: victimGroup, allowedAttributes: EVERY_ATTRIBUTE });
    assert.equal(swapped.status, 200, swapped.text);

    const refused = await approve(registered.clientId, { digest: reviewed.approval!.digest });
    assert.equal(refused.status, 409, refused.text);
    assert.equal(refused.body.error, 'stale_review');
    assert.match(refused.body.error_description, /not the version you reviewed/);

    const sep = await brana.broker.seps.find(registered.clientId);
    assert.equal(sep?.status, 'pending', 'still waiting: nothing was approved');
    assert.equal(await approvals(registered.clientId), 0);
    const started = await startLogin(brana.url.origin, { clientId: registered.clientId, clientSecret: registered.clientSecret, redirectUri: (metadata.redirect_uris as string[])[0]! });
    assert.equal(started.response.status, 400, 'it cannot log anyone in');
    assert.equal(await codesIssuedTo(brana.broker, registered.clientId), 0);
    // The administrator sees the rewritten request, with the group's owner, under a new digest.
    const again = await review(registered.clientId);
    assert.notEqual(again.approval?.digest, reviewed.approval?.digest);
    assert.equal(again.approval?.groupOwner?.organisation.id, PRAHA.id);
    assert.equal(again.approval?.establishesGroup, false);
  });

  it('refuses the approval of a reviewed change an active SeP swapped for another (409), and applies nothing', async () => {
    const metadata = harmless();
    const registered = await selfRegister(brana, metadata);
    assert.equal((await approve(registered.clientId, { digest: (await review(registered.clientId)).approval!.digest })).status, 200);
    const inForce = metadata.brana_registration as Record<string, unknown>;
    assert.equal((await rewrite(registered, metadata.redirect_uris as string[], { ...inForce, allowedAttributes: ['CurrentGivenName', 'CurrentFamilyName'] })).status, 200);
    const reviewed = await review(registered.clientId);
    assert.equal(reviewed.approval?.awaiting, 'change');

    // The change swapped for one that reaches for every attribute, at the lowest level.
    assert.equal((await rewrite(registered, metadata.redirect_uris as string[], { ...inForce, allowedAttributes: EVERY_ATTRIBUTE, minimumLoa: 'low' })).status, 200);
    const refused = await approve(registered.clientId, { digest: reviewed.approval!.digest });
    assert.equal(refused.status, 409, refused.text);
    assert.equal(refused.body.error, 'stale_review');
    const sep = await brana.broker.seps.find(registered.clientId);
    assert.deepEqual(sep?.allowedAttributes, ['CurrentGivenName']);
    assert.equal(sep?.minimumLoa, 'substantial');
    assert.ok(sep?.requestedRegistration, 'the change still waits');
    assert.equal(await approvals(registered.clientId), 1, 'only the registration was approved');
  });

  it('keeps approving after a change of technical settings only: they are not part of what the administrator approves', async () => {
    const metadata = harmless();
    const registered = await selfRegister(brana, metadata);
    assert.equal((await approve(registered.clientId, { digest: (await review(registered.clientId)).approval!.digest })).status, 200);
    const inForce = metadata.brana_registration as Record<string, unknown>;
    assert.equal((await rewrite(registered, metadata.redirect_uris as string[], { ...inForce, allowedAttributes: ['CurrentGivenName', 'DateOfBirth'] })).status, 200);
    const reviewed = await review(registered.clientId);
    const moved = [`https://moved-${process.pid}.blansko.example.cz/callback`];
    assert.equal((await rewrite(registered, moved, { ...inForce, allowedAttributes: ['CurrentGivenName', 'DateOfBirth'] })).status, 200);
    const approved = await approve(registered.clientId, { digest: reviewed.approval!.digest });
    assert.equal(approved.status, 200, approved.text);
    assert.deepEqual(approved.body.applied, ['allowedAttributes']);
  });

  const malformed: Array<[string, unknown, RegExp]> = [
    ['no body', undefined, /digest: required/],
    ['no digest', {}, /digest: required/],
    ['a digest that is not one', { digest: 'latest' }, /digest: must be the 64 hex digits/],
    ['a field beside it', { digest: 'a'.repeat(64), force: true }, /force/],
  ];
  for (const [what, body, message] of malformed) {
    it(`answers an approval with ${what} with 400 saying what is required, and approves nothing`, async () => {
      const registered = await selfRegister(brana, harmless());
      const response = await approve(registered.clientId, body);
      assert.equal(response.status, 400, response.text);
      assert.equal(response.body.error, 'invalid_request');
      assert.match(response.body.error_description, message);
      assert.equal((await brana.broker.seps.find(registered.clientId))?.status, 'pending');
      assert.equal(await approvals(registered.clientId), 0);
    });
  }

  it('refuses at approval a SeP whose new group another organisation was given meanwhile (409), whatever was true at registration', async () => {
    const group = `novy-sektor-${process.pid}`;
    const first = await selfRegister(brana, registrationMetadata({}, { organisation: BLANSKO, group }));
    const second = await selfRegister(brana, registrationMetadata({}, { organisation: PRAHA, group }));
    const secondReview = await review(second.clientId);
    assert.equal(secondReview.approval?.establishesGroup, true);
    assert.equal((await approve(first.clientId, { digest: (await review(first.clientId)).approval!.digest })).status, 200);

    const refused = await approve(second.clientId, { digest: secondReview.approval!.digest });
    assert.equal(refused.status, 409, refused.text);
    assert.equal(refused.body.error, 'not_approvable');
    assert.match(refused.body.error_description, new RegExp(`group ${group} belongs to Město Blansko \\(IČO ${BLANSKO.id}\\)`));
    assert.equal((await brana.broker.seps.find(second.clientId))?.status, 'pending');
    assert.equal(await approvals(second.clientId), 0);
    assert.equal((await brana.broker.seps.groupOwner(group))?.organisation.id, BLANSKO.id);
    assert.deepEqual((await review(second.clientId)).approval?.problems, [`group: group ${group} belongs to Město Blansko (IČO ${BLANSKO.id})`]);
  });

  it('refuses at approval a registration that the rules of today refuse: a reserved brana- group (409)', async () => {
    // Written straight into the store, as a registration made under older rules would be.
    const document = brana.broker.registration.validate(sepDocument({ clientId: undefined }));
    const { sep } = await brana.broker.seps.register({ ...document, group: 'brana-account-x' }, 'pending');
    const refused = await approve(sep.clientId, { digest: (await review(sep.clientId)).approval!.digest });
    assert.equal(refused.status, 409, refused.text);
    assert.equal(refused.body.error, 'not_approvable');
    assert.match(refused.body.error_description, /brana-/);
    assert.equal((await brana.broker.seps.find(sep.clientId))?.status, 'pending');
    assert.equal(await brana.broker.seps.groupOwner('brana-account-x'), undefined);
  });

  it('records the organisation of a new group on its first approval, and who established it', async () => {
    const group = `letohrad-${process.pid}`;
    const registered = await selfRegister(brana, registrationMetadata({}, { organisation: { id: '00279765', name: 'Město Letohrad' }, group }));
    assert.equal(await brana.broker.seps.groupOwner(group), undefined, 'a registration does not establish a group');
    const { digest } = (await review(registered.clientId)).approval!;
    const approved = await approve(registered.clientId, { digest });
    assert.equal(approved.status, 200, approved.text);
    const owner = await brana.broker.seps.groupOwner(group);
    assert.equal(owner?.organisation.id, '00279765');
    assert.match(owner!.establishedBy, /^admin:/);
    const [record] = await brana.broker.log.query({ sepId: registered.clientId, event: 'sep_approved' });
    assert.equal(record?.detail.groupOrganisationId, '00279765');
    assert.equal(record?.detail.digest, digest, 'the log says which version was approved');
  });

  describe('initial access tokens', () => {
    const issue = (body: Record<string, unknown>) => api().post('/admin/initial-access-tokens').set('Authorization', `Bearer ${admin}`).send(body);
    const register = (token: string, metadata = harmless()) => api().post('/reg').set('Authorization', `Bearer ${token}`).send(metadata);
    const registrations = async () => (await brana.broker.log.query({ event: 'sep_registered' })).length;

    it('registers once with a token issued for one use, and refuses a second registration with it (401 invalid_token), writing nothing', async () => {
      const issued = await issue({});
      assert.equal(issued.status, 201, issued.text);
      assert.equal(issued.body.uses, 1, 'one use by default');
      assert.ok(Date.parse(issued.body.expires_at) - Date.now() <= 3 * 86_400_000 + 60_000, 'a few days by default');
      assert.equal((await register(issued.body.initial_access_token)).status, 201);

      const [before, records] = [await brana.broker.seps.list(), await registrations()];
      const second = await register(issued.body.initial_access_token);
      assert.equal(second.status, 401, second.text);
      assert.equal(second.body.error, 'invalid_token');
      assert.equal(second.body.client_id, undefined);
      assert.equal((await brana.broker.seps.list()).length, before.length, 'no SeP written');
      assert.equal(await registrations(), records, 'no registration recorded');
    });

    it('registers as many SePs as the token has uses, however many ask at once', async () => {
      const issued = await issue({ uses: 2 });
      assert.equal(issued.body.uses, 2);
      const answers = await Promise.all(Array.from({ length: 5 }, () => register(issued.body.initial_access_token)));
      assert.deepEqual(answers.map((answer) => answer.status).sort(), [201, 201, 401, 401, 401]);
      const [record] = await brana.broker.log.query({ event: 'sep_initial_token_issued' }).then((all) => all.slice(-1));
      assert.equal(record?.detail.uses, 2);
    });

    it('does not use a token up on a registration refused for its content', async () => {
      const { body } = await issue({});
      const refused = await register(body.initial_access_token, registrationMetadata({ redirect_uris: ['http://insecure.example.cz/cb'] }));
      assert.equal(refused.status, 400);
      assert.equal((await register(body.initial_access_token)).status, 201);
    });

    const badIssues: Array<[string, Record<string, unknown>, RegExp]> = [
      ['no use at all', { uses: 0 }, /uses: /],
      ['more uses than allowed', { uses: 101 }, /uses: /],
      ['a fraction of a use', { uses: 1.5 }, /uses: /],
      ['a longer life than allowed', { days: 31 }, /days: /],
    ];
    for (const [what, body, message] of badIssues) {
      it(`refuses to issue a token with ${what} (400), and issues none`, async () => {
        const before = (await brana.broker.log.query({ event: 'sep_initial_token_issued' })).length;
        const response = await issue(body);
        assert.equal(response.status, 400, response.text);
        assert.match(response.body.error_description, message);
        assert.equal(response.body.initial_access_token, undefined);
        assert.equal((await brana.broker.log.query({ event: 'sep_initial_token_issued' })).length, before);
      });
    }
  });
});
