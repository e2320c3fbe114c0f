import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { defineWorker } from "../runtime/contract";
import { loadEnvironment } from "../runtime/environment";
import { createLogger } from "../runtime/logging";
import { type ActivityStreamDependencies, createActivityStreamEnqueuer, createPurchaseReader } from "../scoring/enqueue";
import { enqueueFromPurchaseStreamContract } from "./contract";

/** Successful purchases to the account-activity queue, each with a rescore; other statuses are not activity. */
export function createEnqueueFromPurchaseStream(deps: ActivityStreamDependencies) {
  return createActivityStreamEnqueuer(deps, {
    worker: enqueueFromPurchaseStreamContract.name,
    source: "purchase",
    read: createPurchaseReader(),
  });
}

export const enqueueFromPurchaseStream = defineWorker(enqueueFromPurchaseStreamContract, () => {
  const env = loadEnvironment(enqueueFromPurchaseStreamContract);
  const logger = createLogger(enqueueFromPurchaseStreamContract);
  const handler = createEnqueueFromPurchaseStream({
    env,
    logger,
    sqs: new SQSClient({}),
    dynamo: DynamoDBDocumentClient.from(new DynamoDBClient({}), { marshallOptions: { removeUndefinedValues: true } }),
  });
  return (event: unknown) => handler(event);
});
