import fc from 'fast-check';

/**
 * The fuzzing budget: a fixed small number of runs inside `npm test`, multiplied for `npm run fuzz`
 * (BRANA_FUZZ_SCALE). A failure prints fast-check's seed and path; replay it with BRANA_FUZZ_SEED
 * and BRANA_FUZZ_PATH.
 */
export function fuzzParameters(baseRuns: number): fc.Parameters<unknown> {
  const scale = Number(process.env.BRANA_FUZZ_SCALE ?? '1');
  const seed = process.env.BRANA_FUZZ_SEED;
  return {
    numRuns: Math.max(1, Math.round(baseRuns * (Number.isFinite(scale) && scale > 0 ? scale : 1))),
    ...(seed ? { seed: Number(seed), path: process.env.BRANA_FUZZ_PATH } : {}),
    endOnFailure: true,
  };
}

/** A generous bound on answering one hostile input: a property, not a benchmark. */
export const BOUNDED_MS = 5_000;

/** Fragments that break parsers: markup that should not be there, odd characters, deep nesting. */
export const HOSTILE_FRAGMENTS = [
  '<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>',
  '<!ENTITY x SYSTEM "file:///etc/passwd">',
  '&x;',
  '&#0;',
  '&#xD800;',
  '<![CDATA[',
  ']]>',
  '<!--',
  '-->',
  '<?xml version="1.0"?>',
  '<?pi data?>',
  '<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_x" Version="2.0"/>',
  '<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"/>',
  '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"/>',
  ' ID="_duplicate"',
  ' xmlns:saml="urn:evil"',
  ' xmlns="urn:oasis:names:tc:SAML:2.0:assertion"',
  '</samlp:Response>',
  '<x:a xmlns:x="urn:x">'.repeat(3000),
  '\u0000',
  '\uFFFE',
  '\uD800',
  '\u202E',
  '%',
  '"',
  "'",
  '<',
  '>',
];

export type Mutation =
  | { kind: 'truncate'; at: number }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'duplicate'; at: number; length: number }
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'replace'; at: number; text: string };

const position = fc.double({ min: 0, max: 1, noNaN: true });

export const mutationArbitrary: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: position }),
  fc.record({ kind: fc.constant('delete' as const), at: position, length: fc.integer({ min: 1, max: 400 }) }),
  fc.record({ kind: fc.constant('duplicate' as const), at: position, length: fc.integer({ min: 1, max: 2000 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: position, text: fc.oneof(fc.constantFrom(...HOSTILE_FRAGMENTS), fc.string({ maxLength: 40, unit: 'binary' })) }),
  fc.record({ kind: fc.constant('replace' as const), at: position, text: fc.oneof(fc.constantFrom(...HOSTILE_FRAGMENTS), fc.string({ maxLength: 8, unit: 'grapheme' })) }),
);

export function mutate(text: string, mutation: Mutation): string {
  const at = Math.floor(mutation.at * text.length);
  switch (mutation.kind) {
    case 'truncate':
      return text.slice(0, at);
    case 'delete':
      return text.slice(0, at) + text.slice(at + mutation.length);
    case 'duplicate':
      return text.slice(0, at + mutation.length) + text.slice(at, at + mutation.length) + text.slice(at + mutation.length);
    case 'insert':
      return text.slice(0, at) + mutation.text + text.slice(at);
    case 'replace':
      return text.slice(0, at) + mutation.text + text.slice(at + mutation.text.length);
  }
}
