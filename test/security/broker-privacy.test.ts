import assert from 'node:assert/strict';
import { ATTRIBUTES, type AttributeId } from '../../src/domain/attributes.ts';
import { expectAccepted, startAttackBed, type AttackBed } from '../support/attack-bed.ts';
import { ATTRIBUTE_NAMES, base64, JAN_NOVAK, MARIE_SVOBODOVA, personAttributes, text, type Person } from '../support/independent-idp.ts';
import { authorizationResponse, chooseMeans, Citizen, completeLogin, decideConsent, decodeJwt, loginAtIdp, postToAcs, redeemCode, startLogin, userinfo, type Sep } from '../support/login-driver.ts';
import { codeFor } from '../support/oidc-attacker.ts';
import { startUpstreamLogin } from '../support/upstream-login.ts';

/**
 * What only a broker can get wrong: releasing more than a SeP may have, letting one SeP's login,
 * consent or grant serve another, linkable pseudonyms, and linking people by a mutable attribute.
 */

/** Every claim name that carries an attribute other than these (and the always-released pseudonym). */
function claimsOutside(allowed: readonly AttributeId[]): string[] {
  return ATTRIBUTES.filter((a) => a.id !== 'PersonIdentifier' && !allowed.includes(a.id as AttributeId)).flatMap((a) => [...a.claims]);
}

function assertOnly(claims: Record<string, unknown>, allowed: readonly AttributeId[], where: string): void {
  for (const claim of claimsOutside(allowed)) assert.equal(claims[claim], undefined, `${where} released ${claim}`);
}

describe('broker privacy: release, SSO, pseudonyms, linking', () => {
  let bed: AttackBed;
  let origin: string;
  before(async () => {
    bed = await startAttackBed();
    origin = bed.brana.url.origin;
  });
  after(async () => bed.close());

  describe('attribute over-release', () => {
    const ASK_EVERYTHING = {
      scope: 'openid profile email address phone',
      claims: {
        id_token: { eMail: { essential: true }, phonenumber: null, birthdate: null, idnumber: null },
        userinfo: { DateOfBirth: { essential: true }, PlaceOfBirth: null, idnumber: null, idtype: null, age: null, isAgeOver: { value: 18 }, tradresaid: null },
      },
    };

    it('releases in the ID token and at userinfo only what the SeP may have, whatever it asks for', async () => {
      const allowed: AttributeId[] = ['CurrentGivenName', 'CurrentFamilyName'];
      const sep = await bed.brana.registerSep({ allowedAttributes: allowed });
      const started = await startLogin(origin, sep, ASK_EVERYTHING);
      const idp = await loginAtIdp(started.citizen, await chooseMeans(started.citizen, started.response, 'eobcanka'), '100000001');
      const consent = await postToAcs(started.citizen, idp.acs, idp.fields);
      // The consent page names only what the SeP may have.
      assert.match(consent.text, /Jméno/);
      assert.match(consent.text, /Příjmení/);
      for (const label of ['Datum narození', 'E-mailová adresa', 'Telefonní číslo', 'Číslo dokladu totožnosti', 'Adresa pobytu', 'Věk']) assert.doesNotMatch(consent.text, new RegExp(label));
      const params = authorizationResponse(await decideConsent(started.citizen, consent, 'agree'), sep);
      const token = await redeemCode(origin, sep, params.get('code')!, started.codeVerifier);
      const idToken = decodeJwt(String(token.body.id_token));
      const info = (await userinfo(origin, String(token.body.access_token))).body as Record<string, unknown>;
      assertOnly(idToken, allowed, 'the ID token');
      assertOnly(info, allowed, 'userinfo');
      assert.equal(info.given_name, 'Jan');
      assert.equal(info.CurrentFamilyName, 'Novák');
      assert.match(String(info.PersonIdentifier), /^CZ\/CZ\//);
    });

    it('asks again when a SeP asks for a set other than the permanent consent, and releases nothing when refused', async () => {
      const allowed: AttributeId[] = ['CurrentGivenName', 'CurrentFamilyName', 'DateOfBirth'];
      const sep = await bed.brana.registerSep({ allowedAttributes: allowed });
      // A permanent consent to given and family name only.
      const first = await completeLogin(origin, sep, { means: 'eobcanka', login: '100000001', scope: 'openid', claims: { userinfo: { given_name: null, family_name: null } }, permanent: true });
      assert.equal(first.userinfo.given_name, 'Jan');
      // The same set again: no question, the same release.
      const again = await codeFor(origin, sep, { scope: 'openid', claims: { userinfo: { given_name: null, family_name: null } }, citizen: first.citizen });
      const againToken = await redeemCode(origin, sep, again.code, again.codeVerifier);
      const againInfo = (await userinfo(origin, String(againToken.body.access_token))).body as Record<string, unknown>;
      assert.equal(againInfo.family_name, 'Novák');
      assert.equal(againInfo.birthdate, undefined);
      // A different set: asked again; refused, nothing is released.
      const started = await startLogin(origin, sep, { scope: 'openid', claims: { userinfo: { given_name: null, birthdate: null } } }, first.citizen);
      const consent = await started.citizen.follow(started.response);
      assert.match(consent.text, /name="decision"/, 'the citizen is asked again');
      const refused = authorizationResponse(await decideConsent(started.citizen, consent, 'refuse'), sep);
      assert.equal(refused.get('error'), 'access_denied');
      assert.equal(refused.get('code'), null);
    });
  });

  describe('single sign-on between SePs', () => {
    it('gives a second SeP its own consent, its own pseudonym and only its own attributes', async () => {
      const a = await bed.brana.registerSep({ group: 'skupina-a', allowedAttributes: ['CurrentGivenName', 'CurrentFamilyName', 'DateOfBirth'] });
      const b = await bed.brana.registerSep({ group: 'skupina-b', allowedAttributes: ['CurrentGivenName'], organisation: { id: '00064581', name: 'Hlavní město Praha' } });
      const atA = await completeLogin(origin, a, { means: 'eobcanka', login: '100000001', scope: 'openid profile' });
      assert.equal(atA.userinfo.birthdate, '1980-04-12');

      // The same browser goes to B: no new authentication, but B's own consent page.
      const started = await startLogin(origin, b, { scope: 'openid profile' }, atA.citizen);
      const consent = await started.citizen.follow(started.response);
      assert.match(consent.text, /name="decision"/, 'B asks for consent itself');
      assert.match(consent.text, /Hlavní město Praha/);
      assert.doesNotMatch(consent.text, /Datum narození/);
      const params = authorizationResponse(await decideConsent(started.citizen, consent, 'agree'), b);
      const token = await redeemCode(origin, b, params.get('code')!, started.codeVerifier);
      const idToken = decodeJwt(String(token.body.id_token));
      const info = (await userinfo(origin, String(token.body.access_token))).body as Record<string, unknown>;
      assertOnly(info, ['CurrentGivenName'], 'B\'s userinfo');
      assertOnly(idToken, ['CurrentGivenName'], 'B\'s ID token');
      assert.notEqual(idToken.sub, atA.idToken.sub);
      assert.ok(!JSON.stringify({ idToken, info }).includes(String(atA.idToken.sub)), 'nothing of A\'s pseudonym reaches B');
      if (idToken.sid !== undefined || atA.idToken.sid !== undefined) assert.notEqual(idToken.sid, atA.idToken.sid, 'a shared sid would link the pseudonyms');
      // A's access token says nothing more after B's login.
      const stillA = (await userinfo(origin, atA.tokens.access_token)).body as Record<string, unknown>;
      assert.equal(stillA.sub, atA.idToken.sub);
    });

    it('does not let a session reach a SeP that needs a higher LoA or other means: the citizen logs in again', async () => {
      const low = await bed.brana.registerSep({ minimumLoa: 'substantial' });
      const high = await bed.brana.registerSep({ minimumLoa: 'high', allowedMeans: ['eobcanka'] });
      // Jan's mojeID account reaches substantial.
      const session = await completeLogin(origin, low, { means: 'mojeid', login: 'jnovak', scope: 'openid' });
      assert.equal(session.idToken.acr, 'http://eidas.europa.eu/LoA/substantial');
      const started = await startLogin(origin, high, { scope: 'openid' }, session.citizen);
      // Straight to eObčanka (the only means allowed): a new authentication, no code from the session.
      assert.equal(started.response.status, 303);
      assert.match(String(started.response.headers.location), /\/dev-idp\/eobcanka\/sso\?/);
      const none = await session.citizen.follow(await session.citizen.get(`/auth?${new URLSearchParams({ client_id: high.clientId, redirect_uri: high.redirectUri, response_type: 'code', scope: 'openid', prompt: 'none', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' })}`));
      assert.equal(authorizationResponse(none, high).get('error'), 'login_required');
    });
  });

  describe('pseudonyms', () => {
    it('are equal within a SeP group, unlinkable across groups, and never Brána\'s own person id', async () => {
      const seps: Record<string, Sep> = {
        g1a: await bed.brana.registerSep({ group: 'obec-letohrad' }),
        g1b: await bed.brana.registerSep({ group: 'obec-letohrad' }),
        g2: await bed.brana.registerSep({ group: 'obec-blansko' }),
      };
      const subs: Record<string, Record<string, unknown>> = {};
      for (const [citizen, login] of [['jan', '100000001'], ['marie', '100000002']] as const) {
        for (const [name, sep] of Object.entries(seps)) {
          const done = await completeLogin(origin, sep, { means: 'eobcanka', login, scope: 'openid' });
          subs[`${citizen}/${name}`] = { ...done.idToken, ...done.userinfo };
        }
      }
      assert.equal(subs['jan/g1a']!.sub, subs['jan/g1b']!.sub);
      assert.notEqual(subs['jan/g1a']!.sub, subs['jan/g2']!.sub);
      assert.notEqual(subs['jan/g1a']!.sub, subs['marie/g1a']!.sub);
      assert.equal(subs['jan/g2']!.PersonIdentifier, `CZ/CZ/${String(subs['jan/g2']!.sub)}`);
      const group2 = JSON.stringify([subs['jan/g2'], subs['marie/g2']]);
      for (const key of ['jan/g1a', 'marie/g1a']) assert.ok(!group2.includes(String(subs[key]!.sub)), 'a group-1 pseudonym appears in group 2');
      const personIds = ((await bed.brana.broker.db('person').select('id')) as Array<{ id: string }>).map((row) => row.id);
      const everything = JSON.stringify(subs);
      for (const id of personIds) assert.ok(!everything.includes(id), 'Brána\'s internal person id reached a SeP');
    });
  });

  describe('account linking', () => {
    async function subjectOf(sep: Sep, person: Person, extra: { eMail?: string; nameId?: string }): Promise<string> {
      const login = await startUpstreamLogin(origin, sep, 'eobcanka', { scope: 'openid' }, new Citizen(origin));
      const idp = bed.idp.eobcanka;
      const attributes = [...personAttributes(person), ...(extra.eMail ? [{ name: ATTRIBUTE_NAMES.eMail, values: [text(extra.eMail)] }] : [])];
      const answer = await idp.answer(login, { assertion: { attributes, ...(extra.nameId ? { nameId: text(extra.nameId) } : {}) } });
      const next = await expectAccepted(login, base64(answer));
      const done = next.status === 200 ? await decideConsent(login.citizen, next, 'agree') : next;
      const params = authorizationResponse(done, sep);
      const token = await redeemCode(origin, sep, params.get('code')!, login.codeVerifier);
      return String(decodeJwt(String(token.body.id_token)).sub);
    }

    it('never links two people by a shared e-mail or NameID, and keeps one person whose e-mail changed', async () => {
      const sep = await bed.brana.registerSep();
      const jan = await subjectOf(sep, JAN_NOVAK, { eMail: 'jan.novak@example.cz', nameId: 'persistent-shared-1' });
      const marieWithJansMail = await subjectOf(sep, MARIE_SVOBODOVA, { eMail: 'jan.novak@example.cz', nameId: 'persistent-shared-1' });
      const janWithNewMail = await subjectOf(sep, JAN_NOVAK, { eMail: 'jan@novy-email.cz', nameId: 'persistent-other-2' });
      assert.notEqual(marieWithJansMail, jan, 'a shared e-mail or NameID linked Marie to Jan');
      assert.equal(janWithNewMail, jan, 'a changed e-mail made Jan someone else');
    });
  });
});
