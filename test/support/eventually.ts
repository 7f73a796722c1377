/**
 * Waits until `condition` holds, checking every few milliseconds. Not a timing assertion: the bound
 * only turns a wait that can never end into a failure that says what was awaited.
 */
export async function eventually(condition: () => Promise<boolean> | boolean, what: string, boundMs = 25_000): Promise<void> {
  const giveUp = Date.now() + boundMs;
  let last: unknown;
  while (Date.now() < giveUp) {
    try {
      if (await condition()) return;
    } catch (err) {
      last = err;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`never happened: ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
}
