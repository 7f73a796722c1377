import { createHmac } from 'node:crypto';

/**
 * The per-SeP-group pseudonym (NIA's BSI): an HMAC of Brána's stable person id and the SeP group
 * under a secret. The same person gets the same pseudonym at every SeP of one group and unlinkable
 * ones across groups; nobody without the secret can go from a pseudonym back to the person.
 */
export class Pseudonyms {
  private readonly secret: Buffer;

  constructor(secret: Buffer) {
    if (secret.length < 32) throw new Error('the pseudonym secret must be at least 32 bytes');
    this.secret = secret;
  }

  forGroup(personId: string, group: string): string {
    return createHmac('sha256', this.secret).update('brana-pseudonym-v1').update('\0').update(group).update('\0').update(personId).digest('base64url');
  }

  /** NIA's PersonIdentifier: the pseudonym with the eIDAS country prefix. */
  personIdentifier(personId: string, group: string): string {
    return `CZ/CZ/${this.forGroup(personId, group)}`;
  }
}
