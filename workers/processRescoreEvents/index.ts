import { SQSClient } from "@aws-sdk/client-sqs";
import { defineWorker } from "../runtime/contract";
import { loadEnvironment } from "../runtime/environment";
import { createLogger, type Logger } from "../runtime/logging";
import { createRescoreRemovalReader, createStreamEnqueuer } from "../scoring/enqueue";
import { processRescoreEventsContract, type ProcessRescoreEventsEnvironment } from "./contract";

export interface ProcessRescoreEventsDependencies {
  readonly env: ProcessRescoreEventsEnvironment;
  readonly sqs: SQSClient;
  readonly logger: Logger;
  readonly now?: () => Date;
}

/**
 * Rescore records deleted by TTL to the account-activity queue, deduplicated by the rescore key
 * (a record TTL deletes once, redelivered by Kinesis, is enqueued once).
 */
export function createProcessRescoreEvents(deps: ProcessRescoreEventsDependencies) {
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
