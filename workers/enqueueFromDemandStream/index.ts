import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { defineWorker } from "../runtime/contract";
import { loadEnvironment } from "../runtime/environment";
import { createLogger } from "../runtime/logging";
import { type ActivityStreamDependencies, createActivityStreamEnqueuer, createDemandChangeReader } from "../scoring/enqueue";
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
    dynamo: DynamoDBDocumentClient.from(new DynamoDBClient({}), { marshallOptions: { removeUndefinedValues: true } }),
  });
  return (event: unknown) => handler(event);
});
