import { createPublicKey, sign, verify } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type { Document, Element } from '@xmldom/xmldom';
import { privateKeyOf } from '../keys/private-keys.ts';
import { UpstreamRejected } from '../upstream/contract.ts';
import { checkSignatures, checkUniqueIds } from '../upstream/saml/response-guard.ts';
import { verifiedContent } from '../upstream/saml/signature-verification.ts';
import { NS, XmlRejected, childElements, parseStrictXml, singleChild, textOf } from '../upstream/saml/xml.ts';

/*
 * The two SAML bindings a SeP's browser carries messages on (SAML Bindings §3.4, §3.5): reading a
 * message bounded (size, inflation, strict XML), with the Redirect binding's query signature over the
 * octets as received; and Brána's own signed Redirect messages.
 */

/** The largest SAMLRequest Brána reads, as sent (base64; deflated on the Redirect binding). */
export const MAX_SAML_REQUEST_LENGTH = 64 * 1024;
/** The most an AuthnRequest may inflate to: a deflate bomb stops here, not in memory. */
export const MAX_INFLATED_REQUEST_LENGTH = 128 * 1024;
/** The most RelayState Brána carries back (SAML Bindings §3.4.3: 80 bytes; some SePs send more). */
export const MAX_RELAY_STATE_LENGTH = 512;
/** A message a binding cannot even carry; `reason` is one of a closed set, for the log. */
export class BindingRefused extends Error {
  readonly reason: string;

  constructor(reason: string) {
    super(reason);
    this.reason = reason;
  }
}

/** What the browser brought: the Redirect binding's raw query, or the POST binding's form. */
export type SamlMessageInput = { binding: 'redirect'; rawQuery: string } | { binding: 'post'; form: Record<string, unknown> };

/** Query signatures Brána verifies on the Redirect binding. */
export const QUERY_SIGNATURE_ALGORITHMS: Record<string, string> = {
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256': 'sha256',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha384': 'sha384',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512': 'sha512',
};

/** The raw (still URL-encoded) value of each query parameter, in order: the Redirect signature covers these bytes. */
function rawParameters(rawQuery: string): Map<string, string> {
  const parameters = new Map<string, string>();
  for (const part of rawQuery.split('&')) {
    if (!part) continue;
    const at = part.indexOf('=');
    const name = decodeURIComponent(at < 0 ? part : part.slice(0, at));
    if (parameters.has(name)) throw new BindingRefused('request_malformed');
    parameters.set(name, at < 0 ? '' : part.slice(at + 1));
  }
  return parameters;
}

function decodeQueryValue(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    throw new BindingRefused('request_malformed');
  }
}

function base64Bytes(value: string): Buffer {
  const compact = value.replace(/[\r\n ]/g, '');
  if (!compact || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) throw new BindingRefused('request_not_base64');
  return Buffer.from(compact, 'base64');
}

/** Inflates a Redirect-binding request, stopping at the bound: a deflate bomb is refused, not expanded. */
function inflate(deflated: Buffer): string {
  try {
    return inflateRawSync(deflated, { maxOutputLength: MAX_INFLATED_REQUEST_LENGTH }).toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) throw new BindingRefused('request_too_large');
    throw new BindingRefused('request_malformed');
  }
}

function parse(xml: string): Document {
  try {
    return parseStrictXml(xml);
  } catch (err) {
    throw new BindingRefused(err instanceof XmlRejected && /DOCTYPE/.test(err.message) ? 'doctype_refused' : 'xml_malformed');
  }
}

/** The outside of a request, before its signature: enough to find the SeP and where to answer it. */
export interface Envelope {
  xml: string;
  document: Document;
  relayState: string | null;
  /** Redirect binding: the signed octets, the algorithm and the signature. */
  querySignature: { octets: string; algorithm: string; signature: Buffer } | null;
}

export function envelopeOf(input: SamlMessageInput, parameter: 'SAMLRequest' | 'SAMLResponse' = 'SAMLRequest'): Envelope {
  if (input.binding === 'redirect') {
    if (input.rawQuery.length > MAX_SAML_REQUEST_LENGTH * 2) throw new BindingRefused('request_too_large');
    const raw = rawParameters(input.rawQuery);
    const request = raw.get(parameter);
    if (request === undefined) throw new BindingRefused('missing_request');
    const encoded = decodeQueryValue(request);
    if (encoded.length > MAX_SAML_REQUEST_LENGTH) throw new BindingRefused('request_too_large');
    const xml = inflate(base64Bytes(encoded));
    const relay = raw.get('RelayState');
    const relayState = relay === undefined ? null : decodeQueryValue(relay);
    const sigAlg = raw.get('SigAlg');
    const signature = raw.get('Signature');
    // SAML Bindings §3.4.4.1: the octets are the parameters as received, in this order.
    const querySignature =
      sigAlg !== undefined && signature !== undefined
        ? {
            octets: `${parameter}=${request}${relay === undefined ? '' : `&RelayState=${relay}`}&SigAlg=${sigAlg}`,
            algorithm: decodeQueryValue(sigAlg),
            signature: base64Bytes(decodeQueryValue(signature)),
          }
        : null;
    return { xml, document: parse(xml), relayState, querySignature };
  }
  const encoded = input.form[parameter];
  if (typeof encoded !== 'string') throw new BindingRefused('missing_request');
  if (encoded.length > MAX_SAML_REQUEST_LENGTH) throw new BindingRefused('request_too_large');
  const xml = base64Bytes(encoded).toString('utf8');
  const relay = input.form.RelayState;
  return { xml, document: parse(xml), relayState: typeof relay === 'string' ? relay : null, querySignature: null };
}

export function verifyQuerySignature(signature: NonNullable<Envelope['querySignature']>, certificates: readonly string[]): boolean {
  const hash = QUERY_SIGNATURE_ALGORITHMS[signature.algorithm];
  if (!hash) return false;
  return certificates.some((certificate) => {
    try {
      return verify(hash, Buffer.from(signature.octets, 'utf8'), createPublicKey(certificate), signature.signature);
    } catch {
      return false;
    }
  });
}


/**
 * The message a valid signature by one of `certificates` covers, as the element to read from then on:
 * on the Redirect binding the whole message (its query signature; an enveloped one has no place
 * there); on POST only the signed bytes of its enveloped signature — the answer to every wrapping
 * attack —, which must still be a `localName` from `issuer`. Algorithms and IDs are checked first
 * with the upstream guard's rules. Throws BindingRefused with one reason.
 */
export function verifiedRoot(binding: SamlMessageInput['binding'], envelope: Envelope, certificates: readonly string[], localName: string, issuer: string): Element {
  const outer = envelope.document.documentElement as Element;
  try {
    checkSignatures(envelope.document);
    checkUniqueIds(envelope.document);
  } catch (err) {
    if (err instanceof UpstreamRejected) throw new BindingRefused(err.reason);
    throw err;
  }
  const enveloped = childElements(outer, NS.dsig, 'Signature').length > 0;
  if (binding === 'redirect') {
    if (enveloped) throw new BindingRefused('signature_malformed');
    if (!envelope.querySignature) throw new BindingRefused('request_unsigned');
    if (!QUERY_SIGNATURE_ALGORITHMS[envelope.querySignature.algorithm]) throw new BindingRefused('signature_algorithm_refused');
    if (!verifyQuerySignature(envelope.querySignature, certificates)) throw new BindingRefused('signature_invalid');
    return outer;
  }
  if (!enveloped) throw new BindingRefused('request_unsigned');
  const signed = verifiedContent(outer, certificates);
  if (!signed) throw new BindingRefused('signature_invalid');
  let root: Element;
  try {
    root = parseStrictXml(signed).documentElement as Element;
    const signedIssuer = singleChild(root, NS.assertion, 'Issuer');
    if (root.namespaceURI !== NS.protocol || root.localName !== localName || !signedIssuer || textOf(signedIssuer).trim() !== issuer) throw new BindingRefused('signature_invalid');
  } catch (err) {
    if (err instanceof BindingRefused) throw err;
    throw new BindingRefused('signature_invalid');
  }
  return root;
}

/**
 * A message of Brána's on the Redirect binding: deflated, base64, and signed RSA-SHA256 over the
 * octets of SAML Bindings §3.4.4.1 with Brána's key.
 */
export function signedRedirectQuery(parameter: 'SAMLRequest' | 'SAMLResponse', xml: string, relayState: string | null, privateKeyPem: string): string {
  let query = `${parameter}=${encodeURIComponent(deflateRawSync(Buffer.from(xml, 'utf8')).toString('base64'))}`;
  if (relayState !== null) query += `&RelayState=${encodeURIComponent(relayState)}`;
  query += `&SigAlg=${encodeURIComponent('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256')}`;
  const signature = sign('sha256', Buffer.from(query, 'utf8'), privateKeyOf(privateKeyPem));
  return `${query}&Signature=${encodeURIComponent(signature.toString('base64'))}`;
}
