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
import { enqueueFromSQJourneyStreamContract } from "./contract";

/** sq-journey-stream: a queue-journey event `{ globalUserId, journeyStep, timestamp, correlationId?, … }`. */
export function createSQJourneyReader(): StreamReader {
  const schema = z.object({
    globalUserId: globalUserIdSchema(),
    timestamp: z.optional(z.unknown()),
    correlationId: z.optional(z.unknown()),
  });
  return (record) =>
    readJson(record, (data) =>
      activityFrom(
        decodeWith(schema, data, "queue-journey event"),
        (event) => event.globalUserId,
        (event) => event.timestamp,
        (event) => event.correlationId,
      ),
    );
}

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
  const metrics = createWorkerMetrics(enqueueFromSQJourneyStreamContract);
  const handler = createEnqueueFromSQJourneyStream({
    env,
    logger,
    sqs: new SQSClient(awsClientConfig(AWS_CLIENT_BOUNDS.enqueue.sqs)),
    dynamo: createDocumentClient(new DynamoDBClient(awsClientConfig(AWS_CLIENT_BOUNDS.enqueue.dynamoDb))),
    metrics,
  });
  return instrumentHandler({ logger, metrics }, handler);
});
