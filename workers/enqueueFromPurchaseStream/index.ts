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
import { activityFrom, readJson, type StreamReader } from "../shared/scoring/streamReading";
import { enqueueFromPurchaseStreamContract } from "./contract";

/** purchase-stream: a purchase event; only successful purchases are activity. Its `correlationId`, if any, is carried on. */
export function createPurchaseReader(): StreamReader {
  const schema = z.object({
    status: z.literal("SUCCESS"),
    customer: z.object({ globalUserId: globalUserIdSchema() }),
    timestamp: z.optional(z.unknown()),
    correlationId: z.optional(z.unknown()),
  });
  return (record) =>
    readJson(record, (data) => {
      const status = (data as { status?: unknown } | null)?.status;
      if (typeof status === "string" && status !== "SUCCESS") return { kind: "skip", reason: `purchase status is ${status}` };
      return activityFrom(
        decodeWith(schema, data, "purchase event"),
        (event) => event.customer.globalUserId,
        (event) => event.timestamp,
        (event) => event.correlationId,
      );
    });
}

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
  const metrics = createWorkerMetrics(enqueueFromPurchaseStreamContract);
  const handler = createEnqueueFromPurchaseStream({
    env,
    logger,
    sqs: new SQSClient(awsClientConfig(AWS_CLIENT_BOUNDS.enqueue.sqs)),
    dynamo: createDocumentClient(new DynamoDBClient(awsClientConfig(AWS_CLIENT_BOUNDS.enqueue.dynamoDb))),
    metrics,
  });
  return instrumentHandler({ logger, metrics }, handler);
});
