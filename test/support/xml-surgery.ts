/**
 * Text surgery on signed SAML messages, as an attacker does it: cut an element out, copy it, move
 * it, change its ID. Works on the text (no XML library), on messages whose shape the tests know.
 */

export interface Span {
  start: number;
  end: number;
}

/** The first `<prefix:Local …>…</prefix:Local>` at or after `from` (the element must not nest itself). */
export function span(xml: string, qualifiedName: string, from = 0): Span {
  const open = xml.indexOf(`<${qualifiedName}`, from);
  if (open < 0) throw new Error(`no <${qualifiedName}> in the message`);
  const tagEnd = xml.indexOf('>', open);
  if (xml[tagEnd - 1] === '/') return { start: open, end: tagEnd + 1 };
  const close = xml.indexOf(`</${qualifiedName}>`, open);
  if (close < 0) throw new Error(`no </${qualifiedName}> in the message`);
  return { start: open, end: close + `</${qualifiedName}>`.length };
}

export function element(xml: string, qualifiedName: string, from = 0): string {
  const s = span(xml, qualifiedName, from);
  return xml.slice(s.start, s.end);
}

export function replaceSpan(xml: string, s: Span, replacement: string): string {
  return xml.slice(0, s.start) + replacement + xml.slice(s.end);
}

/** The element without its first ds:Signature. */
export function withoutSignature(xml: string): string {
  return replaceSpan(xml, span(xml, 'ds:Signature'), '');
}

/** The first ds:Signature in the element. */
export function signatureOf(xml: string): string {
  return element(xml, 'ds:Signature');
}

/** The element with the ID attribute of its start tag changed. */
export function withId(xml: string, id: string): string {
  const startTag = xml.slice(0, xml.indexOf('>') + 1);
  if (!/\sID="[^"]*"/.test(startTag)) throw new Error('the element has no ID');
  return startTag.replace(/\sID="[^"]*"/, ` ID="${id}"`) + xml.slice(startTag.length);
}

export function idOf(xml: string): string {
  const startTag = xml.slice(0, xml.indexOf('>') + 1);
  const id = /\sID="([^"]*)"/.exec(startTag)?.[1];
  if (!id) throw new Error('the element has no ID');
  return id;
}

/** Puts `content` as the last child of the first ds:Signature in `xml`. */
export function intoSignature(xml: string, content: string): string {
  const s = span(xml, 'ds:Signature');
  const close = s.end - '</ds:Signature>'.length;
  return xml.slice(0, close) + content + xml.slice(close);
}

/** Puts `content` right before the first ds:Signature in `xml`. */
export function beforeSignature(xml: string, content: string): string {
  const s = span(xml, 'ds:Signature');
  return xml.slice(0, s.start) + content + xml.slice(s.start);
}

/** Puts `content` right after the first `<qualifiedName>` element (e.g. after saml:Issuer). */
export function after(xml: string, qualifiedName: string, content: string): string {
  const s = span(xml, qualifiedName);
  return xml.slice(0, s.end) + content + xml.slice(s.end);
}

/** Puts `content` as the last child of the root element. */
export function beforeRootEnd(xml: string, content: string): string {
  const close = xml.lastIndexOf('</');
  return xml.slice(0, close) + content + xml.slice(close);
}

/** Replaces every occurrence (a value change an attacker makes in signed content). */
export function swap(xml: string, pairs: Array<[string, string]>): string {
  let out = xml;
  for (const [from, to] of pairs) {
    if (!out.includes(from)) throw new Error(`"${from}" is not in the message`);
    out = out.split(from).join(to);
  }
  return out;
}

/** The message with the bytes of one CipherValue changed: 0 is the first (an EncryptedKey's), 1 the second (the data's). */
export function withCipherValue(xml: string, which: number, change: (bytes: Buffer) => Buffer): string {
  const value = [...xml.matchAll(/<xenc:CipherValue>([^<]*)<\/xenc:CipherValue>/g)][which];
  if (!value) throw new Error(`no CipherValue number ${which} in the message`);
  const start = value.index + '<xenc:CipherValue>'.length;
  return xml.slice(0, start) + change(Buffer.from(value[1]!, 'base64')).toString('base64') + xml.slice(start + value[1]!.length);
}

/** A change that flips the lowest bit of one byte (chosen from the length). */
export function flipByte(at: (length: number) => number): (bytes: Buffer) => Buffer {
  return (bytes) => {
    const i = at(bytes.length);
    bytes[i] = bytes[i]! ^ 0x01;
    return bytes;
  };
}
