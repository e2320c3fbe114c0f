/**
 * Every worker of the system, in one list: its definition (contract and factory) and what
 * triggers it. The stacks deploy from it, the configuration schema takes the input streams' keys
 * from it, and the tests, benchmarks and tools read it instead of keeping lists of their own.
 *
 * Plain data and imports of worker definitions only; nothing under workers/ imports this module,
 * so it never travels into an archive. How each kind of trigger is wired: docs/flows.md.
 */
import { checkLiveness } from "./checkLiveness";
import { enqueueFromActivityStream } from "./enqueueFromActivityStream";
import { enqueueFromDemandStream } from "./enqueueFromDemandStream";
import { enqueueFromPurchaseStream } from "./enqueueFromPurchaseStream";
import { enqueueFromSQJourneyStream } from "./enqueueFromSQJourneyStream";
import { enqueueFromVfStream } from "./enqueueFromVfStream";
import { getArmScore } from "./getArmScore";
import { handleEvent } from "./handleEvent";
import { lookupArai } from "./lookupArai";
import { processRescoreEvents } from "./processRescoreEvents";
import { scoreUsers } from "./scoreUsers";
import type { WorkerDefinition } from "./shared/runtime/contract";
import { stagingScoreUsers } from "./stagingScoreUsers";
import { startBotOrNotImport } from "./startBotOrNotImport";
import { startClusterImport } from "./startClusterImport";
import { validateToken } from "./validateToken";

/**
 * A Lambda event filter pattern, matched against each Kinesis record with its `data` parsed as
 * JSON; a record that matches none is never delivered.
 */
export type EventFilter = Readonly<Record<string, unknown>>;

/** A Kinesis input stream of a scoring region, read by a worker that enqueues the fans it finds. */
export interface InputStreamTrigger {
  readonly kind: "inputStream";
  /**
   * The key of the stream's ARN under `scoring.<region>.inputStreams` in the stack configuration.
   * @example "purchaseArn"
   */
  readonly stream: `${string}Arn`;
  /**
   * The queue the fans go to: `activity`, the account-activity FIFO queue (the worker also
   * schedules each fan's rescore), or `onDemand`, the on-demand queue.
   */
  readonly queue: "activity" | "onDemand";
  readonly filter: EventFilter;
  /**
   * A stream not yet configured in every stack: where a stack's configuration leaves it out,
   * the worker is not deployed there (and the plan says so). Required streams fail the
   * configuration check when missing.
   * @default false
   */
  readonly optional?: boolean;
}

export type Trigger =
  | InputStreamTrigger
  /** The region's fan-identity table stream. */
  | { readonly kind: "tableStream"; readonly filter: EventFilter }
  /** The account-activity FIFO queue and the on-demand queue. */
  | { readonly kind: "scoringQueues" }
  /** The region's Kafka user-activity topic, when the stack enables Kafka. */
  | { readonly kind: "kafka" }
  /** The Data Science exports bucket's notifications. */
  | { readonly kind: "s3Export" }
  /** AppSync: the API's Lambda authoriser. */
  | { readonly kind: "appsyncAuthorizer" }
  /** AppSync resolvers and direct invocations. */
  | { readonly kind: "invoke" }
  /** Persona's webhooks through the IDV REST API (and AppSync). */
  | { readonly kind: "webhook" };

export interface RegisteredWorker<T extends Trigger = Trigger> {
  readonly worker: WorkerDefinition<any, any, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  readonly trigger: T;
}

/** Fresh ARAI awaiting a score; a written score (type=score) never matches, so scoring cannot loop. */
const FRESH_ARAI: EventFilter = {
  data: { eventName: ["INSERT", "MODIFY"], dynamodb: { NewImage: { type: { S: ["activityData"] } } } },
};

export const WORKERS = {
  validateToken: { worker: validateToken, trigger: { kind: "appsyncAuthorizer" } },
  startBotOrNotImport: { worker: startBotOrNotImport, trigger: { kind: "s3Export" } },
  startClusterImport: { worker: startClusterImport, trigger: { kind: "s3Export" } },
  enqueueFromVfStream: {
    worker: enqueueFromVfStream,
    trigger: { kind: "inputStream", stream: "vfArn", queue: "onDemand", filter: { data: { type: ["vfLogin"] } } },
  },
  enqueueFromDemandStream: {
    worker: enqueueFromDemandStream,
    trigger: {
      kind: "inputStream",
      stream: "demandArn",
      queue: "activity",
      // Demand-table changes that carry a fan.
      filter: { data: { eventName: ["INSERT", "MODIFY"], dynamodb: { NewImage: { globalUserId: { S: [{ exists: true }] } } } } },
    },
  },
  enqueueFromPurchaseStream: {
    worker: enqueueFromPurchaseStream,
    trigger: {
      kind: "inputStream",
      stream: "purchaseArn",
      queue: "activity",
      filter: { data: { status: ["SUCCESS"], customer: { globalUserId: [{ exists: true }] } } },
    },
  },
  enqueueFromSQJourneyStream: {
    worker: enqueueFromSQJourneyStream,
    trigger: {
      kind: "inputStream",
      stream: "sqJourneyArn",
      queue: "activity",
      filter: { data: { globalUserId: [{ exists: true }] } },
    },
  },
  processRescoreEvents: {
    worker: processRescoreEvents,
    trigger: {
      kind: "tableStream",
      // A rescore record deleted by DynamoDB's TTL, not by anyone else.
      filter: {
        data: {
          eventName: ["REMOVE"],
          userIdentity: { type: ["Service"], principalId: ["dynamodb.amazonaws.com"] },
          dynamodb: { OldImage: { type: { S: ["rescore"] } } },
        },
      },
    },
  },
  lookupArai: { worker: lookupArai, trigger: { kind: "scoringQueues" } },
  scoreUsers: { worker: scoreUsers, trigger: { kind: "tableStream", filter: FRESH_ARAI } },
  stagingScoreUsers: { worker: stagingScoreUsers, trigger: { kind: "tableStream", filter: FRESH_ARAI } },
  enqueueFromActivityStream: { worker: enqueueFromActivityStream, trigger: { kind: "kafka" } },
  getArmScore: { worker: getArmScore, trigger: { kind: "invoke" } },
  checkLiveness: { worker: checkLiveness, trigger: { kind: "invoke" } },
  handleEvent: { worker: handleEvent, trigger: { kind: "webhook" } },
} as const satisfies Record<string, RegisteredWorker>;

export type WorkerName = keyof typeof WORKERS;

/** The registered workers, in the order above. */
export const REGISTERED: readonly (RegisteredWorker & { readonly name: WorkerName })[] = Object.entries(WORKERS).map(
  ([name, entry]) => ({ name: name as WorkerName, ...entry }),
);

/** The workers fed by a region's Kinesis input streams. */
export const INPUT_STREAM_WORKERS = REGISTERED.filter(
  (entry): entry is RegisteredWorker<InputStreamTrigger> & { readonly name: WorkerName } => entry.trigger.kind === "inputStream",
);
