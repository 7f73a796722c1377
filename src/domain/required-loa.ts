import { loaFromUri, strictestLoa, weakestLoa, type Loa } from './loa.ts';

/** The OIDC request parameters that bear on the level of assurance. */
export interface LoaRequest {
  acr_values?: unknown;
  scope?: unknown;
  claims?: unknown;
}

const LOA_SCOPES: Record<string, Loa> = { loalow: 'low', loasubstantial: 'substantial', loahigh: 'high' };

/** The weakest of several acceptable LoAs: asking for "substantial or high" means at least substantial. */
function minimumOf(values: unknown[]): Loa | undefined {
  const levels = values.map((value) => (typeof value === 'string' ? loaFromUri(value) : undefined)).filter((loa): loa is Loa => loa !== undefined);
  return levels.length ? levels.reduce(weakestLoa) : undefined;
}

function essentialAcr(claims: unknown): Loa | undefined {
  if (typeof claims !== 'string') return undefined;
  try {
    const acr = (JSON.parse(claims) as { id_token?: { acr?: { essential?: boolean; value?: unknown; values?: unknown } } }).id_token?.acr;
    if (!acr?.essential) return undefined;
    return minimumOf(Array.isArray(acr.values) ? acr.values : [acr.value]);
  } catch {
    return undefined;
  }
}

/**
 * The minimum LoA for one login: the SeP's registered minimum, `acr_values`, the NIA-style scopes
 * `loalow`/`loasubstantial`/`loahigh` and an essential `acr` claim. The strictest wins; a SeP can
 * ask for more than it registered, never for less.
 */
export function requiredLoa(registered: Loa, params: LoaRequest): Loa {
  const levels: Loa[] = [registered];
  if (typeof params.acr_values === 'string') {
    const fromAcr = minimumOf(params.acr_values.split(' '));
    if (fromAcr) levels.push(fromAcr);
  }
  if (typeof params.scope === 'string') {
    for (const scope of params.scope.split(' ')) if (LOA_SCOPES[scope]) levels.push(LOA_SCOPES[scope]);
  }
  const essential = essentialAcr(params.claims);
  if (essential) levels.push(essential);
  return strictestLoa(levels);
}
