import { SQSClient } from "@aws-sdk/client-sqs";
import { defineWorker } from "../shared/runtime/contract";
import { createDocumentClient } from "../shared/runtime/dynamo";
import { loadEnvironment } from "../shared/runtime/environment";
import { createLogger } from "../shared/runtime/logging";
import { type ActivityStreamDependencies, createActivityStreamEnqueuer, createSQJourneyReader } from "../shared/scoring/enqueue";
import { enqueueFromSQJourneyStreamContract } from "./contract";

/** Queue-journey steps to the account-activity queue, each with a rescore. */
export function createEnqueueFromSQJourneyStream(deps: ActivityStreamDependencies) {
  return createActivityStreamEnqueuer(deps, {
    worker: enqueueFromSQJourneyStreamContract.name,
    source: "sqJourney",
    read: createSQJourneyReader(),
  });
}

export const enqueueFromSQJourneyStream = defineWorker(enqueueFromSQJourneyStreamContract, () => {
  const env = loadEnvironment(enqueueFromSQJourneyStreamContract);
  const logger = createLogger(enqueueFromSQJourneyStreamContract);
  const handler = createEnqueueFromSQJourneyStream({
    env,
    logger,
    sqs: new SQSClient({}),
    dynamo: createDocumentClient(),
  });
  return (event: unknown) => handler(event);
});
