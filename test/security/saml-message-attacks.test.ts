import assert from 'node:assert/strict';
import { codesIssuedTo, recordsOfLogin } from '../support/audit.ts';
import { expectAccepted, expectRefused, postResponse, startAttackBed, type AttackBed } from '../support/attack-bed.ts';
import { assertionXml, ATTRIBUTE_NAMES, base64, JAN_NOVAK, LOA, MARIE_SVOBODOVA, responseXml, signatureTemplate, text, type AssertionFields, type IndependentIdp, type ResponseFields } from '../support/independent-idp.ts';
import { authorizationResponse, decideConsent } from '../support/login-driver.ts';
import { startUpstreamLogin, type UpstreamLogin } from '../support/upstream-login.ts';
import { after as afterElement } from '../support/xml-surgery.ts';

/**
 * What a SAML answer says, rather than how it is signed: every message here is signed correctly by
 * the means' real key (with xmlsec1) unless the case says otherwise, so the refusal is Brána's own
 * check of the content — parsing, times, audience, request binding, replay, status, LoA.
 */

const minutes = (n: number) => n * 60_000;
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** A generous bound on answering one hostile message: a property, not a benchmark. */
const QUICKLY_MS = 5_000;

describe('SAML message attacks (messages made with xmlsec1)', () => {
  let bed: AttackBed;
  before(async () => {
    bed = await startAttackBed();
  });
  after(async () => bed.close());

  async function login(means: 'eobcanka' | 'nia-id' = 'eobcanka', sep?: Record<string, unknown>): Promise<{ l: UpstreamLogin; idp: IndependentIdp }> {
    const registered = await bed.brana.registerSep(sep);
    return { l: await startUpstreamLogin(bed.brana.url.origin, registered, means), idp: bed.idp[means] };
  }

  /** A correctly signed, unencrypted answer (so that its text can be shown and changed) with these fields. */
  async function signedAnswer(idp: IndependentIdp, l: UpstreamLogin, assertion: Partial<AssertionFields> = {}, response: Partial<ResponseFields> = {}): Promise<string> {
    return idp.answer(l, { encrypt: false, assertion, response });
  }

  describe('parsing', () => {
    const doctypes: Array<[string, (xml: string) => string]> = [
      ['a bare DOCTYPE', (xml) => `<!DOCTYPE samlp:Response>${xml}`],
      ['a lower-case doctype', (xml) => `<!doctype samlp:Response>${xml}`],
      ['a DOCTYPE after the XML declaration', (xml) => `<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE samlp:Response PUBLIC "-//x//y" "http://attacker.example/x.dtd">${xml}`],
      ['XXE: an external entity in the NameID', (xml) => `<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>${xml.replace(/(<saml:NameID[^>]*>)[^<]*/, '$1&xxe;')}`],
      ['XXE: a parameter entity', (xml) => `<!DOCTYPE r [<!ENTITY % p SYSTEM "http://attacker.example/p.dtd"> %p;]>${xml}`],
      [
        'billion laughs',
        (xml) =>
          `<!DOCTYPE r [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;"><!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;"><!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;"><!ENTITY i "&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;">]>${xml.replace(/(<saml:NameID[^>]*>)[^<]*/, '$1&i;')}`,
      ],
    ];
    for (const [name, change] of doctypes) {
      it(`refuses ${name}, quickly`, async () => {
        const { l, idp } = await login();
        const started = Date.now();
        await expectRefused(bed, l, base64(change(await signedAnswer(idp, l))), ['doctype_refused']);
        assert.ok(Date.now() - started < QUICKLY_MS);
      });
    }

    it('refuses a DOCTYPE hidden by encoding the message as UTF-16', async () => {
      const { l, idp } = await login();
      const xml = `<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>${await signedAnswer(idp, l)}`;
      const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(xml, 'utf16le')]).toString('base64');
      await expectRefused(bed, l, utf16, ['doctype_refused', 'xml_malformed']);
    });

    it('refuses a DOCTYPE and billion laughs inside the encrypted assertion (signed by the IdP)', async () => {
      for (const doctype of ['<!DOCTYPE saml:Assertion>', '<!DOCTYPE r [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;">]>']) {
        const { l, idp } = await login();
        const assertion = await idp.signedAssertion(idp.assertionFields(l));
        const started = Date.now();
        const xml = await idp.signedResponse(idp.responseFields(l, await idp.encrypted(doctype + assertion)));
        await expectRefused(bed, l, base64(xml), ['doctype_refused', 'decryption_failed']);
        assert.ok(Date.now() - started < QUICKLY_MS);
      }
    });

    it('refuses a second root element and a processing instruction', async () => {
      const { l, idp } = await login();
      const xml = await signedAnswer(idp, l);
      await expectRefused(bed, l, base64(xml + xml), ['xml_malformed']);
      const second = await login();
      await expectRefused(bed, second.l, base64(`<?xml-stylesheet href="http://attacker.example/x.xsl"?>${await signedAnswer(second.idp, second.l)}`), ['xml_malformed']);
    });

    it('refuses two signed assertions in one signed response', async () => {
      const { l, idp } = await login();
      const first = await idp.signedAssertion(idp.assertionFields(l));
      const second = await idp.signedAssertion(idp.assertionFields(l, MARIE_SVOBODOVA));
      await expectRefused(bed, l, base64(await idp.signedResponse(idp.responseFields(l, first + second))), ['assertion_count']);
    });
  });

  describe('comments and CDATA inside signed values (the signature still verifies)', () => {
    // The IdP signed "Nováková" — a person the register does not know. Reading only the text up to
    // the comment would give "Novák", and log the attacker in as Jan Novák.
    const NOVAKOVA = { ...JAN_NOVAK, familyName: 'Nováková' };
    const splits: Array<[string, string]> = [
      ['a comment', '>Novák<!---->ová<'],
      ['a CDATA section', '>Novák<![CDATA[ová]]><'],
      ['a comment and an empty CDATA', '>Novák<!-- Jan Novák --><![CDATA[]]>ová<'],
    ];
    for (const [what, split] of splits) {
      it(`reads the whole signed family name across ${what}, so the attacker is not Jan Novák`, async () => {
        const { l, idp } = await login();
        const signed = await idp.answer(l, { encrypt: false, person: NOVAKOVA });
        const split_ = signed.replace('>Nováková<', split);
        assert.notEqual(split_, signed);
        assert.ok(await bed.workspace.verifies(split_, idp.idp.keys.certFile), 'the split message still verifies');
        await expectRefused(bed, l, base64(split_), ['resolution_not_found']);
      });
    }

    it('refuses a processing instruction inside a signed value (xml-crypto canonicalises its data as text)', async () => {
      // xml-crypto 6 renders a processing instruction's data as plain text when it canonicalises, so
      // "Novák<?x ová?>" still verifies as the signed "Nováková" — while a DOM reader would see "Novák".
      for (const where of ['>Novák<?x ová?><', '>Novák<?x-ová?><']) {
        const { l, idp } = await login();
        const signed = await idp.answer(l, { encrypt: false, person: NOVAKOVA });
        await expectRefused(bed, l, base64(signed.replace('>Nováková<', where)), ['xml_malformed']);
      }
    });

    it('accepts a comment or CDATA inside a genuine value, NameID and LoA as the values they split (control)', async () => {
      const { l, idp } = await login();
      const signed = await idp.answer(l, { encrypt: false, assertion: { nameId: 'subject-1234' } });
      const split = signed
        .replace('>Novák<', '>No<!---->vák<')
        .replace('>Praha<', '><![CDATA[Pra]]>ha<')
        .replace('>subject-1234<', '>subject<!---->-1234<')
        .replace(`>${LOA.high}<`, `>${LOA.high.slice(0, 20)}<!---->${LOA.high.slice(20)}<`);
      assert.ok(await bed.workspace.verifies(split, idp.idp.keys.certFile));
      await expectAccepted(l, base64(split));
    });
  });

  describe('who it is from and for', () => {
    const cases: Array<{ name: string; reasons: string[]; change(idp: IndependentIdp, l: UpstreamLogin): { assertion?: Partial<AssertionFields>; response?: Partial<ResponseFields> } }> = [
      { name: 'a wrong Issuer of the response', reasons: ['issuer_mismatch'], change: () => ({ response: { issuer: 'https://idp.attacker.example/metadata' } }) },
      { name: 'a wrong Issuer of the assertion', reasons: ['issuer_mismatch'], change: () => ({ assertion: { issuer: 'https://idp.attacker.example/metadata' } }) },
      { name: 'another means\' Issuer on both', reasons: ['issuer_mismatch'], change: () => ({ assertion: { issuer: text(bed.idp.mojeid.idp.entityId) }, response: { issuer: text(bed.idp.mojeid.idp.entityId) } }) },
      { name: 'a Destination of another means', reasons: ['destination_mismatch'], change: () => ({ response: { destination: text(bed.idp.mojeid.sp.acsUrl) } }) },
      { name: 'a Destination that differs by a trailing slash', reasons: ['destination_mismatch'], change: (idp) => ({ response: { destination: text(idp.sp.acsUrl.replace('/acs', '/acs/')) } }) },
      { name: 'a Recipient of another means', reasons: ['recipient_mismatch'], change: () => ({ assertion: { recipient: text(bed.idp.mojeid.sp.acsUrl) } }) },
      { name: 'an Audience of another means', reasons: ['audience_mismatch'], change: () => ({ assertion: { audience: text(bed.idp.mojeid.sp.entityId) } }) },
      { name: 'an Audience of another service provider', reasons: ['audience_mismatch'], change: () => ({ assertion: { audience: 'https://sp.attacker.example/metadata' } }) },
    ];
    for (const testCase of cases) {
      it(`refuses ${testCase.name}`, async () => {
        const { l, idp } = await login();
        const change = testCase.change(idp, l);
        await expectRefused(bed, l, base64(await signedAnswer(idp, l, change.assertion, change.response)), testCase.reasons);
      });
    }
  });

  describe('when', () => {
    const now = () => Date.now();
    const cases: Array<{ name: string; reasons: string[]; fields(): Partial<AssertionFields>; response?(): Partial<ResponseFields> }> = [
      { name: 'an expired assertion', reasons: ['expired', 'subject_confirmation_invalid'], fields: () => ({ notOnOrAfter: iso(now() - minutes(2)), confirmationNotOnOrAfter: iso(now() - minutes(2)) }) },
      { name: 'an expired bearer confirmation', reasons: ['expired', 'subject_confirmation_invalid'], fields: () => ({ confirmationNotOnOrAfter: iso(now() - minutes(2)) }) },
      { name: 'an assertion not yet valid', reasons: ['not_yet_valid'], fields: () => ({ notBefore: iso(now() + minutes(10)) }) },
      { name: 'an assertion issued in the future', reasons: ['not_yet_valid'], fields: () => ({ issueInstant: iso(now() + minutes(10)) }) },
      { name: 'a stale IssueInstant (an old assertion with fresh validity)', reasons: ['stale', 'expired', 'subject_confirmation_invalid'], fields: () => ({ issueInstant: iso(now() - minutes(30)), authnInstant: iso(now() - minutes(30)) }) },
      { name: 'a time without a zone', reasons: ['assertion_malformed', 'invalid_response', 'expired', 'not_yet_valid'], fields: () => ({ notOnOrAfter: iso(now() + minutes(5)).replace('Z', '') }) },
      { name: 'a bearer confirmation with NotBefore', reasons: ['subject_confirmation_invalid'], fields: () => ({ confirmationExtra: ` NotBefore="${iso(now() - 1000)}"` }) },
    ];
    for (const testCase of cases) {
      it(`refuses ${testCase.name}`, async () => {
        const { l, idp } = await login();
        await expectRefused(bed, l, base64(await signedAnswer(idp, l, testCase.fields(), testCase.response?.())), testCase.reasons);
      });
    }
  });

  describe('which request it answers', () => {
    it('refuses an unsolicited response (no InResponseTo) and an answer to a request never made', async () => {
      const { l, idp } = await login();
      const unsolicited = (await signedAnswer(idp, l)).replace(/ InResponseTo="[^"]*"/, '');
      // The signature no longer matters: the guard refuses before looking at it.
      await expectRefused(bed, l, base64(unsolicited), ['unsolicited_response']);
      const second = await login();
      const invented = { ...second.l, requestId: `_${'0'.repeat(40)}` };
      await expectRefused(bed, second.l, base64(await signedAnswer(second.idp, invented)), ['in_response_to_invalid']);
    });

    it('refuses an assertion answering another request than its response', async () => {
      const { l, idp } = await login();
      const other = await login();
      await expectRefused(bed, l, base64(await signedAnswer(idp, l, { inResponseTo: other.l.requestId })), ['in_response_to_invalid']);
    });

    it('does not let an attacker\'s genuine answer finish the victim\'s login (login CSRF)', async () => {
      const victim = await login();
      const attacker = await login();
      const attackersAnswer = await attacker.idp.answer(attacker.l, { person: MARIE_SVOBODOVA });
      // The attacker's page makes the victim's browser post the attacker's answer.
      const page = await postResponse({ ...attacker.l, citizen: victim.l.citizen }, base64(attackersAnswer));
      assert.equal(page.status, 400);
      assert.match(page.text, /Přihlášení trvalo příliš dlouho nebo bylo otevřeno v jiném prohlížeči/);
      assert.equal(await codesIssuedTo(bed.brana.broker, victim.l.sep.clientId), 0);
      assert.equal(await codesIssuedTo(bed.brana.broker, attacker.l.sep.clientId), 0);
      const victimEvents = (await recordsOfLogin(bed.brana.broker, victim.l.codeVerifier)).map((r) => r.event);
      assert.ok(!victimEvents.includes('identity_resolved'), 'nothing happened to the victim\'s login');
    });

    it('refuses the same response twice, and its assertion in a new response to a new request', async () => {
      const { l, idp } = await login('nia-id');
      const assertion = await idp.signedAssertion(idp.assertionFields(l));
      const genuine = responseXml(idp.responseFields(l, assertion));
      const consent = await expectAccepted(l, base64(genuine));
      await expectRefused(bed, l, base64(genuine), ['replayed_response']);
      // The same signed assertion in a response the attacker writes for their own new request.
      const next = await startUpstreamLogin(bed.brana.url.origin, l.sep, 'nia-id');
      await expectRefused(bed, next, base64(responseXml(idp.responseFields(next, assertion))), ['in_response_to_invalid']);
      // The first login is unharmed by the attempts.
      const params = authorizationResponse(await decideConsent(l.citizen, consent, 'agree'), l.sep);
      assert.ok(params.get('code'));
    });

    it('refuses an assertion id the IdP already used, even for a fresh request', async () => {
      const first = await login();
      const reused = { id: `_reused${Date.now()}` };
      await expectAccepted(first.l, base64(await first.idp.answer(first.l, { assertion: reused })));
      const second = await login();
      await expectRefused(bed, second.l, base64(await second.idp.answer(second.l, { assertion: reused })), ['replayed_assertion']);
    });
  });

  describe('status, level of assurance and confirmation', () => {
    it('refuses a failure status that carries an assertion', async () => {
      const { l, idp } = await login();
      const xml = await signedAnswer(idp, l, {}, { statusCode: 'urn:oasis:names:tc:SAML:2.0:status:Responder', secondStatusCode: 'urn:oasis:names:tc:SAML:2.0:status:AuthnFailed' });
      await expectRefused(bed, l, base64(xml), ['assertion_with_failure_status']);
    });

    it('refuses a signed LoA below the one requested, whatever an attribute claims', async () => {
      const { l, idp } = await login('eobcanka', { minimumLoa: 'high' });
      const attributes = [...idp.assertionFields(l).attributes, { name: 'http://eidas.europa.eu/LoA', values: [LOA.high] }, { name: 'AuthnContextClassRef', values: [LOA.high] }];
      const xml = await signedAnswer(idp, l, { classRef: LOA.substantial, attributes });
      await expectRefused(bed, l, base64(xml), ['loa_below_minimum']);
    });

    it('refuses an unknown LoA, and a LoA placed outside the signed assertion', async () => {
      const { l, idp } = await login('eobcanka', { minimumLoa: 'high' });
      await expectRefused(bed, l, base64(await signedAnswer(idp, l, { classRef: 'http://eidas.europa.eu/LoA/veryhigh' })), ['loa_unmapped']);
      // The response of a means that accepts assertion-only signatures is the attacker's to write;
      // a LoA there means nothing (and this SeP needs more than the means can give at all).
      const second = await login('nia-id', { minimumLoa: 'substantial' });
      const assertion = await second.idp.signedAssertion(second.idp.assertionFields(second.l, JAN_NOVAK, LOA.low));
      const xml = afterElement(responseXml(second.idp.responseFields(second.l, assertion)), 'saml:Issuer', `<samlp:Extensions><saml:AuthnContextClassRef>${LOA.high}</saml:AuthnContextClassRef></samlp:Extensions>`);
      await expectRefused(bed, second.l, base64(xml), ['loa_below_minimum']);
    });

    it('refuses NIA\'s AuthnFailed inside a Success response', async () => {
      const { l, idp } = await login();
      const attributes = [...idp.assertionFields(l).attributes, { name: ATTRIBUTE_NAMES.statusCode, values: ['urn:oasis:names:tc:SAML:2.0:status:AuthnFailed'] }];
      await expectRefused(bed, l, base64(await signedAnswer(idp, l, { attributes })), ['authn_failed_in_attribute']);
    });

    it('refuses holder-of-key and sender-vouches confirmations, and a second confirmation', async () => {
      for (const method of ['urn:oasis:names:tc:SAML:2.0:cm:holder-of-key', 'urn:oasis:names:tc:SAML:2.0:cm:sender-vouches']) {
        const { l, idp } = await login();
        await expectRefused(bed, l, base64(await signedAnswer(idp, l, { confirmationMethod: method })), ['subject_confirmation_invalid']);
      }
      const { l, idp } = await login();
      const fields = idp.assertionFields(l);
      const second = `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData InResponseTo="${l.requestId}" NotOnOrAfter="${fields.confirmationNotOnOrAfter}" Recipient="https://sp.attacker.example/acs"/></saml:SubjectConfirmation>`;
      const template = assertionXml(fields, signatureTemplate(fields.id)).replace('</saml:SubjectConfirmation>', `</saml:SubjectConfirmation>${second}`);
      const xml = await idp.signedResponse(idp.responseFields(l, await bed.workspace.sign(template, idp.idp.keys)));
      await expectRefused(bed, l, base64(xml), ['subject_confirmation_invalid']);
    });
  });

  describe('size and compression', () => {
    it('refuses an oversized SAMLResponse and an oversized body, quickly, as refusals', async () => {
      for (const size of [270 * 1024, 5 * 1024 * 1024]) {
        const { l } = await login();
        const started = Date.now();
        await expectRefused(bed, l, Buffer.alloc(size * 0.75, 'A').toString('base64'), ['response_too_large']);
        assert.ok(Date.now() - started < QUICKLY_MS);
      }
    });

    it('refuses a compressed request body (a deflate bomb) without inflating it', async () => {
      const { gzipSync, deflateSync } = await import('node:zlib');
      for (const [encoding, compress] of [['gzip', gzipSync], ['deflate', deflateSync]] as const) {
        const { l } = await login();
        const bomb = compress(Buffer.concat([Buffer.from('SAMLResponse='), Buffer.alloc(64 * 1024 * 1024, 'A')]), { level: 9 });
        assert.ok(bomb.length < 200 * 1024);
        const started = Date.now();
        const before = (await bed.brana.broker.log.query({ event: 'error' })).length;
        const page = await l.citizen.agent.post(new URL(l.acs).pathname).set('Content-Type', 'application/x-www-form-urlencoded').set('Content-Encoding', encoding).send(bomb).redirects(0);
        assert.ok(page.status >= 400 && page.status < 500, `answered ${page.status}`);
        assert.match(page.text, /Přihlášení se nezdařilo/);
        assert.ok(Date.now() - started < QUICKLY_MS);
        const errors = await bed.brana.broker.log.query({ event: 'error' });
        assert.equal(errors.length, before + 1);
        assert.ok(['request_malformed', 'response_too_large'].includes(String(errors.at(-1)!.reason)));
        assert.equal(await codesIssuedTo(bed.brana.broker, l.sep.clientId), 0);
      }
    });

    it('refuses a SAMLResponse that is a raw-deflated bomb (the redirect binding is not accepted at the ACS)', async () => {
      const { deflateRawSync } = await import('node:zlib');
      const { l } = await login();
      const bomb = deflateRawSync(Buffer.alloc(32 * 1024 * 1024, '<'), { level: 9 }).toString('base64');
      const started = Date.now();
      await expectRefused(bed, l, bomb, ['xml_malformed', 'response_too_large']);
      assert.ok(Date.now() - started < QUICKLY_MS);
    });
  });
});
