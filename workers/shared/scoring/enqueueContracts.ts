/**
 * What the stream enqueue workers declare to the program: the environment they read and the
 * access they need. The workers' contracts are built from these, so workers that enqueue to the
 * same queue and table ask for them the same way.
 */
import { z } from "../zod";
import { tableNameVariable } from "../runtime/environment";
import { failureQueueVariables, PARKING_ACCESS } from "../runtime/parking";

/** The URL of a FIFO queue (its name ends in .fifo). */
export const fifoQueueUrl = () =>
  z
    .url({ protocol: /^https?$/ })
    .check(z.refine((url) => url.endsWith(".fifo"), "expected the URL of a FIFO queue (name ending in .fifo)"));

/** The environment of the workers that enqueue to the account-activity queue and schedule rescores. */
export const activityStreamEnvironment = () =>
  z.object({
    /** The account-activity FIFO queue. */
    ACTIVITY_QUEUE_URL: fifoQueueUrl(),
    /** The fan-identity table, where rescore records go. */
    TABLE_NAME: tableNameVariable(),
    /** Days after the activity when the fan is scored again. */
    RESCORE_DELAY_DAYS: z._default(z.coerce.number().check(z.int(), z.gte(1), z.lte(30)), 5),
    /** Where records that can never be enqueued are parked. */
    ...failureQueueVariables(),
  });

export type ActivityStreamEnvironment = z.infer<ReturnType<typeof activityStreamEnvironment>>;

/** The access of the workers that enqueue to the account-activity queue and schedule rescores. */
export const ACTIVITY_STREAM_ACCESS = {
  lambda_sqs_producer: { actions: ["sqs:SendMessage"], on: "the account-activity queue" },
  dynamodb_enqueue_from_streams: { actions: ["dynamodb:PutItem"], on: "the fan-identity table" },
  ...PARKING_ACCESS,
};
