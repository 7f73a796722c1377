/**
 * The Node.js flags a broker node runs with (`npm start`, the Dockerfile, the benchmarks and the
 * cluster tests), and why.
 *
 * `--experimental-async-context-frame` (Node 22; the default from Node 24): AsyncLocalStorage
 * without promise hooks. oidc-provider keeps its request context in AsyncLocalStorage, and Brána
 * keeps a request's database writes (and an interaction being resumed) there; with the hook-based
 * implementation every promise of a login pays init/before/after hooks. Measured with
 * `npm run bench` (SQLite, c=8, 12 s), three alternated pairs on a noisy 2-core machine: 49.6, 61.4,
 * 58.8 CPU-ms per login with it against 57.1, 62.0, 61.0 without — a few per cent, every time. The
 * whole test suite runs with it (`npm test` sets it in NODE_OPTIONS).
 */
export const BROKER_NODE_FLAGS: readonly string[] = ['--experimental-async-context-frame'];

/** Whether this process runs with them (a node started as `node src/main.ts` does not). */
export function runsWithBrokerNodeFlags(): boolean {
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  return BROKER_NODE_FLAGS.every((flag) => given.includes(flag));
}
