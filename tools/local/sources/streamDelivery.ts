/**
 * How Lambda delivers a batch from a stream (Kinesis or Kafka) and what it does when the
 * function fails, as the mapping's settings say (docs/flows.md#event-sources):
 *
 * - a partial batch response (ReportBatchItemFailures) retries from the first record reported,
 *   with every record after it, as one retry of the batch;
 * - a function error (thrown, timed out, the container died) or an invalid response fails the
 *   whole batch; with bisect on, a failing batch of more than one record is split in two halves,
 *   each delivered on its own (a split does not use up a retry), otherwise it is retried whole;
 * - once a batch has been retried `maximumRetryAttempts` times, its records are handed to the
 *   on-failure destination and the shard (partition) moves on.
 *
 * The records of a shard are delivered in order, one batch at a time.
 */
import type { InvokeOutcome } from "../lambda/pool";

export interface StreamBatchPolicy<R> {
  readonly reportBatchItemFailures: boolean;
  readonly bisectOnError: boolean;
  /** -1: retry until the record expires (here: for ever). */
  readonly maximumRetryAttempts: number;
  /** The identifier a partial batch response names a record by (its `itemKey`). */
  readonly idOf: (record: R) => string;
  /** A reported item identifier as the same key; undefined when it is not a valid identifier. */
  readonly keyOfReported: (identifier: unknown) => string | undefined;
  readonly invoke: (records: readonly R[]) => Promise<InvokeOutcome>;
  /** Hands records given up on to the on-failure destination. */
  readonly park: (records: readonly R[], outcome: InvokeOutcome, attempts: number) => Promise<void>;
}

/** What Lambda makes of an invocation's outcome: all done, retry from a record, or the batch failed. */
export type Verdict = { kind: "ok" } | { kind: "partial"; from: number } | { kind: "failed" };

/** The verdict on a delivered batch, from the function's outcome (also what `npm run redrive` honours). */
export function verdictOf<R>(
  policy: Pick<StreamBatchPolicy<R>, "reportBatchItemFailures" | "idOf" | "keyOfReported">,
  records: readonly R[],
  outcome: Pick<InvokeOutcome, "result" | "error">,
): Verdict {
  if (outcome.error) return { kind: "failed" };
  if (!policy.reportBatchItemFailures) return { kind: "ok" };
  const result = outcome.result as { batchItemFailures?: unknown } | null | undefined;
  const failures = result?.batchItemFailures;
  // Lambda's complete successes: a null or empty response, a null or empty failure list.
  if (failures === undefined || failures === null || (Array.isArray(failures) && failures.length === 0)) return { kind: "ok" };
  if (!Array.isArray(failures)) return { kind: "failed" };
  const position = new Map(records.map((record, index) => [policy.idOf(record), index]));
  let from = records.length;
  for (const failure of failures) {
    const key = policy.keyOfReported((failure as { itemIdentifier?: unknown } | null)?.itemIdentifier);
    const index = key === undefined ? undefined : position.get(key);
    // An identifier that is not in the batch makes the whole response invalid: the batch failed.
    if (index === undefined) return { kind: "failed" };
    from = Math.min(from, index);
  }
  return { kind: "partial", from };
}

/** Delivers `records` (one shard's, in order) under the policy; resolves once every record is done or parked. */
export async function deliverBatch<R>(policy: StreamBatchPolicy<R>, records: readonly R[], attempts = 0): Promise<void> {
  if (records.length === 0) return;
  const outcome = await policy.invoke(records);
  const verdict = verdictOf(policy, records, outcome);
  if (verdict.kind === "ok") return;
  const retriesLeft = policy.maximumRetryAttempts < 0 || attempts < policy.maximumRetryAttempts;
  if (verdict.kind === "partial") {
    const rest = records.slice(verdict.from);
    if (retriesLeft) return deliverBatch(policy, rest, attempts + 1);
    return policy.park(rest, outcome, attempts + 1);
  }
  if (policy.bisectOnError && records.length > 1) {
    const half = Math.ceil(records.length / 2);
    await deliverBatch(policy, records.slice(0, half), attempts);
    return deliverBatch(policy, records.slice(half), attempts);
  }
  if (retriesLeft) return deliverBatch(policy, records, attempts + 1);
  return policy.park(records, outcome, attempts + 1);
}

/** The on-failure record's request and response context, as Lambda writes it. */
export function failureContext(functionArn: string, outcome: InvokeOutcome, attempts: number) {
  return {
    requestContext: {
      requestId: outcome.requestId,
      functionArn,
      condition: "RetryAttemptsExhausted",
      approximateInvokeCount: attempts,
    },
    responseContext: {
      statusCode: 200,
      executedVersion: "$LATEST",
      ...(outcome.error ? { functionError: "Unhandled" } : {}),
    },
    version: "1.0",
    timestamp: new Date().toISOString(),
  };
}
