/**
 * The planned queues and streams, created in the local services: each queue with its FIFO
 * setting, visibility timeout, retention and redrive policy (dead-letter queues first, so the
 * policy can name them by their local ARN); each Kinesis stream the mappings read or the table
 * writes to, with the shards the local system is given.
 */
import { CreateStreamCommand, DescribeStreamSummaryCommand, type KinesisClient } from "@aws-sdk/client-kinesis";
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { nameOfArn, type PlannedQueue, type Wiring } from "./wiring";

export interface LocalQueue {
  readonly planned: PlannedQueue;
  readonly url: string;
  readonly arn: string;
}

/** Creates every planned queue; answers them by planned ARN. */
export async function createQueues(sqs: SQSClient, queues: readonly PlannedQueue[]): Promise<Map<string, LocalQueue>> {
  const byArn = new Map<string, LocalQueue>();
  const create = async (queue: PlannedQueue) => {
    const target = queue.redrive ? byArn.get(queue.redrive.deadLetterTargetArn) : undefined;
    if (queue.redrive && !target) {
      throw new Error(`queue ${queue.name}: its dead-letter queue ${queue.redrive.deadLetterTargetArn} is not planned`);
    }
    const attributes: Record<string, string> = {
      VisibilityTimeout: String(queue.visibilityTimeoutSeconds),
      MessageRetentionPeriod: String(queue.retentionSeconds),
      ...(queue.fifo ? { FifoQueue: "true" } : {}),
      ...(queue.contentBasedDeduplication ? { ContentBasedDeduplication: "true" } : {}),
      ...(queue.redrive
        ? { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: target!.arn, maxReceiveCount: queue.redrive.maxReceiveCount }) }
        : {}),
    };
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: queue.name, Attributes: attributes }));
    const answer = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ["QueueArn"] }));
    byArn.set(queue.arn, { planned: queue, url: QueueUrl!, arn: answer.Attributes!.QueueArn! });
  };
  // Dead-letter queues (named by another's redrive policy) first.
  const targets = new Set(queues.flatMap((queue) => (queue.redrive ? [queue.redrive.deadLetterTargetArn] : [])));
  for (const queue of queues.filter((candidate) => targets.has(candidate.arn))) await create(queue);
  for (const queue of queues.filter((candidate) => !targets.has(candidate.arn))) await create(queue);
  return byArn;
}

/** Every Kinesis stream the wiring names: the program's own and the input streams its mappings read. */
export function streamNames(wiring: Wiring): string[] {
  const arns = [
    ...wiring.streams.map((stream) => stream.arn),
    ...wiring.tables.flatMap((table) => (table.streamArn ? [table.streamArn] : [])),
    ...wiring.mappings.flatMap((mapping) => (mapping.kind === "kinesis" && mapping.streamArn ? [mapping.streamArn] : [])),
  ];
  return [...new Set(arns.map(nameOfArn))];
}

/** Creates the streams with `shards` shards each and waits until they are active. */
export async function createStreams(kinesis: KinesisClient, names: readonly string[], shards: number): Promise<void> {
  for (const name of names) {
    await kinesis.send(new CreateStreamCommand({ StreamName: name, ShardCount: shards }));
    for (;;) {
      const { StreamDescriptionSummary } = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: name }));
      if (StreamDescriptionSummary?.StreamStatus === "ACTIVE") break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}
