import { randomBytes } from 'node:crypto';

/**
 * The code a citizen reads to the help desk from an error page, kept in the detail of the log record
 * of that refusal (`detail.reference`) so an operator finds it: `brana audit query --reference K7PM3QXD`.
 * Eight characters of an alphabet without look-alikes (no 0/O, 1/I): easy to dictate, and 40 random
 * bits are unique enough among the refusals of a retention period that a time range settles the rest.
 */
const ALPHABET = '23456789ABCDEFGHJKLMNPQRSTUVWXYZ';
const LENGTH = 8;
const PATTERN = new RegExp(`^[${ALPHABET}]{${LENGTH}}$`);

export function newHelpDeskReference(): string {
  // 256 is a multiple of 32: every character is equally likely.
  return [...randomBytes(LENGTH)].map((byte) => ALPHABET[byte % ALPHABET.length]).join('');
}

/** A reference as a citizen may dictate it (lower case, a dash or spaces in between), or null when it cannot be one. */
export function helpDeskReferenceOf(value: unknown): string | null {
  if (typeof value !== 'string' || value.length > 20) return null;
  const normal = value.replace(/[\s-]/g, '').toUpperCase();
  return PATTERN.test(normal) ? normal : null;
}
