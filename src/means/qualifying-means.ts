import { loaAtLeast, type Loa } from '../domain/loa.ts';

/** What choosing needs to know of a means: its id and the LoA it is registered for. */
export interface MeansChoice {
  id: string;
  loa: Loa;
}

/** The means that can serve a login: registered for at least the minimum, and allowed for the SeP. */
export function qualifyingMeans<T extends MeansChoice>(all: readonly T[], minimum: Loa, allowedMeans: readonly string[] | null): T[] {
  return all.filter((means) => loaAtLeast(means.loa, minimum) && (allowedMeans === null || allowedMeans.includes(means.id)));
}
