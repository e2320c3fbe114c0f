/**
 * Partial batch responses: a batch reports the records that failed, by the identifier its
 * source uses (SQS messageId, Kinesis sequenceNumber, Kafka partition and offset), and Lambda
 * retries only those. Every failure is logged with what was wrong; nothing is dropped without a trace.
 */
import type { Logger } from "./logging";
import type { WorkerMetrics } from "./metrics";
import type { FailureReason } from "./telemetry";

/** A Kafka record (MSK or self-managed, provisioned mode): its `<topic>-<partition>` and offset. */
export interface KafkaItemIdentifier {
  readonly partition: string;
  readonly offset: number;
}

/** How a batch names a record: a string (SQS, Kinesis, DynamoDB streams) or, for Kafka, an object. */
export type ItemIdentifier = string | KafkaItemIdentifier;

export interface BatchResponse<Id extends ItemIdentifier = string> {
  batchItemFailures: { itemIdentifier: Id }[];
}

export interface RecordFailure<Id extends ItemIdentifier = string> {
  /** The record's identifier in the batch response. */
  readonly id: Id;
  /** What was wrong, for the log. */
  readonly reason: string;
  /** The `reason` dimension it is counted under (runtime/telemetry.ts). @default "error" */
  readonly kind?: FailureReason;
  /** The correlation id of the activity the record carried, when known. */
  readonly correlationId?: string;
}

/**
 * Receives after which SQS moves a message of a scoring queue to its dead-letter queue (the
 * redrive policy's `maxReceiveCount`, components/queue.ts): one delivery plus REQ-007's two
 * retries.
 *
 * SQS counts receives, not attempts. A message Lambda's pollers received but could not hand over
 * (the function throttled) has used a receive without being tried; so has a FIFO message held back
 * behind a failed one of its group, which the consumer reports failed untried
 * (stopGroupsAtFirstFailure). Left to SQS alone, the messages behind a message that fails three
 * times would reach the dead-letter queue with it, untried. So an SQS consumer parks a message
 * that fails on its last delivery (`ApproximateReceiveCount` at least this) in the dead-letter
 * queue itself (runtime/deadLetters.ts) and reports it done, and the messages behind it go on
 * in that same invocation. SQS's own move stays the backstop for what the consumer never answers
 * for (a crash, a timeout, throttling); the dead-letter queue's alarm and the redrive
 * (docs/redrive.md) cover those.
 */
export const SQS_MAX_RECEIVE_COUNT = 3;

/**
 * An identifier as one string, for maps and for the ids of outgoing messages: Kafka identifiers
 * are objects, compared by value (`<topic>-<partition>@<offset>`; a topic name holds no `@`).
 */
export const itemKey = (id: ItemIdentifier): string => (typeof id === "string" ? id : `${id.partition}@${id.offset}`);

/**
 * Logs each failure once and builds the response: identifiers in `batchOrder` when given (streams
 * resume from the first failed record), otherwise in the order first reported. With `metrics`,
 * each reported record is counted failed under its `kind`.
 */
export function partialBatchResponse<Id extends ItemIdentifier = string>(
  failures: readonly RecordFailure<Id>[],
  logger: Logger,
  batchOrder?: readonly Id[],
  metrics?: Pick<WorkerMetrics, "failed">,
): BatchResponse<Id> {
  if (batchOrder) {
    const position = new Map(batchOrder.map((id, index) => [itemKey(id), index]));
    failures = [...failures].sort((a, b) => position.get(itemKey(a.id))! - position.get(itemKey(b.id))!);
  }
  const reported: Id[] = [];
  const seen = new Set<string>();
  for (const failure of failures) {
    const key = itemKey(failure.id);
    if (seen.has(key)) continue;
    seen.add(key);
    reported.push(failure.id);
    metrics?.failed(failure.kind ?? "error");
    logger.warn("record failed", {
      record: failure.id,
      reason: failure.reason,
      ...(failure.correlationId === undefined ? {} : { correlationId: failure.correlationId }),
    });
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
      result.push({
        id: message.id,
        reason: `follows failed message ${stopped} in message group ${message.group}`,
        kind: "unprocessed",
      });
    }
  }
  return result;
}
