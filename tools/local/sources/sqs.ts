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

async function receive(options: SqsMappingOptions, stopping: () => boolean): Promise<Message[]> {
  const { mapping, sqs, queueUrl } = options;
  const messages: Message[] = [];
  const until = Date.now() + mapping.batchingWindowSeconds * 1000;
  do {
    const answer = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: Math.min(10, mapping.batchSize - messages.length),
        WaitTimeSeconds: 1,
        AttributeNames: ["All"],
        MessageSystemAttributeNames: ["All"],
        MessageAttributeNames: ["All"],
      }),
    );
    messages.push(...(answer.Messages ?? []));
    if (!answer.Messages?.length && messages.length > 0) break;
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
