/**
 * Parking SQS messages in their source queue's dead-letter queue, by the consumer itself
 * (docs/flows.md#poison-messages): a message that can never succeed (not JSON, not an activity
 * message) at once, and one that failed on its last delivery (SQS_MAX_RECEIVE_COUNT, runtime/batch.ts)
 * before SQS would move it. The worker sends the message with its body unchanged, its message
 * attributes, and two of its own: `parkedBy` (the worker) and `parkedReason` (why); then it
 * reports the message done, so it is not retried and no longer holds up its FIFO message group.
 *
 * SQS's redrive policy moves messages too, but only after maxReceiveCount receives, without a
 * reason, and with every later message of a FIFO group that was held back behind them; Lambda
 * offers no on-failure destination for SQS sources. So the worker sends them itself, with
 * SendMessageBatch (runtime/sqs.ts).
 *
 * On a FIFO queue the message keeps its message group, and its source messageId is the
 * deduplication id: a message parked twice within five minutes (an invocation that parked it and
 * then timed out) is one message on the dead-letter queue. A message that could not be parked is
 * answered as a failure, which its source retries: nothing is lost. The redrive
 * (tools/redrive/deadLetter.ts) moves a parked message back to its source queue without the two
 * attributes added here.
 */
import type { MessageAttributeValue, SQSClient } from "@aws-sdk/client-sqs";
import { z } from "../zod";
import type { RecordFailure } from "./batch";
import { isHttpsUrl } from "./environment";
import type { Logger } from "./logging";
import { failureReasonOf, type WorkerMetrics } from "./metrics";
import type { SqsRecord } from "./records";
import { type OutgoingMessage, type SendOptions, sendMessages } from "./sqs";
import type { FailureReason } from "./telemetry";

/** The String attribute naming the worker that parked a message. */
export const PARKED_BY_ATTRIBUTE = "parkedBy";
/** The String attribute saying why the worker parked it. */
export const PARKED_REASON_ATTRIBUTE = "parkedReason";
/** The attributes a parking adds, and a redrive removes. */
export const PARKED_ATTRIBUTES: readonly string[] = [PARKED_BY_ATTRIBUTE, PARKED_REASON_ATTRIBUTE];

/** Longest `parkedReason` sent: the reason is for a reader, and the message's size is bounded. */
export const MAX_PARKED_REASON_LENGTH = 1000;

/** An SQS queue's ARN: `arn:<partition>:sqs:<region>:<account>:<name>`. */
const QUEUE_ARN = /^arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,80}(?:\.fifo)?$/;

/**
 * The variable `DEAD_LETTER_QUEUE_URLS`: a JSON object mapping each source queue's ARN (the
 * `eventSourceARN` of its messages) to the URL of its dead-letter queue; a FIFO queue's
 * dead-letter queue is FIFO too.
 */
export const deadLetterQueueUrlsVariable = () =>
  z.pipe(
    z.pipe(
      z.string(),
      z.transform((text, context) => {
        try {
          return JSON.parse(text) as unknown;
        } catch {
          context.issues.push({
            code: "custom",
            message: "expected a JSON object mapping each source queue ARN to its dead-letter queue URL; the value is not JSON",
            input: text,
          });
          return z.NEVER;
        }
      }),
    ),
    z
      .record(
        z.string().check(z.regex(QUEUE_ARN, "expected an SQS queue ARN as the key")),
        z.string().check(z.refine(isHttpsUrl, "expected the dead-letter queue's https URL")),
        { error: "expected a JSON object mapping each source queue ARN to its dead-letter queue URL" },
      )
      .check(
        z.refine((queues) => Object.keys(queues).length > 0, "expected at least one source queue"),
        z.superRefine((queues, context) => {
          for (const [arn, url] of Object.entries(queues)) {
            if (arn.endsWith(".fifo") !== url.endsWith(".fifo")) {
              context.addIssue({
                code: "custom",
                path: [arn],
                message: "a FIFO queue's dead-letter queue is a FIFO queue, and a standard queue's a standard queue",
              });
            }
          }
        }),
      ),
  );

/** A message to park, and why. */
export interface ParkRequest {
  readonly record: SqsRecord;
  /** Why, for the `parkedReason` attribute and the log. */
  readonly reason: string;
  /** What it is counted under in RecordsParked. */
  readonly kind: FailureReason;
  readonly correlationId?: string;
}

export interface DeadLetterParkingOptions {
  readonly sqs: SQSClient;
  /** Source queue ARN → dead-letter queue URL (DEAD_LETTER_QUEUE_URLS). */
  readonly queueUrls: Readonly<Record<string, string>>;
  /** The worker's name, sent as `parkedBy`. */
  readonly worker: string;
  readonly logger: Logger;
  /** @default none */
  readonly metrics?: Pick<WorkerMetrics, "parked">;
  /** Attempts and backoff of the sends. @default runtime/sqs.ts's */
  readonly send?: Omit<SendOptions, "ordered">;
}

/** A queue's name, the last part of its URL. */
const queueNameOf = (url: string) => url.slice(url.lastIndexOf("/") + 1);

/**
 * A message's attributes as Lambda delivers them (`{stringValue | binaryValue (base64), dataType}`),
 * in SQS's shape for sending again; the parking attributes of an earlier parking are left out.
 */
function attributesOf(record: SqsRecord): Record<string, MessageAttributeValue> {
  const attributes: Record<string, MessageAttributeValue> = {};
  for (const [name, value] of Object.entries(record.messageAttributes ?? {})) {
    if (PARKED_ATTRIBUTES.includes(name) || typeof value !== "object" || value === null) continue;
    const { dataType, stringValue, binaryValue } = value as { dataType?: unknown; stringValue?: unknown; binaryValue?: unknown };
    if (typeof dataType !== "string") continue;
    if (typeof stringValue === "string") attributes[name] = { DataType: dataType, StringValue: stringValue };
    else if (typeof binaryValue === "string")
      attributes[name] = { DataType: dataType, BinaryValue: Buffer.from(binaryValue, "base64") };
  }
  return attributes;
}

/** The reason as sent: at most MAX_PARKED_REASON_LENGTH characters. */
const boundedReason = (reason: string) =>
  reason.length <= MAX_PARKED_REASON_LENGTH ? reason : `${reason.slice(0, MAX_PARKED_REASON_LENGTH - 1)}…`;

/**
 * Builds the parking of a worker. `park` sends each message to the dead-letter queue of the queue
 * it came from, logs `record parked` (WARN: record, reason, correlation id; never the body) and
 * counts it parked; it answers, as failures for the batch response, the messages it could not
 * park, with why. It never throws.
 */
export function createDeadLetterParking(options: DeadLetterParkingOptions) {
  const { sqs, queueUrls, worker, logger } = options;

  return async function park(requests: readonly ParkRequest[]): Promise<RecordFailure[]> {
    const failures: RecordFailure[] = [];
    const notParked = (request: ParkRequest, why: string) =>
      failures.push({
        id: request.record.messageId,
        reason: `not parked (${why}); it was to be parked because ${request.reason}`,
        kind: failureReasonOf(why),
        ...(request.correlationId === undefined ? {} : { correlationId: request.correlationId }),
      });

    const byQueue = new Map<string, ParkRequest[]>();
    for (const request of requests) {
      const source = request.record.eventSourceARN;
      const url = source === undefined ? undefined : queueUrls[source];
      if (url === undefined) {
        notParked(
          request,
          `DEAD_LETTER_QUEUE_URLS names no dead-letter queue for ${source ?? "a message without eventSourceARN"}`,
        );
        continue;
      }
      byQueue.set(url, [...(byQueue.get(url) ?? []), request]);
    }

    await Promise.all(
      [...byQueue].map(async ([url, parked]) => {
        const fifo = url.endsWith(".fifo");
        const messages: OutgoingMessage[] = parked.map(({ record, reason }) => ({
          id: record.messageId,
          body: record.body,
          ...(fifo ? { groupId: record.attributes.MessageGroupId, deduplicationId: record.messageId } : {}),
          attributes: {
            ...attributesOf(record),
            [PARKED_BY_ATTRIBUTE]: worker,
            [PARKED_REASON_ATTRIBUTE]: boundedReason(reason),
          },
        }));
        // In batch order on a FIFO queue, so each group's parked messages stay in order.
        const outcome = await sendMessages(sqs, url, messages, { ...options.send, ordered: fifo });
        const refused = new Map(outcome.failed.map((failure) => [failure.id, failure.reason]));
        for (const request of parked) {
          const why = refused.get(request.record.messageId);
          if (why !== undefined) {
            notParked(request, `${queueNameOf(url)}: ${why}`);
            continue;
          }
          options.metrics?.parked(request.kind);
          logger.warn("record parked", {
            record: request.record.messageId,
            reason: request.reason,
            ...(request.correlationId === undefined ? {} : { correlationId: request.correlationId }),
          });
        }
      }),
    );
    return failures;
  };
}

export type DeadLetterParking = ReturnType<typeof createDeadLetterParking>;
