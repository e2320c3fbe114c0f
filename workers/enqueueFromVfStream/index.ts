import { SQSClient } from "@aws-sdk/client-sqs";
import { defineWorker } from "../shared/runtime/contract";
import { loadEnvironment } from "../shared/runtime/environment";
import { createLogger } from "../shared/runtime/logging";
import { createStreamEnqueuer, createVfLoginReader, type EnqueueDependencies } from "../shared/scoring/enqueue";
import { type EnqueueFromVfStreamEnvironment, enqueueFromVfStreamContract } from "./contract";

/** VF logins to the on-demand queue: a standard queue, so no group or deduplication id, and no rescore. */
export function createEnqueueFromVfStream(deps: EnqueueDependencies<EnqueueFromVfStreamEnvironment>) {
  return createStreamEnqueuer(
    { worker: enqueueFromVfStreamContract.name, sqs: deps.sqs, logger: deps.logger, now: deps.now },
    { source: "vf", action: "vfLogin", read: createVfLoginReader(), queueUrl: deps.env.ON_DEMAND_QUEUE_URL, fifo: false },
  );
}

export const enqueueFromVfStream = defineWorker(enqueueFromVfStreamContract, () => {
  const env = loadEnvironment(enqueueFromVfStreamContract);
  const logger = createLogger(enqueueFromVfStreamContract);
  const handler = createEnqueueFromVfStream({ env, logger, sqs: new SQSClient({}) });
  return (event: unknown) => handler(event);
});
