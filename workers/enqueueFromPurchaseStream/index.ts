import { SQSClient } from "@aws-sdk/client-sqs";
import { defineWorker } from "../shared/runtime/contract";
import { createDocumentClient } from "../shared/runtime/dynamo";
import { loadEnvironment } from "../shared/runtime/environment";
import { createLogger } from "../shared/runtime/logging";
import { type ActivityStreamDependencies, createActivityStreamEnqueuer, createPurchaseReader } from "../shared/scoring/enqueue";
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
    dynamo: createDocumentClient(),
  });
  return (event: unknown) => handler(event);
});
