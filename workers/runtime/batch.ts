/**
 * Partial batch responses: a batch reports the records that failed, by the identifier its
 * source uses (SQS messageId, Kinesis sequenceNumber), and Lambda retries only those. Every
 * failure is logged with what was wrong; nothing is dropped without a trace.
 */
import type { Logger } from "./logging";

export interface BatchResponse {
  batchItemFailures: { itemIdentifier: string }[];
}

export interface RecordFailure {
  /** The record's identifier in the batch response. */
  readonly id: string;
  /** What was wrong, for the log. */
  readonly reason: string;
}

/** Logs each failure once and builds the response, identifiers in the order first reported. */
export function partialBatchResponse(failures: readonly RecordFailure[], logger: Logger): BatchResponse {
  const reported: string[] = [];
  for (const failure of failures) {
    if (reported.includes(failure.id)) continue;
    reported.push(failure.id);
    logger.warn("record failed", { record: failure.id, reason: failure.reason });
  }
  return { batchItemFailures: reported.map((itemIdentifier) => ({ itemIdentifier })) };
}

/**
 * FIFO order: once a message of a group fails, every later message of that group in the batch
 * fails too (with a reason naming the first), so the group is retried from where it stopped.
 * `messages` are in batch order.
 */
export function stopGroupsAtFirstFailure(
  messages: readonly { readonly id: string; readonly group: string }[],
  failures: readonly RecordFailure[],
): RecordFailure[] {
  const failed = new Map(failures.map((failure) => [failure.id, failure]));
  const stoppedAt = new Map<string, string>();
  const result: RecordFailure[] = [];
  for (const message of messages) {
    const own = failed.get(message.id);
    const stopped = stoppedAt.get(message.group);
    if (own) {
      result.push(own);
      if (stopped === undefined) stoppedAt.set(message.group, message.id);
    } else if (stopped !== undefined) {
      result.push({ id: message.id, reason: `follows failed message ${stopped} in message group ${message.group}` });
    }
  }
  return result;
}
