/**
 * The rules every stack of fan-identity-workers must keep, as a Pulumi policy pack's policies:
 * plain data, so `index.ts` hands them to a PolicyPack for `pulumi preview --policy-pack policy`
 * and the specs call each `validateResource`/`validateStack` on an offline plan directly.
 *
 * Values still unknown during a preview need no handling here: the policy runtime wraps props in
 * a proxy that throws on an unknown, and reports "can't run during preview" as advisory.
 */
import type {
  PolicyResource,
  ReportViolation,
  ResourceValidationArgs,
  ResourceValidationPolicy,
  StackValidationPolicy,
} from "@pulumi/policy";
import { WILDCARD_RESOURCE_ACTIONS } from "../components/iam";
import { isTaggable } from "./taggable";

/** The four tags the program puts on every resource that takes tags (components/platform.ts standardTags). */
export const REQUIRED_TAG_KEYS = ["Environment", "ProductCode", "InventoryCode", "iacRepo"] as const;

/**
 * Actions AWS authorises only on `Resource: "*"`: the same list the program checks its own
 * statements against where it writes them, so the pack and the program cannot drift apart.
 */
export { WILDCARD_RESOURCE_ACTIONS };

/** Lambda runtimes the workers may run on: the deployed Node major (24) and the one before it. */
export const SUPPORTED_RUNTIMES: readonly string[] = ["nodejs22.x", "nodejs24.x"];

/**
 * Services that invoke a function asynchronously (the event is queued and retried by Lambda), so a
 * failure is lost unless the function has an on-failure destination or a dead-letter queue.
 */
export const ASYNC_INVOKERS: readonly string[] = [
  "s3.amazonaws.com",
  "sns.amazonaws.com",
  "events.amazonaws.com",
  "logs.amazonaws.com",
  "ses.amazonaws.com",
  "iot.amazonaws.com",
];

export const TYPES = {
  function: "aws:lambda/function:Function",
  mapping: "aws:lambda/eventSourceMapping:EventSourceMapping",
  invokeConfig: "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig",
  permission: "aws:lambda/permission:Permission",
  queue: "aws:sqs/queue:Queue",
  table: "aws:dynamodb/table:Table",
  stream: "aws:kinesis/stream:Stream",
  topic: "aws:sns/topic:Topic",
  logGroup: "aws:cloudwatch/logGroup:LogGroup",
  alarm: "aws:cloudwatch/metricAlarm:MetricAlarm",
  rolePolicy: "aws:iam/rolePolicy:RolePolicy",
  policy: "aws:iam/policy:Policy",
  role: "aws:iam/role:Role",
} as const;

type Props = Record<string, unknown>;

/** A resource policy that looks only at resources of `types`. */
function onTypes(
  types: readonly string[],
  validate: (props: Props, args: ResourceValidationArgs, report: ReportViolation) => void,
): ResourceValidationPolicy["validateResource"] {
  return (args, report) => {
    if (types.includes(args.type)) validate(args.props, args, report);
  };
}

const isObject = (value: unknown): value is Props => typeof value === "object" && value !== null && !Array.isArray(value);
const asArray = (value: unknown): unknown[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]);
/** The last part of an ARN: a queue's, function's or stream's name (`arn:aws:sqs:…:name` → `name`). */
const arnName = (arn: string) => arn.split(":").pop()!.split("/").pop()!;

// --- 1. Tags ---------------------------------------------------------------------------------

const requiredTags: ResourceValidationPolicy = {
  name: "required-tags",
  description:
    `Every AWS resource that takes tags carries ${REQUIRED_TAG_KEYS.join(", ")}: ` +
    "cost reports, ownership look-ups and the path back to this repository depend on them.",
  enforcementLevel: "mandatory",
  validateResource: (args, report) => {
    if (!args.type.startsWith("aws:") || !isTaggable(args.type)) return;
    const tags = isObject(args.props.tags) ? args.props.tags : {};
    for (const key of REQUIRED_TAG_KEYS) {
      if (typeof tags[key] !== "string" || tags[key] === "") report(`${args.name} (${args.type}) has no ${key} tag`);
    }
  },
};

// --- 2. Least privilege ----------------------------------------------------------------------

interface PolicyStatement {
  Effect?: string;
  Action?: unknown;
  NotAction?: unknown;
  Resource?: unknown;
  NotResource?: unknown;
}

/** What is wrong with an IAM policy document's Allow statements, one message each. */
export function documentProblems(document: unknown): string[] {
  let parsed: unknown = document;
  if (typeof document === "string") {
    try {
      parsed = JSON.parse(document);
    } catch {
      return ["the policy document is not JSON"];
    }
  }
  if (!isObject(parsed)) return ["the policy document is not an object"];
  const problems: string[] = [];
  for (const statement of asArray(parsed.Statement) as PolicyStatement[]) {
    if (statement.Effect !== "Allow") continue;
    if (statement.NotAction !== undefined) problems.push("an Allow statement uses NotAction, which allows everything else");
    if (statement.NotResource !== undefined) problems.push("an Allow statement uses NotResource, which allows everything else");
    const actions = asArray(statement.Action).map(String);
    for (const action of actions) {
      if (action.includes("*")) problems.push(`action "${action}" is a wildcard; list the actions needed`);
    }
    if (asArray(statement.Resource).includes("*")) {
      const narrowable = actions.filter((action) => !WILDCARD_RESOURCE_ACTIONS.includes(action));
      if (narrowable.length > 0) problems.push(`${narrowable.join(", ")} on resource "*"; name the resources instead`);
    }
  }
  return problems;
}

const leastPrivilege: ResourceValidationPolicy = {
  name: "iam-least-privilege",
  description:
    "IAM policies (role policies, managed policies, a role's inline policies) list their actions, never `*` or " +
    '`service:*`, and allow `Resource: "*"` only for actions AWS cannot scope to a resource ' +
    "(WILDCARD_RESOURCE_ACTIONS): a worker's compromise then reaches only what it needs.",
  enforcementLevel: "mandatory",
  validateResource: onTypes([TYPES.rolePolicy, TYPES.policy, TYPES.role], (props, args, report) => {
    const documents =
      args.type === TYPES.role
        ? asArray(props.inlinePolicies).map((inline, index) => ({
            where: `inline policy ${isObject(inline) ? (inline.name ?? index) : index}`,
            document: isObject(inline) ? inline.policy : undefined,
          }))
        : [{ where: "policy", document: props.policy }];
    for (const { where, document } of documents) {
      if (document === undefined) continue;
      for (const problem of documentProblems(document)) report(`${args.name} ${where}: ${problem}`);
    }
  }),
};

// --- 3. Encryption at rest -------------------------------------------------------------------

const encryptionAtRest: ResourceValidationPolicy = {
  name: "encryption-at-rest",
  description:
    "Data at rest is encrypted with a KMS key whose use CloudTrail records: DynamoDB tables set " +
    "serverSideEncryption.enabled (AWS's default AWS-owned key is not auditable in the account), SQS queues " +
    "sqsManagedSseEnabled or a kmsMasterKeyId, Kinesis streams encryptionType KMS, SNS topics a kmsMasterKeyId.",
  enforcementLevel: "mandatory",
  validateResource: onTypes([TYPES.table, TYPES.queue, TYPES.stream, TYPES.topic], (props, args, report) => {
    const fail = (what: string) => report(`${args.name} (${args.type}) is not encrypted at rest: ${what}`);
    switch (args.type) {
      case TYPES.table:
        if (!isObject(props.serverSideEncryption) || props.serverSideEncryption.enabled !== true)
          fail("set serverSideEncryption.enabled");
        break;
      case TYPES.queue:
        if (props.sqsManagedSseEnabled !== true && !props.kmsMasterKeyId) fail("set sqsManagedSseEnabled or kmsMasterKeyId");
        break;
      case TYPES.stream:
        if (props.encryptionType !== "KMS" || !props.kmsKeyId) fail("set encryptionType KMS and a kmsKeyId");
        break;
      case TYPES.topic:
        if (!props.kmsMasterKeyId) fail("set kmsMasterKeyId");
        break;
    }
  }),
};

// --- Event source mappings -------------------------------------------------------------------

export type MappingSource = "sqs" | "kinesis" | "dynamodb" | "kafka" | "other";

/** What a mapping reads: an SQS queue, a Kinesis or DynamoDB stream, or a Kafka topic (MSK or self-managed). */
export function mappingSource(props: Props): MappingSource {
  if (props.selfManagedEventSource !== undefined) return "kafka";
  const arn = typeof props.eventSourceArn === "string" ? props.eventSourceArn : "";
  if (arn.startsWith("arn:aws:sqs:")) return "sqs";
  if (arn.startsWith("arn:aws:kinesis:")) return "kinesis";
  if (arn.startsWith("arn:aws:dynamodb:")) return "dynamodb";
  if (arn.startsWith("arn:aws:kafka:")) return "kafka";
  return "other";
}

const onFailureOf = (config: unknown, key: "destinationArn" | "destination"): unknown =>
  isObject(config) && isObject(config.onFailure) ? config.onFailure[key] : undefined;

const streamFailureDestination: ResourceValidationPolicy = {
  name: "stream-on-failure-destination",
  description:
    "Every mapping reading a Kinesis stream, DynamoDB stream or Kafka topic has destinationConfig.onFailure: " +
    "a batch Lambda gives up on is otherwise skipped and lost without trace.",
  enforcementLevel: "mandatory",
  validateResource: onTypes([TYPES.mapping], (props, args, report) => {
    const source = mappingSource(props);
    if (source === "sqs" || source === "other") return;
    if (!onFailureOf(props.destinationConfig, "destinationArn"))
      report(`${args.name} reads a ${source} source with no destinationConfig.onFailure`);
  }),
};

const reportBatchItemFailures: ResourceValidationPolicy = {
  name: "report-batch-item-failures",
  description:
    "Every batch mapping (SQS, Kinesis, DynamoDB stream, Kafka) sets functionResponseTypes ReportBatchItemFailures: " +
    "workers report the records that failed, so one bad record does not retry or poison the whole batch.",
  enforcementLevel: "mandatory",
  validateResource: onTypes([TYPES.mapping], (props, args, report) => {
    if (mappingSource(props) === "other") return;
    if (!asArray(props.functionResponseTypes).includes("ReportBatchItemFailures"))
      report(`${args.name} does not set functionResponseTypes ReportBatchItemFailures`);
  }),
};

// --- Functions and log groups ----------------------------------------------------------------

const supportedRuntime: ResourceValidationPolicy = {
  name: "supported-lambda-runtime",
  description: `Every zip-packaged function runs on ${SUPPORTED_RUNTIMES.join(" or ")}: the Node majors the workers are built and tested for, both supported by AWS.`,
  enforcementLevel: "mandatory",
  validateResource: onTypes([TYPES.function], (props, args, report) => {
    // An image function's runtime is its image's; Lambda has no runtime setting for it.
    if (props.packageType === "Image") return;
    if (typeof props.runtime !== "string" || !SUPPORTED_RUNTIMES.includes(props.runtime))
      report(`${args.name} runs on ${String(props.runtime ?? "no runtime")}; use one of ${SUPPORTED_RUNTIMES.join(", ")}`);
  }),
};

const explicitTimeout: ResourceValidationPolicy = {
  name: "explicit-lambda-timeout",
  description:
    "Every function sets its timeout: Lambda's 3 s default is nobody's decision, and a mapping's visibility " +
    "timeout and retries are sized from the function's.",
  enforcementLevel: "mandatory",
  validateResource: onTypes([TYPES.function], (props, args, report) => {
    if (typeof props.timeout !== "number") report(`${args.name} sets no timeout`);
  }),
};

const logRetention: ResourceValidationPolicy = {
  name: "log-retention",
  description: "Every log group sets retentionInDays: logs otherwise accumulate, and are paid for, forever.",
  enforcementLevel: "mandatory",
  validateResource: onTypes([TYPES.logGroup], (props, args, report) => {
    if (typeof props.retentionInDays !== "number" || props.retentionInDays <= 0)
      report(`${args.name} (log group ${String(props.name)}) sets no retentionInDays`);
  }),
};

// --- Stack policies: what joins resources ----------------------------------------------------

const ofType = (resources: PolicyResource[], type: string) => resources.filter((resource) => resource.type === type);

/** A function's physical name, and its log group's: `loggingConfig.logGroup`, else Lambda's `/aws/lambda/<name>`. */
function functionNames(fn: PolicyResource): { name: string; logGroup: string } {
  const name = String(fn.props.name ?? fn.name);
  const configured = isObject(fn.props.loggingConfig) ? fn.props.loggingConfig.logGroup : undefined;
  return { name, logGroup: typeof configured === "string" ? configured : `/aws/lambda/${name}` };
}

/** A function named by name or ARN (a permission's `function`, a mapping's `functionName`), by its name. */
const functionRef = (ref: unknown) => {
  const text = String(ref);
  return text.startsWith("arn:") ? text.split(":")[6]! : text;
};

const functionLogGroups: StackValidationPolicy = {
  name: "function-log-groups",
  description:
    "Every function's log group is a resource of the stack (so log-retention applies to it): a group Lambda " +
    "creates on first write has no retention, tags or subscription.",
  enforcementLevel: "mandatory",
  validateStack: (args, report) => {
    const groups = new Set(ofType(args.resources, TYPES.logGroup).map((group) => String(group.props.name)));
    for (const fn of ofType(args.resources, TYPES.function)) {
      const { logGroup } = functionNames(fn);
      if (!groups.has(logGroup)) report(`${fn.name} writes to ${logGroup}, which the stack does not create`, fn.urn);
    }
  },
};

/** Finds the stack's queue an ARN names, by its ARN where known, else by its name. */
function queueByArn(resources: PolicyResource[], arn: string): PolicyResource | undefined {
  return ofType(resources, TYPES.queue).find((queue) => queue.props.arn === arn || queue.props.name === arnName(arn));
}

const asyncFailurePaths: StackValidationPolicy = {
  name: "async-failure-destinations",
  description:
    "Every queue a mapping reads has a redrivePolicy, and every function a service invokes asynchronously " +
    "(ASYNC_INVOKERS) has a FunctionEventInvokeConfig with an on-failure destination or a deadLetterConfig: " +
    "a message that keeps failing is set aside to redrive, not retried forever or dropped.",
  enforcementLevel: "mandatory",
  validateStack: (args, report) => {
    for (const mapping of ofType(args.resources, TYPES.mapping)) {
      if (mappingSource(mapping.props) !== "sqs") continue;
      const queue = queueByArn(args.resources, String(mapping.props.eventSourceArn));
      // A queue of another stack is configured there; this stack cannot check it.
      if (queue && !queue.props.redrivePolicy)
        report(`${queue.name}, which ${mapping.name} reads, has no redrivePolicy`, queue.urn);
    }
    const invokeConfigs = ofType(args.resources, TYPES.invokeConfig);
    const asyncTargets = new Set(
      ofType(args.resources, TYPES.permission)
        .filter((permission) => ASYNC_INVOKERS.includes(String(permission.props.principal)))
        .map((permission) => functionRef(permission.props.function)),
    );
    for (const fn of ofType(args.resources, TYPES.function)) {
      const { name } = functionNames(fn);
      if (!asyncTargets.has(name)) continue;
      const hasDlq = isObject(fn.props.deadLetterConfig) && Boolean(fn.props.deadLetterConfig.targetArn);
      const hasDestination = invokeConfigs.some(
        (config) =>
          functionRef(config.props.functionName) === name && Boolean(onFailureOf(config.props.destinationConfig, "destination")),
      );
      if (!hasDlq && !hasDestination)
        report(`${fn.name} is invoked asynchronously but has no on-failure destination or dead-letter queue`, fn.urn);
    }
  },
};

// --- Alarms ----------------------------------------------------------------------------------

interface WatchedMetric {
  readonly metricName: string;
  readonly dimensions: Props;
}

/** The metrics an alarm watches: its own, or those of its metric queries (a rate of two metrics). */
function alarmMetrics(alarm: PolicyResource): WatchedMetric[] {
  const direct = typeof alarm.props.metricName === "string" ? [alarm.props as Props] : [];
  const queried = asArray(alarm.props.metricQueries)
    .map((query) => (isObject(query) ? query.metric : undefined))
    .filter(isObject);
  return [...direct, ...queried].map((metric) => ({
    metricName: String(metric.metricName),
    dimensions: isObject(metric.dimensions) ? metric.dimensions : {},
  }));
}

/** Failure queues of the stack, by name: dead-letter targets, mapping and async on-failure destinations, DLQs. */
function failureQueueNames(resources: PolicyResource[]): Set<string> {
  const arns: unknown[] = [];
  for (const queue of ofType(resources, TYPES.queue)) {
    // The provider takes the redrive policy as JSON text or as an object.
    const redrive = queue.props.redrivePolicy;
    const policy: unknown = typeof redrive === "string" ? JSON.parse(redrive) : redrive;
    if (isObject(policy)) arns.push(policy.deadLetterTargetArn);
  }
  for (const mapping of ofType(resources, TYPES.mapping))
    arns.push(onFailureOf(mapping.props.destinationConfig, "destinationArn"));
  for (const config of ofType(resources, TYPES.invokeConfig))
    arns.push(onFailureOf(config.props.destinationConfig, "destination"));
  for (const fn of ofType(resources, TYPES.function))
    arns.push(isObject(fn.props.deadLetterConfig) ? fn.props.deadLetterConfig.targetArn : undefined);
  return new Set(
    arns.filter((arn): arn is string => typeof arn === "string" && arn.startsWith("arn:aws:sqs:")).map((arn) => arnName(arn)),
  );
}

/** The metric that shows each kind of mapping falling behind, and the dimension it is reported by. */
const LAG_METRIC: Record<Exclude<MappingSource, "other">, { metricName: string; dimension: "FunctionName" | "QueueName" }> = {
  kinesis: { metricName: "IteratorAge", dimension: "FunctionName" },
  dynamodb: { metricName: "IteratorAge", dimension: "FunctionName" },
  kafka: { metricName: "OffsetLag", dimension: "FunctionName" },
  // Lambda reports no lag for an SQS mapping; its queue's oldest message shows it.
  sqs: { metricName: "ApproximateAgeOfOldestMessage", dimension: "QueueName" },
};

/** Metrics that show messages waiting on a failure queue: how many, or how old the oldest. */
const FAILURE_QUEUE_METRICS = ["ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"];

const asyncPathAlarms: StackValidationPolicy = {
  name: "async-path-alarms",
  description:
    "Every asynchronous path is alarmed, as components/alarms.ts designs it: each stream mapping's function has " +
    "an IteratorAge alarm, each Kafka mapping's an OffsetLag alarm, each queue a mapping reads an " +
    "ApproximateAgeOfOldestMessage alarm, and each dead-letter or failure queue a depth or age alarm. " +
    "Without one a stuck consumer or a failed message waits silently until it expires.",
  enforcementLevel: "mandatory",
  validateStack: (args, report) => {
    const watched = ofType(args.resources, TYPES.alarm).flatMap(alarmMetrics);
    const alarmed = (metricNames: readonly string[], dimension: string, value: string) =>
      watched.some((metric) => metricNames.includes(metric.metricName) && metric.dimensions[dimension] === value);
    for (const mapping of ofType(args.resources, TYPES.mapping)) {
      const source = mappingSource(mapping.props);
      if (source === "other") continue;
      const { metricName, dimension } = LAG_METRIC[source];
      const value =
        dimension === "QueueName" ? arnName(String(mapping.props.eventSourceArn)) : functionRef(mapping.props.functionName);
      if (!alarmed([metricName], dimension, value))
        report(`${mapping.name} has no ${metricName} alarm on ${dimension} ${value}`, mapping.urn);
    }
    for (const queueName of failureQueueNames(args.resources)) {
      if (alarmed(FAILURE_QUEUE_METRICS, "QueueName", queueName)) continue;
      const queue = ofType(args.resources, TYPES.queue).find((candidate) => candidate.props.name === queueName);
      report(`failure queue ${queueName} has no depth or age alarm`, queue?.urn);
    }
  },
};

/** Every policy of the pack, mandatory. */
export const policies: (ResourceValidationPolicy | StackValidationPolicy)[] = [
  requiredTags,
  leastPrivilege,
  encryptionAtRest,
  streamFailureDestination,
  asyncFailurePaths,
  reportBatchItemFailures,
  supportedRuntime,
  explicitTimeout,
  logRetention,
  functionLogGroups,
  asyncPathAlarms,
];
