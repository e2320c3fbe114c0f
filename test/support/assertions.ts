import { strict as assert } from "node:assert";

/**
 * The error `promise` rejects with. Fails the test when it resolves instead, or rejects with
 * something that is not an Error.
 */
export async function rejectionOf(promise: Promise<unknown>, what = "the call"): Promise<Error> {
  const outcome = await promise.then(
    () => ({ rejected: false as const }),
    (error: unknown) => ({ rejected: true as const, error }),
  );
  if (!outcome.rejected) assert.fail(`expected ${what} to fail`);
  assert.ok(outcome.error instanceof Error, `${what} rejected with ${String(outcome.error)}, not an Error`);
  return outcome.error;
}
