/** eIDAS levels of assurance, ordered low < substantial < high. */
export const LOA_LEVELS = ['low', 'substantial', 'high'] as const;
export type Loa = (typeof LOA_LEVELS)[number];

const URI_PREFIX = 'http://eidas.europa.eu/LoA/';

export function loaUri(loa: Loa): string {
  return URI_PREFIX + loa;
}

/** The LoA named by an eIDAS URI, or undefined for anything else (never guessed). */
export function loaFromUri(uri: string | undefined | null): Loa | undefined {
  if (!uri || !uri.startsWith(URI_PREFIX)) return undefined;
  const level = uri.slice(URI_PREFIX.length);
  return (LOA_LEVELS as readonly string[]).includes(level) ? (level as Loa) : undefined;
}

export function isLoa(value: unknown): value is Loa {
  return typeof value === 'string' && (LOA_LEVELS as readonly string[]).includes(value);
}

export function loaRank(loa: Loa): number {
  return LOA_LEVELS.indexOf(loa);
}

export function loaAtLeast(actual: Loa, minimum: Loa): boolean {
  return loaRank(actual) >= loaRank(minimum);
}

export function strictestLoa(levels: Iterable<Loa>): Loa {
  let strictest: Loa = 'low';
  for (const level of levels) if (loaRank(level) > loaRank(strictest)) strictest = level;
  return strictest;
}

export function weakestLoa(a: Loa, b: Loa): Loa {
  return loaRank(a) <= loaRank(b) ? a : b;
}

export const ALL_LOA_URIS = LOA_LEVELS.map(loaUri);
