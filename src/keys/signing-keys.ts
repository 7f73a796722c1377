import { createHash } from 'node:crypto';
import fs from 'node:fs';
import * as jose from 'jose';
import { z } from 'zod';
import { ConfigurationError, describeIssues } from '../config/configuration-error.ts';

/**
 * The keys that sign ID tokens, with their schedule, in one file of the shared keys folder
 * (`oidc-signing.jwks.json`): a JWKS of private keys and, per key id, when it starts to sign and until
 * when its public key stays published. Every node reads the same file; at any moment each computes
 * the same view of it, so nodes agree without talking to each other.
 *
 * Rotation adds new keys that are published at once but sign only from `activeFrom` (by then every
 * node re-read the file), and keeps each older key published until every token it signed has expired.
 */
export const SIGNING_KEYS_FILE = 'oidc-signing.jwks.json';
export const SIGNING_ALGORITHMS = ['RS256', 'ES256'] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

export interface SigningKey {
  /** A private JWK with `kid`, `alg` and `use: sig`. */
  jwk: jose.JWK & { kid: string; alg: SigningAlgorithm };
  /** Epoch ms from which it signs (0: from the start). */
  activeFrom: number;
  /** Epoch ms until which its public key is published; null: no end set yet. */
  publishUntil: number | null;
}

/** What a node does with the keys at one moment. */
export interface SigningKeyView {
  /** For oidc-provider's `jwks`: the signing key of each algorithm first (it signs with the first match), then the others still published. */
  jwks: { keys: jose.JWK[] };
  signing: Record<SigningAlgorithm, string>;
  published: string[];
  /** When the view changes next (a key starts signing or stops being published), if ever. */
  nextChange: number | null;
  /** Equal for equal views: a node rebuilds its provider only when this changes. */
  fingerprint: string;
}

const scheduleEntry = z.object({ activeFrom: z.number().int().min(0), publishUntil: z.number().int().min(0).nullable() }).strict();
const fileSchema = z
  .object({
    keys: z
      .array(
        z
          .object({
            kid: z.string().min(1),
            alg: z.enum(SIGNING_ALGORITHMS),
            kty: z.enum(['RSA', 'EC']),
            use: z.literal('sig').optional(),
            d: z.string().min(1, 'must be a private key'),
          })
          .passthrough(),
      )
      .min(1),
    schedule: z.record(z.string(), scheduleEntry).optional(),
  })
  .strict();

export class SigningKeyRing {
  readonly keys: readonly SigningKey[];
  readonly source: string;

  constructor(keys: readonly SigningKey[], source: string) {
    this.keys = keys;
    this.source = source;
  }

  /** Reads the file; a file written before rotation existed (no `schedule`) has every key active from the start. */
  static parse(text: string, source: string): SigningKeyRing {
    let document: unknown;
    try {
      document = JSON.parse(text);
    } catch (err) {
      throw new ConfigurationError(source, '(document)', `is not valid JSON: ${(err as Error).message}`);
    }
    const parsed = fileSchema.safeParse(document);
    if (!parsed.success) {
      const [first = '(document): is not valid'] = describeIssues(parsed.error.issues);
      const cut = first.indexOf(': ');
      throw new ConfigurationError(source, first.slice(0, cut), first.slice(cut + 2));
    }
    const { keys, schedule = {} } = parsed.data;
    const kids = new Set<string>();
    for (const [i, key] of keys.entries()) {
      if (kids.has(key.kid)) throw new ConfigurationError(source, `keys.${i}.kid`, `repeats ${key.kid}`);
      kids.add(key.kid);
    }
    for (const kid of Object.keys(schedule)) {
      if (!kids.has(kid)) throw new ConfigurationError(source, `schedule.${kid}`, 'names no key in keys');
    }
    const ring = new SigningKeyRing(
      keys.map((jwk) => ({ jwk: { ...jwk, use: 'sig' } as SigningKey['jwk'], activeFrom: schedule[jwk.kid]?.activeFrom ?? 0, publishUntil: schedule[jwk.kid]?.publishUntil ?? null })),
      source,
    );
    ring.view(Date.now());
    return ring;
  }

  static read(file: string): { ring: SigningKeyRing; text: string } {
    const text = fs.readFileSync(file, 'utf8');
    return { ring: SigningKeyRing.parse(text, file), text };
  }

  /** A fresh ring: one RS256 and one ES256 key, active from `activeFrom`. */
  static async generate(activeFrom = 0, source = SIGNING_KEYS_FILE): Promise<SigningKeyRing> {
    return new SigningKeyRing(await generateKeys(activeFrom), source);
  }

  serialize(): string {
    const schedule: Record<string, { activeFrom: number; publishUntil: number | null }> = {};
    for (const key of this.keys) schedule[key.jwk.kid] = { activeFrom: key.activeFrom, publishUntil: key.publishUntil };
    return `${JSON.stringify({ keys: this.keys.map((key) => key.jwk), schedule }, null, 2)}\n`;
  }

  view(now: number): SigningKeyView {
    const published = this.keys.filter((key) => key.publishUntil === null || key.publishUntil > now);
    const signingKeys = SIGNING_ALGORITHMS.map((alg) => {
      let chosen: SigningKey | undefined;
      for (const key of published) {
        if (key.jwk.alg === alg && key.activeFrom <= now && (!chosen || key.activeFrom > chosen.activeFrom)) chosen = key;
      }
      if (!chosen) throw new ConfigurationError(this.source, 'schedule', `no ${alg} key signs at ${new Date(now).toISOString()}`);
      return chosen;
    });
    const rest = published.filter((key) => !signingKeys.includes(key));
    const changes = this.keys.flatMap((key) => [key.activeFrom, key.publishUntil ?? 0]).filter((at) => at > now);
    const signing = Object.fromEntries(signingKeys.map((key) => [key.jwk.alg, key.jwk.kid])) as Record<SigningAlgorithm, string>;
    const publishedKids = published.map((key) => key.jwk.kid);
    return {
      jwks: { keys: [...signingKeys, ...rest].map((key) => ({ ...key.jwk })) },
      signing,
      published: publishedKids,
      nextChange: changes.length ? Math.min(...changes) : null,
      fingerprint: createHash('sha256').update(JSON.stringify({ signing, published: [...publishedKids].sort() })).digest('hex'),
    };
  }

  /**
   * The ring after a rotation at `now`: new keys that sign from `activeFrom`; every older key without
   * an end stays published until `activeFrom + retainMs` (the longest a token it signed may live,
   * plus a margin); keys whose publication has ended are dropped.
   */
  async rotated(now: number, activeFrom: number, retainMs: number): Promise<{ ring: SigningKeyRing; added: SigningKey[]; retiring: SigningKey[]; removed: string[] }> {
    const added = await generateKeys(activeFrom);
    const removed = this.keys.filter((key) => key.publishUntil !== null && key.publishUntil <= now).map((key) => key.jwk.kid);
    const kept = this.keys
      .filter((key) => !removed.includes(key.jwk.kid))
      .map((key) => (key.publishUntil === null ? { ...key, publishUntil: activeFrom + retainMs } : key));
    const ring = new SigningKeyRing([...added, ...kept], this.source);
    ring.view(now);
    return { ring, added, retiring: kept, removed };
  }
}

async function generateKeys(activeFrom: number): Promise<SigningKey[]> {
  const keys: SigningKey[] = [];
  for (const alg of SIGNING_ALGORITHMS) {
    const { privateKey } = await jose.generateKeyPair(alg, { extractable: true, ...(alg === 'RS256' ? { modulusLength: 2048 } : {}) });
    const jwk = await jose.exportJWK(privateKey);
    keys.push({ jwk: { ...jwk, alg, use: 'sig', kid: await jose.calculateJwkThumbprint(jwk) }, activeFrom, publishUntil: null });
  }
  return keys;
}
