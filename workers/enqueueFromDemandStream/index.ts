import { SQSClient } from "@aws-sdk/client-sqs";
import { defineWorker } from "../shared/runtime/contract";
import { createDocumentClient } from "../shared/runtime/dynamo";
import { loadEnvironment } from "../shared/runtime/environment";
import { createLogger } from "../shared/runtime/logging";
import {
  type ActivityStreamDependencies,
  createActivityStreamEnqueuer,
  createDemandChangeReader,
} from "../shared/scoring/enqueue";
import { enqueueFromDemandStreamContract } from "./contract";

/** Demand-table inserts and updates to the account-activity queue, each with a rescore; removals are not activity. */
export function createEnqueueFromDemandStream(deps: ActivityStreamDependencies) {
  return createActivityStreamEnqueuer(deps, {
    worker: enqueueFromDemandStreamContract.name,
    source: "demand",
    read: createDemandChangeReader(),
  });
}

export const enqueueFromDemandStream = defineWorker(enqueueFromDemandStreamContract, () => {
  const env = loadEnvironment(enqueueFromDemandStreamContract);
  const logger = createLogger(enqueueFromDemandStreamContract);
  const handler = createEnqueueFromDemandStream({
    env,
    logger,
    sqs: new SQSClient({}),
    dynamo: createDocumentClient(),
  });
  return (event: unknown) => handler(event);
});
