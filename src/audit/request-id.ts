import { createHash } from 'node:crypto';

/**
 * The id that ties together every record of one login in the assertion log. Every authorization
 * request carries a fresh PKCE code_challenge (Brána requires it), so the id is derived from it: the
 * SeP can compute it too, which helps when a citizen calls its helpdesk.
 */
export function requestIdOf(codeChallenge: unknown): string | null {
  if (typeof codeChallenge !== 'string' || !codeChallenge) return null;
  return createHash('sha256').update('brana-request-id').update(codeChallenge).digest('base64url').slice(0, 22);
}
