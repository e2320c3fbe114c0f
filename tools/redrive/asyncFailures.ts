/**
 * An asynchronous invocation's on-failure destination, redriven: each message is Lambda's record of
 * an event it gave up on (an S3 notification for an import worker), with the event itself as
 * `requestPayload`. The event is invoked again the way it first came, asynchronously
 * (InvocationType Event), so Lambda's retries and the on-failure destination apply to it again:
 * an event that fails again comes back to this queue. The message is deleted once Lambda has
 * queued the event (202).
 *
 * Only functions whose event invoke config sends their failures to this queue are invoked; a
 * record naming another function, or of another kind, is reported and left.
 */
import { InvokeCommand, type LambdaClient } from "@aws-sdk/client-lambda";
import { DeleteMessageCommand, type Message, type SQSClient } from "@aws-sdk/client-sqs";
import { findFunction, functionNameOf } from "../local/invokeApi";
import type { AsyncInvokeConfig, PlannedQueue, Wiring } from "../local/wiring";
import { parseFailureRecord } from "./failureRecords";
import { type Handled, type MessageOutcome, outcomeLog, readForRedrive } from "./queueReader";
import { regionOfArn } from "./targets";

export interface AsyncFailuresOptions {
  readonly sqs: SQSClient;
  readonly queue: PlannedQueue;
  readonly queueUrl: string;
  readonly wiring: Wiring;
  readonly configs: readonly AsyncInvokeConfig[];
  readonly lambda: (region: string) => LambdaClient;
  readonly apply: boolean;
  readonly limit?: number;
  readonly waitSeconds: number;
  readonly print: (line: string) => void;
}

/** Invokes (or, in a dry run, reports) each parked event again; answers what became of each message. */
export async function redriveAsyncFailures(options: AsyncFailuresOptions): Promise<MessageOutcome[]> {
  const { print } = options;
  const { outcomes, leave } = outcomeLog(print);

  const handle = async (message: Message): Promise<Handled> => {
    const messageId = message.MessageId!;
    const failure = parseFailureRecord(message.Body);
    if (failure.kind !== "async") {
      print(`  ${messageId}: not an asynchronous invocation's failure record`);
      return leave(messageId, failure.kind === "unrecognised" ? failure.reason : `a ${failure.kind} failure record`);
    }
    const { requestContext, requestPayload } = failure.record;
    const fn = findFunction(options.wiring.functions, requestContext.functionArn);
    const payload = JSON.stringify(requestPayload);
    print(
      `  ${messageId}: an event for ${functionNameOf(requestContext.functionArn)} (${Buffer.byteLength(payload)} bytes, ${requestContext.condition})`,
    );
    if (!fn || !options.configs.some((config) => config.functionName === fn.name)) {
      return leave(messageId, `${requestContext.functionArn} does not send its failures to ${options.queue.name}`);
    }
    if (!options.apply) {
      print(`    would invoke ${fn.name} with it again, asynchronously`);
      outcomes.push({ messageId, action: "would redeliver", detail: fn.name });
      return "left";
    }
    const answer = await options
      .lambda(regionOfArn(fn.arn))
      .send(new InvokeCommand({ FunctionName: fn.arn, InvocationType: "Event", Payload: Buffer.from(payload) }));
    if (answer.StatusCode !== 202) return leave(messageId, `Lambda answered ${answer.StatusCode} instead of queueing the event`);
    await options.sqs.send(new DeleteMessageCommand({ QueueUrl: options.queueUrl, ReceiptHandle: message.ReceiptHandle! }));
    print(`    invoked ${fn.name} again, asynchronously; message deleted`);
    outcomes.push({ messageId, action: "redelivered", detail: fn.name });
    return "done";
  };

  print(`${options.apply ? "Redriving" : "Dry run: would redrive"} the events parked on ${options.queue.name}`);
  await readForRedrive(
    {
      sqs: options.sqs,
      queueUrl: options.queueUrl,
      apply: options.apply,
      waitSeconds: options.waitSeconds,
      limit: options.limit,
    },
    handle,
  );
  return outcomes;
}
