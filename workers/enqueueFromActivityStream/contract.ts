import { z } from "../shared/zod";
import { defineContract } from "../shared/runtime/contract";
import { failureQueueVariables, PARKING_ACCESS } from "../shared/runtime/parking";
import { ACTIVITY_STREAM_ACCESS, fifoQueueUrl } from "../shared/scoring/enqueueContracts";

export const enqueueFromActivityStreamContract = defineContract({
  name: "enqueueFromActivityStream",
  description: "Enqueues fans' scorable activity on the Kafka user-activity topic for scoring",
  environment: () =>
    z.object({
      /** The account-activity FIFO queue. */
      ACTIVITY_QUEUE_URL: fifoQueueUrl(),
      /** Where user-activity records that can never be enqueued are parked. */
      ...failureQueueVariables(),
    }),
  access: { lambda_sqs_producer: ACTIVITY_STREAM_ACCESS.lambda_sqs_producer, ...PARKING_ACCESS },
  dependencies: [],
});

export type EnqueueFromActivityStreamEnvironment = z.infer<ReturnType<typeof enqueueFromActivityStreamContract.environment>>;
