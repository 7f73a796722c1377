/**
 * Test and production SeP registrations are kept apart: each registration belongs to one
 * environment, and a Brána instance accepts and serves only the SePs of its own.
 */
export const SEP_ENVIRONMENTS = ['test', 'production'] as const;
export type SepEnvironment = (typeof SEP_ENVIRONMENTS)[number];
