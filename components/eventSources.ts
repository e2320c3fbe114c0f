/**
 * Event source mappings with the error handling every source of this system gets (SPEC §6), and
 * the statements a consumer's role needs for them. The statements are attached when the
 * function is created (WorkerFunction `policies`), before any mapping: Lambda checks the role
 * when a mapping is created.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { Statement } from "./iam";

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

export interface KinesisSourceArgs {
  readonly functionName: pulumi.Input<string>;
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
  return new aws.lambda.EventSourceMapping(
    name,
    {
      functionName: args.functionName,
      eventSourceArn: args.streamArn,
      startingPosition: "LATEST",
      batchSize: args.batchSize,
      maximumBatchingWindowInSeconds: 1,
      functionResponseTypes: ["ReportBatchItemFailures"],
      bisectBatchOnFunctionError: true,
      maximumRetryAttempts: 2,
      destinationConfig: { onFailure: { destinationArn: args.failureQueueArn } },
      filterCriteria: args.filters
        ? { filters: args.filters.map((pattern) => ({ pattern: JSON.stringify(pattern) })) }
        : undefined,
      tags: args.tags,
    },
    opts,
  );
}

export interface SqsSourceArgs {
  readonly functionName: pulumi.Input<string>;
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
  return new aws.lambda.EventSourceMapping(
    name,
    {
      functionName: args.functionName,
      eventSourceArn: args.queueArn,
      batchSize: args.batchSize,
      maximumBatchingWindowInSeconds: args.fifo ? undefined : 1,
      functionResponseTypes: ["ReportBatchItemFailures"],
      tags: args.tags,
    },
    opts,
  );
}
