import { SQSClient } from "@aws-sdk/client-sqs";
import { defineWorker } from "../shared/runtime/contract";
import { loadEnvironment } from "../shared/runtime/environment";
import { createLogger } from "../shared/runtime/logging";
import { parseEvent } from "../shared/runtime/records";
import { createEnqueuer, type EnqueueDependencies } from "../shared/scoring/enqueue";
import { createUserActivityReader, kafkaEventSchema, kafkaRecordsInOrder, planKafkaActivity } from "../shared/scoring/kafka";
import { type EnqueueFromActivityStreamEnvironment, enqueueFromActivityStreamContract } from "./contract";

/**
 * Scorable user activity to the account-activity FIFO queue: one message per record, grouped by
 * fan and deduplicated by the record's topic, partition and offset, in one `sendMessages` call per
 * batch. No rescore: rescores follow demand, purchase and queue-journey activity only.
 */
export function createEnqueueFromActivityStream(deps: EnqueueDependencies<EnqueueFromActivityStreamEnvironment>) {
  const eventSchema = kafkaEventSchema();
  return createEnqueuer(
    deps,
    {
      records: (event) =>
        kafkaRecordsInOrder(parseEvent(eventSchema, event, enqueueFromActivityStreamContract.name, "self-managed Kafka")),
      read: createUserActivityReader(),
      plan: planKafkaActivity,
    },
    { queueUrl: deps.env.ACTIVITY_QUEUE_URL, fifo: true },
  );
}

export const enqueueFromActivityStream = defineWorker(enqueueFromActivityStreamContract, () => {
  const env = loadEnvironment(enqueueFromActivityStreamContract);
  const logger = createLogger(enqueueFromActivityStreamContract);
  const handler = createEnqueueFromActivityStream({ env, logger, sqs: new SQSClient({}) });
  return (event: unknown) => handler(event);
});
