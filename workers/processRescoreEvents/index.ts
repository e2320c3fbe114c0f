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
import { createDynamoChangeReader, parseIsoDateTime, type StreamReader } from "../shared/scoring/streamReading";
import { RECORD_TYPES, TTL_PRINCIPAL } from "../shared/scoring/table";
import { processRescoreEventsContract, type ProcessRescoreEventsEnvironment } from "./contract";

/**
 * The fan-identity table's stream: a rescore record deleted by TTL means the fan is due again.
 * Everything else on the stream (fan records, a rescore written or deleted by hand) is not ours.
 */
export function createRescoreRemovalReader(): StreamReader {
  const rescore = z.object({
    userId: z.string().check(z.minLength(1)),
    globalUserId: globalUserIdSchema(),
    rescoreDate: z.string().check(z.refine((date) => parseIsoDateTime(`${date}T00:00:00Z`) !== undefined, "expected YYYY-MM-DD")),
    // The id of the activity that scheduled it; a rescore written before ids were stored has none.
    correlationId: z.optional(z.unknown()),
  });
  return createDynamoChangeReader(({ eventName, oldImage, userIdentity, keys }) => {
    if (eventName !== "REMOVE") return { kind: "skip", reason: `${eventName} is not a removal` };
    if (!oldImage) {
      // Without the old image a TTL deletion of a rescore could not be told apart: never let one pass silently.
      return String(keys.userId).startsWith(`${RECORD_TYPES.rescore}#`)
        ? { kind: "fail", reason: "rescore removal carries no old image (the stream must carry old images)" }
        : { kind: "skip", reason: "removal carries no old image" };
    }
    if (oldImage.type !== RECORD_TYPES.rescore)
      return { kind: "skip", reason: `removed record is of type ${String(oldImage.type)}` };
    if (userIdentity?.type !== "Service" || userIdentity.principalId !== TTL_PRINCIPAL) {
      return { kind: "skip", reason: "rescore record removed by a user, not by TTL" };
    }
    const decoded = decodeWith(rescore, oldImage, "rescore record");
    if (!decoded.ok) return { kind: "fail", reason: decoded.reason };
    return {
      kind: "activity",
      globalUserId: decoded.value.globalUserId,
      timestamp: `${decoded.value.rescoreDate}T00:00:00.000Z`,
      identity: decoded.value.userId,
      ...(decoded.value.correlationId === undefined ? {} : { correlationId: decoded.value.correlationId }),
    };
  });
}

/**
 * Rescore records deleted by TTL to the account-activity queue, deduplicated by the rescore key
 * (a record TTL deletes once, redelivered by Kinesis, is enqueued once), with the correlation id
 * of the activity that scheduled the rescore (one made from the rescore key when it has none).
 */
export function createProcessRescoreEvents(deps: EnqueueDependencies<ProcessRescoreEventsEnvironment>) {
  return createStreamEnqueuer(
    {
      worker: processRescoreEventsContract.name,
      sqs: deps.sqs,
      failureQueueUrl: deps.env.FAILURE_QUEUE_URL,
      logger: deps.logger,
      now: deps.now,
      metrics: deps.metrics,
    },
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
  const metrics = createWorkerMetrics(processRescoreEventsContract);
  const handler = createProcessRescoreEvents({
    env,
    logger,
    sqs: new SQSClient(awsClientConfig(AWS_CLIENT_BOUNDS.enqueue.sqs)),
    metrics,
  });
  return instrumentHandler({ logger, metrics }, handler);
});
