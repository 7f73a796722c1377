import assert from 'node:assert/strict';
import { inflateRawSync } from 'node:zlib';
import type { Response } from 'supertest';
import { decodeEntities, formAction } from '../support/html.ts';
import { samlAnswerOf, samlLogin, samlSep, sendToBrana, validatedBySep, type SamlSep } from '../support/saml-sep.ts';
import { Citizen, decideConsent, authorizationResponse, decodeJwt, redeemCode, startLogin } from '../support/login-driver.ts';
import { RegistrationRejected } from '../../src/sep/sep-registration.ts';
import { sepDocument } from '../support/test-broker.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';
import { createPostgresDatabase } from '../support/postgres.ts';

const LOA_HIGH = 'http://eidas.europa.eu/LoA/high';

/** The hidden frames of Brána's logout page: each a LogoutRequest to a SeP's SingleLogoutService. */
function framesOf(page: Response): URL[] {
  return [...page.text.matchAll(/<iframe src="([^"]+)"/g)].map((match) => new URL(decodeEntities(match[1]!)));
}

/** Where the logout page goes on to once its frames loaded: a link (Redirect) or a form (POST). */
function afterFrames(page: Response): URL {
  const link = /<a href="([^"]+)" id="after-frames"/.exec(page.text);
  return new URL(decodeEntities(link ? link[1]! : formAction(page.text)));
}

/** A SeP's login without any page for the citizen: the journey answers at once, however it ends. */
async function passiveAnswer(citizen: Citizen, sep: SamlSep): Promise<{ page: Response; status: string }> {
  const page = await citizen.follow(await sendToBrana(sep, citizen));
  const answer = samlAnswerOf(page);
  const status = /<samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:([A-Za-z]+)"\/?>(?:<samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:([A-Za-z]+)")?/.exec(answer.xml)!;
  return { page, status: status[2] ?? status[1]! };
}

describe('SAML SePs in the citizen\'s Brána session: SSO, IsPassive, logout across SePs and protocols', () => {
  let brana: TestBroker;
  before(async () => {
    brana = await startTestBroker();
  });
  after(async () => brana.close());

  const upstreamRequests = async (sepId: string) => (await brana.broker.log.query({ sepId, event: 'request_sent_upstream' })).length;
  const issued = async (sepId: string) => (await brana.broker.log.query({ sepId, event: 'token_issued' })).length;

  it('a second SAML SeP in the same browser gets SSO: no means, the LoA and means of the session, its own pseudonym and an unlinkable SessionIndex', async () => {
    const first = await samlSep(brana, { sloBinding: 'HTTP-Redirect' });
    const second = await samlSep(brana, { registration: { group: 'jina-skupina', organisation: { id: '00064581', name: 'Hlavní město Praha' } } });
    const { answer, citizen } = await samlLogin(brana, first, { means: 'eobcanka', login: '100000001' });
    const one = await validatedBySep(first, answer);

    const page = await citizen.follow(await sendToBrana(second, citizen));
    assert.match(page.text, /name="decision"/, 'straight to consent: no selection, no identity means');
    const two = await validatedBySep(second, samlAnswerOf(await decideConsent(citizen, page, 'agree')));
    assert.equal(await upstreamRequests(second.clientId), 0, 'no request to any identity means for the second SeP');
    assert.match(two.getAssertionXml!(), new RegExp(`<saml:AuthnContextClassRef>${LOA_HIGH}</saml:AuthnContextClassRef>`));
    assert.notEqual(two.nameID, one.nameID, 'another group, another pseudonym');
    assert.ok(one.sessionIndex && two.sessionIndex);
    assert.notEqual(two.sessionIndex, one.sessionIndex, 'the session is not a handle two SePs can link the citizen by');
    const record = (await brana.broker.log.query({ sepId: second.clientId, event: 'token_issued' })).at(-1)!;
    assert.equal(record.means, 'eobcanka');
    assert.equal(record.loa, 'high');
  });

  it('does not serve from the session a SeP that asks ForceAuthn, or a LoA the session has not reached', async () => {
    const first = await samlSep(brana);
    const { citizen } = await samlLogin(brana, first, { means: 'mojeid', login: 'jnovak' });
    const forcing = await samlSep(brana, { forceAuthn: true });
    const forced = await citizen.follow(await sendToBrana(forcing, citizen));
    assert.doesNotMatch(forced.text ?? '', /name="decision"/);
    assert.ok(forced.status === 303 || /name="means"/.test(forced.text), 'on to the identity means again');
    const higher = await samlSep(brana, { loa: LOA_HIGH });
    const stepUp = await citizen.follow(await sendToBrana(higher, citizen));
    assert.doesNotMatch(stepUp.text ?? '', /name="decision"/, 'mojeid (substantial) does not serve a request for high');
    assert.equal(await issued(forcing.clientId), 0);
    assert.equal(await issued(higher.clientId), 0);
  });

  it('an OIDC SeP in the same browser gets SSO from a SAML login', async () => {
    const saml = await samlSep(brana);
    const { citizen } = await samlLogin(brana, saml, { means: 'eobcanka', login: '100000001' });
    const oidc = await brana.registerSep();
    const login = await startLogin(brana.url.origin, oidc, { scope: 'openid' }, citizen);
    assert.equal(login.response.status, 303, 'straight back to the SeP: nothing to consent to, no means');
    const params = authorizationResponse(login.response, oidc);
    assert.ok(params.get('code'));
    assert.equal(await upstreamRequests(oidc.clientId), 0);
  });

  it('answers IsPassive from the session: an assertion when it serves, NoPassive without a session or when consent would be needed; nothing issued then', async () => {
    const first = await samlSep(brana);
    const passiveQuiet = await samlSep(brana, { passive: true, requestedAttributes: [] });
    const stranger = new Citizen(brana.url.origin);
    const refused = await passiveAnswer(stranger, passiveQuiet);
    assert.equal(refused.status, 'NoPassive');
    assert.equal(await issued(passiveQuiet.clientId), 0);
    const error = (await brana.broker.log.query({ sepId: passiveQuiet.clientId, event: 'error' })).at(-1)!;
    assert.match(String(error.reason), /NoPassive$/);

    const { citizen } = await samlLogin(brana, first, { means: 'eobcanka', login: '100000001' });
    const served = await passiveAnswer(citizen, passiveQuiet);
    assert.equal(served.status, 'Success');
    const profile = await validatedBySep(passiveQuiet, samlAnswerOf(served.page));
    assert.match(profile.nameID, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(await issued(passiveQuiet.clientId), 1);

    const passiveAsking = await samlSep(brana, { passive: true });
    const needsConsent = await passiveAnswer(citizen, passiveAsking);
    assert.equal(needsConsent.status, 'NoPassive', 'the consent page cannot be shown to a passive request');
    assert.equal(await issued(passiveAsking.clientId), 0);
  });

  it('a SAML SeP\'s logout ends the session and tells the session\'s other SAML SePs with signed LogoutRequests they accept; each logged', async () => {
    const first = await samlSep(brana, { sloBinding: 'HTTP-Redirect' });
    const second = await samlSep(brana, { sloBinding: 'HTTP-Redirect' });
    const { answer, citizen } = await samlLogin(brana, first, { means: 'eobcanka', login: '100000001' });
    const one = await validatedBySep(first, answer);
    const page = await citizen.follow(await sendToBrana(second, citizen));
    const two = await validatedBySep(second, samlAnswerOf(await decideConsent(citizen, page, 'agree')));

    const out = await citizen.get(await first.saml.getLogoutUrlAsync(one, 'after-logout', {}));
    assert.equal(out.status, 200, 'the logout page with its frames');
    const frames = framesOf(out);
    assert.equal(frames.length, 1);
    const frame = frames[0]!;
    assert.equal(`${frame.origin}${frame.pathname}`, second.sloUrl);
    assert.match(String(out.headers['content-security-policy']), new RegExp(`frame-src ${frame.origin.replace(/\./g, '\\.')}(;|$)`));
    const told = await second.saml.validateRedirectAsync(Object.fromEntries(frame.searchParams), frame.search.slice(1));
    assert.equal(told.loggedOut, true);
    assert.equal(told.profile?.nameID, two.nameID);
    assert.equal(told.profile?.sessionIndex, two.sessionIndex);
    const xml = inflateRawSync(Buffer.from(frame.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
    assert.match(xml, new RegExp(`Destination="${second.sloUrl.replace(/\./g, '\\.')}"`));

    // Then on to the SeP that asked, with its LogoutResponse.
    const next = afterFrames(out);
    assert.equal(`${next.origin}${next.pathname}`, first.sloUrl);
    assert.equal((await first.saml.validateRedirectAsync(Object.fromEntries(next.searchParams), next.search.slice(1))).loggedOut, true);

    const records = async (sepId: string) => (await brana.broker.log.query({ sepId, event: 'logout' })).at(-1)!;
    assert.equal((await records(first.clientId)).detail.protocol, 'saml');
    const propagated = await records(second.clientId);
    assert.equal(propagated.detail.propagated, true);
    assert.equal(propagated.detail.initiatedBy, first.clientId);
    assert.equal(propagated.pseudonym, two.nameID);

    // The session is gone: the next SeP authenticates anew.
    const again = await citizen.follow(await sendToBrana(second, citizen));
    assert.doesNotMatch(again.text ?? '', /name="decision"/);
  });

  it('tells a SeP whose SingleLogoutService takes HTTP-POST only through a frame of Brána\'s own that posts the signed LogoutRequest; a frame URL Brána did not write posts nothing', async () => {
    const first = await samlSep(brana, { sloBinding: 'HTTP-Redirect' });
    const posting = await samlSep(brana); // node-saml's metadata: SingleLogoutService on HTTP-POST
    const { answer, citizen } = await samlLogin(brana, first, { means: 'eobcanka', login: '100000001' });
    const one = await validatedBySep(first, answer);
    const joined = await validatedBySep(posting, samlAnswerOf(await decideConsent(citizen, await citizen.follow(await sendToBrana(posting, citizen)), 'agree')));
    const out = await citizen.get(await first.saml.getLogoutUrlAsync(one, 'x', {}));
    const frames = framesOf(out);
    assert.equal(frames.length, 1);
    const frame = frames[0]!;
    assert.equal(`${frame.origin}${frame.pathname}`, `${brana.url.origin}/saml-idp/slo/tell/${posting.clientId}`);
    const policy = String(out.headers['content-security-policy']);
    assert.ok(policy.includes(brana.url.origin) && policy.includes(new URL(posting.sloUrl).origin), `frame-src allows the frame and where it posts: ${policy}`);

    const framed = await citizen.get(`${frame.pathname}${frame.search}`);
    assert.equal(framed.status, 200);
    assert.equal(framed.headers['x-frame-options'], 'SAMEORIGIN');
    assert.match(String(framed.headers['content-security-policy']), /frame-ancestors 'self'/);
    assert.equal(formAction(framed.text), posting.sloUrl);
    const samlRequest = decodeEntities(/name="SAMLRequest" value="([^"]+)"/.exec(framed.text)![1]!);
    const told = await posting.saml.validatePostRequestAsync({ SAMLRequest: samlRequest });
    assert.equal(told.loggedOut, true);
    assert.equal(told.profile?.nameID, joined.nameID);
    assert.equal(told.profile?.sessionIndex, joined.sessionIndex);

    // Changed, for another SeP, or expired: a page, and nothing posted anywhere.
    const forged = new URLSearchParams(frame.search);
    forged.set('m', Buffer.from('<samlp:LogoutRequest/>').toString('base64url'));
    const expired = new URLSearchParams(frame.search);
    expired.set('exp', String(Date.now() - 1000));
    for (const [what, path] of [
      ['a changed message', `${frame.pathname}?${forged}`],
      ['another SeP', `/saml-idp/slo/tell/${first.clientId}${frame.search}`],
      ['expired', `${frame.pathname}?${expired}`],
    ] as const) {
      const refused = await citizen.get(path);
      assert.equal(refused.status, 400, what);
      assert.doesNotMatch(refused.text, /SAMLRequest/, what);
    }
  });

  it('a SeP cannot end a session it is not part of: another SeP\'s NameID or SessionIndex ends nothing and tells nobody', async () => {
    const first = await samlSep(brana, { sloBinding: 'HTTP-Redirect' });
    const second = await samlSep(brana, { sloBinding: 'HTTP-Redirect' });
    const outsider = await samlSep(brana, { sloBinding: 'HTTP-Redirect' });
    const { answer, citizen } = await samlLogin(brana, first, { means: 'eobcanka', login: '100000001' });
    const one = await validatedBySep(first, answer);
    const before = (await brana.broker.log.query({ sepId: first.clientId, event: 'logout' })).length;
    // The outsider names the first SeP's NameID and SessionIndex (as if it had learnt them), signed by its own key.
    const out = await citizen.get(await outsider.saml.getLogoutUrlAsync(one, 'x', {}));
    assert.equal(out.status, 303, 'answered directly: no frames');
    assert.equal(new URL(out.headers.location as string).pathname, new URL(outsider.sloUrl).pathname);
    assert.equal((await brana.broker.log.query({ sepId: first.clientId, event: 'logout' })).length, before, 'nobody told');
    // The session still serves the second SeP.
    const page = await citizen.follow(await sendToBrana(second, citizen));
    assert.match(page.text, /name="decision"/);
  });

  it('a LogoutRequest POSTed cross-site (no session cookie) finds the session by its SessionIndex', async () => {
    const first = await samlSep(brana, { sloBinding: 'HTTP-Redirect' });
    const second = await samlSep(brana, { sloBinding: 'HTTP-Redirect' });
    const { answer, citizen } = await samlLogin(brana, first, { means: 'eobcanka', login: '100000001' });
    const one = await validatedBySep(first, answer);
    await validatedBySep(second, samlAnswerOf(await decideConsent(citizen, await citizen.follow(await sendToBrana(second, citizen)), 'agree')));
    // Another browser (no cookies at all) carries the first SeP's LogoutRequest.
    const out = await new Citizen(brana.url.origin).get(await first.saml.getLogoutUrlAsync(one, 'x', {}));
    assert.equal(framesOf(out).length, 1);
    const again = await citizen.follow(await sendToBrana(second, citizen));
    assert.doesNotMatch(again.text ?? '', /name="decision"/, 'the session ended');
  });

  it('a SAML SeP\'s logout tells an OIDC SeP of the session that registered a frontchannel_logout_uri (iss, and the sid of its ID token); one without is not told', async () => {
    const saml = await samlSep(brana, { sloBinding: 'HTTP-Redirect' });
    const { answer, citizen } = await samlLogin(brana, saml, { means: 'eobcanka', login: '100000001' });
    const profile = await validatedBySep(saml, answer);
    const document = sepDocument();
    const origin = new URL((document.redirectUris as string[])[0]!).origin;
    const listening = await brana.registerSep({ ...document, frontchannelLogoutUri: `${origin}/logout/frontchannel?from=brana` });
    const silent = await brana.registerSep();
    // oidc-provider puts sid into an ID token asked for it (the claims parameter).
    const login = await startLogin(brana.url.origin, listening, { scope: 'openid', claims: { id_token: { sid: null } } }, citizen);
    const tokens = (await redeemCode(brana.url.origin, listening, authorizationResponse(login.response, listening).get('code')!, login.codeVerifier)).body as { id_token: string };
    const sid = decodeJwt(tokens.id_token).sid;
    assert.equal(typeof sid, 'string');
    await startLogin(brana.url.origin, silent, { scope: 'openid' }, citizen);

    const out = await citizen.get(await saml.saml.getLogoutUrlAsync(profile, 'x', {}));
    const frames = framesOf(out);
    assert.equal(frames.length, 1, 'only the SeP that registered a front-channel logout URI');
    const frame = frames[0]!;
    assert.equal(`${frame.origin}${frame.pathname}`, `${origin}/logout/frontchannel`);
    assert.equal(frame.searchParams.get('from'), 'brana');
    assert.equal(frame.searchParams.get('iss'), brana.url.origin);
    assert.equal(frame.searchParams.get('sid'), sid);
    const record = (await brana.broker.log.query({ sepId: listening.clientId, event: 'logout' })).at(-1)!;
    assert.equal(record.detail.protocol, 'oidc');
    assert.equal(record.detail.initiatedBy, saml.clientId);
    assert.equal((await brana.broker.log.query({ sepId: silent.clientId, event: 'logout' })).length, 0);
  });

  it('refuses a frontchannel_logout_uri off the SeP\'s own site: Brána never makes browsers load another site\'s page', async () => {
    const document = sepDocument();
    await assert.rejects(brana.broker.registration.register({ ...document, frontchannelLogoutUri: 'https://victim.example.org/delete-account' }, 'active', 'test'), (err: unknown) => {
      assert.ok(err instanceof RegistrationRejected);
      assert.match(err.problems.join('; '), /frontchannelLogoutUri: must have the scheme, host and port of one of the redirect URIs/);
      return true;
    });
    assert.equal(await brana.broker.seps.find(String(document.clientId)), undefined, 'nothing registered');
  });

  it('an OIDC logout at Brána (end_session) tells the session\'s SAML SePs, then goes where oidc-provider would have', async () => {
    const saml = await samlSep(brana, { sloBinding: 'HTTP-Redirect' });
    const { answer, citizen } = await samlLogin(brana, saml, { means: 'eobcanka', login: '100000001' });
    const profile = await validatedBySep(saml, answer);
    const oidc = await brana.registerSep();
    await startLogin(brana.url.origin, oidc, { scope: 'openid' }, citizen);
    const page = await citizen.get('/session/end');
    const action = decodeEntities(/<form[^>]*action="([^"]+)"/.exec(page.text)![1]!);
    const xsrf = decodeEntities(/name="xsrf" value="([^"]+)"/.exec(page.text)![1]!);
    const out = await citizen.post(action, { xsrf, logout: 'yes' });
    assert.equal(out.status, 200);
    const frames = framesOf(out);
    assert.equal(frames.length, 1);
    const told = await saml.saml.validateRedirectAsync(Object.fromEntries(frames[0]!.searchParams), frames[0]!.search.slice(1));
    assert.equal(told.profile?.nameID, profile.nameID);
    assert.equal(afterFrames(out).pathname, '/session/end/success');
    const record = (await brana.broker.log.query({ sepId: saml.clientId, event: 'logout' })).at(-1)!;
    assert.equal(record.detail.propagated, true);
    assert.equal(record.detail.initiatedBy, null);
    // A logout without SAML SePs is answered as before: oidc-provider's redirect.
    const alone = new Citizen(brana.url.origin);
    await startLogin(brana.url.origin, oidc, { scope: 'openid' }, alone);
    const plain = await alone.get('/session/end');
    const plainOut = plain.status === 200 && /name="xsrf"/.test(plain.text) ? await alone.post(decodeEntities(/<form[^>]*action="([^"]+)"/.exec(plain.text)![1]!), { xsrf: decodeEntities(/name="xsrf" value="([^"]+)"/.exec(plain.text)![1]!), logout: 'yes' }) : plain;
    assert.equal(plainOut.status, 303);
  });
});

describe('the SAML session on PostgreSQL', () => {
  it('SSO to a second SeP, and a logout POSTed without the session cookie that finds the session by its SessionIndex and tells the other SeP', async () => {
    const database = await createPostgresDatabase('saml-session');
    const brana = await startTestBroker({ databaseUrl: database.url });
    try {
      const first = await samlSep(brana, { sloBinding: 'HTTP-Redirect' });
      const second = await samlSep(brana, { sloBinding: 'HTTP-Redirect' });
      const { answer, citizen } = await samlLogin(brana, first, { means: 'eobcanka', login: '100000001' });
      const one = await validatedBySep(first, answer);
      const consent = await citizen.follow(await sendToBrana(second, citizen));
      assert.match(consent.text, /name="decision"/);
      await validatedBySep(second, samlAnswerOf(await decideConsent(citizen, consent, 'agree')));
      const out = await new Citizen(brana.url.origin).get(await first.saml.getLogoutUrlAsync(one, 'x', {}));
      assert.equal(framesOf(out).length, 1);
      const again = await citizen.follow(await sendToBrana(second, citizen));
      assert.doesNotMatch(again.text ?? '', /name="decision"/, 'the session ended');
    } finally {
      await brana.close();
      await database.drop();
    }
  });
});
