import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The seal on each record: an HMAC of its position and chain hash under a key only Brána holds.
 * The chain alone proves order and integrity to anyone, but anyone with database access can also
 * extend it; the seal tells Brána's own records from an appended forgery, even before a signed
 * checkpoint covers them, and Brána checks every seal before it signs a checkpoint.
 */
export class RecordSeal {
  private readonly key: Buffer;

  constructor(key: Buffer) {
    if (key.length < 32) throw new Error('the audit seal key must be at least 32 bytes');
    this.key = key;
  }

  of(seq: number, hash: string): string {
    return createHmac('sha256', this.key).update(`brana-audit-seal-v1\n${seq}\n${hash}`).digest('base64url');
  }

  matches(seq: number, hash: string, seal: string | null | undefined): boolean {
    return same(this.of(seq, hash), seal);
  }

  /**
   * The seal of a record waiting to be chained (src/audit/log-sequencer.ts): its name and the digest
   * of its content. The sequencer chains only records that carry it, so a row written into the
   * staging table without the key is never laundered into the chain.
   */
  ofStaged(rid: string, digest: string): string {
    return createHmac('sha256', this.key).update(`brana-audit-staged-v1\n${rid}\n${digest}`).digest('base64url');
  }

  matchesStaged(rid: string, digest: string, seal: string | null | undefined): boolean {
    return same(this.ofStaged(rid, digest), seal);
  }
}

function same(expectedText: string, seal: string | null | undefined): boolean {
  if (typeof seal !== 'string') return false;
  const expected = Buffer.from(expectedText);
  const given = Buffer.from(seal);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
