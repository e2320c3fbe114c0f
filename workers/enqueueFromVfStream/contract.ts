import { z } from "../shared/zod";
import { defineContract } from "../shared/runtime/contract";
import { failureQueueVariables, PARKING_ACCESS } from "../shared/runtime/parking";

export const enqueueFromVfStreamContract = defineContract({
  name: "enqueueFromVfStream",
  description: "Enqueues every Verified Fan login on vf-input-stream for on-demand scoring",
  environment: () =>
    z.object({
      /** The on-demand scoring queue (a standard queue). */
      ON_DEMAND_QUEUE_URL: z.url({ protocol: /^https?$/ }),
      /** Where VF login records that can never be enqueued are parked. */
      ...failureQueueVariables(),
    }),
  access: {
    lambda_sqs_producer: { actions: ["sqs:SendMessage"], on: "the on-demand scoring queue" },
    ...PARKING_ACCESS,
  },
  dependencies: [],
});

export type EnqueueFromVfStreamEnvironment = z.infer<ReturnType<typeof enqueueFromVfStreamContract.environment>>;
