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
 *
 * `--heap-growing-percent=50`: after each full garbage collection V8 lets the heap grow to 1.5× what
 * is live, instead of the up to 4× its own heuristics allow on a machine with plenty of memory. A
 * login in flight lives in the database, not in the heap, so that headroom is only reserve; the
 * heap is not capped, so a load that needs more memory still gets it (no out-of-memory ending, as
 * `--max-old-space-size` would risk). Measured with 1,000 logins in flight (`npm run bench --
 * --in-flight 1000`): peak RSS 215 MB with it, 307 MB without (issue 14's target is 256 MB); CPU
 * per login in docs/BENCHMARKS.md.
 */
export const BROKER_NODE_FLAGS: readonly string[] = ['--experimental-async-context-frame', '--heap-growing-percent=50'];

/** Whether this process runs with them (a node started as `node src/main.ts` does not). */
export function runsWithBrokerNodeFlags(): boolean {
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  return BROKER_NODE_FLAGS.every((flag) => given.includes(flag));
}
