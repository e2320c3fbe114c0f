import { SQSClient } from "@aws-sdk/client-sqs";
import { z } from "../shared/zod";
import { AWS_CLIENT_BOUNDS, awsClientConfig } from "../shared/runtime/awsClients";
import { defineWorker } from "../shared/runtime/contract";
import { CORRELATION_ID_ATTRIBUTE, createCorrelationRule } from "../shared/runtime/correlation";
import { loadEnvironment } from "../shared/runtime/environment";
import { instrumentHandler } from "../shared/runtime/handler";
import { createLogger } from "../shared/runtime/logging";
import { createWorkerMetrics } from "../shared/runtime/metrics";
import { decodeBase64Json, decodeWith, parseEvent } from "../shared/runtime/records";
import { globalUserIdSchema, isScorable } from "../shared/scoring/activity";
import { createEnqueuer, type EnqueueDependencies } from "../shared/scoring/enqueuer";
import {
  type KafkaReading,
  type KafkaRecord,
  kafkaEventSchema,
  kafkaHeader,
  kafkaParkedSource,
  kafkaRecordsInOrder,
  planKafkaActivity,
} from "../shared/scoring/kafka";
import { type EnqueueFromActivityStreamEnvironment, enqueueFromActivityStreamContract } from "./contract";

/**
 * Builds the reader of user-activity records (its schema once, at cold start). A record is an
 * activity `{ globalUserId, action, result, timestamp?, metadata?, correlationId? }`, base64 UTF-8 JSON: one that
 * is not fails; a valid one that is not scorable (another action, a result other than success) is skipped.
 * Its correlation id is the record's `correlationId` header, else the value's `correlationId`.
 */
export function createUserActivityReader(): (record: KafkaRecord) => KafkaReading {
  const schema = z.object({
    globalUserId: globalUserIdSchema(),
    action: z.string(),
    result: z.string(),
    // Producers write an absent optional field as null too; a missing or unusable time falls back to the record's.
    timestamp: z.nullish(z.union([z.string(), z.number()])),
    metadata: z.nullish(z.record(z.string(), z.unknown())),
    correlationId: z.optional(z.unknown()),
  });
  return (record) => {
    if (record.value === undefined) return { kind: "fail", reason: "record has no value" };
    if (record.value === null) return { kind: "fail", reason: "value is null (a tombstone), not an activity" };
    const data = decodeBase64Json(record.value, "value");
    if (!data.ok) return { kind: "fail", reason: data.reason };
    const decoded = decodeWith(schema, data.value, "activity");
    if (!decoded.ok) return { kind: "fail", reason: decoded.reason };
    const { globalUserId, action, result, timestamp } = decoded.value;
    // The header is the producer's transport metadata; the value's own field is the fallback.
    const correlationId = kafkaHeader(record, CORRELATION_ID_ATTRIBUTE) ?? decoded.value.correlationId;
    if (!isScorable(decoded.value)) {
      return {
        kind: "skip",
        reason: result === "success" ? `action ${action} is not scorable` : `${action} result is ${result}, not success`,
      };
    }
    return { kind: "activity", globalUserId, action, timestamp, ...(correlationId === undefined ? {} : { correlationId }) };
  };
}

/**
 * Scorable user activity to the account-activity FIFO queue: one message per record, grouped by
 * fan and deduplicated by the record's topic, partition and offset, in one `sendMessages` call per
 * batch. No rescore: rescores follow demand, purchase and queue-journey activity only.
 */
export function createEnqueueFromActivityStream(deps: EnqueueDependencies<EnqueueFromActivityStreamEnvironment>) {
  const eventSchema = kafkaEventSchema();
  const correlationOf = createCorrelationRule();
  return createEnqueuer(
    {
      worker: enqueueFromActivityStreamContract.name,
      sqs: deps.sqs,
      failureQueueUrl: deps.env.FAILURE_QUEUE_URL,
      logger: deps.logger,
      now: deps.now,
      metrics: deps.metrics,
    },
    {
      records: (event) =>
        kafkaRecordsInOrder(
          parseEvent(eventSchema, event, enqueueFromActivityStreamContract.name, "self-managed Kafka"),
          event,
        ).map((entry) => ({ ...entry, source: kafkaParkedSource(entry.record) })),
      read: createUserActivityReader(),
      plan: (id, record, reading, now) => planKafkaActivity(id, record, reading, now, correlationOf),
    },
    { queueUrl: deps.env.ACTIVITY_QUEUE_URL, fifo: true },
  );
}

export const enqueueFromActivityStream = defineWorker(enqueueFromActivityStreamContract, () => {
  const env = loadEnvironment(enqueueFromActivityStreamContract);
  const logger = createLogger(enqueueFromActivityStreamContract);
  const metrics = createWorkerMetrics(enqueueFromActivityStreamContract);
  const handler = createEnqueueFromActivityStream({
    env,
    logger,
    sqs: new SQSClient(awsClientConfig(AWS_CLIENT_BOUNDS.enqueue.sqs)),
    metrics,
  });
  return instrumentHandler({ logger, metrics }, handler);
});
