import { SQSClient } from "@aws-sdk/client-sqs";
import { defineWorker } from "../shared/runtime/contract";
import { loadEnvironment } from "../shared/runtime/environment";
import { createLogger } from "../shared/runtime/logging";
import { createRescoreRemovalReader, createStreamEnqueuer, type EnqueueDependencies } from "../shared/scoring/enqueue";
import { processRescoreEventsContract, type ProcessRescoreEventsEnvironment } from "./contract";

/**
 * Rescore records deleted by TTL to the account-activity queue, deduplicated by the rescore key
 * (a record TTL deletes once, redelivered by Kinesis, is enqueued once).
 */
export function createProcessRescoreEvents(deps: EnqueueDependencies<ProcessRescoreEventsEnvironment>) {
  return createStreamEnqueuer(
    { worker: processRescoreEventsContract.name, sqs: deps.sqs, logger: deps.logger, now: deps.now },
    {
      source: "rescore",
      action: "rescore",
      read: createRescoreRemovalReader(),
      queueUrl: deps.env.ACTIVITY_QUEUE_URL,
      fifo: true,
    },
  );
}

export const processRescoreEvents = defineWorker(processRescoreEventsContract, () => {
  const env = loadEnvironment(processRescoreEventsContract);
  const logger = createLogger(processRescoreEventsContract);
  const handler = createProcessRescoreEvents({ env, logger, sqs: new SQSClient({}) });
  return (event: unknown) => handler(event);
});
