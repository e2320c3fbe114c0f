/**
 * A worker's metrics (runtime/telemetry.ts names them), built once per container in the factory
 * and published once per invocation as CloudWatch Embedded Metric Format through Powertools
 * Metrics.
 *
 * Counts are added up in plain numbers while the invocation runs and written once, when it ends:
 * one EMF document with the worker's own counts (dimensions `service`, `environment`, `region`),
 * and one more per value of an extra dimension that occurred (a failure reason, a dependency
 * called, a model version), so a record costs an addition and never a document of its own.
 * Powertools' `singleMetric()` would build a new `Metrics` (and a new `Console`) per document;
 * instead each extra-dimension value gets its own `Metrics` the first time it occurs, with that
 * dimension among its defaults, and is reused by every later invocation of the container
 * (bench/metrics.ts measures both).
 */
import { performance } from "node:perf_hooks";
import { Metrics, type MetricUnit } from "@aws-lambda-powertools/metrics";

type Unit = (typeof MetricUnit)[keyof typeof MetricUnit];
import type { WorkerContract } from "./contract";
import { type Dependency, type FailureReason, METRICS_NAMESPACE, WORKER_METRICS } from "./telemetry";

/**
 * Times and counts calls to one dependency: `action` is one call, its retries included. A call
 * that throws counts as failed unless `isFailure` says the error is an answer (ARAI's 404 for a
 * fan it does not know, Redis' WRONGTYPE for a key holding something else).
 */
export type CallRecorder = <T>(action: () => Promise<T>, isFailure?: (error: unknown) => boolean) => Promise<T>;

export interface WorkerMetrics {
  /** Records (or requests) the invocation received. */
  readonly received: (count: number) => void;
  /** Records handled to the end. */
  readonly processed: (count: number) => void;
  /** Records left alone on purpose (each also logged at INFO or above with why). */
  readonly skipped: (count: number) => void;
  /** Records reported failed, by reason. */
  readonly failed: (reason: FailureReason, count?: number) => void;
  /** Records the worker parked in its source's failure destination itself, by reason. */
  readonly parked: (reason: FailureReason, count?: number) => void;
  /** Scores stored on fan records, by the model version that produced them. */
  readonly scoresWritten: (modelVersion: string, count: number) => void;
  /**
   * The recorder of calls to `dependency`. Asked for in the factory: a dependency the worker's
   * contract does not list is refused there, at cold start, so a worker emits call metrics only
   * for the dependencies the stacks alarm on.
   */
  readonly calls: (dependency: Dependency) => CallRecorder;
  /** Records received, processed, skipped and failed so far in this invocation. */
  readonly recorded: () => { readonly received: number; readonly outcomes: number };
  /** Marks the start of an invocation (the first one of the container is its cold start). */
  readonly started: () => void;
  /** Writes the invocation's metrics and starts over. */
  readonly publish: () => void;
}

export interface WorkerMetricsOptions {
  /** @default process.env.DEPLOYMENT */
  readonly environment?: string;
  /** @default process.env.AWS_REGION */
  readonly region?: string;
}

/** What the `environment` and `region` dimensions say when the container's variables do not. */
export const UNSET_DIMENSION = "unset";

interface CallFigures {
  calls: number;
  failures: number;
  latencies: number[];
}

/** The metrics of `contract`'s worker: build once per container, in the factory. */
export function createWorkerMetrics(contract: WorkerContract, options: WorkerMetricsOptions = {}): WorkerMetrics {
  const base = {
    environment: options.environment || process.env.DEPLOYMENT || UNSET_DIMENSION,
    region: options.region || process.env.AWS_REGION || UNSET_DIMENSION,
  };
  const build = (extra: Record<string, string> = {}) =>
    new Metrics({ namespace: METRICS_NAMESPACE, serviceName: contract.name, defaultDimensions: { ...base, ...extra } });
  const main = build();
  // One Metrics per extra-dimension value, built when the value first occurs. The values are few
  // (FAILURE_REASONS, the contract's dependencies, the configured model version).
  const byDimension = new Map<string, Metrics>();
  const documentFor = (dimension: string, value: string) => {
    const key = `${dimension}=${value}`;
    let metrics = byDimension.get(key);
    if (!metrics) {
      metrics = build({ [dimension]: value });
      byDimension.set(key, metrics);
    }
    return metrics;
  };
  const listed = new Set<string>(contract.dependencies);

  // Powertools' rule for a cold start (its Utility.getColdStart, protected, so not callable here):
  // the first invocation of a container Lambda started on demand, never one initialised by
  // provisioned concurrency, which no request waited for.
  const onDemand = process.env.AWS_LAMBDA_INITIALIZATION_TYPE?.trim() === "on-demand";
  let invocations = 0;
  let coldStart = false;
  let received = 0;
  let processed = 0;
  let skipped = 0;
  let failedTotal = 0;
  const failed = new Map<FailureReason, number>();
  let parkedTotal = 0;
  const parked = new Map<FailureReason, number>();
  const calls = new Map<Dependency, CallFigures>();
  const scores = new Map<string, number>();

  const add = (metrics: Metrics, metric: { name: string; unit: string }, value: number) =>
    metrics.addMetric(metric.name, metric.unit as Unit, value);

  function figuresOf(dependency: Dependency): CallFigures {
    let figures = calls.get(dependency);
    if (!figures) {
      figures = { calls: 0, failures: 0, latencies: [] };
      calls.set(dependency, figures);
    }
    return figures;
  }

  function reset() {
    coldStart = false;
    received = processed = skipped = failedTotal = parkedTotal = 0;
    failed.clear();
    parked.clear();
    calls.clear();
    scores.clear();
  }

  return {
    received: (count) => void (received += count),
    processed: (count) => void (processed += count),
    skipped: (count) => void (skipped += count),
    failed: (reason, count = 1) => {
      if (count <= 0) return;
      failed.set(reason, (failed.get(reason) ?? 0) + count);
      failedTotal += count;
    },
    parked: (reason, count = 1) => {
      if (count <= 0) return;
      parked.set(reason, (parked.get(reason) ?? 0) + count);
      parkedTotal += count;
    },
    scoresWritten: (modelVersion, count) => {
      if (count > 0) scores.set(modelVersion, (scores.get(modelVersion) ?? 0) + count);
    },
    calls(dependency) {
      if (!listed.has(dependency)) {
        throw new Error(
          `${contract.name}: calls to ${dependency} are not in the contract's dependencies (${[...listed].join(", ") || "none"}); add ${dependency} there`,
        );
      }
      return async function recordCall<T>(action: () => Promise<T>, isFailure?: (error: unknown) => boolean): Promise<T> {
        const figures = figuresOf(dependency);
        figures.calls += 1;
        const start = performance.now();
        try {
          return await action();
        } catch (error) {
          if (isFailure?.(error) ?? true) figures.failures += 1;
          throw error;
        } finally {
          figures.latencies.push(performance.now() - start);
        }
      };
    },
    recorded: () => ({ received, outcomes: processed + skipped + failedTotal + parkedTotal }),
    started() {
      invocations += 1;
      coldStart = onDemand && invocations === 1;
    },
    publish() {
      try {
        if (coldStart) add(main, WORKER_METRICS.coldStarts, 1);
        add(main, WORKER_METRICS.recordsReceived, received);
        add(main, WORKER_METRICS.recordsProcessed, processed);
        add(main, WORKER_METRICS.recordsSkipped, skipped);
        main.publishStoredMetrics();
        for (const [metric, counts] of [
          [WORKER_METRICS.recordsFailed, failed],
          [WORKER_METRICS.recordsParked, parked],
        ] as const) {
          for (const [reason, count] of counts) {
            const document = documentFor(metric.dimension, reason);
            add(document, metric, count);
            document.publishStoredMetrics();
          }
        }
        for (const [dependency, figures] of calls) {
          const document = documentFor(WORKER_METRICS.externalCalls.dimension, dependency);
          add(document, WORKER_METRICS.externalCalls, figures.calls);
          add(document, WORKER_METRICS.externalCallFailures, figures.failures);
          for (const latency of figures.latencies) add(document, WORKER_METRICS.externalCallLatency, latency);
          document.publishStoredMetrics();
        }
        for (const [modelVersion, count] of scores) {
          const document = documentFor(WORKER_METRICS.scoresWritten.dimension, modelVersion);
          add(document, WORKER_METRICS.scoresWritten, count);
          document.publishStoredMetrics();
        }
      } finally {
        reset();
      }
    },
  };
}

/** Metrics that go nowhere: the default of handlers built without any (unit tests of their rules). */
export function discardedMetrics(): WorkerMetrics {
  const none = () => {};
  return {
    received: none,
    processed: none,
    skipped: none,
    failed: none,
    parked: none,
    scoresWritten: none,
    calls: () => (action) => action(),
    recorded: () => ({ received: 0, outcomes: 0 }),
    started: none,
    publish: none,
  };
}

const INVALID_ERRORS: readonly string[] = ["ValidationError", "Unauthorized", "InvalidEvent", "NotFound"];
const THROTTLING = /throttl|ProvisionedThroughputExceeded|RequestLimitExceeded|TooManyRequests|SlowDown/i;

/**
 * The `reason` a failure is counted under: `invalid` for input refused (a named validation
 * error), `throttled` for AWS throttling, `dependency` for an external service that did not
 * answer (an HttpServiceError), `error` for anything else; a plain Error is classified by its
 * `cause` when it has one. Takes an error or the text of one.
 */
export function failureReasonOf(error: unknown): FailureReason {
  // A failure some helpers report as text (an SQS batch entry's code and message).
  if (typeof error === "string") return THROTTLING.test(error) ? "throttled" : "error";
  const name = (error as { name?: unknown } | null)?.name;
  const code = (error as { code?: unknown } | null)?.code;
  const text = `${typeof name === "string" ? name : ""} ${typeof code === "string" ? code : ""}`;
  if (typeof name === "string" && INVALID_ERRORS.includes(name)) return "invalid";
  if (THROTTLING.test(text)) return "throttled";
  if (name === "HttpServiceError") return "dependency";
  // A plain Error saying what failed around the error that made it fail.
  const cause = (error as { cause?: unknown } | null)?.cause;
  if (name === "Error" && cause !== undefined && cause !== error) return failureReasonOf(cause);
  return "error";
}
