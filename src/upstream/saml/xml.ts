import { DOMParser, type Document, type Element, type Node } from '@xmldom/xmldom';

export const NS = {
  protocol: 'urn:oasis:names:tc:SAML:2.0:protocol',
  assertion: 'urn:oasis:names:tc:SAML:2.0:assertion',
  metadata: 'urn:oasis:names:tc:SAML:2.0:metadata',
  dsig: 'http://www.w3.org/2000/09/xmldsig#',
  xenc: 'http://www.w3.org/2001/04/xmlenc#',
  xenc11: 'http://www.w3.org/2009/xmlenc11#',
  eidas: 'http://eidas.europa.eu/saml-extensions',
} as const;

/** XML Brána refuses to read: a DOCTYPE of any kind, a processing instruction, or a parse problem. */
export class XmlRejected extends Error {}

const ELEMENT_NODE = 1;
const PROCESSING_INSTRUCTION_NODE = 7;
const DOCUMENT_TYPE_NODE = 10;

/**
 * Parses XML strictly: any warning is an error, and a DOCTYPE (the door to XXE and entity expansion)
 * is refused before the parser sees it.
 */
export function parseStrictXml(xml: string): Document {
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) throw new XmlRejected('DOCTYPE is not allowed');
  let document: Document;
  try {
    document = new DOMParser({
      locator: false,
      onError: (level, message) => {
        throw new XmlRejected(`${level}: ${message}`);
      },
    }).parseFromString(xml, 'text/xml');
  } catch (err) {
    if (err instanceof XmlRejected) throw err;
    throw new XmlRejected((err as Error).message);
  }
  for (let node = document.firstChild; node; node = node.nextSibling) {
    if (node.nodeType === DOCUMENT_TYPE_NODE) throw new XmlRejected('DOCTYPE is not allowed');
    if (node.nodeType === PROCESSING_INSTRUCTION_NODE && (node as unknown as { target: string }).target !== 'xml') {
      throw new XmlRejected('processing instructions are not allowed');
    }
  }
  if (!document.documentElement) throw new XmlRejected('no document element');
  refuseNestedProcessingInstructions(document.documentElement);
  return document;
}

/**
 * A processing instruction inside an element has no place in SAML, and xml-crypto canonicalises its
 * data as if it were text: `Novák<?x ová?>` verifies as the signed "Nováková" while a DOM reader
 * sees "Novák". Brána reads only the verified canonical form, but refuses such a message outright.
 */
function refuseNestedProcessingInstructions(root: Node): void {
  const pending: Node[] = [root];
  while (pending.length) {
    for (let node = pending.pop()!.firstChild; node; node = node.nextSibling) {
      if (node.nodeType === PROCESSING_INSTRUCTION_NODE) throw new XmlRejected('processing instructions are not allowed');
      if (node.nodeType === ELEMENT_NODE) pending.push(node);
    }
  }
}

export function isElement(node: Node | null | undefined): node is Element {
  return !!node && node.nodeType === ELEMENT_NODE;
}

/** The direct children of `parent` with this namespace and local name (never a deep search). */
export function childElements(parent: Element | Document, namespace: string, localName: string): Element[] {
  const found: Element[] = [];
  for (let node = parent.firstChild; node; node = node.nextSibling) {
    if (isElement(node) && node.namespaceURI === namespace && node.localName === localName) found.push(node);
  }
  return found;
}

/** The one direct child of that name, undefined if absent; more than one is an error. */
export function singleChild(parent: Element | Document, namespace: string, localName: string): Element | undefined {
  const found = childElements(parent, namespace, localName);
  if (found.length > 1) throw new XmlRejected(`more than one ${localName}`);
  return found[0];
}

export function requiredChild(parent: Element | Document, namespace: string, localName: string): Element {
  const found = singleChild(parent, namespace, localName);
  if (!found) throw new XmlRejected(`missing ${localName}`);
  return found;
}

/**
 * The node after `node` in document order within `root`'s subtree, null at its end. Walked along the
 * tree's own links: xmldom's getElementsByTagName(NS) builds a live list, one stack frame object
 * per node and an array per call (≈ 0.1 MiB per login over the checks of one answer).
 */
function following(node: Node, root: Node): Node | null {
  if (node.firstChild) return node.firstChild;
  for (let at: Node | null = node; at && at !== root; at = at.parentNode) {
    if (at.nextSibling) return at.nextSibling;
  }
  return null;
}

/** Calls `visit` on every element below `root` (not `root` itself), in document order. */
export function forEachElementBelow(root: Element | Document, visit: (element: Element) => void): void {
  for (let node = following(root, root); node; node = following(node, root)) {
    if (isElement(node)) visit(node);
  }
}

/** All descendants of that name, for inventory checks (algorithms, IDs), never for reading values. */
export function descendants(root: Element | Document, namespace: string, localName: string): Element[] {
  const found: Element[] = [];
  forEachElementBelow(root, (element) => {
    if (element.namespaceURI === namespace && element.localName === localName) found.push(element);
  });
  return found;
}

/**
 * The text of an element as the signature covers it: all text and CDATA descendants joined, comments
 * skipped. Reading only the first text node would let a comment split truncate a signed value.
 */
export function textOf(element: Element): string {
  return element.textContent ?? '';
}

export function attributeOf(element: Element, name: string): string | undefined {
  return element.hasAttribute(name) ? (element.getAttribute(name) ?? undefined) : undefined;
}
