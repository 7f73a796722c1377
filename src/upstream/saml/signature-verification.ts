import type { Element } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';
import { NS, childElements, descendants, forEachElementBelow } from './xml.ts';

/**
 * The XML an enveloped signature on `element` covers, verified with one of the trusted certificates;
 * null when the element carries no valid signature by any of them. Only what this returns is read
 * afterwards, never the element itself: the signed bytes are the answer to every wrapping attack.
 *
 * The structural rules are node-saml's (one signature, a single reference to the signature's own
 * parent, an ID no other element carries, at most two transforms), and the cryptography is
 * xml-crypto's. Brána calls it itself, per element, so that each refusal has exactly one reason and
 * an encrypted assertion is decrypted once, after the response signature verified.
 */
export function verifiedContent(element: Element, certificates: readonly string[]): string | null {
  const signatures = childElements(element, NS.dsig, 'Signature');
  if (signatures.length !== 1) return null;
  const signature = signatures[0]!;
  if (descendants(signature, NS.dsig, 'Transform').length > 2) return null;
  const id = element.getAttribute('ID');
  if (!id) return null;
  const document = element.ownerDocument;
  const root = document?.documentElement as Element | undefined;
  if (!document || !root || descendantsWithId(root, id) !== 1) return null;
  for (const certificate of certificates) {
    // KeyInfo is never trusted: only the means' certificates from its metadata verify.
    const signed = new SignedXml({ publicCert: certificate, getCertFromKeyInfo: () => null });
    // SAML names elements by `ID` only. xml-crypto looks a reference up once per name in this list,
    // each a whole-document XPath (three by default: Id, ID, id); Brána has already made sure above
    // that no other element carries this value under any of the three names.
    signed.idAttributes = ['ID'];
    signed.loadSignature(signature as unknown as Node);
    const references = signed.getReferences();
    if (references.length !== 1 || references[0]!.uri !== `#${id}`) return null;
    let valid = false;
    try {
      // The document Brána parsed strictly and inspected is the one verified (patched xml-crypto,
      // see docs/BENCHMARKS.md "Patches"): the references are looked up and canonicalised in the
      // very tree that is read afterwards, and the XML is not parsed once more per signature.
      valid = signed.checkSignature(document as unknown as globalThis.Document);
    } catch {
      valid = false;
    }
    if (!valid) continue;
    const content = signed.getSignedReferences();
    return content.length === 1 ? content[0]! : null;
  }
  return null;
}

/** The ID attribute names xml-crypto recognises by default, in any namespace (as its XPath does). */
const ID_NAMES = new Set(['ID', 'Id', 'id']);

/** How many elements carry `id` as an ID, under any of xml-crypto's default names and any prefix. */
function descendantsWithId(root: Element, id: string): number {
  let count = carriesId(root, id) ? 1 : 0;
  forEachElementBelow(root, (element) => {
    if (carriesId(element, id)) count += 1;
  });
  return count;
}

function carriesId(element: Element, id: string): boolean {
  const attributes = element.attributes;
  for (let i = 0; i < attributes.length; i += 1) {
    const attribute = attributes[i]!;
    if (attribute.value === id && ID_NAMES.has(attribute.localName ?? attribute.name)) return true;
  }
  return false;
}
