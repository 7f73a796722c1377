import type { Element } from '@xmldom/xmldom';
import { attributeOfSamlName, normaliseSamlAttributeName, type AttributeId } from '../../domain/attributes.ts';
import { loaFromUri, weakestLoa, type Loa } from '../../domain/loa.ts';
import { UpstreamRejected } from '../contract.ts';
import { NS, XmlRejected, childElements, requiredChild, singleChild, textOf } from './xml.ts';

const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';
// NIA's sharp edge: a failed login may come back as top-level Success with this attribute inside.
const STATUS_CODE_ATTRIBUTE = 'urn:oasis:names:tc:SAML:2.0:protocol/statuscode';

export interface AssertionExpectations {
  idpEntityId: string;
  acsUrl: string;
  /** Brána's entity id for this means: the only audience it accepts. */
  audience: string;
  /** The means' own AuthnContextClassRef URIs and the eIDAS LoA each stands for. */
  authnContextMap: Readonly<Record<string, Loa>>;
  requestId: string;
  /** The means' registered maximum LoA. */
  maximumLoa: Loa;
  clockSkewMs: number;
  maxAgeMs: number;
  now: number;
}

export interface AssertionContent {
  assertionId: string;
  issuer: string;
  subject: string;
  acr: Loa;
  authnInstant: Date;
  expiresAt: Date;
  attributes: Partial<Record<AttributeId, string[]>>;
}

function reject(reason: string, detail?: string): UpstreamRejected {
  return new UpstreamRejected(reason, reason === 'authn_failed_in_attribute' ? 'authn_failed' : 'invalid_response', detail);
}

function time(value: string | null, field: string): number {
  const ms = value ? Date.parse(value) : Number.NaN;
  if (!value || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(value) || Number.isNaN(ms)) {
    throw reject('assertion_malformed', `${field} is not a UTC time`);
  }
  return ms;
}

/**
 * Reads a verified assertion (never the unsigned envelope around it) and checks what a SAML library
 * leaves to us: issuer, bearer confirmation with our Recipient and request, the authentication
 * context and its LoA, and NIA's failure-in-an-attribute. `assertion` must belong to a tree parsed
 * strictly from signed bytes (the adapter's `signedTree`) or from a plaintext whose encryption a
 * verified signature covers: only those are read.
 */
export function readVerifiedAssertion(assertion: Element, expected: AssertionExpectations): AssertionContent {
  const { requestId } = expected;
  try {
    if (assertion.namespaceURI !== NS.assertion || assertion.localName !== 'Assertion') throw reject('assertion_malformed');
    const assertionId = assertion.getAttribute('ID') ?? '';
    if (!assertionId) throw reject('assertion_malformed', 'no ID');

    const issuer = textOf(requiredChild(assertion, NS.assertion, 'Issuer')).trim();
    if (issuer !== expected.idpEntityId) throw reject('issuer_mismatch');

    const issueInstant = time(assertion.getAttribute('IssueInstant'), 'IssueInstant');
    if (issueInstant > expected.now + expected.clockSkewMs) throw reject('not_yet_valid');
    if (issueInstant < expected.now - expected.maxAgeMs - expected.clockSkewMs) throw reject('stale');

    const subject = requiredChild(assertion, NS.assertion, 'Subject');
    const nameId = textOf(requiredChild(subject, NS.assertion, 'NameID')).trim();
    if (!nameId) throw reject('assertion_malformed', 'empty NameID');

    const confirmations = childElements(subject, NS.assertion, 'SubjectConfirmation');
    if (confirmations.length !== 1) throw reject('subject_confirmation_invalid', 'exactly one SubjectConfirmation is allowed');
    const confirmation = confirmations[0]!;
    if (confirmation.getAttribute('Method') !== BEARER) throw reject('subject_confirmation_invalid', 'not bearer');
    const data = requiredChild(confirmation, NS.assertion, 'SubjectConfirmationData');
    if (data.getAttribute('Recipient') !== expected.acsUrl) throw reject('recipient_mismatch');
    if (data.getAttribute('InResponseTo') !== requestId) throw reject('in_response_to_invalid');
    if (data.hasAttribute('NotBefore')) throw reject('subject_confirmation_invalid', 'bearer data must not carry NotBefore');
    const confirmationExpiry = time(data.getAttribute('NotOnOrAfter'), 'SubjectConfirmationData/@NotOnOrAfter');
    if (expected.now - expected.clockSkewMs >= confirmationExpiry) throw reject('expired');

    const conditions = requiredChild(assertion, NS.assertion, 'Conditions');
    const notOnOrAfter = time(conditions.getAttribute('NotOnOrAfter'), 'Conditions/@NotOnOrAfter');
    if (expected.now - expected.clockSkewMs >= notOnOrAfter) throw reject('expired');
    if (conditions.hasAttribute('NotBefore') && time(conditions.getAttribute('NotBefore'), 'Conditions/@NotBefore') > expected.now + expected.clockSkewMs) {
      throw reject('not_yet_valid');
    }
    // Every AudienceRestriction must name us (SAML core 2.5.1.4: each one must be satisfied), and there must be one.
    const restrictions = childElements(conditions, NS.assertion, 'AudienceRestriction');
    if (!restrictions.length) throw reject('audience_mismatch', 'no AudienceRestriction');
    for (const restriction of restrictions) {
      const audiences = childElements(restriction, NS.assertion, 'Audience').map((audience) => textOf(audience).trim());
      if (!audiences.includes(expected.audience)) throw reject('audience_mismatch');
    }

    const statements = childElements(assertion, NS.assertion, 'AuthnStatement');
    if (statements.length !== 1) throw reject('authn_statement_invalid', 'exactly one AuthnStatement is required');
    const statement = statements[0]!;
    const authnInstant = time(statement.getAttribute('AuthnInstant'), 'AuthnStatement/@AuthnInstant');
    const context = requiredChild(statement, NS.assertion, 'AuthnContext');
    const classRef = singleChild(context, NS.assertion, 'AuthnContextClassRef');
    const contextUri = classRef ? textOf(classRef).trim() : '';
    if (!contextUri) throw reject('loa_missing');
    // An eIDAS URI, or one the means file maps; anything else is not a level Brána can vouch for.
    const asserted = loaFromUri(contextUri) ?? (Object.hasOwn(expected.authnContextMap, contextUri) ? expected.authnContextMap[contextUri] : undefined);
    if (!asserted) throw reject('loa_unmapped', contextUri.slice(0, 200));

    const attributes: Partial<Record<AttributeId, string[]>> = {};
    for (const statementElement of childElements(assertion, NS.assertion, 'AttributeStatement')) {
      for (const attributeElement of childElements(statementElement, NS.assertion, 'Attribute')) {
        const name = normaliseSamlAttributeName(attributeElement.getAttribute('Name') ?? '');
        const values = childElements(attributeElement, NS.assertion, 'AttributeValue').map((value) => textOf(value));
        if (name === STATUS_CODE_ATTRIBUTE) {
          if (values.some((value) => value.trim() !== 'urn:oasis:names:tc:SAML:2.0:status:Success')) {
            throw reject('authn_failed_in_attribute', values.join(' '));
          }
          continue;
        }
        const id = attributeOfSamlName(name);
        if (!id) continue;
        if (attributes[id]) throw reject('attribute_repeated', id);
        attributes[id] = values;
      }
    }

    return {
      assertionId,
      issuer,
      subject: nameId,
      // A means can never produce more than it is registered for, whatever it signs.
      acr: weakestLoa(asserted, expected.maximumLoa),
      authnInstant: new Date(authnInstant),
      expiresAt: new Date(Math.max(notOnOrAfter, confirmationExpiry)),
      attributes,
    };
  } catch (err) {
    if (err instanceof XmlRejected) throw reject('assertion_malformed', err.message);
    throw err;
  }
}
