/**
 * An SQS queue encrypted at rest, with a dead-letter queue and redrive policy unless it is
 * itself a place where failures end up.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { SQS_MAX_RECEIVE_COUNT } from "../workers/shared/runtime/batch";
import { Component } from "./component";
import type { RegionalPlatform } from "./platform";

const DAY = 86_400;

export interface QueueArgs {
  readonly platform: RegionalPlatform;
  /** Name after the prefix, e.g. `acct-activity-sqs`; FIFO queues get `.fifo` added. */
  readonly name: string;
  /** @default false */
  readonly fifo?: boolean;
  /** @default 4 */
  readonly retentionDays?: number;
  /**
   * Longest timeout of the functions consuming the queue. The visibility timeout is at least six
   * times this, as Lambda advises, so a message is not redelivered while a retry is still running.
   */
  readonly consumerTimeoutSeconds?: number;
  /** @default 6 × consumerTimeoutSeconds, or 30 without consumers */
  readonly visibilityTimeoutSeconds?: number;
  /**
   * Receives after which a message moves to the dead-letter queue; `false` for a queue that is
   * itself a destination of failures. The default is one delivery and two retries; its consumer
   * parks a message failing on its last delivery itself, so SQS's move is the backstop
   * (SQS_MAX_RECEIVE_COUNT in workers/shared/runtime/batch.ts says why).
   * @default { maxReceiveCount: SQS_MAX_RECEIVE_COUNT } (3)
   */
  readonly deadLetter?: { readonly maxReceiveCount: number } | false;
}

export class Queue extends Component {
  readonly queue: aws.sqs.Queue;
  readonly deadLetterQueue?: aws.sqs.Queue;
  readonly arn: pulumi.Output<string>;
  readonly url: pulumi.Output<string>;
  /** Physical name of the queue. */
  readonly queueName: string;
  /** A FIFO queue: ordered per message group, deduplicated. */
  readonly fifo: boolean;

  constructor(name: string, args: QueueArgs, opts?: pulumi.ComponentResourceOptions) {
    super("fan-identity:components:Queue", name, args.platform, opts);
    const { platform } = args;
    const fifo = args.fifo ?? false;
    this.fifo = fifo;
    const kind = fifo ? "sqsFifoQueue" : "sqsQueue";
    const minimumVisibility = 6 * (args.consumerTimeoutSeconds ?? 5);
    const visibilityTimeoutSeconds = args.visibilityTimeoutSeconds ?? Math.max(30, minimumVisibility);
    if (visibilityTimeoutSeconds < minimumVisibility) {
      throw new Error(
        `${name}: visibility timeout ${visibilityTimeoutSeconds}s is under 6 × the consumer's ${args.consumerTimeoutSeconds}s timeout`,
      );
    }
    this.queueName = platform.name(args.name, kind);
    const common = { fifoQueue: fifo || undefined, sqsManagedSseEnabled: true, tags: platform.tags };

    const deadLetter = args.deadLetter ?? { maxReceiveCount: SQS_MAX_RECEIVE_COUNT };
    const deadLetterName = deadLetter ? platform.name(`${args.name}-dlq`, kind) : undefined;
    if (deadLetter) {
      this.deadLetterQueue = new aws.sqs.Queue(
        this.childName("dlq"),
        { ...common, name: deadLetterName, messageRetentionSeconds: 14 * DAY },
        this.child,
      );
    }
    this.queue = new aws.sqs.Queue(
      this.childName("queue"),
      {
        ...common,
        name: this.queueName,
        messageRetentionSeconds: (args.retentionDays ?? 4) * DAY,
        visibilityTimeoutSeconds,
        redrivePolicy: this.deadLetterQueue
          ? pulumi.jsonStringify({
              deadLetterTargetArn: this.deadLetterQueue.arn,
              maxReceiveCount: deadLetter && deadLetter.maxReceiveCount,
            })
          : undefined,
      },
      this.child,
    );
    this.arn = this.queue.arn;
    this.url = this.queue.url;
    // A queue without a dead-letter queue is itself where failures end up (components/flows.ts).
    const { queues } = platform.flows;
    queues.push({ queueName: this.queueName, role: deadLetter ? "work" : "failures", arn: this.arn, url: this.url });
    if (this.deadLetterQueue && deadLetterName) {
      const { arn, url } = this.deadLetterQueue;
      queues.push({ queueName: deadLetterName, role: "deadLetter", arn, url });
    }
    this.registerOutputs({ arn: this.arn, url: this.url, deadLetterArn: this.deadLetterQueue?.arn });
  }
}
