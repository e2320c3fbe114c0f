import { z } from "../shared/zod";
import { defineContract } from "../shared/runtime/contract";
import { failureQueueVariables, PARKING_ACCESS } from "../shared/runtime/parking";
import { ACTIVITY_STREAM_ACCESS, fifoQueueUrl } from "../shared/scoring/enqueueContracts";

export const processRescoreEventsContract = defineContract({
  name: "processRescoreEvents",
  description: "Enqueues a fan for scoring when TTL deletes one of their rescore records from the fan-identity table",
  environment: () =>
    z.object({
      /** The account-activity FIFO queue. */
      ACTIVITY_QUEUE_URL: fifoQueueUrl(),
      /** Where rescore removals that can never be enqueued are parked. */
      ...failureQueueVariables(),
    }),
  access: { lambda_sqs_producer: ACTIVITY_STREAM_ACCESS.lambda_sqs_producer, ...PARKING_ACCESS },
  dependencies: [],
});

export type ProcessRescoreEventsEnvironment = z.infer<ReturnType<typeof processRescoreEventsContract.environment>>;
