import assert from 'node:assert/strict';
import { DOMParser, type Element } from '@xmldom/xmldom';
import type { StoredAuditRecord } from '../../src/audit/assertion-log.ts';
import { recordsOfLogin } from './audit.ts';
import { JAN_NOVAK } from './saml-forge.ts';
import { authorizationResponse, decideConsent, decodeJwt, postToAcs, redeemCode, startLogin, userinfo, type Sep, type Tokens } from './login-driver.ts';
import type { TestBroker } from './test-broker.ts';

/** Jan Novák as a real IdP releases him: eIDAS attribute names, as in Brána's embedded register. */
export const JAN_NOVAK_ATTRIBUTES: Record<string, string[]> = Object.fromEntries(JAN_NOVAK.map(({ name, values }) => [name, values]));

/** What the IdP's software does with the browser Brána sent it: its answer, as a form to post to Brána. */
export type IdpStep = (location: string) => Promise<{ acs: string; fields: Record<string, string> }>;

export interface InteropLogin {
  /** What the IdP sent. */
  shape: AnswerShape;
  /** The assertion log records of this login. */
  records: StoredAuditRecord[];
  /** The refusal reason, when Brána refused the IdP's answer. */
  refusal?: string;
  idToken?: Record<string, unknown>;
  userinfo?: Record<string, unknown>;
}

/**
 * A whole login through a real IdP: the SeP's authorization request with idp_hint, Brána's redirect
 * to the IdP, whatever the IdP does there (`atIdp`), its answer posted to Brána's ACS, consent, code,
 * token, userinfo. A refused answer ends the login and says why (from the assertion log).
 */
export async function loginThroughIdp(brana: TestBroker, sep: Sep, means: string, idpOrigin: string, atIdp: IdpStep): Promise<InteropLogin> {
  const started = await startLogin(brana.url.origin, sep, { scope: 'openid profile', idpHint: means });
  assert.equal(started.response.status, 303, `expected a redirect to the IdP, got ${started.response.status}: ${started.response.text.slice(0, 300)}`);
  const location = String(started.response.headers.location);
  assert.ok(location.startsWith(`${idpOrigin}/`), `Brána should send the browser to the IdP, not to ${location}`);
  const answer = await atIdp(location);
  assert.equal(new URL(answer.acs).href, new URL(`/saml/${means}/acs`, brana.url).href, 'the IdP answers at the means’ ACS');
  const shape = shapeOf(answer.fields.SAMLResponse ?? assert.fail('the IdP answered without a SAMLResponse'));
  let page = await postToAcs(started.citizen, answer.acs, answer.fields);
  if (page.status === 200 && /name="decision"/.test(page.text)) page = await decideConsent(started.citizen, page, 'agree');
  const records = () => recordsOfLogin(brana.broker, started.codeVerifier);
  if (!(page.status === 303 && String(page.headers.location).startsWith(sep.redirectUri))) {
    const all = await records();
    return { shape, records: all, refusal: all.find((record) => record.event === 'error')?.reason ?? `no refusal logged (page ${page.status})` };
  }
  const params = authorizationResponse(page, sep);
  assert.equal(params.get('state'), started.state);
  const token = await redeemCode(brana.url.origin, sep, params.get('code')!, started.codeVerifier);
  assert.equal(token.status, 200, token.text);
  const tokens = token.body as Tokens;
  const info = await userinfo(brana.url.origin, tokens.access_token);
  assert.equal(info.status, 200, info.text);
  return { shape, records: await records(), idToken: decodeJwt(tokens.id_token), userinfo: info.body as Record<string, unknown> };
}

/**
 * What every successful interop login must show: Jan Novák's claims released to the SeP, the LoA
 * the means' map gives the IdP's context, and the assertion log from the IdP's answer to the token.
 */
export function assertJanNovakLoggedIn(login: InteropLogin, means: string, loa: 'low' | 'substantial' | 'high'): void {
  assert.equal(login.refusal, undefined, `Brána refused the IdP's answer: ${login.refusal} ${JSON.stringify(login.records.find((record) => record.event === 'error')?.detail)}`);
  const { idToken, userinfo: info, records } = login;
  assert.equal(idToken!.acr, `http://eidas.europa.eu/LoA/${loa}`);
  assert.deepEqual(idToken!.amr, [means]);
  assert.equal(info!.sub, idToken!.sub);
  assert.equal(info!.given_name, 'Jan');
  assert.equal(info!.family_name, 'Novák');
  assert.equal(info!.birthdate, '1980-04-12');
  const events = records.map((record) => record.event);
  for (const event of ['response_received', 'identity_resolved', 'token_issued'] as const) assert.ok(events.includes(event), `no ${event} in ${events.join(', ')}`);
  assert.ok(!events.includes('error'), `an error was logged: ${events.join(', ')}`);
  const received = records.find((record) => record.event === 'response_received')!;
  assert.equal(received.means, means);
  assert.equal(received.loa, loa);
  assert.ok(received.detail.assertionId, 'the assertion id is logged');
  const issued = records.find((record) => record.event === 'token_issued')!;
  assert.deepEqual(issued.detail.attributes, ['CurrentFamilyName', 'CurrentGivenName', 'DateOfBirth', 'PersonIdentifier']);
}

/** What an IdP's answer looks like from outside: which signatures and encryption it carries. */
export interface AnswerShape {
  responseSigned: boolean;
  /** Whether the (plaintext) Assertion carries its own signature; null when it is encrypted. */
  assertionSigned: boolean | null;
  /** The data encryption of the EncryptedAssertion; null when the Assertion is in plaintext. */
  dataEncryption: string | null;
  keyTransport: string | null;
}

const SAMLP = 'urn:oasis:names:tc:SAML:2.0:protocol';
const SAML = 'urn:oasis:names:tc:SAML:2.0:assertion';
const DSIG = 'http://www.w3.org/2000/09/xmldsig#';
const XENC = 'http://www.w3.org/2001/04/xmlenc#';

/** Reads the shape of a SAMLResponse form field, so that a test knows the IdP sent what its configuration says. */
export function shapeOf(samlResponse: string): AnswerShape {
  const root = new DOMParser().parseFromString(Buffer.from(samlResponse, 'base64').toString('utf8'), 'text/xml').documentElement!;
  assert.equal(root.namespaceURI, SAMLP);
  const children = (parent: Element, ns: string, name: string) =>
    Array.from(parent.childNodes).filter((node): node is Element => node.nodeType === 1 && (node as Element).namespaceURI === ns && (node as Element).localName === name);
  const assertion = children(root, SAML, 'Assertion')[0];
  const encryptedData = children(root, SAML, 'EncryptedAssertion').flatMap((encrypted) => children(encrypted, XENC, 'EncryptedData'))[0];
  const encryptedKey = encryptedData ? root.getElementsByTagNameNS(XENC, 'EncryptedKey')[0] : undefined;
  return {
    responseSigned: children(root, DSIG, 'Signature').length > 0,
    assertionSigned: assertion ? children(assertion, DSIG, 'Signature').length > 0 : null,
    dataEncryption: encryptedData ? (children(encryptedData, XENC, 'EncryptionMethod')[0]?.getAttribute('Algorithm') ?? null) : null,
    keyTransport: encryptedKey ? (children(encryptedKey, XENC, 'EncryptionMethod')[0]?.getAttribute('Algorithm') ?? null) : null,
  };
}
