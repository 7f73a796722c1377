import assert from 'node:assert/strict';
import { UpstreamRejected } from '../../src/upstream/contract.ts';

/** The refusal an adapter throws for an answer; fails the test if the answer was accepted. */
export async function refusalOf(action: () => Promise<unknown>): Promise<UpstreamRejected> {
  try {
    await action();
  } catch (err) {
    if (err instanceof UpstreamRejected) return err;
    throw err;
  }
  assert.fail('the answer was accepted');
}
