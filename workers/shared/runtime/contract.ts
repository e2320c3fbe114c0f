/**
 * A worker's runtime contract: what it needs from the stack that deploys it.
 *
 * Plain data and builder functions only. Nothing here (or in any other module under `workers/`)
 * imports `@pulumi/*`: the contract travels with the worker's code into its Lambda archive, and
 * the stacks read the same object to bind it to concrete resources. A contract the stack does
 * not meet fails the deployment plan, never the Lambda at run time.
 */
import { useEnglishMessages, z } from "../zod";
import type { LambdaHandler } from "./handler";
import type { Dependency } from "./telemetry";

/** One kind of access the worker's role must allow, bound by the stack to concrete resources. */
export interface AccessNeed {
  /** IAM actions, spelled out. Never a wildcard. */
  readonly actions: readonly string[];
  /** What the bound resources are, for readers of the plan and of error messages. */
  readonly on: string;
}

export interface WorkerContract<Env extends z.core.$ZodObject = z.core.$ZodObject> {
  /** The worker's name, also the last part of its Lambda function's name. */
  readonly name: string;
  readonly description: string;
  /**
   * Builds the schema of the environment the worker reads. A builder rather than a schema:
   * a zod schema held at module scope cannot be serialized into an inline callback.
   */
  readonly environment: () => Env;
  /** Access the worker needs, keyed by the name of the IAM policy the stack attaches for it. */
  readonly access: Readonly<Record<string, AccessNeed>>;
  /**
   * The external dependencies the worker calls (runtime/telemetry.ts): it emits call, failure
   * and latency metrics for each, and the stacks alarm on each one's failure rate.
   */
  readonly dependencies: readonly Dependency[];
}

/** A contract plus the factory `aws.lambda.CallbackFunction` serializes as the handler. */
export interface WorkerDefinition<Env extends z.core.$ZodObject = z.core.$ZodObject, Event = never, Result = unknown> {
  readonly contract: WorkerContract<Env>;
  /**
   * Runs once per Lambda container, at cold start: reads the environment, builds the logger,
   * metrics, clients, schemas and caches, and returns the handler wrapped by `instrumentHandler`
   * (runtime/handler.ts). Lambda calls it with the event and its context: the wrapper adds the
   * context to every log line, counts the cold start, and publishes the invocation's metrics when
   * it ends. The worker's own handler takes the event alone, and the wrapped one may be called
   * that way too (tests, tools): its lines then carry no request id.
   */
  readonly factory: () => LambdaHandler<Event, Result>;
}

/**
 * Variables every worker receives from the platform rather than from its stack: `DEPLOYMENT` is
 * the stack's configuration name (`prod1`, or `prod1w` for the west region), logged with every line.
 */
export const PLATFORM_VARIABLES: readonly string[] = ["DEPLOYMENT"];

const WORKER_NAME = /^[a-z][A-Za-z0-9]{2,40}$/;
const IAM_ACTION = /^[a-z0-9-]+:[A-Za-z0-9]+$/;

/** Checks a contract's shape once, where it is declared, so a typo fails at import time. */
export function defineContract<Env extends z.core.$ZodObject>(contract: WorkerContract<Env>): WorkerContract<Env> {
  if (!WORKER_NAME.test(contract.name)) {
    throw new Error(`worker name "${contract.name}" must be camelCase letters and digits`);
  }
  for (const [policy, need] of Object.entries(contract.access)) {
    for (const action of need.actions) {
      if (!IAM_ACTION.test(action)) {
        throw new Error(
          `${contract.name}: access "${policy}" lists "${action}"; actions must be spelled out as service:Action, without wildcards`,
        );
      }
    }
  }
  return contract;
}

/** A worker: its contract, and the factory the archive exports as `handler`. */
export function defineWorker<Env extends z.core.$ZodObject, Event, Result>(
  contract: WorkerContract<Env>,
  factory: () => LambdaHandler<Event, Result>,
): WorkerDefinition<Env, Event, Result> {
  return {
    contract,
    // The archive runs this, not ../zod's top-level statements: the messages are set here.
    factory: () => {
      useEnglishMessages();
      return factory();
    },
  };
}

/** Names of the variables a contract requires (those without a default and not optional). */
export function requiredVariables(contract: WorkerContract): string[] {
  const shape = contract.environment()._zod.def.shape;
  return Object.entries(shape)
    .filter(([, schema]) => !z.safeParse(schema, undefined).success)
    .map(([name]) => name);
}

/** Names of every variable a contract reads. */
export function knownVariables(contract: WorkerContract): string[] {
  return Object.keys(contract.environment()._zod.def.shape);
}
