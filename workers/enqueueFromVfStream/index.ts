import { SQSClient } from "@aws-sdk/client-sqs";
import { defineWorker } from "../runtime/contract";
import { loadEnvironment } from "../runtime/environment";
import { createLogger, type Logger } from "../runtime/logging";
import { createStreamEnqueuer, createVfLoginReader } from "../scoring/enqueue";
import { type EnqueueFromVfStreamEnvironment, enqueueFromVfStreamContract } from "./contract";

export interface EnqueueFromVfStreamDependencies {
  readonly env: EnqueueFromVfStreamEnvironment;
  readonly sqs: SQSClient;
  readonly logger: Logger;
  readonly now?: () => Date;
}

/** VF logins to the on-demand queue: a standard queue, so no group or deduplication id, and no rescore. */
export function createEnqueueFromVfStream(deps: EnqueueFromVfStreamDependencies) {
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
