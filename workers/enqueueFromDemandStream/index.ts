import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SQSClient } from "@aws-sdk/client-sqs";
import { z } from "../shared/zod";
import { AWS_CLIENT_BOUNDS, awsClientConfig } from "../shared/runtime/awsClients";
import { defineWorker } from "../shared/runtime/contract";
import { createDocumentClient } from "../shared/runtime/dynamo";
import { loadEnvironment } from "../shared/runtime/environment";
import { instrumentHandler } from "../shared/runtime/handler";
import { createLogger } from "../shared/runtime/logging";
import { createWorkerMetrics } from "../shared/runtime/metrics";
import { decodeWith } from "../shared/runtime/records";
import { globalUserIdSchema } from "../shared/scoring/activity";
import { type ActivityStreamDependencies, createActivityStreamEnqueuer } from "../shared/scoring/enqueuer";
import { activityFrom, createDynamoChangeReader, type StreamReader } from "../shared/scoring/streamReading";
import { enqueueFromDemandStreamContract } from "./contract";

/**
 * dmnd-table-stream: changes of the demand table; a fan registering or updating demand is
 * activity, a removal is not. The new image's `correlationId`, if any, is carried on.
 */
export function createDemandChangeReader(): StreamReader {
  const image = z.object({ globalUserId: globalUserIdSchema(), correlationId: z.optional(z.unknown()) });
  return createDynamoChangeReader(({ eventName, newImage, changedAt }) => {
    if (eventName === "REMOVE") return { kind: "skip", reason: "demand record removed" };
    if (!newImage) return { kind: "fail", reason: `demand ${eventName} carries no new image` };
    return activityFrom(
      decodeWith(image, newImage, `demand ${eventName} new image`),
      (demand) => demand.globalUserId,
      () => (changedAt === undefined ? undefined : new Date(changedAt).toISOString()),
      (demand) => demand.correlationId,
    );
  });
}

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
  const metrics = createWorkerMetrics(enqueueFromDemandStreamContract);
  const handler = createEnqueueFromDemandStream({
    env,
    logger,
    sqs: new SQSClient(awsClientConfig(AWS_CLIENT_BOUNDS.enqueue.sqs)),
    dynamo: createDocumentClient(new DynamoDBClient(awsClientConfig(AWS_CLIENT_BOUNDS.enqueue.dynamoDb))),
    metrics,
  });
  return instrumentHandler({ logger, metrics }, handler);
});
