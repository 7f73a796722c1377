import assert from 'node:assert/strict';
import { SAML, ValidateInResponseTo } from '@node-saml/node-saml';
import { generateKeyPairSync, sign, createPrivateKey } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import type { Response } from 'supertest';
import { hiddenFields } from '../support/html.ts';
import { signatureTemplate } from '../support/independent-idp.ts';
import { Citizen, chooseMeans, decideConsent, loginAtIdp, postToAcs } from '../support/login-driver.ts';
import { samlAnswerOf, samlLogin, samlSep, samlSepKeys, validatedBySep, type SamlSep } from '../support/saml-sep.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';
import { Writable } from 'node:stream';
import winston from 'winston';
import { logger } from '../../src/log/logger.ts';
import { XmlSecWorkspace, samlId } from '../support/xmlsec.ts';

const EIDAS = 'http://eidas.europa.eu/attributes/naturalperson/';
const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
const RSA_SHA1 = 'http://www.w3.org/2000/09/xmldsig#rsa-sha1';

interface RequestFields {
  id: string;
  issuer: string;
  issueInstant: string;
  destination: string | null;
  acsUrl: string | null;
  acsIndex: number | null;
  forceAuthn: boolean;
  isPassive: boolean;
  loa: string[] | null;
  comparison: string;
  nameIdFormat: string;
  attributes: Array<[string, boolean]>;
  prolog: string;
}

/** An AuthnRequest written by hand, as a SeP (or someone pretending to be one) would send it. */
function authnRequest(f: RequestFields, signature = ''): string {
  const attributes = f.attributes
    .map(([name, required]) => `<eidas:RequestedAttribute Name="${name.startsWith('http') ? name : EIDAS + name}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri" isRequired="${required}"/>`)
    .join('');
  return (
    f.prolog +
    `<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${f.id}" Version="2.0" IssueInstant="${f.issueInstant}"` +
    (f.destination ? ` Destination="${f.destination}"` : '') +
    (f.acsUrl ? ` AssertionConsumerServiceURL="${f.acsUrl}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"` : '') +
    (f.acsIndex !== null ? ` AssertionConsumerServiceIndex="${f.acsIndex}"` : '') +
    (f.forceAuthn ? ' ForceAuthn="true"' : '') +
    (f.isPassive ? ' IsPassive="true"' : '') +
    `><saml:Issuer>${f.issuer}</saml:Issuer>${signature}` +
    `<samlp:Extensions><eidas:SPType xmlns:eidas="http://eidas.europa.eu/saml-extensions">public</eidas:SPType><eidas:RequestedAttributes xmlns:eidas="http://eidas.europa.eu/saml-extensions">${attributes}</eidas:RequestedAttributes></samlp:Extensions>` +
    `<samlp:NameIDPolicy Format="${f.nameIdFormat}" AllowCreate="true"/>` +
    (f.loa ? `<samlp:RequestedAuthnContext Comparison="${f.comparison}">${f.loa.map((uri) => `<saml:AuthnContextClassRef>${uri}</saml:AuthnContextClassRef>`).join('')}</samlp:RequestedAuthnContext>` : '') +
    `</samlp:AuthnRequest>`
  );
}

/** The Redirect binding's query: deflated, base64, and signed (SAML Bindings §3.4.4.1) unless `key` is null. */
function redirectQuery(xml: string | Buffer, key: string | null, options: { sigAlg?: string; relayState?: string; deflated?: Buffer } = {}): string {
  const deflated = options.deflated ?? deflateRawSync(Buffer.from(xml));
  let query = `SAMLRequest=${encodeURIComponent(deflated.toString('base64'))}`;
  if (options.relayState !== undefined) query += `&RelayState=${encodeURIComponent(options.relayState)}`;
  if (key === null) return query;
  const sigAlg = options.sigAlg ?? RSA_SHA256;
  query += `&SigAlg=${encodeURIComponent(sigAlg)}`;
  const signature = sign(sigAlg === RSA_SHA1 ? 'sha1' : 'sha256', Buffer.from(query), createPrivateKey(key));
  return `${query}&Signature=${encodeURIComponent(signature.toString('base64'))}`;
}

describe('attacks on the SAML IdP from the SeP side', () => {
  let brana: TestBroker;
  let sep: SamlSep;
  let workspace: XmlSecWorkspace;
  const attackerKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();

  before(async () => {
    brana = await startTestBroker();
    sep = await samlSep(brana, { registration: { allowedAttributes: ['CurrentGivenName', 'CurrentFamilyName'] } });
    workspace = new XmlSecWorkspace();
  });
  after(async () => {
    workspace.remove();
    await brana.close();
  });

  const fields = (change: Partial<RequestFields> = {}): RequestFields => ({
    id: samlId(),
    issuer: sep.entityId,
    issueInstant: new Date().toISOString(),
    destination: `${brana.url.origin}/saml-idp/sso`,
    acsUrl: sep.acsUrl,
    acsIndex: null,
    forceAuthn: false,
    isPassive: false,
    loa: ['http://eidas.europa.eu/LoA/substantial'],
    comparison: 'minimum',
    nameIdFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
    attributes: [['CurrentGivenName', true]],
    prolog: '',
    ...change,
  });
  const sepKey = () => samlSepKeys().signing.privateKeyPem;

  async function sendRedirect(query: string): Promise<{ response: Response; citizen: Citizen }> {
    const citizen = new Citizen(brana.url.origin);
    return { response: await citizen.get(`/saml-idp/sso?${query}`), citizen };
  }

  async function sendPost(form: Record<string, string>): Promise<Response> {
    return new Citizen(brana.url.origin).post('/saml-idp/sso', form);
  }

  /** What happened to this SeP since `since`: its log records, and whether any assertion was issued. */
  async function recordsSince(since: number) {
    const records = (await brana.broker.log.query({})).filter((record) => record.seq > since);
    return records;
  }
  const lastSeq = async () => ((await brana.broker.log.query({})).at(-1)?.seq ?? 0);

  /** The SeP's node-saml, without the record of its own request IDs: these requests were written by hand. */
  function readAsSep(samlResponse: string) {
    return new SAML({ ...sep.saml.options, validateInResponseTo: ValidateInResponseTo.never }).validatePostResponseAsync({ SAMLResponse: samlResponse });
  }

  /**
   * The refusal: a signed error Response (no assertion) posted to the SeP's registered ACS, or the
   * citizen's error page; exactly one `error` record with the reason; no login begun, nothing issued.
   */
  async function expectRefused(response: Response, since: number, reason: string, answer: { status: string } | 'page'): Promise<void> {
    assert.doesNotMatch(response.text, /Assertion/);
    if (answer === 'page') {
      assert.equal(response.status, 400);
      assert.throws(() => hiddenFields(response.text).SAMLResponse!.length);
      assert.match(response.text, /Služba, ze které jste přišli, poslala žádost o přihlášení, kterou Brána nemůže přijmout/);
      assert.match(response.text, /class="reference">[A-Z0-9]{8}</, 'a help-desk reference');
    } else {
      const posted = samlAnswerOf(response);
      assert.equal(posted.acs, sep.acsUrl, 'only ever to the ACS in the metadata');
      assert.doesNotMatch(posted.xml, /Assertion/);
      assert.match(posted.xml, new RegExp(`<samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:[A-Za-z]+"><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:${answer.status}"/>`));
      // The SeP's own library verifies Brána's signature and reads the failure (the request was
      // written by hand here, so node-saml has no record of its ID to match InResponseTo against).
      const read = readAsSep(posted.SAMLResponse);
      // node-saml reads NoPassive as "nobody logged in", without an error.
      if (answer.status === 'NoPassive') assert.equal((await read).profile, null);
      else await assert.rejects(read, new RegExp(answer.status));
    }
    const records = await recordsSince(since);
    assert.deepEqual(records.map((record) => [record.event, record.reason]), [['error', reason]]);
    assert.equal(records[0]!.detail.protocol, 'saml');
  }

  it('refuses an unsigned request (Redirect): RequestDenied to the registered ACS, nothing begun', async () => {
    const since = await lastSeq();
    const { response } = await sendRedirect(redirectQuery(authnRequest(fields()), null));
    await expectRefused(response, since, 'request_unsigned', { status: 'RequestDenied' });
  });

  it('refuses a request signed with a key not in the SeP metadata (Redirect)', async () => {
    const since = await lastSeq();
    const { response } = await sendRedirect(redirectQuery(authnRequest(fields()), attackerKey));
    await expectRefused(response, since, 'signature_invalid', { status: 'RequestDenied' });
  });

  it('refuses a query signature with RSA-SHA1', async () => {
    const since = await lastSeq();
    const { response } = await sendRedirect(redirectQuery(authnRequest(fields()), sepKey(), { sigAlg: RSA_SHA1 }));
    await expectRefused(response, since, 'signature_algorithm_refused', { status: 'RequestDenied' });
  });

  it('refuses a request changed after it was signed (RelayState swapped)', async () => {
    const since = await lastSeq();
    const query = redirectQuery(authnRequest(fields()), sepKey(), { relayState: 'mine' }).replace('RelayState=mine', 'RelayState=theirs');
    const { response } = await sendRedirect(query);
    await expectRefused(response, since, 'signature_invalid', { status: 'RequestDenied' });
  });

  it('refuses an unknown Issuer with a page, sending nothing anywhere', async () => {
    const since = await lastSeq();
    const { response } = await sendRedirect(redirectQuery(authnRequest(fields({ issuer: 'https://evil.example/sp' })), attackerKey));
    await expectRefused(response, since, 'unknown_issuer', 'page');
  });

  it('refuses an ACS URL or index not in the metadata with a page: never an open redirect', async () => {
    for (const change of [{ acsUrl: 'https://evil.example/acs' }, { acsUrl: null, acsIndex: 7 }]) {
      const since = await lastSeq();
      const { response } = await sendRedirect(redirectQuery(authnRequest(fields(change)), sepKey()));
      await expectRefused(response, since, 'acs_not_registered', 'page');
      assert.doesNotMatch(response.text, /evil\.example/);
    }
  });

  it('refuses a replayed request ID: the first begins a login, the second is RequestDenied', async () => {
    const request = authnRequest(fields());
    const first = await sendRedirect(redirectQuery(request, sepKey()));
    assert.equal(first.response.status, 303);
    assert.match(first.response.headers.location as string, /^\/interaction\/saml-/);
    const since = await lastSeq();
    const { response } = await sendRedirect(redirectQuery(request, sepKey()));
    await expectRefused(response, since, 'request_replayed', { status: 'RequestDenied' });
  });

  it('refuses a DOCTYPE: XXE and entity expansion, before anything is read', async () => {
    const xxe = '<!DOCTYPE samlp:AuthnRequest [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>';
    const laughs = '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>';
    for (const prolog of [xxe, laughs]) {
      const since = await lastSeq();
      const { response } = await sendRedirect(redirectQuery(authnRequest(fields({ prolog, issuer: prolog === xxe ? '&xxe;' : `${sep.entityId}&lol3;` })), sepKey()));
      await expectRefused(response, since, 'doctype_refused', 'page');
    }
  });

  it('refuses a deflate bomb on the Redirect binding without inflating it', async () => {
    // 8 MB of spaces deflate to about 8 kB: small enough for a URL, far beyond the inflation bound.
    const bomb = deflateRawSync(Buffer.alloc(8 * 1024 * 1024, 0x20));
    const since = await lastSeq();
    const started = process.memoryUsage().rss;
    const { response } = await sendRedirect(redirectQuery('', sepKey(), { deflated: bomb }));
    await expectRefused(response, since, 'request_too_large', 'page');
    assert.ok(process.memoryUsage().rss - started < 40 * 1024 * 1024, 'the bomb was not inflated');
  });

  it('refuses an oversized request on either binding', async () => {
    const huge = authnRequest(fields({ attributes: Array.from({ length: 3000 }, (_, i) => [`urn:x:${i}`, false] as [string, boolean]) }));
    let since = await lastSeq();
    const post = await sendPost({ SAMLRequest: Buffer.from(huge).toString('base64') });
    await expectRefused(post, since, 'request_too_large', 'page');
    // A URL that long never reaches Brána: Node's HTTP parser refuses it (431), and nothing begins.
    since = await lastSeq();
    const { response } = await sendRedirect(`SAMLRequest=${'A'.repeat(200_000)}`);
    assert.equal(response.status, 431);
    assert.deepEqual(await recordsSince(since), []);
  });

  it('refuses a POSTed request signed by another key, and one changed after signing (xmlsec1 signs)', async () => {
    const attackerFiles = await workspace.newKeyPair('attacker');
    const id = samlId();
    const signed = await workspace.sign(authnRequest(fields({ id }), signatureTemplate(id)), attackerFiles);
    let since = await lastSeq();
    await expectRefused(await sendPost({ SAMLRequest: Buffer.from(signed).toString('base64') }), since, 'signature_invalid', { status: 'RequestDenied' });

    const sepFiles = { keyFile: workspace.file('sep.key.pem', samlSepKeys().signing.privateKeyPem), certFile: workspace.file('sep.crt.pem', samlSepKeys().signing.certificatePem) };
    const other = samlId();
    const good = await workspace.sign(authnRequest(fields({ id: other }), signatureTemplate(other)), sepFiles);
    const tampered = good.replace('ForceAuthn', 'X').replace(`AssertionConsumerServiceURL="${sep.acsUrl}"`, `AssertionConsumerServiceURL="${sep.acsUrl}" ForceAuthn="true"`).replace('>public<', '>private<');
    since = await lastSeq();
    await expectRefused(await sendPost({ SAMLRequest: Buffer.from(tampered).toString('base64') }), since, 'signature_invalid', { status: 'RequestDenied' });
    // The genuine one is accepted: the refusal was the signature's.
    const accepted = await sendPost({ SAMLRequest: Buffer.from(good).toString('base64') });
    assert.equal(accepted.status, 303);
  });

  it('refuses a required attribute beyond the registration, and never releases an optional one', async () => {
    let since = await lastSeq();
    const { response } = await sendRedirect(redirectQuery(authnRequest(fields({ attributes: [['CurrentGivenName', true], ['DateOfBirth', true]] })), sepKey()));
    await expectRefused(response, since, 'attribute_not_allowed', { status: 'RequestDenied' });

    since = await lastSeq();
    const citizen = new Citizen(brana.url.origin);
    let page = await citizen.follow((await sendRedirectAs(citizen, redirectQuery(authnRequest(fields({ attributes: [['CurrentGivenName', true], ['DateOfBirth', false], ['PlaceOfBirth', false]] })), sepKey()))));
    page = await chooseMeans(citizen, page, 'eobcanka');
    const idp = await loginAtIdp(citizen, page, '100000001');
    let next = await postToAcs(citizen, idp.acs, idp.fields);
    assert.match(next.text, /Jméno/);
    assert.doesNotMatch(next.text, /Datum narození|Místo narození/);
    next = await decideConsent(citizen, next, 'agree');
    const { profile } = await readAsSep(samlAnswerOf(next).SAMLResponse);
    assert.ok(profile);
    assert.equal(profile[`${EIDAS}CurrentGivenName`], 'Jan');
    assert.equal(profile[`${EIDAS}DateOfBirth`], undefined);
    assert.equal(profile[`${EIDAS}PlaceOfBirth`], undefined);
    const consent = (await recordsSince(since)).find((record) => record.event === 'consent_given')!;
    assert.deepEqual(consent.detail.refusedBySepRegistration, ['DateOfBirth', 'PlaceOfBirth']);
  });

  async function sendRedirectAs(citizen: Citizen, query: string): Promise<Response> {
    return citizen.get(`/saml-idp/sso?${query}`);
  }

  it('never goes below the registered LoA when a SeP asks for less, and refuses a maximum comparison', async () => {
    const citizen = new Citizen(brana.url.origin);
    const selection = await citizen.follow(await sendRedirectAs(citizen, redirectQuery(authnRequest(fields({ loa: ['http://eidas.europa.eu/LoA/low'] })), sepKey())));
    assert.equal(selection.status, 200);
    assert.match(selection.text, /value="eobcanka"/);
    assert.doesNotMatch(selection.text, /value="isds"/, 'a low means is not offered to a SeP registered for substantial');

    const since = await lastSeq();
    const { response } = await sendRedirect(redirectQuery(authnRequest(fields({ comparison: 'maximum', loa: ['http://eidas.europa.eu/LoA/low'] })), sepKey()));
    await expectRefused(response, since, 'authn_context_comparison_refused', { status: 'NoAuthnContext' });
  });

  it('answers IsPassive without a Brána session with NoPassive at the journey\'s first step, without a page for the citizen; nothing issued', async () => {
    const since = await lastSeq();
    const { response, citizen } = await sendRedirect(redirectQuery(authnRequest(fields({ isPassive: true })), sepKey()));
    assert.equal(response.status, 303, 'a journey begins: the session cookie arrives only on the redirect');
    const answered = await citizen.follow(response);
    const posted = samlAnswerOf(answered);
    assert.equal(posted.acs, sep.acsUrl);
    assert.doesNotMatch(posted.xml, /Assertion/);
    assert.match(posted.xml, /<samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Responder"><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:NoPassive"\/>/);
    assert.equal((await readAsSep(posted.SAMLResponse)).profile, null);
    const records = await recordsSince(since);
    assert.deepEqual(records.map((record) => [record.event, record.reason ?? null]), [['request_received', null], ['error', 'urn:oasis:names:tc:SAML:2.0:status:NoPassive']]);
  });

  it('answers an unknown NameID format with InvalidNameIDPolicy, a stale or misaddressed request with RequestDenied', async () => {
    const cases: Array<[Partial<RequestFields>, string, string]> = [
      [{ nameIdFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress' }, 'nameid_format_refused', 'InvalidNameIDPolicy'],
      [{ issueInstant: new Date(Date.now() - 3_600_000).toISOString() }, 'request_expired', 'RequestDenied'],
      [{ destination: 'https://other-idp.example/sso' }, 'destination_mismatch', 'RequestDenied'],
    ];
    for (const [change, reason, status] of cases) {
      const since = await lastSeq();
      const { response } = await sendRedirect(redirectQuery(authnRequest(fields(change)), sepKey()));
      await expectRefused(response, since, reason, { status });
    }
  });

  it('lets the citizen refuse consent: the SeP gets a signed RequestDenied and no assertion', async () => {
    const { answer } = await samlLogin(brana, sep, { means: 'eobcanka', login: '100000001', consent: 'refuse' });
    assert.doesNotMatch(answer.xml, /Assertion/);
    await assert.rejects(validatedBySep(sep, answer), /RequestDenied/);
  });

  it('binds the journey to the browser that began it: another browser at its URL gets nothing', async () => {
    const first = await sendRedirect(redirectQuery(authnRequest(fields()), sepKey()));
    const location = first.response.headers.location as string;
    const stranger = new Citizen(brana.url.origin);
    const page = await stranger.get(location);
    assert.equal(page.status, 400);
    assert.doesNotMatch(page.text, /name="means"/);
  });

  it('carries a hostile RelayState back only as escaped text, never as markup', async () => {
    const hostile = '"><script>alert(1)</script><input name="x" value="';
    const { response } = await sendRedirect(redirectQuery(authnRequest(fields()), null, { relayState: hostile }));
    const posted = samlAnswerOf(response);
    assert.equal(posted.RelayState, hostile, 'returned as it came');
    assert.doesNotMatch(response.text, /<script>alert/);
    assert.doesNotMatch(response.text, /<input name="x"/);
  });

  it('writes no SAML message, pseudonym or attribute value to the operator log, in a login or a refusal', async () => {
    const lines: string[] = [];
    const capture = new winston.transports.Stream({ stream: new Writable({ write: (chunk, _encoding, done) => { lines.push(String(chunk)); done(); } }), level: 'debug' });
    const level = logger.level;
    const console = logger.transports.find((transport) => transport instanceof winston.transports.Console);
    logger.add(capture);
    logger.level = 'debug';
    if (console) console.silent = true;
    try {
      const { answer } = await samlLogin(brana, sep, { means: 'eobcanka', login: '100000001' });
      const { profile } = await readAsSep(answer.SAMLResponse);
      const refusedQuery = redirectQuery(authnRequest(fields()), attackerKey);
      await sendRedirect(refusedQuery);
      const written = lines.join('\n');
      assert.ok(lines.some((line) => /SAML request refused/.test(line)), 'the refusal is in the operator log');
      for (const secret of [answer.SAMLResponse.slice(40, 100), new URLSearchParams(refusedQuery).get('SAMLRequest')!.slice(10, 60), profile!.nameID, 'Novák']) {
        assert.ok(!written.includes(secret), `the operator log holds ${secret.slice(0, 20)}…`);
      }
    } finally {
      logger.remove(capture);
      logger.level = level;
      if (console) console.silent = false;
    }
  });
});
