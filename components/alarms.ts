/**
 * The alarms of one region, as plain data built from its wiring record (components/flows.ts):
 * every queue, every mapping, every worker and every API the region's components registered gets
 * its alarms, and nothing else does. Worker metrics are named from the workers' own catalogue
 * (workers/shared/runtime/telemetry.ts) and the dependencies their contracts declare, so an
 * alarm cannot watch a metric no worker emits. `operations.ts` turns these into resources.
 */
import { METRICS_NAMESPACE, WORKER_METRICS } from "../workers/shared/runtime/telemetry";
import type { FlowRecord, RecordedApi } from "./flows";

/** Thresholds of the alarms (stack configuration `operations.alarms`, docs/operations.md). */
export interface AlarmThresholds {
  readonly periodSeconds: number;
  readonly evaluationPeriods: number;
  readonly queueOldestMessageAgeSeconds: number;
  readonly failedMessageAgeSeconds: number;
  readonly failedMessages: number;
  readonly iteratorAgeSeconds: number;
  readonly kafkaOffsetLag: number;
  readonly functionErrors: number;
  readonly functionThrottles: number;
  readonly api5xxErrors: number;
  readonly apiLatencyP99Ms: number;
  readonly authoriserDurationP99Ms: number;
  readonly externalCallFailureRate: number;
}

/** One metric: namespace, name, dimensions and the statistic the alarm takes of it. */
export interface AlarmMetric {
  readonly namespace: string;
  readonly metricName: string;
  readonly dimensions: Readonly<Record<string, string>>;
  /** `Sum`, `Maximum`, or a percentile such as `p99`. */
  readonly stat: string;
}

/** The runbook entry for each kind of alarm: a heading of docs/operations.md. */
export const RUNBOOK = {
  failedMessages: "dead-letter-or-failure-queue-has-messages",
  failedMessageAge: "failed-messages-are-getting-old",
  queueAge: "a-work-queue-is-falling-behind",
  iteratorAge: "a-stream-worker-is-falling-behind",
  offsetLag: "the-kafka-consumer-is-falling-behind",
  errors: "a-function-errors",
  throttles: "a-function-is-throttled",
  api5xx: "the-webhook-api-answers-5xx",
  apiLatency: "the-webhook-api-is-slow",
  authoriserDuration: "the-authoriser-is-slow",
  externalCallFailures: "calls-to-a-dependency-fail",
} as const;

export interface AlarmSpec {
  /** Unique in the region, the last part of the alarm's name: `lookupArai-errors`. */
  readonly label: string;
  readonly description: string;
  readonly runbook: (typeof RUNBOOK)[keyof typeof RUNBOOK];
  /** What the alarm watches: one metric, or a rate of two (failures / calls, 0 without calls). */
  readonly watches:
    { readonly metric: AlarmMetric } | { readonly rate: { readonly numerator: AlarmMetric; readonly denominator: AlarmMetric } };
  /** The alarm fires when the value is greater than this. */
  readonly threshold: number;
}

/** A physical name without the region's prefix: `vfid-qa1-us-east-1-lookupArai` → `lookupArai`. */
export const local = (prefix: string, name: string) => (name.startsWith(`${prefix}-`) ? name.slice(prefix.length + 1) : name);

export const lambdaMetric = (metricName: string, functionName: string, stat: string): AlarmMetric => ({
  namespace: "AWS/Lambda",
  metricName,
  dimensions: { FunctionName: functionName },
  stat,
});

export const sqsMetric = (metricName: string, queueName: string): AlarmMetric => ({
  namespace: "AWS/SQS",
  metricName,
  dimensions: { QueueName: queueName },
  stat: "Maximum",
});

/** A REST API stage's metric. */
export const apiMetric = (api: RecordedApi, metricName: string, stat: string): AlarmMetric => ({
  namespace: "AWS/ApiGateway",
  metricName,
  dimensions: { ApiName: api.apiName, Stage: api.stage },
  stat,
});

/**
 * A worker metric with exactly the dimensions workers emit it with: service, environment and
 * region (WORKER_DIMENSIONS), and the metric's one extra dimension.
 */
export function workerMetric(
  metric: (typeof WORKER_METRICS)[keyof typeof WORKER_METRICS],
  where: { readonly service: string; readonly environment: string; readonly region: string },
  extra?: string,
): AlarmMetric {
  const dimension = "dimension" in metric ? metric.dimension : undefined;
  if ((dimension === undefined) !== (extra === undefined)) {
    throw new Error(`${metric.name}: ${dimension ? `needs its ${dimension} dimension` : "has no extra dimension"}`);
  }
  return {
    namespace: METRICS_NAMESPACE,
    metricName: metric.name,
    dimensions: {
      service: where.service,
      environment: where.environment,
      region: where.region,
      ...(dimension ? { [dimension]: extra! } : {}),
    },
    stat: "Sum",
  };
}

interface RegionNames {
  /** `<productCode>-<env>-<region>`, left out of alarm labels. */
  readonly prefix: string;
  /** The workers' `environment` dimension: `prod1`, `prod1w`. */
  readonly deployment: string;
}

/** Every alarm of the region whose wiring `record` holds. */
export function alarmSpecs(record: FlowRecord, region: RegionNames, thresholds: AlarmThresholds): AlarmSpec[] {
  return [
    ...queueAlarms(record, region, thresholds),
    ...streamAlarms(record, thresholds),
    ...workerAlarms(record, region, thresholds),
    ...authoriserAlarms(record, thresholds),
    ...apiAlarms(record, region, thresholds),
  ];
}

/** The worker a function runs, by its function's physical name. */
const workerNameOf = (record: FlowRecord, functionName: string) =>
  record.workers.find((worker) => worker.functionName === functionName)?.workerName ?? functionName;

/** Work queues: the age of their oldest message. Dead-letter and failure queues: any message, and its age. */
function queueAlarms(record: FlowRecord, region: RegionNames, thresholds: AlarmThresholds): AlarmSpec[] {
  return record.queues.flatMap((queue): AlarmSpec[] => {
    const label = local(region.prefix, queue.queueName);
    if (queue.role === "work") {
      return [
        {
          label: `${label}-oldest-message-age`,
          description: `The oldest message on ${queue.queueName} is older than ${thresholds.queueOldestMessageAgeSeconds} s`,
          runbook: RUNBOOK.queueAge,
          watches: { metric: sqsMetric("ApproximateAgeOfOldestMessage", queue.queueName) },
          threshold: thresholds.queueOldestMessageAgeSeconds,
        },
      ];
    }
    const what = queue.role === "deadLetter" ? "dead-letter queue" : "failure queue";
    return [
      {
        label: `${label}-messages`,
        description: `The ${what} ${queue.queueName} holds more than ${thresholds.failedMessages} messages`,
        runbook: RUNBOOK.failedMessages,
        watches: { metric: sqsMetric("ApproximateNumberOfMessagesVisible", queue.queueName) },
        threshold: thresholds.failedMessages,
      },
      {
        label: `${label}-oldest-message-age`,
        description: `A message on the ${what} ${queue.queueName} is older than ${thresholds.failedMessageAgeSeconds} s; redrive it before it expires`,
        runbook: RUNBOOK.failedMessageAge,
        watches: { metric: sqsMetric("ApproximateAgeOfOldestMessage", queue.queueName) },
        threshold: thresholds.failedMessageAgeSeconds,
      },
    ];
  });
}

/** Iterator age of each Kinesis consumer, offset lag of each Kafka consumer (an SQS mapping is its queue's age). */
function streamAlarms(record: FlowRecord, thresholds: AlarmThresholds): AlarmSpec[] {
  // Lambda reports iterator age and offset lag per function; each function here reads one stream.
  const consumers = new Map<string, "kinesis" | "kafka">();
  for (const mapping of record.mappings) if (mapping.kind !== "sqs") consumers.set(mapping.functionName, mapping.kind);
  return [...consumers].map(([functionName, kind]): AlarmSpec => {
    const worker = workerNameOf(record, functionName);
    if (kind === "kafka") {
      return {
        label: `${worker}-offset-lag`,
        description: `${worker} is more than ${thresholds.kafkaOffsetLag} messages behind its Kafka topic`,
        runbook: RUNBOOK.offsetLag,
        watches: { metric: lambdaMetric("OffsetLag", functionName, "Maximum") },
        threshold: thresholds.kafkaOffsetLag,
      };
    }
    return {
      label: `${worker}-iterator-age`,
      description: `${worker} is more than ${thresholds.iteratorAgeSeconds} s behind its Kinesis stream`,
      runbook: RUNBOOK.iteratorAge,
      watches: { metric: lambdaMetric("IteratorAge", functionName, "Maximum") },
      // Lambda reports iterator age in milliseconds.
      threshold: thresholds.iteratorAgeSeconds * 1000,
    };
  });
}

/** Every function's errors and throttles, and the failure rate of each dependency its contract declares. */
function workerAlarms(record: FlowRecord, region: RegionNames, thresholds: AlarmThresholds): AlarmSpec[] {
  return record.workers.flatMap(({ workerName, functionName, dependencies }): AlarmSpec[] => {
    const where = { service: workerName, environment: region.deployment, region: record.region };
    return [
      {
        label: `${workerName}-errors`,
        description: `${functionName} failed more than ${thresholds.functionErrors} invocations in a period`,
        runbook: RUNBOOK.errors,
        watches: { metric: lambdaMetric("Errors", functionName, "Sum") },
        threshold: thresholds.functionErrors,
      },
      {
        label: `${workerName}-throttles`,
        description: `${functionName} was throttled more than ${thresholds.functionThrottles} times in a period`,
        runbook: RUNBOOK.throttles,
        watches: { metric: lambdaMetric("Throttles", functionName, "Sum") },
        threshold: thresholds.functionThrottles,
      },
      ...dependencies.map((dependency) => ({
        label: `${workerName}-${dependency}-failure-rate`,
        description: `More than ${thresholds.externalCallFailureRate * 100}% of ${workerName}'s calls to ${dependency} failed`,
        runbook: RUNBOOK.externalCallFailures,
        watches: {
          rate: {
            numerator: workerMetric(WORKER_METRICS.externalCallFailures, where, dependency),
            denominator: workerMetric(WORKER_METRICS.externalCalls, where, dependency),
          },
        },
        threshold: thresholds.externalCallFailureRate,
      })),
    ];
  });
}

/** The p99 duration of each AppSync authoriser. */
function authoriserAlarms(record: FlowRecord, thresholds: AlarmThresholds): AlarmSpec[] {
  return record.authorisers.map((functionName) => {
    const worker = workerNameOf(record, functionName);
    return {
      label: `${worker}-duration-p99`,
      description: `The authoriser ${functionName} takes more than ${thresholds.authoriserDurationP99Ms} ms at p99`,
      runbook: RUNBOOK.authoriserDuration,
      watches: { metric: lambdaMetric("Duration", functionName, "p99") },
      threshold: thresholds.authoriserDurationP99Ms,
    };
  });
}

/** Each REST API stage's 5XX answers and p99 latency. */
function apiAlarms(record: FlowRecord, region: RegionNames, thresholds: AlarmThresholds): AlarmSpec[] {
  return record.apis.flatMap((api): AlarmSpec[] => {
    const label = local(region.prefix, api.apiName);
    return [
      {
        label: `${label}-5xx`,
        description: `${api.apiName} (${api.stage}) answered more than ${thresholds.api5xxErrors} 5XX in a period`,
        runbook: RUNBOOK.api5xx,
        watches: { metric: apiMetric(api, "5XXError", "Sum") },
        threshold: thresholds.api5xxErrors,
      },
      {
        label: `${label}-latency-p99`,
        description: `${api.apiName} (${api.stage}) takes more than ${thresholds.apiLatencyP99Ms} ms at p99`,
        runbook: RUNBOOK.apiLatency,
        watches: { metric: apiMetric(api, "Latency", "p99") },
        threshold: thresholds.apiLatencyP99Ms,
      },
    ];
  });
}
