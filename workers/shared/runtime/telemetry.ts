/**
 * The metrics every worker emits (CloudWatch Embedded Metric Format, through Powertools Metrics),
 * as plain data: the workers emit these names, and the stacks build their alarms and dashboards
 * from the same names, so an alarm cannot watch a metric no worker writes. A test runs the
 * workers on real events and checks every alarm against what they really emitted.
 *
 * Dimensions stay small and never name a fan: every metric carries the worker (`service`), the
 * deployment (`environment`: `prod1`, `prod1w`) and the AWS region; a few add one bounded
 * dimension of their own (the reason of a failure, the dependency called, the model version).
 */

/** The CloudWatch namespace of every worker metric. */
export const METRICS_NAMESPACE = "FanIdentityWorkers";

/** Dimensions every worker metric carries, in this order. */
export const WORKER_DIMENSIONS = ["service", "environment", "region"] as const;
export type WorkerDimension = (typeof WORKER_DIMENSIONS)[number];

/** Metric names, and the one extra dimension a metric adds to the worker's, if any. */
export const WORKER_METRICS = {
  /** Records (or requests) an invocation received. */
  recordsReceived: { name: "RecordsReceived", unit: "Count" },
  /** Records handled to the end (sent on, written, answered). */
  recordsProcessed: { name: "RecordsProcessed", unit: "Count" },
  /** Records left alone on purpose (filtered out, stale, not scorable); each is also logged at INFO with why. */
  recordsSkipped: { name: "RecordsSkipped", unit: "Count" },
  /** Records reported failed to their source, by a small set of reasons. */
  recordsFailed: { name: "RecordsFailed", unit: "Count", dimension: "reason" },
  /**
   * Records that can never succeed (undecodable, invalid, of a message version the reader does not
   * know), sent by the worker itself to its source's failure destination with their payload and
   * reason, by the same reasons as failures.
   */
  recordsParked: { name: "RecordsParked", unit: "Count", dimension: "reason" },
  /** Calls to an external dependency, by dependency. */
  externalCalls: { name: "ExternalCalls", unit: "Count", dimension: "dependency" },
  /** Calls to an external dependency that failed after their retries. */
  externalCallFailures: { name: "ExternalCallFailures", unit: "Count", dimension: "dependency" },
  /** Latency of each call to an external dependency, retries included. */
  externalCallLatency: { name: "ExternalCallLatency", unit: "Milliseconds", dimension: "dependency" },
  /** Invocations that were the first of their container (its cold start). */
  coldStarts: { name: "ColdStart", unit: "Count" },
  /** Scores stored on fan records, by the model version that produced them. */
  scoresWritten: { name: "ScoresWritten", unit: "Count", dimension: "modelVersion" },
} as const;

export type WorkerMetric = (typeof WORKER_METRICS)[keyof typeof WORKER_METRICS];

/** Why a record was reported failed: few values, so the `reason` dimension stays small. */
export const FAILURE_REASONS = ["invalid", "dependency", "throttled", "unprocessed", "error"] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

/** The external dependencies workers call, as the `dependency` dimension names them. */
export const DEPENDENCIES = {
  arai: "ARAI",
  modelServing: "ModelServing",
  persona: "Persona",
  jwks: "JWKS",
  redis: "Redis",
  glue: "Glue",
  secretsManager: "SecretsManager",
} as const;
export type Dependency = (typeof DEPENDENCIES)[keyof typeof DEPENDENCIES];
