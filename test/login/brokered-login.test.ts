import assert from 'node:assert/strict';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { recordsOfLogin, codesIssuedTo } from '../support/audit.ts';
import { hiddenFields } from '../support/html.ts';
import {
  authorizationResponse,
  chooseMeans,
  completeLogin,
  decideConsent,
  loginAtIdp,
  postToAcs,
  redeemCode,
  startLogin,
  userinfo,
} from '../support/login-driver.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

describe('a brokered login, end to end', () => {
  let brana: TestBroker;
  before(async () => {
    brana = await startTestBroker();
  });
  after(async () => brana.close());

  it('logs a citizen in through eObčanka: pseudonym, the asserted LoA, and only allowed, consented claims', async () => {
    const sep = await brana.registerSep();
    const login = await completeLogin(brana.url.origin, sep, { means: 'eobcanka', login: '100000001', scope: 'openid profile' });
    const { idToken, userinfo } = login;

    assert.match(String(idToken.sub), /^[A-Za-z0-9_-]{43}$/);
    assert.equal(idToken.PersonIdentifier, `CZ/CZ/${idToken.sub}`);
    assert.equal(idToken.acr, 'http://eidas.europa.eu/LoA/high');
    assert.deepEqual(idToken.amr, ['eobcanka']);
    assert.equal(typeof idToken.auth_time, 'number');
    assert.equal(idToken.aud, sep.clientId);

    assert.equal(userinfo.sub, idToken.sub);
    assert.equal(userinfo.given_name, 'Jan');
    assert.equal(userinfo.CurrentGivenName, 'Jan');
    assert.equal(userinfo.family_name, 'Novák');
    assert.equal(userinfo.CurrentFamilyName, 'Novák');
    assert.equal(userinfo.birthdate, '1980-04-12');
    assert.equal(userinfo.DateOfBirth, '1980-04-12');
    // profile also covers the place and country of birth, which this SeP is not registered for.
    assert.equal(userinfo.PlaceOfBirth, undefined);
    assert.equal(userinfo.countryCodeOfBirth, undefined);
    // never asked for, so never released even though allowed
    assert.equal(userinfo.email, undefined);
    assert.equal(userinfo.eMail, undefined);
  });

  it('writes every step to the assertion log under one request id, with attribute names but no values', async () => {
    const sep = await brana.registerSep();
    const started = await startLogin(brana.url.origin, sep, { scope: 'openid profile email' });
    const idp = await loginAtIdp(started.citizen, await chooseMeans(started.citizen, started.response, 'mojeid'), 'jnovak');
    const consent = await postToAcs(started.citizen, idp.acs, idp.fields);
    const params = authorizationResponse(await decideConsent(started.citizen, consent, 'agree'), sep);
    const token = await redeemCode(brana.url.origin, sep, params.get('code')!, started.codeVerifier);
    assert.equal(token.status, 200);

    const records = await recordsOfLogin(brana.broker, started.codeVerifier);
    assert.deepEqual(
      records.map((r) => r.event),
      ['request_received', 'request_sent_upstream', 'response_received', 'identity_resolved', 'consent_given', 'token_issued'],
    );
    assert.ok(records.every((r) => r.sepId === sep.clientId));
    const received = records.find((r) => r.event === 'response_received')!;
    assert.equal(received.means, 'mojeid');
    assert.equal(received.loa, 'substantial');
    assert.match(String(received.detail.messageSha256), /^[0-9a-f]{64}$/);
    assert.ok(received.detail.assertionId);
    const issued = records.find((r) => r.event === 'token_issued')!;
    assert.deepEqual(issued.detail.attributes, ['CurrentFamilyName', 'CurrentGivenName', 'DateOfBirth', 'PersonIdentifier', 'eMail']);
    assert.equal(issued.pseudonym, records.find((r) => r.event === 'consent_given')!.pseudonym);
    const everything = JSON.stringify(records);
    for (const value of ['Jan', 'Novák', '1980-04-12', 'jan.novak@example.cz', 'Praha']) assert.ok(!everything.includes(value), `${value} leaked into the log`);
  });

  it('signs ID tokens with ES256 for a SeP registered for it, RS256 otherwise, both verifiable with the published keys', async () => {
    const jwks = createRemoteJWKSet(new URL('/jwks', brana.url));
    for (const alg of ['ES256', 'RS256'] as const) {
      const sep = await brana.registerSep(alg === 'ES256' ? { idTokenSignedResponseAlg: 'ES256' } : {});
      const { tokens } = await completeLogin(brana.url.origin, sep, { means: 'eobcanka', login: '100000001', scope: 'openid' });
      const { protectedHeader, payload } = await jwtVerify(tokens.id_token, jwks, { issuer: brana.url.origin, audience: sep.clientId });
      assert.equal(protectedHeader.alg, alg);
      assert.equal(payload.acr, 'http://eidas.europa.eu/LoA/high');
    }
  });

  it('accepts NIA claim names in the claims parameter and releases only those the SeP may have', async () => {
    const sep = await brana.registerSep({ allowedAttributes: ['CurrentFamilyName', 'DateOfBirth'] });
    const { idToken, userinfo } = await completeLogin(brana.url.origin, sep, {
      means: 'eobcanka',
      login: '100000002',
      scope: 'openid',
      claims: { id_token: { CurrentFamilyName: null, DateOfBirth: { essential: true } }, userinfo: { CurrentGivenName: null, PlaceOfBirth: null } },
    });
    assert.equal(idToken.CurrentFamilyName, 'Svobodová');
    assert.equal(idToken.DateOfBirth, '1975-11-03');
    assert.equal(idToken.CurrentGivenName, undefined);
    assert.equal(userinfo.CurrentGivenName, undefined, 'not registered for the given name');
    assert.equal(userinfo.PlaceOfBirth, undefined, 'not registered for the place of birth');
  });

  it('gives the same citizen the same pseudonym through eObčanka and mojeID, equal within a SeP group and unlinkable across groups', async () => {
    const portal = await brana.registerSep({ group: 'hradec-kralove' });
    const sameGroup = await brana.registerSep({ group: 'hradec-kralove' });
    const otherGroup = await brana.registerSep({ group: 'ockovaci-portal' });
    const viaCard = await completeLogin(brana.url.origin, portal, { means: 'eobcanka', login: '100000001' });
    const viaMojeId = await completeLogin(brana.url.origin, portal, { means: 'mojeid', login: 'jnovak' });
    const sibling = await completeLogin(brana.url.origin, sameGroup, { means: 'mojeid', login: 'jnovak' });
    const elsewhere = await completeLogin(brana.url.origin, otherGroup, { means: 'eobcanka', login: '100000001' });
    const someoneElse = await completeLogin(brana.url.origin, portal, { means: 'eobcanka', login: '100000002' });

    assert.equal(viaCard.idToken.sub, viaMojeId.idToken.sub);
    assert.equal(viaCard.idToken.sub, sibling.idToken.sub);
    assert.notEqual(viaCard.idToken.sub, elsewhere.idToken.sub);
    assert.notEqual(viaCard.idToken.sub, someoneElse.idToken.sub);
    assert.equal(viaMojeId.idToken.acr, 'http://eidas.europa.eu/LoA/substantial');
  });

  it('tells namesakes apart by place of birth', async () => {
    const sep = await brana.registerSep();
    const plzen = await completeLogin(brana.url.origin, sep, { means: 'eobcanka', login: '100000005' });
    const olomouc = await completeLogin(brana.url.origin, sep, { means: 'eobcanka', login: '100000006' });
    const plzenAgain = await completeLogin(brana.url.origin, sep, { means: 'mojeid', login: 'jprochazka-plzen' });
    assert.notEqual(plzen.idToken.sub, olomouc.idToken.sub);
    assert.equal(plzen.idToken.sub, plzenAgain.idToken.sub);
  });

  it('honours a refusal of consent: access_denied to the SeP and no code', async () => {
    const sep = await brana.registerSep();
    const started = await startLogin(brana.url.origin, sep, { scope: 'openid profile' });
    const idp = await loginAtIdp(started.citizen, await chooseMeans(started.citizen, started.response, 'eobcanka'), '100000001');
    const consent = await postToAcs(started.citizen, idp.acs, idp.fields);
    assert.match(consent.text, /Souhlas s předáním údajů/);
    assert.match(consent.text, /Jméno/);
    assert.match(consent.text, /Statutární město Hradec Králové/);
    const params = authorizationResponse(await decideConsent(started.citizen, consent, 'refuse'), sep);
    assert.equal(params.get('error'), 'access_denied');
    assert.equal(params.get('code'), null);
    assert.equal(params.get('state'), started.state);
    assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 0);
    const events = (await recordsOfLogin(brana.broker, started.codeVerifier)).map((r) => r.event);
    assert.ok(events.includes('consent_refused'));
    assert.ok(!events.includes('token_issued'));
  });

  it('refuses a consent form without its token and changes nothing', async () => {
    const sep = await brana.registerSep();
    const started = await startLogin(brana.url.origin, sep, { scope: 'openid profile' });
    const idp = await loginAtIdp(started.citizen, await chooseMeans(started.citizen, started.response, 'eobcanka'), '100000001');
    const consent = await postToAcs(started.citizen, idp.acs, idp.fields);
    const uid = /action="\/interaction\/([^/]+)\/consent"/.exec(consent.text)![1]!;
    const forged = await started.citizen.post(`/interaction/${uid}/consent`, { decision: 'agree', csrf: 'x'.repeat(43) });
    assert.equal(forged.status, 400);
    const crossSite = await started.citizen.agent
      .post(`/interaction/${uid}/consent`)
      .set('Origin', 'https://evil.example')
      .type('form')
      .send({ decision: 'agree', csrf: hiddenFields(consent.text).csrf! })
      .redirects(0);
    assert.equal(crossSite.status, 400);
    assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 0);
  });

  it('goes straight to the means named by idp_hint, and to the only means a SeP may use', async () => {
    const sep = await brana.registerSep();
    const hinted = await startLogin(brana.url.origin, sep, { idpHint: 'mojeid' });
    assert.equal(hinted.response.status, 303);
    assert.match(String(hinted.response.headers.location), /\/dev-idp\/mojeid\/sso\?SAMLRequest=/);

    const onlyCard = await brana.registerSep({ allowedMeans: ['eobcanka'] });
    const direct = await startLogin(brana.url.origin, onlyCard);
    assert.match(String(direct.response.headers.location), /\/dev-idp\/eobcanka\/sso\?SAMLRequest=.*&SigAlg=http%3A%2F%2Fwww\.w3\.org%2F2001%2F04%2Fxmldsig-more%23rsa-sha256&Signature=/);

    const selection = await startLogin(brana.url.origin, sep, { idpHint: 'no-such-means' });
    assert.equal(selection.response.status, 200);
    assert.match(selection.response.text, /value="eobcanka"/);
    assert.match(selection.response.text, /value="mojeid"/);
  });

  it('hands a login that goes straight to a means off at the authorization request itself: one request fewer, the same records, the same pages after', async () => {
    const sep = await brana.registerSep();
    const started = await startLogin(brana.url.origin, sep, { idpHint: 'eobcanka', scope: 'openid' });
    assert.equal(started.authorization.status, 303);
    assert.match(String(started.authorization.headers.location), /\/dev-idp\/eobcanka\/sso\?SAMLRequest=/, 'from /auth straight to the means, no stop at the interaction page');
    // The interaction's own cookies are set as always: its pages (a failure, a re-sent answer) still know this browser.
    const cookies = ([] as string[]).concat(started.authorization.headers['set-cookie'] ?? []);
    assert.ok(cookies.some((cookie) => /^_interaction=/.test(cookie) && /path=\/interaction\/[^;]+/i.test(cookie)), cookies.join(' | '));
    assert.ok(cookies.some((cookie) => /^_interaction_resume=/.test(cookie) && /path=\/auth\/[^;]+/i.test(cookie)));

    const idp = await loginAtIdp(started.citizen, started.response, '100000001');
    const params = authorizationResponse(await postToAcs(started.citizen, idp.acs, idp.fields), sep);
    assert.equal(params.get('state'), started.state);
    assert.equal((await redeemCode(brana.url.origin, sep, params.get('code')!, started.codeVerifier)).status, 200);
    // One request to the means, recorded once, after the SeP's request.
    const events = (await recordsOfLogin(brana.broker, started.codeVerifier)).map((record) => record.event);
    assert.deepEqual(events.slice(0, 2), ['request_received', 'request_sent_upstream']);
    assert.equal(events.filter((event) => event === 'request_sent_upstream').length, 1);
    const uid = /\/interaction\/([^;/]+)/.exec(cookies.find((cookie) => /^_interaction=/.test(cookie))!)![1]!;
    assert.equal((await brana.broker.db('upstream_request').where({ interaction_uid: uid })).length, 1, 'one request to the means');
  });

  it('lets a citizen give up at the selection page: access_denied to the SeP', async () => {
    const sep = await brana.registerSep();
    const started = await startLogin(brana.url.origin, sep);
    const uid = /action="\/interaction\/([^/]+)\/abort"/.exec(started.response.text)![1]!;
    const params = authorizationResponse(await started.citizen.follow(await started.citizen.post(`/interaction/${uid}/abort`, {})), sep);
    assert.equal(params.get('error'), 'access_denied');
    assert.equal(params.get('state'), started.state);
  });

  it('sends a citizen whose means cannot reach the required LoA back with the other means offered', async () => {
    const sep = await brana.registerSep({ minimumLoa: 'high' });
    const started = await startLogin(brana.url.origin, sep);
    assert.match(started.response.text, /vysoká úroveň záruky/);
    const idp = await loginAtIdp(started.citizen, await chooseMeans(started.citizen, started.response, 'mojeid'), 'jnovak');
    const page = await postToAcs(started.citizen, idp.acs, idp.fields);
    assert.equal(page.status, 403);
    assert.match(page.text, /Služba vyžaduje alespoň vysokou úroveň záruky/);
    assert.match(page.text, /value="eobcanka"/);
    const errors = (await recordsOfLogin(brana.broker, started.codeVerifier)).filter((r) => r.event === 'error');
    assert.equal(errors[0]?.reason, 'status_NoAuthnContext');
    assert.equal(await codesIssuedTo(brana.broker, sep.clientId), 0);
  });

  it('answers SeP mistakes with OAuth errors: no PKCE, an unregistered redirect URI', async () => {
    const sep = await brana.registerSep();
    const started = await startLogin(brana.url.origin, sep, { extra: { code_challenge_method: 'plain' } });
    const params = authorizationResponse(started.response, sep);
    assert.equal(params.get('error'), 'invalid_request');

    const wrongRedirect = await startLogin(brana.url.origin, { ...sep, redirectUri: `${sep.redirectUri}/other` });
    assert.equal(wrongRedirect.response.status, 400);
    assert.equal(wrongRedirect.response.headers.location, undefined);
  });

  it('refuses a code the second time and the token endpoint without the PKCE verifier', async () => {
    const sep = await brana.registerSep();
    const started = await startLogin(brana.url.origin, sep, { scope: 'openid' });
    const idp = await loginAtIdp(started.citizen, await chooseMeans(started.citizen, started.response, 'eobcanka'), '100000001');
    const params = authorizationResponse(await postToAcs(started.citizen, idp.acs, idp.fields), sep);
    const code = params.get('code')!;
    const wrongVerifier = await redeemCode(brana.url.origin, sep, code, 'x'.repeat(43));
    assert.equal(wrongVerifier.status, 400);
    assert.equal(wrongVerifier.body.error, 'invalid_grant');
    assert.equal(wrongVerifier.body.access_token, undefined);

    const first = await redeemCode(brana.url.origin, sep, code, started.codeVerifier);
    assert.equal(first.status, 200);
    const again = await redeemCode(brana.url.origin, sep, code, started.codeVerifier);
    assert.equal(again.status, 400);
    assert.equal(again.body.error, 'invalid_grant');
    assert.equal(again.body.access_token, undefined);
    // Reuse of a code revokes what it gave.
    assert.equal((await userinfo(brana.url.origin, first.body.access_token as string)).status, 401);
  });
});
