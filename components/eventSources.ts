/**
 * Event source mappings with the error handling every source of this system gets (docs/flows.md#event-sources), and
 * the statements a consumer's role needs for them. The statements are attached when the
 * function is created (WorkerFunction `policies`), before any mapping: Lambda checks the role
 * when a mapping is created. Each mapping is registered in its region's wiring record
 * (components/flows.ts), from which its alarms are built.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { Statement } from "./iam";
import type { WorkerFunction } from "./workerFunction";

/** What a Lambda consumer of Kinesis streams needs, and where it sends records it gave up on. */
export function kinesisConsumerStatements(
  streamArns: readonly pulumi.Input<string>[],
  failureQueueArn: pulumi.Input<string>,
): Statement[] {
  return [
    {
      actions: [
        "kinesis:DescribeStream",
        "kinesis:DescribeStreamSummary",
        "kinesis:GetRecords",
        "kinesis:GetShardIterator",
        "kinesis:ListShards",
      ],
      resources: streamArns,
    },
    { actions: ["sqs:SendMessage"], resources: [failureQueueArn] },
  ];
}

/** What a Lambda consumer of SQS queues needs. */
export function sqsConsumerStatements(queueArns: readonly pulumi.Input<string>[]): Statement[] {
  return [
    {
      actions: ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"],
      resources: queueArns,
    },
  ];
}

/**
 * The error handling every stream source gets (docs/flows.md#event-sources): partial batch failures, a failing batch
 * bisected, at most two retries, then the records handed to the failure queue.
 */
function streamErrorHandling(failureQueueArn: pulumi.Input<string>) {
  return {
    functionResponseTypes: ["ReportBatchItemFailures"],
    bisectBatchOnFunctionError: true,
    maximumRetryAttempts: 2,
    destinationConfig: { onFailure: { destinationArn: failureQueueArn } },
  };
}

export interface KinesisSourceArgs {
  /** The worker the mapping delivers to. */
  readonly consumer: WorkerFunction;
  readonly streamArn: pulumi.Input<string>;
  readonly batchSize: number;
  /** Event filter patterns (objects, matched against the record with `data` parsed); a record matching any is delivered. */
  readonly filters?: readonly object[];
  /** Where Lambda sends (the metadata of) records whose retries are spent. */
  readonly failureQueueArn: pulumi.Input<string>;
  readonly tags: Record<string, string>;
}

/**
 * A Kinesis mapping: from the latest record, reporting partial batch failures, bisecting a
 * failing batch, retrying at most twice, then handing the records to the failure queue.
 */
export function kinesisEventSource(
  name: string,
  args: KinesisSourceArgs,
  opts: pulumi.CustomResourceOptions,
): aws.lambda.EventSourceMapping {
  args.consumer.flows.mappings.push({
    kind: "kinesis",
    functionName: args.consumer.functionName,
    sourceArn: args.streamArn,
    failureQueueArn: args.failureQueueArn,
  });
  return new aws.lambda.EventSourceMapping(
    name,
    {
      functionName: args.consumer.function.name,
      eventSourceArn: args.streamArn,
      startingPosition: "LATEST",
      batchSize: args.batchSize,
      maximumBatchingWindowInSeconds: 1,
      ...streamErrorHandling(args.failureQueueArn),
      filterCriteria: args.filters
        ? { filters: args.filters.map((pattern) => ({ pattern: JSON.stringify(pattern) })) }
        : undefined,
      tags: args.tags,
    },
    opts,
  );
}

export interface SqsSourceArgs {
  /** The worker the mapping delivers to. */
  readonly consumer: WorkerFunction;
  readonly queueArn: pulumi.Input<string>;
  readonly batchSize: number;
  /** FIFO queues take no batching window. */
  readonly fifo: boolean;
  readonly tags: Record<string, string>;
}

/** An SQS mapping reporting partial batch failures; the queue's redrive policy keeps what keeps failing. */
export function sqsEventSource(
  name: string,
  args: SqsSourceArgs,
  opts: pulumi.CustomResourceOptions,
): aws.lambda.EventSourceMapping {
  args.consumer.flows.mappings.push({ kind: "sqs", functionName: args.consumer.functionName, sourceArn: args.queueArn });
  return new aws.lambda.EventSourceMapping(
    name,
    {
      functionName: args.consumer.function.name,
      eventSourceArn: args.queueArn,
      batchSize: args.batchSize,
      maximumBatchingWindowInSeconds: args.fifo ? undefined : 1,
      functionResponseTypes: ["ReportBatchItemFailures"],
      tags: args.tags,
    },
    opts,
  );
}

/**
 * What a consumer of a self-managed Kafka cluster in the VPC needs: Lambda's pollers reach the
 * brokers through network interfaces in the given subnets, authenticate with the secret, and hand
 * records they gave up on to the failure queue.
 */
export function kafkaConsumerStatements(authSecretArn: pulumi.Input<string>, failureQueueArn: pulumi.Input<string>): Statement[] {
  return [
    {
      actions: [
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeVpcs",
        "ec2:DeleteNetworkInterface",
        "ec2:DescribeSubnets",
        "ec2:DescribeSecurityGroups",
      ],
      resources: ["*"],
    },
    { actions: ["secretsmanager:GetSecretValue"], resources: [authSecretArn] },
    { actions: ["sqs:SendMessage"], resources: [failureQueueArn] },
  ];
}

export interface KafkaSourceArgs {
  /** The worker the mapping delivers to. */
  readonly consumer: WorkerFunction;
  readonly bootstrapServers: readonly string[];
  readonly topic: string;
  readonly consumerGroupId: string;
  /** SASL_SCRAM_512_AUTH, SASL_SCRAM_256_AUTH or BASIC_AUTH, with the credentials in `authSecretArn`. */
  readonly authType: string;
  readonly authSecretArn: string;
  /** Where the pollers' network interfaces go: the `app` tier and its security group. */
  readonly subnetIds: pulumi.Input<string[]>;
  readonly securityGroupId: pulumi.Input<string>;
  readonly batchSize: number;
  readonly pollers: { readonly minimum: number; readonly maximum: number };
  readonly failureQueueArn: pulumi.Input<string>;
  readonly tags: Record<string, string>;
}

/**
 * A self-managed Kafka mapping in provisioned-poller mode, the mode in which Lambda gives Kafka
 * sources the error handling of the other streams: partial batch responses, bisecting, two
 * retries, and a failure destination.
 */
export function kafkaEventSource(
  name: string,
  args: KafkaSourceArgs,
  opts: pulumi.CustomResourceOptions,
): aws.lambda.EventSourceMapping {
  args.consumer.flows.mappings.push({
    kind: "kafka",
    functionName: args.consumer.functionName,
    topic: args.topic,
    failureQueueArn: args.failureQueueArn,
  });
  return new aws.lambda.EventSourceMapping(
    name,
    {
      functionName: args.consumer.function.name,
      topics: [args.topic],
      startingPosition: "LATEST",
      batchSize: args.batchSize,
      selfManagedEventSource: { endpoints: { KAFKA_BOOTSTRAP_SERVERS: args.bootstrapServers.join(",") } },
      selfManagedKafkaEventSourceConfig: { consumerGroupId: args.consumerGroupId },
      sourceAccessConfigurations: pulumi
        .all([args.subnetIds, args.securityGroupId])
        .apply(([subnetIds, securityGroupId]) => [
          { type: args.authType, uri: args.authSecretArn },
          ...subnetIds.map((subnetId) => ({ type: "VPC_SUBNET", uri: `subnet:${subnetId}` })),
          { type: "VPC_SECURITY_GROUP", uri: `security_group:${securityGroupId}` },
        ]),
      provisionedPollerConfig: { minimumPollers: args.pollers.minimum, maximumPollers: args.pollers.maximum },
      ...streamErrorHandling(args.failureQueueArn),
      tags: args.tags,
    },
    opts,
  );
}
