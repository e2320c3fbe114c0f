/**
 * An SQS event source mapping: pollers receive up to the batch size within the batching window,
 * hand the messages to the function in Lambda's event shape, and delete those that succeeded:
 * all of them, or, with ReportBatchItemFailures, all but those the response names. A failed
 * message stays on the queue, becomes visible again after the queue's visibility timeout, and
 * after the redrive policy's maxReceiveCount receives moves to the dead-letter queue (the local
 * SQS does that, as SQS does). On a FIFO queue, SQS gives no message of a group while another of
 * it is in flight, so each group is processed in order while groups run side by side.
 */
import { DeleteMessageBatchCommand, type Message, ReceiveMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { InvokeOutcome } from "../lambda/pool";
import type { Report } from "../types";
import type { PlannedFunction, QueueMapping } from "../wiring";
import type { RunningMapping } from "./kinesis";

export interface SqsMappingOptions {
  readonly mapping: QueueMapping;
  readonly fn: PlannedFunction;
  readonly sqs: SQSClient;
  /** The queue's local URL. */
  readonly queueUrl: string;
  readonly invoke: (event: unknown) => Promise<InvokeOutcome>;
  readonly report: Report;
  /** Concurrent pollers (Lambda scales these with the backlog; here, a fixed number). */
  readonly pollers: number;
}

/** The event Lambda hands a function for SQS messages. */
function sqsEvent(options: SqsMappingOptions, messages: readonly Message[]) {
  return {
    Records: messages.map((message) => ({
      messageId: message.MessageId,
      receiptHandle: message.ReceiptHandle,
      body: message.Body,
      attributes: message.Attributes ?? {},
      messageAttributes: Object.fromEntries(
        Object.entries(message.MessageAttributes ?? {}).map(([name, value]) => [
          name,
          {
            stringValue: value.StringValue,
            binaryValue: value.BinaryValue ? Buffer.from(value.BinaryValue).toString("base64") : undefined,
            stringListValues: [],
            binaryListValues: [],
            dataType: value.DataType,
          },
        ]),
      ),
      md5OfBody: message.MD5OfBody,
      eventSource: "aws:sqs",
      eventSourceARN: options.mapping.queueArn,
      awsRegion: options.fn.region,
    })),
  };
}

/** The messages to delete after an invocation: none if it failed, all but those reported otherwise. */
function succeeded(mapping: QueueMapping, messages: readonly Message[], outcome: InvokeOutcome): Message[] {
  if (outcome.error) return [];
  if (!mapping.reportBatchItemFailures) return [...messages];
  const failures = (outcome.result as { batchItemFailures?: unknown } | null | undefined)?.batchItemFailures;
  if (failures === undefined || failures === null) return [...messages];
  if (!Array.isArray(failures)) return [];
  const ids = new Set(messages.map((message) => message.MessageId));
  const failed = new Set<string>();
  for (const failure of failures) {
    const id = (failure as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    // A response naming a message that is not in the batch is invalid: the whole batch failed.
    if (typeof id !== "string" || !ids.has(id)) return [];
    failed.add(id);
  }
  return messages.filter((message) => !failed.has(message.MessageId!));
}

/** What every ReceiveMessage of the mapping asks for besides the count and the wait. */
const receiveInput = (queueUrl: string) => ({
  QueueUrl: queueUrl,
  AttributeNames: ["All" as const],
  MessageSystemAttributeNames: ["All" as const],
  MessageAttributeNames: ["All"],
});

/** Up to `max` messages there now (a short poll). */
async function receiveNow(options: SqsMappingOptions, max: number): Promise<Message[]> {
  const answer = await options.sqs.send(
    new ReceiveMessageCommand({ ...receiveInput(options.queueUrl), MaxNumberOfMessages: max, WaitTimeSeconds: 0 }),
  );
  return answer.Messages ?? [];
}

/**
 * Up to `max` messages as SQS long polling answers: as soon as there is any, or none after a
 * second. The local SQS holds a long poll until it has all `max` (or the wait is over), which
 * would keep each message waiting up to a second whenever fewer than `max` are queued; so the
 * long poll here asks for one, and the rest are taken by a short poll right after it.
 */
async function receiveSome(options: SqsMappingOptions, max: number): Promise<Message[]> {
  const there = await receiveNow(options, max);
  if (there.length > 0) return there;
  const answer = await options.sqs.send(
    new ReceiveMessageCommand({ ...receiveInput(options.queueUrl), MaxNumberOfMessages: 1, WaitTimeSeconds: 1 }),
  );
  const first = answer.Messages ?? [];
  return first.length === 0 || max === 1 ? first : [...first, ...(await receiveNow(options, max - 1))];
}

/** A batch: the first messages as they come, then more up to the batch size within the batching window. */
async function receive(options: SqsMappingOptions, stopping: () => boolean): Promise<Message[]> {
  const { mapping } = options;
  const messages: Message[] = [];
  const until = Date.now() + mapping.batchingWindowSeconds * 1000;
  do {
    const max = Math.min(10, mapping.batchSize - messages.length);
    messages.push(...(messages.length === 0 ? await receiveSome(options, max) : await receiveNow(options, max)));
  } while (!stopping() && messages.length < mapping.batchSize && Date.now() < until);
  return messages;
}

/** Starts the mapping's pollers. */
export function startSqsMapping(options: SqsMappingOptions): RunningMapping {
  const { mapping, sqs, report } = options;
  let stopping = false;
  let inFlight = 0;
  const poll = async () => {
    while (!stopping) {
      const messages = await receive(options, () => stopping);
      if (messages.length === 0) continue;
      inFlight += messages.length;
      report({ kind: "delivered", mapping: mapping.name, count: messages.length });
      const outcome = await options.invoke(sqsEvent(options, messages));
      const done = succeeded(mapping, messages, outcome);
      if (done.length > 0) {
        await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: options.queueUrl,
            Entries: done.map((message, index) => ({ Id: `m${index}`, ReceiptHandle: message.ReceiptHandle! })),
          }),
        );
      }
      inFlight -= messages.length;
    }
  };
  const running = Array.from({ length: options.pollers }, () =>
    poll().catch((error: unknown) => {
      if (!stopping)
        report({ kind: "output", function: options.fn.name, text: `mapping ${mapping.name} stopped: ${String(error)}` });
    }),
  );
  return {
    pending: () => inFlight,
    async stop() {
      stopping = true;
      await Promise.all(running);
    },
  };
}
