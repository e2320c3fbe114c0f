import { SQSClient } from "@aws-sdk/client-sqs";
import { type BatchResponse, type KafkaItemIdentifier, partialBatchResponse, type RecordFailure } from "../runtime/batch";
import { defineWorker } from "../runtime/contract";
import { loadEnvironment } from "../runtime/environment";
import { createLogger, type Logger } from "../runtime/logging";
import { parseEvent } from "../runtime/records";
import { sendMessages } from "../runtime/sqs";
import { outgoingMessage, type PlannedActivity } from "../scoring/enqueue";
import {
  createUserActivityReader,
  type KafkaReading,
  kafkaEventSchema,
  kafkaRecordKey,
  kafkaRecordsInOrder,
  planKafkaActivity,
} from "../scoring/kafka";
import { type EnqueueFromActivityStreamEnvironment, enqueueFromActivityStreamContract } from "./contract";

/** Lambda's answer to a Kafka batch: the failed records by partition and offset. */
export type KafkaBatchResponse = BatchResponse<KafkaItemIdentifier>;

export interface EnqueueFromActivityStreamDependencies {
  readonly env: EnqueueFromActivityStreamEnvironment;
  readonly sqs: SQSClient;
  readonly logger: Logger;
  readonly now?: () => Date;
}

/**
 * Scorable user activity to the account-activity FIFO queue: one message per record, grouped by
 * fan and deduplicated by the record's topic, partition and offset, in one `sendMessages` call per
 * batch. No rescore: rescores follow demand, purchase and queue-journey activity only.
 */
export function createEnqueueFromActivityStream(deps: EnqueueFromActivityStreamDependencies) {
  const { env, logger, sqs } = deps;
  const clock = deps.now ?? (() => new Date());
  const eventSchema = kafkaEventSchema();
  const read = createUserActivityReader();

  return async function enqueueFromActivityStream(event: unknown): Promise<KafkaBatchResponse> {
    const parsed = parseEvent(eventSchema, event, enqueueFromActivityStreamContract.name, "self-managed Kafka");
    const records = kafkaRecordsInOrder(parsed);
    const now = clock();
    const failures: RecordFailure<KafkaItemIdentifier>[] = [];
    const activities: PlannedActivity[] = [];
    const identifiers = new Map<string, KafkaItemIdentifier>();
    let skipped = 0;

    for (const { id, record } of records) {
      let reading: KafkaReading;
      try {
        reading = read(record);
      } catch (error) {
        // The reader says what is wrong rather than throw; if it throws, it fails only its record.
        reading = { kind: "fail", reason: `record could not be read: ${(error as Error).message}` };
      }
      if (reading.kind === "fail") failures.push({ id, reason: reading.reason });
      else if (reading.kind === "skip") {
        skipped += 1;
        logger.debug("record skipped", { record: id, reason: reading.reason });
      } else {
        identifiers.set(kafkaRecordKey(id), id);
        activities.push(planKafkaActivity(id, record, reading, now));
      }
    }

    // In batch order, so a fan's messages reach its group in the order of the topic.
    const sent = await sendMessages(
      sqs,
      env.ACTIVITY_QUEUE_URL,
      activities.map((activity) => outgoingMessage(activity, true)),
      { ordered: true },
    );
    for (const failed of sent.failed) failures.push({ id: identifiers.get(failed.id)!, reason: failed.reason });
    if (sent.failed.length > 0) {
      logger.error("activity messages not sent", {
        queue: env.ACTIVITY_QUEUE_URL,
        count: sent.failed.length,
        reason: sent.failed[0]!.reason,
      });
    }

    // Reported in batch order: partition by partition, each by offset, the first failure of a partition first.
    const order = new Map(records.map(({ id }, index) => [kafkaRecordKey(id), index]));
    failures.sort((a, b) => order.get(kafkaRecordKey(a.id))! - order.get(kafkaRecordKey(b.id))!);
    const response = partialBatchResponse(failures, logger);
    logger.info("batch enqueued", {
      records: records.length,
      activities: activities.length,
      sent: activities.length - sent.failed.length,
      skipped,
      failed: response.batchItemFailures.length,
      sendCalls: sent.calls,
    });
    return response;
  };
}

export const enqueueFromActivityStream = defineWorker(enqueueFromActivityStreamContract, () => {
  const env = loadEnvironment(enqueueFromActivityStreamContract);
  const logger = createLogger(enqueueFromActivityStreamContract);
  const handler = createEnqueueFromActivityStream({ env, logger, sqs: new SQSClient({}) });
  return (event: unknown) => handler(event);
});
