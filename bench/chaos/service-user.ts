/**
 * Who runs the chaos suite's PostgreSQL and nginx. As an ordinary user: that user. As root:
 * PostgreSQL refuses root, and nginx's workers should not be root either, so both run as an
 * unprivileged account (BRANA_CHAOS_USER, default `postgres`) that owns their folders.
 */
import fs from 'node:fs';

export interface ServiceUser {
  name: string;
  /** For child_process.spawn: empty unless the suite runs as root. */
  spawnOptions: { uid?: number; gid?: number };
  /** Hands a folder (and what is in it) to this user. */
  own(dir: string): void;
}

export function serviceUser(): ServiceUser {
  if (process.getuid?.() !== 0) {
    return { name: process.env.USER ?? 'current user', spawnOptions: {}, own: () => undefined };
  }
  const name = process.env.BRANA_CHAOS_USER ?? 'postgres';
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((entry) => entry.split(':')[0] === name);
  if (!line) throw new Error(`run as root, the chaos suite needs an unprivileged user for PostgreSQL and nginx: there is no user ${name} (set BRANA_CHAOS_USER)`);
  const [, , uid, gid] = line.split(':').map(Number);
  return {
    name,
    spawnOptions: { uid: uid!, gid: gid! },
    own(dir) {
      fs.chownSync(dir, uid!, gid!);
      for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: false }) as string[]) fs.chownSync(`${dir}/${entry}`, uid!, gid!);
    },
  };
}
