/**
 * Poison records parked by the worker itself (docs/worker-contract.md#parked-records). A stream
 * record that can never succeed (undecodable, invalid, no fan id) is not reported as a batch item
 * failure, which would hold up its shard or partition through Lambda's retries only for Lambda to
 * hand a pointer to the failure queue in the end: the worker sends the record itself, whole, with
 * why, to that same queue (its mapping's on-failure destination, `FAILURE_QUEUE_URL`) on its first
 * delivery, and reports it done.
 *
 * This module owns the parked-record document (format version 1): its builder, which the workers
 * use, and its reader, which the tools use (the local system's ledger, the redrive). A record the
 * queue cannot take (the send failed, or the document would be over SQS's message limit) is given
 * back as a batch item failure, so nothing is lost: Lambda retries it and, in the end, its own
 * pointer names it.
 */
import type { SQSClient } from "@aws-sdk/client-sqs";
import { z } from "../zod";
import { type ItemIdentifier, itemKey, type RecordFailure } from "./batch";
import { CORRELATION_ID_ATTRIBUTE } from "./correlation";
import { describeIssues } from "./issues";
import type { Logger } from "./logging";
import { discardedMetrics, failureReasonOf, type WorkerMetrics } from "./metrics";
import type { KinesisRecord } from "./records";
import { messageSize, type OutgoingMessage, sendMessages, SQS_MESSAGE_LIMIT_BYTES } from "./sqs";
import type { FailureReason } from "./telemetry";

/** The version of the parked-record document this code writes and reads (its `parkedRecord` field). */
export const PARKED_RECORD_VERSION = 1;

/** The String message attributes a parked record is sent with. */
export const PARKED_RECORD_ATTRIBUTES = {
  /** The worker that parked it. */
  parkedBy: "parkedBy",
  /** The `reason` dimension it is counted under (runtime/telemetry.ts). */
  failureReason: "failureReason",
  /** The activity's correlation id, when known. */
  correlationId: CORRELATION_ID_ATTRIBUTE,
} as const;

/** Where a parked record was read: its stream and position, or its topic, partition and offset. */
export type ParkedSource =
  | { readonly kind: "kinesis"; readonly eventSourceARN?: string; readonly sequenceNumber: string }
  | {
      readonly kind: "kafka";
      readonly eventSourceARN?: string;
      readonly topic: string;
      readonly partition: number;
      readonly offset: number;
    };

/** Where a Kinesis record was read, as its parked record names it. */
export function kinesisParkedSource(record: KinesisRecord): ParkedSource {
  return {
    kind: "kinesis",
    ...(record.eventSourceARN === undefined ? {} : { eventSourceARN: record.eventSourceARN }),
    sequenceNumber: record.kinesis.sequenceNumber,
  };
}

/** The body of a parked record's message, as JSON. */
export interface ParkedRecord {
  /** The format version: PARKED_RECORD_VERSION. */
  readonly parkedRecord: number;
  /** The worker that parked it. */
  readonly worker: string;
  /** Why it can never succeed, for people. */
  readonly reason: string;
  /** The `reason` dimension it is counted under (`invalid`, mostly). */
  readonly failureReason: string;
  /** When it was parked, ISO 8601. */
  readonly parkedAt: string;
  readonly correlationId?: string;
  readonly source: ParkedSource;
  /** The record exactly as Lambda delivered it in the event. */
  readonly record: Record<string, unknown>;
}

/** Builds the document a record is parked as. */
export function parkedRecordDocument(input: {
  readonly worker: string;
  readonly reason: string;
  readonly failureReason: FailureReason;
  readonly parkedAt: Date;
  readonly correlationId?: string;
  readonly source: ParkedSource;
  readonly record: unknown;
}): ParkedRecord {
  return {
    parkedRecord: PARKED_RECORD_VERSION,
    worker: input.worker,
    reason: input.reason,
    failureReason: input.failureReason,
    parkedAt: input.parkedAt.toISOString(),
    ...(input.correlationId === undefined ? {} : { correlationId: input.correlationId }),
    source: input.source,
    record: input.record as Record<string, unknown>,
  };
}

/**
 * Builds the schema of a parked-record document, for tools. Tolerant, as every reader of an
 * internal message is (docs/rules.md): fields it does not know are ignored, and a `failureReason`
 * it does not know is kept as it is.
 */
export const parkedRecordSchema = () => {
  const position = z.number().check(z.int(), z.gte(0));
  return z.object({
    parkedRecord: z.literal(PARKED_RECORD_VERSION),
    worker: z.string().check(z.minLength(1)),
    reason: z.string(),
    failureReason: z.string().check(z.minLength(1)),
    parkedAt: z.iso.datetime({ offset: true }),
    correlationId: z.optional(z.string().check(z.minLength(1))),
    source: z.discriminatedUnion("kind", [
      z.object({
        kind: z.literal("kinesis"),
        eventSourceARN: z.optional(z.string().check(z.minLength(1))),
        sequenceNumber: z.string().check(z.regex(/^\d+$/, "expected a Kinesis sequence number (digits)")),
      }),
      z.object({
        kind: z.literal("kafka"),
        eventSourceARN: z.optional(z.string().check(z.minLength(1))),
        topic: z.string().check(z.minLength(1)),
        partition: position,
        offset: position,
      }),
    ]),
    record: z.record(z.string(), z.unknown()),
  });
};

/** Whether a parsed message body is meant as a parked-record document (it has `parkedRecord`). */
export function looksParked(value: unknown): boolean {
  return typeof value === "object" && value !== null && !Array.isArray(value) && "parkedRecord" in value;
}

/** A parked-record document read back, or why the body is not one this code can read. */
export type ParkedRecordReading =
  { readonly ok: true; readonly value: ParkedRecord } | { readonly ok: false; readonly reason: string };

/** Reads a parked-record document from a message body (JSON text) or from the parsed body. */
export function readParkedRecord(body: unknown): ParkedRecordReading {
  let value = body;
  if (typeof body === "string") {
    try {
      value = JSON.parse(body) as unknown;
    } catch {
      return { ok: false, reason: "the body is not JSON" };
    }
  }
  if (!looksParked(value)) return { ok: false, reason: "the body has no parkedRecord field: not a parked record" };
  const version = (value as { parkedRecord: unknown }).parkedRecord;
  if (typeof version === "number" && Number.isInteger(version) && version > PARKED_RECORD_VERSION) {
    return {
      ok: false,
      reason: `parked-record format version ${version} is newer than this reader knows (${PARKED_RECORD_VERSION})`,
    };
  }
  const parsed = parkedRecordSchema().safeParse(value);
  if (!parsed.success) {
    return {
      ok: false,
      reason: `not a parked record as the workers write it: ${describeIssues(parsed.error, "(document)").join("; ")}`,
    };
  }
  return { ok: true, value: parsed.data };
}

/** A record to park: its identifier in the batch, why, and where it came from, as delivered. */
export interface PoisonRecord<Id extends ItemIdentifier = string> {
  readonly id: Id;
  readonly reason: string;
  /** @default "invalid" */
  readonly kind?: FailureReason;
  readonly correlationId?: string;
  readonly source: ParkedSource;
  /** The record exactly as Lambda delivered it in the event. */
  readonly record: unknown;
}

/**
 * Parks a batch's poison records; answers those it could not park, as the batch item failures
 * they become (in the order given).
 */
export type Parker = <Id extends ItemIdentifier>(records: readonly PoisonRecord<Id>[]) => Promise<RecordFailure<Id>[]>;

export interface ParkerOptions {
  /** The worker's name, written into each document and its `parkedBy` attribute. */
  readonly worker: string;
  readonly sqs: SQSClient;
  /** The failure queue: the worker's mapping's on-failure destination. */
  readonly queueUrl: string;
  readonly logger: Logger;
  /** Parked records, by reason. @default none */
  readonly metrics?: WorkerMetrics;
  readonly now?: () => Date;
}

/**
 * The parker of a worker, built once per container: documents sent with `sendMessages` (in
 * batches of ten, within SQS's limits; entries SQS refuses for now retried), each parked record
 * counted `parked(reason)` and logged `record parked` at WARN (never its payload).
 */
export function createParker(options: ParkerOptions): Parker {
  const { logger, sqs, queueUrl, worker } = options;
  const metrics = options.metrics ?? discardedMetrics();
  const clock = options.now ?? (() => new Date());

  return async function park<Id extends ItemIdentifier>(records: readonly PoisonRecord<Id>[]): Promise<RecordFailure<Id>[]> {
    if (records.length === 0) return [];
    const parkedAt = clock();
    const failures: RecordFailure<Id>[] = [];
    const sending: { poison: PoisonRecord<Id>; kind: FailureReason; message: OutgoingMessage }[] = [];
    for (const poison of records) {
      const kind = poison.kind ?? "invalid";
      const { correlationId } = poison;
      const document = parkedRecordDocument({
        worker,
        reason: poison.reason,
        failureReason: kind,
        parkedAt,
        correlationId,
        source: poison.source,
        record: poison.record,
      });
      const message: OutgoingMessage = {
        id: itemKey(poison.id),
        body: JSON.stringify(document),
        attributes: {
          [PARKED_RECORD_ATTRIBUTES.parkedBy]: worker,
          [PARKED_RECORD_ATTRIBUTES.failureReason]: kind,
          ...(correlationId === undefined ? {} : { [PARKED_RECORD_ATTRIBUTES.correlationId]: correlationId }),
        },
      };
      const size = messageSize(message);
      if (size > SQS_MESSAGE_LIMIT_BYTES) {
        // Never cut down to fit: the record fails instead, and Lambda's own pointer names it in the end.
        logger.warn("record not parked: too large", {
          record: poison.id,
          reason: poison.reason,
          bytes: size,
          limit: SQS_MESSAGE_LIMIT_BYTES,
          ...(correlationId === undefined ? {} : { correlationId }),
        });
        failures.push({
          id: poison.id,
          reason: `${poison.reason}; not parked: as a parked record it is ${size} bytes, over SQS's ${SQS_MESSAGE_LIMIT_BYTES}, so it is failed for the mapping's on-failure destination to name`,
          kind,
          ...(correlationId === undefined ? {} : { correlationId }),
        });
        continue;
      }
      sending.push({ poison, kind, message });
    }

    const sent = await sendMessages(
      sqs,
      queueUrl,
      sending.map(({ message }) => message),
    );
    const unsent = new Map(sent.failed.map((failed) => [failed.id, failed.reason]));
    for (const { poison, kind, message } of sending) {
      const { correlationId } = poison;
      const why = unsent.get(message.id);
      if (why !== undefined) {
        // Transient: the record goes back to its source, and is parked when it comes again.
        failures.push({
          id: poison.id,
          reason: `${poison.reason}; not parked: ${why}`,
          kind: failureReasonOf(why),
          ...(correlationId === undefined ? {} : { correlationId }),
        });
        continue;
      }
      metrics.parked(kind);
      logger.warn("record parked", {
        record: poison.id,
        reason: poison.reason,
        ...(correlationId === undefined ? {} : { correlationId }),
      });
    }
    if (sent.failed.length > 0) {
      logger.error("records not parked", { queue: queueUrl, count: sent.failed.length, reason: sent.failed[0]!.reason });
    }
    return failures;
  };
}

/** The variable holding the failure queue the worker parks records in: its mapping's on-failure destination. */
export const failureQueueVariables = () => ({
  /** The stream mappings' failure queue (a standard queue). */
  FAILURE_QUEUE_URL: z.url({ protocol: /^https?$/ }),
});

/** The access a worker that parks records needs, on the failure queue. */
export const PARKING_ACCESS = {
  parked_records_producer: {
    actions: ["sqs:SendMessage"],
    on: "the stream failure queue (the mapping's on-failure destination)",
  },
};
