import fs from 'node:fs';
import path from 'node:path';
import type { AssertionLog } from '../audit/assertion-log.ts';
import { keysRotated } from '../audit/audit-events.ts';
import type { Database } from '../store/database.ts';
import { SigningKeyRing, type SigningKey } from '../keys/signing-keys.ts';

/** What `keys_rotated` records of these keys say they are for (the audit log's own key says 'audit-signing'). */
export const SIGNING_KEY_PURPOSE = 'oidc-signing';

/** One signing key as an operator sees it (public information only). */
export interface SigningKeyState {
  kid: string;
  alg: string;
  state: 'signing' | 'pending' | 'published' | 'retired';
  signsFrom: string;
  publishedUntil: string | null;
}

/** The signing keys in the file and what each does at `now` (`brana keys list`, the operators' console). */
export function signingKeyStates(file: string, now = Date.now()): SigningKeyState[] {
  const { ring } = SigningKeyRing.read(file);
  const view = ring.view(now);
  return ring.keys.map((key) => ({
    kid: key.jwk.kid,
    alg: key.jwk.alg,
    state: Object.values(view.signing).includes(key.jwk.kid) ? 'signing' : !view.published.includes(key.jwk.kid) ? 'retired' : key.activeFrom > now ? 'pending' : 'published',
    signsFrom: new Date(key.activeFrom).toISOString(),
    publishedUntil: key.publishUntil === null ? null : new Date(key.publishUntil).toISOString(),
  }));
}

/** A rotation the operator must fix something for first; nothing was changed. */
export class KeyRotationRefused extends Error {}

export interface RotationSummary {
  /** When the new keys start to sign (ISO). */
  signingFrom: string;
  added: Array<{ kid: string; alg: string }>;
  /** Older keys, still published until every token they signed has expired. */
  retiring: Array<{ kid: string; alg: string; publishedUntil: string }>;
  /** Keys whose publication had ended, now removed from the file. */
  removed: string[];
}

function writeFileSynced(file: string, content: string): void {
  const fd = fs.openSync(file, 'w', 0o600);
  try {
    fs.writeSync(fd, content);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * `brana keys rotate`: new ID-token signing keys that sign from `now + activateInMs`; older keys stay
 * published for `retainMs` after that. The file is replaced atomically (rename), inside the
 * transaction that writes `keys_rotated` to the assertion log, so a rotation is never done without
 * its record: if the record cannot be written the file is not replaced, and if the commit fails the
 * old file is put back.
 */
export async function rotateSigningKeys(
  file: string,
  db: Database,
  log: AssertionLog,
  options: { activateInMs: number; retainMs: number; actor: string; now?: number },
): Promise<RotationSummary> {
  const now = options.now ?? Date.now();
  if (!fs.existsSync(file)) throw new KeyRotationRefused(`${file}: no signing keys yet (Brána generates them on its first start; check BRANA_KEYS_DIR)`);
  const lock = `${file}.lock`;
  let lockFd: number;
  try {
    lockFd = fs.openSync(lock, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new KeyRotationRefused(`${lock}: another rotation is in progress (remove the file if none is)`);
    throw err;
  }
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    const { ring, text: previous } = SigningKeyRing.read(file);
    const activeFrom = now + options.activateInMs;
    const rotation = await ring.rotated(now, activeFrom, options.retainMs);
    const describe = (key: SigningKey) => ({ kid: key.jwk.kid, alg: key.jwk.alg });
    const summary: RotationSummary = {
      signingFrom: new Date(activeFrom).toISOString(),
      added: rotation.added.map(describe),
      retiring: rotation.retiring.map((key) => ({ ...describe(key), publishedUntil: new Date(key.publishUntil!).toISOString() })),
      removed: rotation.removed,
    };
    writeFileSynced(temporary, rotation.ring.serialize());
    let replaced = false;
    try {
      await db.transaction(async (trx) => {
        await log.append(keysRotated({ purpose: SIGNING_KEY_PURPOSE, actor: options.actor, change: summary }), trx);
        fs.renameSync(temporary, file);
        replaced = true;
      });
    } catch (err) {
      if (replaced) {
        writeFileSynced(temporary, previous);
        fs.renameSync(temporary, file);
      }
      throw err;
    }
    return summary;
  } finally {
    fs.rmSync(temporary, { force: true });
    fs.closeSync(lockFd);
    fs.rmSync(lock, { force: true });
  }
}
