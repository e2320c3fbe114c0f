/**
 * One redrive: the queue `--from` names among the stack's redrivable queues (targets.ts), found in
 * its region, and its messages redriven (or, in a dry run, reported) by its kind: a dead-letter
 * queue's back to its source queue (deadLetter.ts), a stream mapping's failure records re-delivered
 * to the function (streamFailures.ts), an asynchronous invocation's parked events invoked again
 * (asyncFailures.ts).
 *
 * The clients take their credentials and endpoints from the standard AWS SDK environment
 * (AWS_PROFILE, AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL_KINESIS, AWS_ENDPOINT_URL_LAMBDA, …), so the
 * same run reaches AWS or the local system; the region is the queue's, the stream's, the function's.
 */
import { KinesisClient } from "@aws-sdk/client-kinesis";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { GetQueueUrlCommand, SQSClient } from "@aws-sdk/client-sqs";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import type { PlannedQueue, Wiring } from "../local/wiring";
import { redriveAsyncFailures } from "./asyncFailures";
import { redriveDeadLetter } from "./deadLetter";
import type { MessageOutcome } from "./queueReader";
import { redriveStreamFailures } from "./streamFailures";
import { findTarget, redriveTargets, regionOfArn, type RedriveTarget } from "./targets";

export interface RedriveClients {
  readonly sqs: SQSClient;
  readonly kinesis: KinesisClient;
  readonly lambda: LambdaClient;
}

/** Clients per region from the SDK's environment; `destroy` ends them. */
export function environmentClients(): { readonly forRegion: (region: string) => RedriveClients; destroy(): void } {
  const made = new Map<string, RedriveClients>();
  return {
    forRegion(region) {
      let clients = made.get(region);
      if (!clients) {
        clients = {
          sqs: new SQSClient({ region }),
          // HTTP/1.1: the Kinesis client's default HTTP/2 handler is not served by kinesalite; AWS serves both.
          kinesis: new KinesisClient({ region, requestHandler: new NodeHttpHandler() }),
          lambda: new LambdaClient({ region }),
        };
        made.set(region, clients);
      }
      return clients;
    },
    destroy() {
      for (const clients of made.values()) Object.values(clients).forEach((client) => client.destroy());
    },
  };
}

export interface RedriveOptions {
  readonly wiring: Wiring;
  /** The queue: its physical or short name. */
  readonly from: string;
  readonly region?: string;
  /** Act; otherwise a dry run that changes nothing. */
  readonly apply: boolean;
  /** At most this many messages. */
  readonly limit?: number;
  readonly clients: (region: string) => RedriveClients;
  readonly print: (line: string) => void;
  /** Long-poll wait of each receive, in seconds (1 to 20). @default 2 */
  readonly waitSeconds?: number;
}

export interface RedriveResult {
  readonly target: RedriveTarget;
  readonly outcomes: readonly MessageOutcome[];
}

async function queueUrl(sqs: SQSClient, queue: PlannedQueue): Promise<string> {
  try {
    return (await sqs.send(new GetQueueUrlCommand({ QueueName: queue.name }))).QueueUrl!;
  } catch (error) {
    const why = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    throw new Error(`queue ${queue.name} cannot be found in ${regionOfArn(queue.arn)} (${why})`, { cause: error });
  }
}

/** A summary line: how many messages came to each end. */
function summary(outcomes: readonly MessageOutcome[], apply: boolean): string {
  if (outcomes.length === 0) return "No messages.";
  const counts = new Map<string, number>();
  for (const outcome of outcomes) counts.set(outcome.action, (counts.get(outcome.action) ?? 0) + 1);
  const parts = [...counts].map(([action, count]) => `${count} ${action}`);
  const messages = outcomes.length === 1 ? "1 message" : `${outcomes.length} messages`;
  return `${messages}: ${parts.join(", ")}.${apply ? "" : " Nothing was changed; run again with --apply to act."}`;
}

/** Runs the redrive; throws UnknownQueueError (targets.ts) when `from` names no redrivable queue. */
export async function redrive(options: RedriveOptions): Promise<RedriveResult> {
  const target = findTarget(redriveTargets(options.wiring), options.from, options.region);
  const { sqs } = options.clients(regionOfArn(target.queue.arn));
  const common = { sqs, apply: options.apply, limit: options.limit, waitSeconds: options.waitSeconds ?? 2, print: options.print };
  const outcomes =
    target.kind === "deadLetter"
      ? await redriveDeadLetter({
          ...common,
          dlq: target.queue,
          dlqUrl: await queueUrl(sqs, target.queue),
          source: target.source,
          // The source queue of a dead-letter queue is in its region (SQS requires it).
          sourceUrl: await queueUrl(sqs, target.source),
        })
      : target.kind === "streamFailures"
        ? await redriveStreamFailures({
            ...common,
            queue: target.queue,
            queueUrl: await queueUrl(sqs, target.queue),
            wiring: options.wiring,
            clients: options.clients,
          })
        : await redriveAsyncFailures({
            ...common,
            queue: target.queue,
            queueUrl: await queueUrl(sqs, target.queue),
            wiring: options.wiring,
            configs: target.configs,
            lambda: (region) => options.clients(region).lambda,
          });
  options.print(summary(outcomes, options.apply));
  return { target, outcomes };
}
