/**
 * What a stream mapping's on-failure destination holds: the records Lambda writes there when it
 * gives up on a batch (the invocation's context and a pointer to the records, not the records
 * themselves), and the parked-record documents of the poison records the workers park there
 * themselves (workers/shared/runtime/parking.ts: the record itself, with its source and reason).
 *
 * Kinesis:
 *
 * ```json
 * { "requestContext": { "requestId": "…", "functionArn": "arn:aws:lambda:…:function:…",
 *                       "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 3 },
 *   "responseContext": { "statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled" },
 *   "version": "1.0", "timestamp": "…",
 *   "KinesisBatchInfo": { "shardId": "shardId-000000000001", "startSequenceNumber": "4960…",
 *                         "endSequenceNumber": "4960…", "approximateArrivalOfFirstRecord": "…",
 *                         "approximateArrivalOfLastRecord": "…", "batchSize": 3,
 *                         "streamArn": "arn:aws:kinesis:…:stream/…" } }
 * ```
 *
 * Self-managed Kafka: the same context with `KafkaBatchInfo` {batchSize, bootstrapServers,
 * consumerGroupId, payloadSize, recordsInfo: {"<topic>-<partition>": {firstRecordOffset,
 * lastRecordOffset, firstRecordTimestamp, lastRecordTimestamp}}}.
 *
 * Asynchronous invocation (an S3 notification Lambda gave up on): the same context (functionArn
 * qualified, condition `RetriesExhausted`) with the event itself as `requestPayload`, and the
 * function's last answer as `responsePayload`.
 */
import { z } from "zod";
import { looksParked, type ParkedRecord, readParkedRecord } from "../../workers/shared/runtime/parking";

const sequenceNumber = z.string().regex(/^\d+$/, "expected a Kinesis sequence number (digits)");
const timestamp = z.iso.datetime({ offset: true });

const requestContext = z.object({
  requestId: z.string(),
  functionArn: z.string().regex(/^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[^:]+(:.+)?$/, "expected a function ARN"),
  condition: z.string(),
  approximateInvokeCount: z.number().int().nonnegative(),
});

const kinesisFailure = z.object({
  requestContext,
  KinesisBatchInfo: z.object({
    shardId: z.string().min(1),
    startSequenceNumber: sequenceNumber,
    endSequenceNumber: sequenceNumber,
    approximateArrivalOfFirstRecord: timestamp,
    approximateArrivalOfLastRecord: timestamp,
    batchSize: z.number().int().positive(),
    streamArn: z.string().regex(/^arn:aws[a-z-]*:kinesis:[a-z0-9-]+:\d{12}:stream\/.+$/, "expected a stream ARN"),
  }),
});

const kafkaFailure = z.object({
  requestContext,
  KafkaBatchInfo: z.object({
    batchSize: z.number().int().positive(),
    bootstrapServers: z.string().optional(),
    consumerGroupId: z.string().optional(),
    recordsInfo: z.record(
      z.string(),
      z.object({
        firstRecordOffset: z.string(),
        lastRecordOffset: z.string(),
        firstRecordTimestamp: z.string().optional(),
        lastRecordTimestamp: z.string().optional(),
      }),
    ),
  }),
});

const asyncFailure = z.object({
  requestContext,
  requestPayload: z.unknown().refine((payload) => payload !== undefined, "the request payload is missing"),
});

export type KinesisFailure = z.infer<typeof kinesisFailure>;
export type AsyncFailure = z.infer<typeof asyncFailure>;
export type KafkaFailure = z.infer<typeof kafkaFailure>;

export type FailureRecord =
  | { readonly kind: "kinesis"; readonly record: KinesisFailure }
  | { readonly kind: "kafka"; readonly record: KafkaFailure }
  | { readonly kind: "async"; readonly record: AsyncFailure }
  | { readonly kind: "parked"; readonly record: ParkedRecord }
  | { readonly kind: "unrecognised"; readonly reason: string };

/** zod's issues on one line: `path: message; …`. */
function issues(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join(".") || "(record)"}: ${issue.message}`).join("; ");
}

/**
 * What an on-failure message's body holds: a Kinesis, Kafka or asynchronous failure record, a
 * parked record, or none (with why).
 */
export function parseFailureRecord(body: string | undefined): FailureRecord {
  let value: unknown;
  try {
    value = JSON.parse(body ?? "");
  } catch {
    return { kind: "unrecognised", reason: "the body is not JSON" };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { kind: "unrecognised", reason: "the body is not a JSON object" };
  }
  if (looksParked(value)) {
    const parked = readParkedRecord(value);
    return parked.ok ? { kind: "parked", record: parked.value } : { kind: "unrecognised", reason: parked.reason };
  }
  const kinesis = "KinesisBatchInfo" in value;
  const kafka = "KafkaBatchInfo" in value;
  if (kinesis && kafka) return { kind: "unrecognised", reason: "the body holds both KinesisBatchInfo and KafkaBatchInfo" };
  if (kinesis) {
    const parsed = kinesisFailure.safeParse(value);
    return parsed.success
      ? { kind: "kinesis", record: parsed.data }
      : { kind: "unrecognised", reason: `not a Kinesis failure record as Lambda writes it: ${issues(parsed.error)}` };
  }
  if (kafka) {
    const parsed = kafkaFailure.safeParse(value);
    return parsed.success
      ? { kind: "kafka", record: parsed.data }
      : { kind: "unrecognised", reason: `not a Kafka failure record as Lambda writes it: ${issues(parsed.error)}` };
  }
  if ("requestPayload" in value) {
    const parsed = asyncFailure.safeParse(value);
    return parsed.success
      ? { kind: "async", record: parsed.data }
      : { kind: "unrecognised", reason: `not an asynchronous invocation's failure record: ${issues(parsed.error)}` };
  }
  return {
    kind: "unrecognised",
    reason: "no KinesisBatchInfo, KafkaBatchInfo, requestPayload or parkedRecord: not a failure record Lambda or a worker writes",
  };
}
