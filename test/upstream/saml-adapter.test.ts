import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateRawSync } from 'node:zlib';
import type { Element } from '@xmldom/xmldom';
import type { AttributeId } from '../../src/domain/attributes.ts';
import type { Loa } from '../../src/domain/loa.ts';
import { loadBrokerKeys } from '../../src/keys/key-store.ts';
import { readIdentityMeansFile, type SamlMeans } from '../../src/means/identity-means.ts';
import type { ExpectedRequest, UpstreamIdentity, UpstreamOutward } from '../../src/upstream/contract.ts';
import { MetadataSource } from '../../src/upstream/metadata/metadata-source.ts';
import type { IdpMetadata } from '../../src/upstream/saml/idp-metadata.ts';
import { SamlAdapter } from '../../src/upstream/saml/saml-adapter.ts';
import { verifiedContent } from '../../src/upstream/saml/signature-verification.ts';
import { parseSamlMetadata } from '../../src/upstream/saml/signed-metadata.ts';
import { statusReason } from '../../src/upstream/saml/status-codes.ts';
import { NS, childElements, parseStrictXml } from '../../src/upstream/saml/xml.ts';
import { idpMetadataXml } from '../support/external-idp.ts';
import { refusalOf } from '../support/upstream-refusal.ts';
import {
  ALGORITHMS,
  ATTRIBUTE_NAMES,
  assertionXml,
  base64,
  encryptionTemplate,
  IndependentIdp,
  LOA,
  JAN_NOVAK,
  MARIE_SVOBODOVA,
  NIA_ENCRYPTION,
  responseXml,
  serviceProviderFromMetadata,
  signatureTemplate,
  type AssertionFields,
  type EncryptionOptions,
  type ResponseFields,
  type SignatureOptions,
} from '../support/independent-idp.ts';
import { TO_MARIE, WRAPPING_ATTACKS, type SignedPieces } from '../support/signature-wrapping.ts';
import { after as afterElement, element, flipByte, idOf, replaceSpan, signatureOf, span, swap, withCipherValue, withoutSignature } from '../support/xml-surgery.ts';
import { BatchingXmlSecWorkspace, samlId, type KeyFiles, type XmlSecWorkspace } from '../support/xmlsec.ts';

/**
 * The SAML adapter on its own, after Dex's connector tests: a table of real answers — signed and
 * encrypted by xmlsec1, sharing no code with Brána — each handed straight to `SamlAdapter.correlate`
 * and `handleAnswer` with the request the server would have recorded and an injected clock. No HTTP,
 * no broker, no database. A row gives either the identity or exactly one refusal reason.
 *
 * Two means: eObčanka as shipped (LoA high, the response must be signed) and NIA ID configured to
 * accept a response whose assertion alone is signed (LoA substantial).
 */

const PROVIDERS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../providers');
const PUBLIC_URL = new URL('https://brana.test.example/');
/** The adapter's clock: a fixed instant long past, so that nothing may read the real one. */
const NOW = Date.parse('2025-01-15T09:30:00Z');
const minutes = (n: number) => n * 60_000;
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const STATUS = 'urn:oasis:names:tc:SAML:2.0:status:';

type MeansId = 'eobcanka' | 'nia-id';
const MEANS: readonly MeansId[] = ['eobcanka', 'nia-id'];
/** Whether each means' genuine answer carries a response signature. */
const RESPONSE_SIGNED: Record<MeansId, boolean> = { eobcanka: true, 'nia-id': false };

const JAN_ATTRIBUTES: Partial<Record<AttributeId, string[]>> = {
  CurrentGivenName: ['Jan'],
  CurrentFamilyName: ['Novák'],
  DateOfBirth: ['1980-04-12'],
  PlaceOfBirth: ['Praha'],
};

interface Bed {
  workspace: XmlSecWorkspace;
  idp: Record<MeansId, IndependentIdp>;
  adapter: Record<MeansId, SamlAdapter>;
  /** The id of the request each adapter started: what the server recorded. */
  requestId: Record<MeansId, string>;
  attacker: KeyFiles;
  /** A genuine answer per means, signed as that means sends it, for the surgery rows. */
  genuine: Record<MeansId, SignedPieces>;
  /** nia-id's IdP behind a means file with the defaults (no signature required of either element) and a LoA map. */
  interop: SamlAdapter;
}

const PASSWORD = 'urn:oasis:names:tc:SAML:2.0:ac:classes:Password';

type Outcome = { identity: { acr: Loa; assertionId: string; subject: string; attributes: Partial<Record<AttributeId, string[]>> } } | { reason: string; outward: UpstreamOutward };

interface Row {
  name: string;
  means: MeansId;
  /** The Response as the browser posts it (XML; base64-encoded by the runner). */
  answer(bed: Bed): Promise<string> | string;
  /** Changes to the request the server found for the answer. */
  expected?: Partial<ExpectedRequest>;
  outcome: Outcome;
}

const refused = (reason: string, outward: UpstreamOutward = 'invalid_response'): Outcome => ({ reason, outward });
const VALID_SUBJECT = 'subject-jan-novak';
const accepted = (acr: Loa, assertionId: string, attributes = JAN_ATTRIBUTES): Outcome => ({ identity: { acr, assertionId, subject: VALID_SUBJECT, attributes } });

// ---- answers as the IdP (or an attacker) writes them -------------------------------------------

const at = (bed: Bed, means: MeansId) => ({ requestId: bed.requestId[means], now: NOW });

/** The answer as this means sends it (unencrypted, so that its text can be changed), with these fields. */
function plain(bed: Bed, means: MeansId, assertion: Partial<AssertionFields> = {}, response: Partial<ResponseFields> = {}, loa: string = LOA.high): Promise<string> {
  return bed.idp[means].answer(at(bed, means), { encrypt: false, signResponse: RESPONSE_SIGNED[means], loa, assertion, response });
}

/** A genuine answer whose signatures use these options (RSA-SHA1, three transforms…). */
async function signedWith(bed: Bed, means: MeansId, options: Partial<SignatureOptions>): Promise<string> {
  const idp = bed.idp[means];
  const assertion = await idp.signedAssertion(idp.assertionFields(at(bed, means)), options);
  const fields = idp.responseFields(at(bed, means), assertion);
  return RESPONSE_SIGNED[means] ? idp.signedResponse(fields, options) : responseXml(fields);
}

/** The signed assertion encrypted to Brána inside a response signed by `responseSigner` (the IdP unless said). */
async function encryptedAnswer(bed: Bed, means: MeansId, options: { encryption?: EncryptionOptions; assertion?: string; responseSigner?: KeyFiles; signResponse?: boolean } = {}): Promise<string> {
  const idp = bed.idp[means];
  const assertion = options.assertion ?? (await idp.signedAssertion(idp.assertionFields(at(bed, means))));
  const fields = idp.responseFields(at(bed, means), await idp.encrypted(assertion, options.encryption));
  return options.signResponse === false ? responseXml(fields) : idp.signedResponse(fields, {}, options.responseSigner);
}

/** An EncryptedAssertion made with any template (weak algorithms, someone else's key). */
async function encryptedWith(bed: Bed, means: MeansId, template: string, recipientCertFile: string, sessionKey: 'aes-128' | 'aes-256'): Promise<string> {
  const idp = bed.idp[means];
  const data = await bed.workspace.encrypt(await idp.signedAssertion(idp.assertionFields(at(bed, means))), template, recipientCertFile, sessionKey);
  const encrypted = `<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">${data}</saml:EncryptedAssertion>`;
  return idp.signedResponse(idp.responseFields(at(bed, means), encrypted));
}

/** The response signed anew by the IdP's real key (what only an insider could do). */
function resigned(bed: Bed, means: MeansId, response: string): Promise<string> {
  const unsigned = withoutSignature(response);
  return bed.workspace.sign(afterElement(unsigned, 'saml:Issuer', signatureTemplate(idOf(unsigned))), bed.idp[means].idp.keys);
}

const CBC_PADDING_PROBE = flipByte((n) => n - 17);
const AES_GCM: EncryptionOptions = { ...NIA_ENCRYPTION, dataAlgorithm: ALGORITHMS.aes256Gcm };

/** A ciphertext change made after the IdP signed (an attacker), or before (an insider who signs it). */
async function tampered(bed: Bed, change: { encryption: EncryptionOptions; which: 0 | 1; bytes: (b: Buffer) => Buffer }, by: 'attacker' | 'idp'): Promise<string> {
  const changed = withCipherValue(await encryptedAnswer(bed, 'eobcanka', { encryption: change.encryption }), change.which, change.bytes);
  return by === 'idp' ? resigned(bed, 'eobcanka', changed) : changed;
}

/** A response answering with an error status (unsigned, as identity providers often send them). */
function statusAnswer(bed: Bed, means: MeansId, statusCode: string, secondStatusCode?: string): string {
  return responseXml({ ...bed.idp[means].responseFields(at(bed, means), ''), statusCode, ...(secondStatusCode ? { secondStatusCode } : {}) });
}

// ---- the table -------------------------------------------------------------------------------

const VALID: Row[] = [
  {
    name: 'the assertion signed, the response not (NIA ID), LoA high capped at the means\' substantial',
    means: 'nia-id',
    answer: (bed) => plain(bed, 'nia-id', { id: '_valid-assertion-signed-only', nameId: VALID_SUBJECT }),
    outcome: accepted('substantial', '_valid-assertion-signed-only'),
  },
  {
    name: 'the response and the assertion signed (eObčanka), LoA high',
    means: 'eobcanka',
    answer: (bed) => plain(bed, 'eobcanka', { id: '_valid-both-signed', nameId: VALID_SUBJECT }),
    outcome: accepted('high', '_valid-both-signed'),
  },
  {
    name: 'the response and the assertion signed, LoA low stays low',
    means: 'eobcanka',
    answer: (bed) => plain(bed, 'eobcanka', { id: '_valid-loa-low', nameId: VALID_SUBJECT }, {}, LOA.low),
    outcome: accepted('low', '_valid-loa-low'),
  },
  {
    name: 'a response signature the means does not require, present and valid',
    means: 'nia-id',
    answer: (bed) => bed.idp['nia-id'].answer(at(bed, 'nia-id'), { encrypt: false, assertion: { id: '_valid-optional-response-signature', nameId: VALID_SUBJECT } }),
    outcome: accepted('substantial', '_valid-optional-response-signature'),
  },
  {
    name: 'the signed assertion encrypted with AES-256-CBC (as NIA does) inside a signed response',
    means: 'eobcanka',
    answer: (bed) => bed.idp.eobcanka.answer(at(bed, 'eobcanka'), { assertion: { id: '_valid-aes256-cbc', nameId: VALID_SUBJECT } }),
    outcome: accepted('high', '_valid-aes256-cbc'),
  },
  {
    name: 'the signed assertion encrypted with AES-256-GCM inside a signed response',
    means: 'eobcanka',
    answer: async (bed) => {
      const idp = bed.idp.eobcanka;
      const assertion = await idp.signedAssertion({ ...idp.assertionFields(at(bed, 'eobcanka')), id: '_valid-aes256-gcm', nameId: VALID_SUBJECT });
      return encryptedAnswer(bed, 'eobcanka', { assertion, encryption: AES_GCM });
    },
    outcome: accepted('high', '_valid-aes256-gcm'),
  },
  {
    name: 'the signed assertion encrypted with AES-128-CBC inside a signed response, to a means that does not require it signed',
    means: 'nia-id',
    answer: async (bed) => {
      const idp = bed.idp['nia-id'];
      const assertion = await idp.signedAssertion({ ...idp.assertionFields(at(bed, 'nia-id')), id: '_valid-aes128-cbc', nameId: VALID_SUBJECT });
      return encryptedAnswer(bed, 'nia-id', { assertion, encryption: { ...NIA_ENCRYPTION, dataAlgorithm: ALGORITHMS.aes128Cbc } });
    },
    outcome: accepted('substantial', '_valid-aes128-cbc'),
  },
  {
    name: 'the signed LoA low, whatever the unsigned response around it claims',
    means: 'nia-id',
    answer: async (bed) =>
      afterElement(
        await plain(bed, 'nia-id', { id: '_valid-loa-outside', nameId: VALID_SUBJECT }, {}, LOA.low),
        'saml:Issuer',
        `<samlp:Extensions><saml:AuthnContextClassRef>${LOA.high}</saml:AuthnContextClassRef></samlp:Extensions>`,
      ),
    outcome: accepted('low', '_valid-loa-outside'),
  },
  ...(
    [
      ['a comment', '>Novák<!---->ová<'],
      ['a CDATA section', '>Novák<![CDATA[ová]]><'],
    ] as const
  ).map(([what, split], index): Row => ({
    // Reading only the text before the comment would make the signed "Nováková" into Jan Novák.
    name: `the whole signed family name read across ${what}`,
    means: 'nia-id',
    answer: async (bed) => {
      const signed = await bed.idp['nia-id'].answer(at(bed, 'nia-id'), { encrypt: false, signResponse: false, person: { ...JAN_NOVAK, familyName: 'Nováková' }, assertion: { id: `_valid-split-${index}`, nameId: VALID_SUBJECT } });
      return signed.replace('>Nováková<', split);
    },
    outcome: accepted('substantial', `_valid-split-${index}`, { ...JAN_ATTRIBUTES, CurrentFamilyName: ['Nováková'] }),
  })),
];

/** Signature attacks, tried on both means (with and without a response signature). */
function signatureRows(means: MeansId): Row[] {
  const g = (bed: Bed) => bed.genuine[means];
  const signedResponse = RESPONSE_SIGNED[means];
  const hmacSignature = { signatureMethod: ALGORITHMS.hmacSha256, certificateInKeyInfo: false };
  const rows: Row[] = [
    {
      name: 'every signature removed',
      means,
      answer: (bed) => {
        const unsigned = replaceSpan(g(bed).response, span(g(bed).response, 'saml:Assertion'), withoutSignature(g(bed).assertion));
        return signedResponse ? withoutSignature(unsigned) : unsigned;
      },
      outcome: refused('signature_invalid'),
    },
    {
      name: 'an empty ds:Signature in place of the first one',
      means,
      answer: (bed) => replaceSpan(g(bed).response, span(g(bed).response, 'ds:Signature'), '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"/>'),
      outcome: refused('signature_malformed'),
    },
    {
      name: 'an empty SignatureValue',
      means,
      answer: (bed) => g(bed).response.replace(/<ds:SignatureValue>[^<]*<\/ds:SignatureValue>/, '<ds:SignatureValue></ds:SignatureValue>'),
      outcome: refused('signature_invalid'),
    },
    {
      name: 'signed by an attacker\'s key, its certificate in KeyInfo',
      means,
      answer: async (bed) => {
        const idp = bed.idp[means];
        const assertion = await idp.signedAssertion(idp.assertionFields(at(bed, means)), {}, bed.attacker);
        const fields = idp.responseFields(at(bed, means), assertion);
        return signedResponse ? idp.signedResponse(fields, {}, bed.attacker) : responseXml(fields);
      },
      outcome: refused('signature_invalid'),
    },
    {
      name: 'signed by the other means\' real key under this means\' issuer (IdP mix-up)',
      means,
      answer: async (bed) => {
        const idp = bed.idp[means];
        const other = bed.idp[means === 'eobcanka' ? 'nia-id' : 'eobcanka'].idp.keys;
        const assertion = await idp.signedAssertion(idp.assertionFields(at(bed, means)), {}, other);
        const fields = idp.responseFields(at(bed, means), assertion);
        return signedResponse ? idp.signedResponse(fields, {}, other) : responseXml(fields);
      },
      outcome: refused('signature_invalid'),
    },
    {
      name: 'signed with HMAC keyed with the IdP\'s public certificate',
      means,
      answer: async (bed) => {
        const idp = bed.idp[means];
        const hmac = { hmacKeyFile: idp.idp.keys.certFile };
        const fields = idp.assertionFields(at(bed, means));
        const assertion = await bed.workspace.sign(assertionXml(fields, signatureTemplate(fields.id, hmacSignature)), hmac);
        const response = idp.responseFields(at(bed, means), assertion);
        return signedResponse ? bed.workspace.sign(responseXml(response, signatureTemplate(response.id, hmacSignature)), hmac) : responseXml(response);
      },
      outcome: refused('signature_algorithm_refused'),
    },
    {
      name: 'a signature with two SignedInfo elements',
      means,
      answer: (bed) => {
        const signedInfo = element(g(bed).response, 'ds:SignedInfo');
        return g(bed).response.replace(signedInfo, signedInfo + signedInfo.replace(/<ds:DigestValue>[^<]*</, '<ds:DigestValue>AAAA<'));
      },
      outcome: refused('signature_malformed'),
    },
    {
      name: 'Marie\'s assertion whose digest hides in a comment inside the genuine DigestValue',
      means,
      answer: async (bed) => {
        const evil = swap(withoutSignature(g(bed).assertion), TO_MARIE);
        const evilSigned = await bed.workspace.sign(evil.replace('</saml:Issuer>', `</saml:Issuer>${signatureTemplate(idOf(evil))}`), bed.attacker);
        const evilDigest = /<ds:DigestValue>([^<]+)</.exec(evilSigned)![1]!;
        const smuggled = signatureOf(g(bed).assertion).replace(/<ds:DigestValue>([^<]+)</, (_m, digest: string) => `<ds:DigestValue><!--${evilDigest}-->${digest}<`);
        return replaceSpan(g(bed).response, span(g(bed).response, 'saml:Assertion'), evil.replace('</saml:Issuer>', `</saml:Issuer>${smuggled}`));
      },
      outcome: refused('signature_invalid'),
    },
    { name: 'RSA-SHA1 signatures', means, answer: (bed) => signedWith(bed, means, { signatureMethod: ALGORITHMS.rsaSha1 }), outcome: refused('signature_algorithm_refused') },
    { name: 'SHA-1 digests', means, answer: (bed) => signedWith(bed, means, { digestMethod: ALGORITHMS.sha1 }), outcome: refused('signature_algorithm_refused') },
    {
      name: 'inclusive C14N canonicalization',
      means,
      answer: (bed) => signedWith(bed, means, { canonicalization: ALGORITHMS.c14n }),
      outcome: refused('signature_algorithm_refused'),
    },
    {
      name: 'three Transforms',
      means,
      answer: (bed) => signedWith(bed, means, { transforms: [ALGORITHMS.enveloped, ALGORITHMS.excC14n, ALGORITHMS.excC14n] }),
      outcome: refused('signature_malformed'),
    },
    // A reference to anything but the signature's own parent says nothing about that parent.
    { name: 'a signature over the whole document (Reference URI="")', means, answer: (bed) => signedWith(bed, means, { referenceUri: '' }), outcome: refused('signature_invalid') },
    {
      name: 'a second element with the signed assertion\'s ID',
      means,
      answer: (bed) => afterElement(g(bed).response, 'saml:Issuer', `<samlp:Extensions><x:Twin xmlns:x="urn:example:twin" ID="${idOf(g(bed).assertion)}"/></samlp:Extensions>`),
      outcome: refused('duplicate_id'),
    },
    // xml-crypto is told SAML's one ID attribute name; these twins under its other default names
    // (and under a prefix, which its XPath matched by local name) are still refused.
    ...(['Id', 'id'] as const).map((name) => ({
      name: `a second element with the signed assertion's ID as its ${name}`,
      means,
      answer: (bed: Bed) => afterElement(g(bed).response, 'saml:Issuer', `<samlp:Extensions><x:Twin xmlns:x="urn:example:twin" ${name}="${idOf(g(bed).assertion)}"/></samlp:Extensions>`),
      outcome: refused('duplicate_id'),
    })),
    {
      name: 'a second element with the signed assertion\'s ID in a prefixed ID attribute',
      means,
      answer: (bed) => afterElement(g(bed).response, 'saml:Issuer', `<samlp:Extensions><x:Twin xmlns:x="urn:example:twin" x:ID="${idOf(g(bed).assertion)}"/></samlp:Extensions>`),
      outcome: refused('signature_invalid'),
    },
  ];
  // Every wrapping variant puts a second assertion (or the signed one) where no assertion may be: the
  // guard counts assertions in the whole document before any signature is looked at.
  for (const attack of WRAPPING_ATTACKS) {
    rows.push({ name: attack.name, means, answer: (bed) => attack.build(g(bed), signedResponse), outcome: refused('assertion_count') });
  }
  return rows.map((row) => ({ ...row, name: `${means}: ${row.name}` }));
}

const MESSAGE: Row[] = [
  {
    name: 'a genuine answer without the response signature the means requires',
    means: 'eobcanka',
    answer: (bed) => withoutSignature(bed.genuine.eobcanka.response),
    outcome: refused('signature_invalid'),
  },
  { name: 'a LogoutResponse posted to the ACS', means: 'eobcanka', answer: (bed) => bed.genuine.eobcanka.response.replace(/samlp:Response/g, 'samlp:LogoutResponse'), outcome: refused('not_a_response') },
  { name: 'a response of SAML version 1.1', means: 'nia-id', answer: (bed) => bed.genuine['nia-id'].response.replace('Version="2.0"', 'Version="1.1"'), outcome: refused('response_malformed') },
  { name: 'a response without Status', means: 'nia-id', answer: (bed) => replaceSpan(bed.genuine['nia-id'].response, span(bed.genuine['nia-id'].response, 'samlp:Status'), ''), outcome: refused('status_missing') },
  {
    name: 'a response signature the means does not require, present but by an attacker\'s key',
    means: 'nia-id',
    answer: (bed) => {
      const idp = bed.idp['nia-id'];
      return idp.signedResponse(idp.responseFields(at(bed, 'nia-id'), bed.genuine['nia-id'].assertion), {}, bed.attacker);
    },
    outcome: refused('signature_invalid'),
  },
  {
    name: 'a response signature the means does not require, by the IdP, over a response changed afterwards',
    means: 'nia-id',
    answer: async (bed) => {
      const idp = bed.idp['nia-id'];
      const signed = await idp.signedResponse(idp.responseFields(at(bed, 'nia-id'), bed.genuine['nia-id'].assertion));
      return signed.replace(/(<samlp:Response[^>]*IssueInstant=")[^"]*"/, `$1${iso(NOW - 1000)}"`);
    },
    outcome: refused('signature_invalid'),
  },
  { name: 'a wrong Issuer of the response', means: 'eobcanka', answer: (bed) => plain(bed, 'eobcanka', {}, { issuer: 'https://idp.attacker.example/metadata' }), outcome: refused('issuer_mismatch') },
  { name: 'a wrong Issuer of the assertion', means: 'eobcanka', answer: (bed) => plain(bed, 'eobcanka', { issuer: 'https://idp.attacker.example/metadata' }), outcome: refused('issuer_mismatch') },
  {
    name: 'the other means\' Issuer on both',
    means: 'eobcanka',
    answer: (bed) => plain(bed, 'eobcanka', { issuer: bed.idp['nia-id'].idp.entityId }, { issuer: bed.idp['nia-id'].idp.entityId }),
    outcome: refused('issuer_mismatch'),
  },
  { name: 'a Destination of the other means', means: 'eobcanka', answer: (bed) => plain(bed, 'eobcanka', {}, { destination: bed.adapter['nia-id'].acsUrl }), outcome: refused('destination_mismatch') },
  {
    name: 'a Destination that differs by a trailing slash',
    means: 'eobcanka',
    answer: (bed) => plain(bed, 'eobcanka', {}, { destination: `${bed.adapter.eobcanka.acsUrl}/` }),
    outcome: refused('destination_mismatch'),
  },
  { name: 'a Recipient of the other means', means: 'eobcanka', answer: (bed) => plain(bed, 'eobcanka', { recipient: bed.adapter['nia-id'].acsUrl }), outcome: refused('recipient_mismatch') },
  { name: 'an Audience of the other means', means: 'eobcanka', answer: (bed) => plain(bed, 'eobcanka', { audience: bed.adapter['nia-id'].entityId }), outcome: refused('audience_mismatch') },
  { name: 'an Audience of another service provider', means: 'nia-id', answer: (bed) => plain(bed, 'nia-id', { audience: 'https://sp.attacker.example/metadata' }), outcome: refused('audience_mismatch') },
  {
    name: 'an expired assertion',
    means: 'eobcanka',
    answer: (bed) => plain(bed, 'eobcanka', { notOnOrAfter: iso(NOW - minutes(2)), confirmationNotOnOrAfter: iso(NOW - minutes(2)) }),
    outcome: refused('expired'),
  },
  { name: 'an expired bearer confirmation', means: 'eobcanka', answer: (bed) => plain(bed, 'eobcanka', { confirmationNotOnOrAfter: iso(NOW - minutes(2)) }), outcome: refused('expired') },
  { name: 'expired Conditions', means: 'nia-id', answer: (bed) => plain(bed, 'nia-id', { notOnOrAfter: iso(NOW - minutes(2)) }), outcome: refused('expired') },
  { name: 'an assertion not yet valid (NotBefore)', means: 'eobcanka', answer: (bed) => plain(bed, 'eobcanka', { notBefore: iso(NOW + minutes(10)) }), outcome: refused('not_yet_valid') },
  { name: 'an assertion issued in the future', means: 'eobcanka', answer: (bed) => plain(bed, 'eobcanka', { issueInstant: iso(NOW + minutes(10)) }), outcome: refused('not_yet_valid') },
  {
    name: 'a stale IssueInstant (an old assertion with fresh validity)',
    means: 'eobcanka',
    answer: (bed) => plain(bed, 'eobcanka', { issueInstant: iso(NOW - minutes(30)), authnInstant: iso(NOW - minutes(30)) }),
    outcome: refused('stale'),
  },
  { name: 'a time without a zone', means: 'eobcanka', answer: (bed) => plain(bed, 'eobcanka', { notOnOrAfter: iso(NOW + minutes(5)).replace('Z', '') }), outcome: refused('assertion_malformed') },
  {
    name: 'a bearer confirmation with NotBefore',
    means: 'eobcanka',
    answer: (bed) => plain(bed, 'eobcanka', { confirmationExtra: ` NotBefore="${iso(NOW - 1000)}"` }),
    outcome: refused('subject_confirmation_invalid'),
  },
  {
    name: 'a holder-of-key confirmation',
    means: 'eobcanka',
    answer: (bed) => plain(bed, 'eobcanka', { confirmationMethod: 'urn:oasis:names:tc:SAML:2.0:cm:holder-of-key' }),
    outcome: refused('subject_confirmation_invalid'),
  },
  {
    name: 'a bearer confirmation answering another request than its response',
    means: 'eobcanka',
    answer: (bed) => plain(bed, 'eobcanka', { inResponseTo: samlId() }),
    outcome: refused('in_response_to_invalid'),
  },
  {
    name: 'an answer to another request than the one the server found',
    means: 'eobcanka',
    answer: (bed) => plain(bed, 'eobcanka'),
    expected: { requestId: `_${'0'.repeat(40)}` },
    outcome: refused('in_response_to_invalid'),
  },
  { name: 'an answer to a request of another means', means: 'eobcanka', answer: (bed) => plain(bed, 'eobcanka'), expected: { means: 'nia-id' }, outcome: refused('in_response_to_invalid') },
  {
    name: 'an unsolicited response (no InResponseTo)',
    means: 'eobcanka',
    answer: async (bed) => (await plain(bed, 'eobcanka')).replace(/(<samlp:Response[^>]*?) InResponseTo="[^"]*"/, '$1'),
    outcome: refused('unsolicited_response'),
  },
  { name: 'no SAMLResponse at all', means: 'eobcanka', answer: () => '', outcome: refused('missing_response') },
  { name: 'a DOCTYPE', means: 'eobcanka', answer: async (bed) => `<!DOCTYPE samlp:Response>${await plain(bed, 'eobcanka')}`, outcome: refused('doctype_refused') },
  {
    name: 'XXE: an external entity in the NameID',
    means: 'eobcanka',
    answer: async (bed) => `<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>${(await plain(bed, 'eobcanka')).replace(/(<saml:NameID[^>]*>)[^<]*/, '$1&xxe;')}`,
    outcome: refused('doctype_refused'),
  },
  { name: 'a second root element', means: 'eobcanka', answer: async (bed) => (await plain(bed, 'eobcanka')).repeat(2), outcome: refused('xml_malformed') },
  {
    name: 'a processing instruction inside a signed value',
    means: 'eobcanka',
    answer: async (bed) => (await plain(bed, 'eobcanka')).replace('>Novák<', '>Novák<?x ová?><'),
    outcome: refused('xml_malformed'),
  },
  {
    name: 'two signed assertions in one signed response',
    means: 'eobcanka',
    answer: async (bed) => {
      const idp = bed.idp.eobcanka;
      const first = await idp.signedAssertion(idp.assertionFields(at(bed, 'eobcanka')));
      const second = await idp.signedAssertion(idp.assertionFields(at(bed, 'eobcanka'), MARIE_SVOBODOVA));
      return idp.signedResponse(idp.responseFields(at(bed, 'eobcanka'), first + second));
    },
    outcome: refused('assertion_count'),
  },
  {
    name: 'a failure status that carries an assertion',
    means: 'eobcanka',
    answer: (bed) => plain(bed, 'eobcanka', {}, { statusCode: `${STATUS}Responder`, secondStatusCode: `${STATUS}AuthnFailed` }),
    outcome: refused('assertion_with_failure_status'),
  },
  { name: 'RequestDenied (the citizen cancelled), unsigned', means: 'eobcanka', answer: (bed) => statusAnswer(bed, 'eobcanka', `${STATUS}Responder`, `${STATUS}RequestDenied`), outcome: refused('status_RequestDenied', 'cancelled') },
  { name: 'NoAuthnContext (the means cannot reach the LoA), unsigned', means: 'eobcanka', answer: (bed) => statusAnswer(bed, 'eobcanka', `${STATUS}Responder`, `${STATUS}NoAuthnContext`), outcome: refused('status_NoAuthnContext', 'loa_too_low') },
  { name: 'AuthnFailed, unsigned', means: 'eobcanka', answer: (bed) => statusAnswer(bed, 'eobcanka', `${STATUS}Responder`, `${STATUS}AuthnFailed`), outcome: refused('status_AuthnFailed', 'authn_failed') },
  { name: 'AuthnFailed, signed by the IdP', means: 'nia-id', answer: (bed) => bed.idp['nia-id'].signedResponse({ ...bed.idp['nia-id'].responseFields(at(bed, 'nia-id'), ''), statusCode: `${STATUS}Responder`, secondStatusCode: `${STATUS}AuthnFailed` }), outcome: refused('status_AuthnFailed', 'authn_failed') },
  { name: 'a top-level Responder alone', means: 'eobcanka', answer: (bed) => statusAnswer(bed, 'eobcanka', `${STATUS}Responder`), outcome: refused('status_Responder', 'authn_failed') },
  { name: 'an unknown second-level status URI under Responder', means: 'eobcanka', answer: (bed) => statusAnswer(bed, 'eobcanka', `${STATUS}Responder`, 'urn:example:status:Whatever'), outcome: refused('status_Responder', 'authn_failed') },
  { name: 'an unknown top-level status URI', means: 'eobcanka', answer: (bed) => statusAnswer(bed, 'eobcanka', 'urn:example:status:Odd'), outcome: refused('status_other', 'authn_failed') },
  {
    name: 'RequestDenied under a response signature by an attacker',
    means: 'eobcanka',
    answer: (bed) => bed.idp.eobcanka.signedResponse({ ...bed.idp.eobcanka.responseFields(at(bed, 'eobcanka'), ''), statusCode: `${STATUS}Responder`, secondStatusCode: `${STATUS}RequestDenied` }, {}, bed.attacker),
    outcome: refused('signature_invalid'),
  },
  {
    name: 'NIA\'s AuthnFailed in an attribute of a Success response',
    means: 'eobcanka',
    answer: (bed) => {
      const attributes = [...bed.idp.eobcanka.assertionFields(at(bed, 'eobcanka')).attributes, { name: ATTRIBUTE_NAMES.statusCode, values: [`${STATUS}AuthnFailed`] }];
      return plain(bed, 'eobcanka', { attributes });
    },
    outcome: refused('authn_failed_in_attribute', 'authn_failed'),
  },
  { name: 'an unknown LoA', means: 'eobcanka', answer: (bed) => plain(bed, 'eobcanka', { classRef: 'http://eidas.europa.eu/LoA/veryhigh' }), outcome: refused('loa_unmapped') },
  { name: 'an empty AuthnContextClassRef', means: 'nia-id', answer: (bed) => plain(bed, 'nia-id', { classRef: '' }), outcome: refused('loa_missing') },
  {
    name: 'an attribute stated twice',
    means: 'eobcanka',
    answer: (bed) => {
      const attributes = [...bed.idp.eobcanka.assertionFields(at(bed, 'eobcanka')).attributes, { name: ATTRIBUTE_NAMES.familyName, values: ['Svobodová'] }];
      return plain(bed, 'eobcanka', { attributes });
    },
    outcome: refused('attribute_repeated'),
  },
];

const TAMPERING = {
  cbcPaddingProbe: { encryption: NIA_ENCRYPTION, which: 1 as const, bytes: CBC_PADDING_PROBE },
  cbcIv: { encryption: NIA_ENCRYPTION, which: 1 as const, bytes: flipByte(() => 3) },
  wrappedKey: { encryption: NIA_ENCRYPTION, which: 0 as const, bytes: flipByte((n) => n - 1) },
  gcmTag: { encryption: AES_GCM, which: 1 as const, bytes: flipByte((n) => n - 1) },
};

const ENCRYPTION: Row[] = [
  {
    name: 'an assertion encrypted for someone else\'s key',
    means: 'eobcanka',
    answer: (bed) => encryptedWith(bed, 'eobcanka', encryptionTemplate(NIA_ENCRYPTION), bed.attacker.certFile, 'aes-256'),
    outcome: refused('decryption_failed'),
  },
  { name: 'AES-CBC padding probe, signed by the IdP', means: 'eobcanka', answer: (bed) => tampered(bed, TAMPERING.cbcPaddingProbe, 'idp'), outcome: refused('decryption_failed') },
  { name: 'AES-CBC padding probe by an attacker after the IdP signed', means: 'eobcanka', answer: (bed) => tampered(bed, TAMPERING.cbcPaddingProbe, 'attacker'), outcome: refused('signature_invalid') },
  { name: 'AES-CBC IV changed, signed by the IdP', means: 'eobcanka', answer: (bed) => tampered(bed, TAMPERING.cbcIv, 'idp'), outcome: refused('decryption_failed') },
  { name: 'RSA-OAEP wrapped key changed, signed by the IdP', means: 'eobcanka', answer: (bed) => tampered(bed, TAMPERING.wrappedKey, 'idp'), outcome: refused('decryption_failed') },
  { name: 'AES-GCM tag changed, signed by the IdP', means: 'eobcanka', answer: (bed) => tampered(bed, TAMPERING.gcmTag, 'idp'), outcome: refused('decryption_failed') },
  { name: 'AES-GCM tag changed by an attacker after the IdP signed', means: 'eobcanka', answer: (bed) => tampered(bed, TAMPERING.gcmTag, 'attacker'), outcome: refused('signature_invalid') },
  {
    name: 'a padding probe under a response signed by an attacker, to a means that does not require a response signature',
    means: 'nia-id',
    answer: async (bed) => withCipherValue(await encryptedAnswer(bed, 'nia-id', { responseSigner: bed.attacker }), 1, CBC_PADDING_PROBE),
    outcome: refused('signature_invalid'),
  },
  {
    name: 'RSA PKCS#1 v1.5 key transport',
    means: 'eobcanka',
    answer: (bed) => encryptedWith(bed, 'eobcanka', encryptionTemplate({ dataAlgorithm: ALGORITHMS.aes256Cbc, keyTransport: ALGORITHMS.rsa15, oaepDigest: null }), bed.idp.eobcanka.sp.encryptionCertFile, 'aes-256'),
    outcome: refused('encryption_algorithm_refused'),
  },
  {
    name: 'Triple-DES data encryption',
    means: 'eobcanka',
    answer: (bed) =>
      encryptedWith(
        bed,
        'eobcanka',
        encryptionTemplate({ dataAlgorithm: 'http://www.w3.org/2001/04/xmlenc#tripledes-cbc', keyTransport: ALGORITHMS.rsaOaep, oaepDigest: ALGORITHMS.sha1 }),
        bed.idp.eobcanka.sp.encryptionCertFile,
        'des-192' as 'aes-128',
      ),
    outcome: refused('encryption_algorithm_refused'),
  },
  { name: 'an unsigned response around an EncryptedAssertion (eObčanka)', means: 'eobcanka', answer: (bed) => encryptedAnswer(bed, 'eobcanka', { signResponse: false }), outcome: refused('signature_invalid') },
  { name: 'an unsigned response around an EncryptedAssertion (NIA ID, which accepts unsigned responses)', means: 'nia-id', answer: (bed) => encryptedAnswer(bed, 'nia-id', { signResponse: false }), outcome: refused('signature_invalid') },
  {
    name: 'an unsigned assertion inside the encryption',
    means: 'eobcanka',
    answer: (bed) => encryptedAnswer(bed, 'eobcanka', { assertion: assertionXml(bed.idp.eobcanka.assertionFields(at(bed, 'eobcanka'))) }),
    outcome: refused('signature_invalid'),
  },
  {
    name: 'an assertion signed by an attacker inside the encryption, in a response the IdP signed',
    means: 'eobcanka',
    answer: async (bed) => encryptedAnswer(bed, 'eobcanka', { assertion: await bed.idp.eobcanka.signedAssertion(bed.idp.eobcanka.assertionFields(at(bed, 'eobcanka')), {}, bed.attacker) }),
    outcome: refused('signature_invalid'),
  },
  {
    name: 'an assertion signed with RSA-SHA1 inside the encryption',
    means: 'eobcanka',
    answer: async (bed) => encryptedAnswer(bed, 'eobcanka', { assertion: await bed.idp.eobcanka.signedAssertion(bed.idp.eobcanka.assertionFields(at(bed, 'eobcanka')), { signatureMethod: ALGORITHMS.rsaSha1 }) }),
    outcome: refused('signature_algorithm_refused'),
  },
  {
    name: 'an assertion signature with three Transforms inside the encryption',
    means: 'eobcanka',
    answer: async (bed) =>
      encryptedAnswer(bed, 'eobcanka', { assertion: await bed.idp.eobcanka.signedAssertion(bed.idp.eobcanka.assertionFields(at(bed, 'eobcanka')), { transforms: [ALGORITHMS.enveloped, ALGORITHMS.excC14n, ALGORITHMS.excC14n] }) }),
    outcome: refused('signature_malformed'),
  },
  {
    name: 'a DOCTYPE inside the encryption (signed by the IdP)',
    means: 'eobcanka',
    answer: async (bed) => encryptedAnswer(bed, 'eobcanka', { assertion: `<!DOCTYPE saml:Assertion>${await bed.idp.eobcanka.signedAssertion(bed.idp.eobcanka.assertionFields(at(bed, 'eobcanka')))}` }),
    outcome: refused('doctype_refused'),
  },
  {
    name: 'two signed assertions inside the encryption',
    means: 'eobcanka',
    answer: async (bed) => {
      const idp = bed.idp.eobcanka;
      const fields = idp.assertionFields(at(bed, 'eobcanka'));
      const two = (await idp.signedAssertion(fields)) + (await idp.signedAssertion({ ...fields, id: `${fields.id}x` }));
      return encryptedAnswer(bed, 'eobcanka', { assertion: `<x:Pair xmlns:x="urn:example">${two}</x:Pair>` });
    },
    outcome: refused('assertion_count'),
  },
];

const ROWS: Row[] = [...VALID, ...MEANS.flatMap(signatureRows), ...MESSAGE, ...ENCRYPTION];

// ---- the bed -----------------------------------------------------------------------------------

function samlMeans(id: MeansId, change: Partial<SamlMeans['saml']> = {}): SamlMeans {
  const means = readIdentityMeansFile(path.join(PROVIDERS, `${id}.json`));
  if (means.protocol !== 'saml') throw new Error(`${id} is not a SAML means`);
  return { ...means, saml: { ...means.saml, metadata: `test:${id}`, ...change } };
}

async function identityProviderMetadata(means: string, metadataXml: string): Promise<MetadataSource<IdpMetadata>> {
  const source = new MetadataSource<IdpMetadata>({
    means,
    location: `${means} (test metadata)`,
    load: async () => metadataXml,
    parse: (text) => parseSamlMetadata(text, { source: `${means} test metadata`, trustAnchors: [] }),
    refreshIntervalMs: 3_600_000,
  });
  await source.refresh('start');
  return source;
}

async function startBed(keysDir: string): Promise<Bed> {
  const workspace = new BatchingXmlSecWorkspace('brana-saml-adapter-');
  const [keys, attacker, ...idpKeys] = await Promise.all([
    loadBrokerKeys(keysDir, PUBLIC_URL),
    workspace.newKeyPair('attacker'),
    workspace.newKeyPair('idp-eobcanka'),
    workspace.newKeyPair('idp-nia-id'),
  ]);
  const bed: Bed = { workspace, attacker, idp: {} as Bed['idp'], adapter: {} as Bed['adapter'], requestId: {} as Bed['requestId'], genuine: {} as Bed['genuine'], interop: {} as SamlAdapter };
  await Promise.all(
    MEANS.map(async (id, index) => {
      const entityId = `https://idp.${id}.test.example/metadata`;
      const certificate = fs.readFileSync(idpKeys[index]!.certFile, 'utf8');
      const metadata = await identityProviderMetadata(id, idpMetadataXml({ entityId, ssoUrl: `https://idp.${id}.test.example/sso`, certificates: [certificate] }));
      const adapter = new SamlAdapter({ means: samlMeans(id, { requireSignedResponse: RESPONSE_SIGNED[id] }), metadata, keys, publicUrl: PUBLIC_URL, now: () => NOW });
      bed.adapter[id] = adapter;
      if (id === 'nia-id') {
        const interopMeans = samlMeans(id, { requireSignedResponse: false, requireSignedAssertion: false, authnContextMap: { [PASSWORD]: 'substantial', 'urn:example:bank:strong': 'high' } });
        bed.interop = new SamlAdapter({ means: interopMeans, metadata, keys, publicUrl: PUBLIC_URL, now: () => NOW });
      }
      bed.requestId[id] = (await adapter.startLogin({ minimumLoa: 'low', forceAuthn: false, spType: 'public' })).requestId;
      // The IdP knows Brána from its SP metadata only.
      const idp = new IndependentIdp({ means: id, entityId, keys: idpKeys[index]! }, serviceProviderFromMetadata(adapter.serviceProviderMetadata(), id, workspace), workspace);
      bed.idp[id] = idp;
      const assertion = await idp.signedAssertion(idp.assertionFields(at(bed, id)));
      const fields = idp.responseFields(at(bed, id), assertion);
      bed.genuine[id] = { assertion, response: RESPONSE_SIGNED[id] ? await idp.signedResponse(fields) : responseXml(fields) };
    }),
  );
  return bed;
}

function expectedRequest(bed: Bed, means: MeansId, change: Partial<ExpectedRequest> = {}): ExpectedRequest {
  return { requestId: bed.requestId[means], means, minimumLoa: 'low', forceAuthn: false, createdAt: NOW - minutes(1), ...change };
}

/** What the server does with a posted answer: name its request, then have it checked against that request. */
async function handle(adapter: SamlAdapter, samlResponse: string, expected: ExpectedRequest): Promise<UpstreamIdentity> {
  return adapter.handleAnswer(adapter.correlate({ SAMLResponse: samlResponse }), expected);
}

describe('SamlAdapter: a table of real signed answers, checked without HTTP or a store', () => {
  const keysDir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-saml-adapter-keys-'));
  let bed: Bed;
  let answers: string[];

  before(async () => {
    bed = await startBed(keysDir);
    // All at once: the workspace signs what the rows ask for together, one xmlsec1 run per key.
    answers = await Promise.all(ROWS.map(async (row) => row.answer(bed)));
  });
  after(() => {
    bed?.workspace.remove();
    fs.rmSync(keysDir, { recursive: true, force: true });
  });

  ROWS.forEach((row, index) => {
    const outcome = row.outcome;
    const verb = 'identity' in outcome ? 'accepts' : `refuses (${outcome.reason})`;
    it(`${verb} ${row.name}`, async () => {
      const xml = answers[index]!;
      const expected = expectedRequest(bed, row.means, row.expected);
      const adapter = bed.adapter[row.means];
      if ('identity' in outcome) {
        const identity = await handle(adapter, base64(xml), expected);
        assert.deepEqual(identity, {
          means: row.means,
          authority: bed.idp[row.means].idp.entityId,
          acr: outcome.identity.acr,
          instant: new Date(NOW),
          subject: outcome.identity.subject,
          attributes: outcome.identity.attributes,
          messageHash: createHash('sha256').update(xml).digest('hex'),
          assertionId: outcome.identity.assertionId,
          assertionExpiresAt: new Date(NOW + minutes(5)),
          requestId: bed.requestId[row.means],
        } satisfies UpstreamIdentity);
        return;
      }
      const err = await refusalOf(() => handle(adapter, base64(xml), expected));
      assert.equal(err.reason, outcome.reason, err.message);
      assert.equal(err.outward, outcome.outward);
    });
  });

  it('refuses a genuine answer while the means has no metadata (metadata_unavailable)', async () => {
    const never = new MetadataSource<IdpMetadata>({ means: 'eobcanka', location: 'never loaded', load: async () => '', parse: () => assert.fail('never loaded'), refreshIntervalMs: 3_600_000 });
    const adapter = new SamlAdapter({ means: bed.adapter.eobcanka.means, metadata: never, keys: await loadBrokerKeys(keysDir, PUBLIC_URL), publicUrl: PUBLIC_URL, now: () => NOW });
    const err = await refusalOf(() => handle(adapter, base64(bed.genuine.eobcanka.response), expectedRequest(bed, 'eobcanka')));
    assert.equal(err.reason, 'metadata_unavailable');
    assert.equal(err.outward, 'means_unavailable');
  });

  describe('verifiedContent: the bytes a signature covers, or null', () => {
    const certificate = (keys: KeyFiles) => fs.readFileSync(keys.certFile, 'utf8');
    const assertionIn = (xml: string) => childElements(parseStrictXml(xml).documentElement as Element, NS.assertion, 'Assertion')[0]!;

    it('returns exactly the signed bytes for a valid signature: their SHA-256 is the DigestValue', () => {
      const xml = bed.genuine['nia-id'].response;
      const signed = verifiedContent(assertionIn(xml), [certificate(bed.attacker), certificate(bed.idp['nia-id'].idp.keys)]);
      assert.ok(signed !== null);
      const digest = /<ds:DigestValue>([^<]+)</.exec(bed.genuine['nia-id'].assertion)![1]!;
      assert.equal(createHash('sha256').update(signed, 'utf8').digest('base64'), digest);
      assert.ok(signed.startsWith('<saml:Assertion') && !signed.includes('Signature'), 'the assertion without its enveloped signature');
    });

    it('returns null for a certificate that did not sign', () => {
      const xml = bed.genuine['nia-id'].response;
      assert.equal(verifiedContent(assertionIn(xml), [certificate(bed.attacker), certificate(bed.idp.eobcanka.idp.keys)]), null);
    });

    it('returns null for a valid signature whose reference names another element', async () => {
      const idp = bed.idp['nia-id'];
      const fields = idp.assertionFields(at(bed, 'nia-id'));
      const response = idp.responseFields(at(bed, 'nia-id'), assertionXml(fields, signatureTemplate(fields.id, { referenceUri: '#PLACEHOLDER' })));
      // The assertion's signature covers the Response around it.
      const xml = await bed.workspace.sign(responseXml(response).replace('#PLACEHOLDER', `#${response.id}`), idp.idp.keys);
      assert.ok(await bed.workspace.verifies(xml, idp.idp.keys.certFile), 'xmlsec1 finds the signature itself valid');
      assert.equal(verifiedContent(assertionIn(xml), [certificate(idp.idp.keys)]), null);
    });

    it('returns null when a second element carries the signed element\'s ID', () => {
      const genuine = bed.genuine['nia-id'];
      const xml = afterElement(genuine.response, 'saml:Issuer', `<samlp:Extensions><x:Twin xmlns:x="urn:example:twin" ID="${idOf(genuine.assertion)}"/></samlp:Extensions>`);
      assert.equal(verifiedContent(assertionIn(xml), [certificate(bed.idp['nia-id'].idp.keys)]), null);
    });
  });
});

describe('statusReason: a closed set of log reasons for SAML error statuses', () => {
  const cases: Array<[string, string | undefined, { reason: string; outward: string }]> = [
    [`${STATUS}Responder`, `${STATUS}RequestDenied`, { reason: 'status_RequestDenied', outward: 'cancelled' }],
    [`${STATUS}Responder`, `${STATUS}AuthnFailed`, { reason: 'status_AuthnFailed', outward: 'authn_failed' }],
    [`${STATUS}Responder`, `${STATUS}NoAuthnContext`, { reason: 'status_NoAuthnContext', outward: 'loa_too_low' }],
    [`${STATUS}Requester`, `${STATUS}NoAuthnContext`, { reason: 'status_NoAuthnContext', outward: 'loa_too_low' }],
    [`${STATUS}Requester`, undefined, { reason: 'status_Requester', outward: 'authn_failed' }],
    [`${STATUS}Responder`, 'urn:example:status:Whatever', { reason: 'status_Responder', outward: 'authn_failed' }],
    [`${STATUS}Responder`, `${STATUS}NoSuchCode`, { reason: 'status_Responder', outward: 'authn_failed' }],
    ['urn:example:status:Odd', undefined, { reason: 'status_other', outward: 'authn_failed' }],
    ['urn:example:status:Odd', 'urn:example:status:Odder', { reason: 'status_other', outward: 'authn_failed' }],
    [`${STATUS}`, undefined, { reason: 'status_other', outward: 'authn_failed' }],
    [`${STATUS}RequestDenied<script>`, undefined, { reason: 'status_other', outward: 'authn_failed' }],
    ['', undefined, { reason: 'status_other', outward: 'authn_failed' }],
  ];
  for (const [top, second, expected] of cases) {
    it(`${top || '(empty)'} / ${second ?? '(none)'} → ${expected.reason} (${expected.outward})`, () => {
      assert.deepEqual(statusReason(top, second), expected);
    });
  }
});

describe('SamlAdapter with the defaults that interoperate: a valid signature of the means must cover the assertion, whichever element carries it', () => {
  const keysDir = fs.mkdtempSync(path.join(os.tmpdir(), 'brana-saml-interop-keys-'));
  let bed: Bed;
  const idp = () => bed.idp['nia-id'];
  const fields = (loa: string = LOA.high) => idp().assertionFields(at(bed, 'nia-id'), JAN_NOVAK, loa);
  const unsignedAssertion = (loa?: string) => assertionXml(fields(loa));
  const response = (assertion: string) => idp().responseFields(at(bed, 'nia-id'), assertion);
  const gcm = (assertion: string) => idp().encrypted(assertion, AES_GCM);
  const cbc = (assertion: string) => idp().encrypted(assertion, NIA_ENCRYPTION);

  const rows: Array<{ name: string; answer(): Promise<string>; outcome: 'accepted' | string; acr?: Loa; adapter?: 'interop' | 'nia-id' }> = [
    { name: 'SimpleSAMLphp\'s default: the Assertion signed, the Response not', answer: async () => responseXml(response(await idp().signedAssertion(fields()))), outcome: 'accepted', acr: 'substantial' },
    { name: 'Shibboleth\'s default without encryption: the Response signed, the Assertion not', answer: async () => idp().signedResponse(response(unsignedAssertion())), outcome: 'accepted', acr: 'substantial' },
    { name: 'Shibboleth\'s default: the Response signed, the Assertion unsigned and encrypted with AES-GCM', answer: async () => idp().signedResponse(response(await gcm(unsignedAssertion()))), outcome: 'accepted', acr: 'substantial' },
    { name: 'the Response signed, the Assertion unsigned and encrypted with AES-CBC', answer: async () => idp().signedResponse(response(await cbc(unsignedAssertion()))), outcome: 'accepted', acr: 'substantial' },
    { name: 'an unsigned Response around a signed Assertion encrypted with AES-GCM', answer: async () => responseXml(response(await gcm(await idp().signedAssertion(fields())))), outcome: 'accepted', acr: 'substantial' },
    { name: 'a mapped AuthnContextClassRef (Password → substantial)', answer: async () => responseXml(response(await idp().signedAssertion(fields(PASSWORD)))), outcome: 'accepted', acr: 'substantial' },
    { name: 'a mapped "high" from a means registered as substantial (capped)', answer: async () => responseXml(response(await idp().signedAssertion(fields('urn:example:bank:strong')))), outcome: 'accepted', acr: 'substantial' },
    { name: 'an AuthnContextClassRef the means does not map', answer: async () => responseXml(response(await idp().signedAssertion(fields('urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken')))), outcome: 'loa_unmapped' },
    { name: 'no signature at all', answer: async () => responseXml(response(unsignedAssertion())), outcome: 'signature_invalid' },
    { name: 'an unsigned Response around a signed Assertion encrypted with AES-CBC (a padding oracle otherwise)', answer: async () => responseXml(response(await cbc(await idp().signedAssertion(fields())))), outcome: 'signature_invalid' },
    { name: 'an unsigned Response around an unsigned Assertion encrypted with AES-GCM (anyone can encrypt to Brána)', answer: async () => responseXml(response(await gcm(unsignedAssertion()))), outcome: 'signature_invalid' },
    { name: 'an unsigned Response around an Assertion an attacker signed and encrypted with AES-GCM', answer: async () => responseXml(response(await gcm(await idp().signedAssertion(fields(), {}, bed.attacker)))), outcome: 'signature_invalid' },
    { name: 'the Response signed by an attacker around an unsigned Assertion', answer: async () => idp().signedResponse(response(unsignedAssertion()), {}, bed.attacker), outcome: 'signature_invalid' },
    { name: 'a signed Response around an Assertion whose own signature is an attacker\'s', answer: async () => idp().signedResponse(response(await idp().signedAssertion(fields(), {}, bed.attacker))), outcome: 'signature_invalid' },
    { name: 'a signed Response around an unsigned Assertion, at a means that requires signed assertions (NIA)', answer: async () => idp().signedResponse(response(unsignedAssertion())), outcome: 'signature_invalid', adapter: 'nia-id' },
    { name: 'a signed Response around an unsigned encrypted Assertion, at a means that requires signed assertions (NIA)', answer: async () => idp().signedResponse(response(await gcm(unsignedAssertion()))), outcome: 'signature_invalid', adapter: 'nia-id' },
  ];
  let answers: string[];

  before(async () => {
    bed = await startBed(keysDir);
    answers = await Promise.all(rows.map((row) => row.answer()));
  });
  after(() => {
    bed?.workspace.remove();
    fs.rmSync(keysDir, { recursive: true, force: true });
  });

  it('asks such a means, in its own words, for exactly the contexts that reach the minimum; an eIDAS means for the eIDAS minimum', async () => {
    const requested = async (adapter: SamlAdapter, minimumLoa: Loa) => {
      const handoff = await adapter.startLogin({ minimumLoa, forceAuthn: false, spType: 'public' });
      assert.equal(handoff.kind, 'redirect');
      const request = inflateRawSync(Buffer.from(new URL(handoff.kind === 'redirect' ? handoff.url : '').searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
      const context = /<samlp:RequestedAuthnContext[^>]*Comparison="([a-z]+)"[^>]*>(.*?)<\/samlp:RequestedAuthnContext>/.exec(request);
      assert.ok(context, request);
      return { comparison: context[1], uris: [...context[2]!.matchAll(/<saml:AuthnContextClassRef[^>]*>([^<]+)</g)].map((m) => m[1]) };
    };
    assert.deepEqual(await requested(bed.interop, 'substantial'), { comparison: 'exact', uris: [PASSWORD, 'urn:example:bank:strong'] });
    assert.deepEqual(await requested(bed.interop, 'high'), { comparison: 'exact', uris: ['urn:example:bank:strong'] });
    assert.deepEqual(await requested(bed.adapter['nia-id'], 'substantial'), { comparison: 'minimum', uris: [LOA.substantial] });
  });

  rows.forEach((row, index) => {
    it(`${row.outcome === 'accepted' ? 'accepts' : `refuses (${row.outcome})`} ${row.name}`, async () => {
      const adapter = row.adapter === 'nia-id' ? bed.adapter['nia-id'] : bed.interop;
      const expected = expectedRequest(bed, 'nia-id');
      if (row.outcome === 'accepted') {
        const identity = await handle(adapter, base64(answers[index]!), expected);
        assert.equal(identity.acr, row.acr);
        assert.deepEqual(identity.attributes, JAN_ATTRIBUTES);
        assert.equal(identity.requestId, bed.requestId['nia-id']);
        return;
      }
      const err = await refusalOf(() => handle(adapter, base64(answers[index]!), expected));
      assert.equal(err.reason, row.outcome, err.message);
    });
  });
});
