import { SQSClient } from "@aws-sdk/client-sqs";
import { z } from "../shared/zod";
import { AWS_CLIENT_BOUNDS, awsClientConfig } from "../shared/runtime/awsClients";
import { defineWorker } from "../shared/runtime/contract";
import { loadEnvironment } from "../shared/runtime/environment";
import { instrumentHandler } from "../shared/runtime/handler";
import { createLogger } from "../shared/runtime/logging";
import { createWorkerMetrics } from "../shared/runtime/metrics";
import { decodeWith } from "../shared/runtime/records";
import { globalUserIdSchema } from "../shared/scoring/activity";
import { createStreamEnqueuer, type EnqueueDependencies } from "../shared/scoring/enqueuer";
import { activityFrom, readJson, type StreamReader } from "../shared/scoring/streamReading";
import { type EnqueueFromVfStreamEnvironment, enqueueFromVfStreamContract } from "./contract";

/** vf-input-stream: `{ type: "vfLogin", globalUserId, timestamp, correlationId?, … }`; other types are not ours. */
export function createVfLoginReader(): StreamReader {
  const schema = z.object({
    type: z.literal("vfLogin"),
    globalUserId: globalUserIdSchema(),
    timestamp: z.optional(z.unknown()),
    correlationId: z.optional(z.unknown()),
  });
  return (record) =>
    readJson(record, (data) => {
      const type = (data as { type?: unknown } | null)?.type;
      // The event source mapping filters on type; anything else that gets through is not a failure.
      if (typeof type === "string" && type !== "vfLogin") return { kind: "skip", reason: `event type ${type} is not vfLogin` };
      return activityFrom(
        decodeWith(schema, data, "VF login event"),
        (event) => event.globalUserId,
        (event) => event.timestamp,
        (event) => event.correlationId,
      );
    });
}

/** VF logins to the on-demand queue: a standard queue, so no group or deduplication id, and no rescore. */
export function createEnqueueFromVfStream(deps: EnqueueDependencies<EnqueueFromVfStreamEnvironment>) {
  return createStreamEnqueuer(
    {
      worker: enqueueFromVfStreamContract.name,
      sqs: deps.sqs,
      failureQueueUrl: deps.env.FAILURE_QUEUE_URL,
      logger: deps.logger,
      now: deps.now,
      metrics: deps.metrics,
    },
    { source: "vf", action: "vfLogin", read: createVfLoginReader(), queueUrl: deps.env.ON_DEMAND_QUEUE_URL, fifo: false },
  );
}

export const enqueueFromVfStream = defineWorker(enqueueFromVfStreamContract, () => {
  const env = loadEnvironment(enqueueFromVfStreamContract);
  const logger = createLogger(enqueueFromVfStreamContract);
  const metrics = createWorkerMetrics(enqueueFromVfStreamContract);
  const handler = createEnqueueFromVfStream({
    env,
    logger,
    sqs: new SQSClient(awsClientConfig(AWS_CLIENT_BOUNDS.enqueue.sqs)),
    metrics,
  });
  return instrumentHandler({ logger, metrics }, handler);
});
