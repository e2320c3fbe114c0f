/**
 * A dead-letter queue's messages back to their source queue, one by one: each is sent to the
 * source with its body and message attributes (and its X-Ray trace header), on a FIFO queue with
 * its message group and a deduplication id, and deleted from the dead-letter queue only once the
 * send succeeded. A message its worker parked itself goes back without the attributes the parking
 * added (`parkedBy`, `parkedReason`; workers/shared/runtime/deadLetters.ts).
 *
 * Written here rather than with SQS's own StartMessageMoveTask: that task moves the whole queue in
 * the background and reports counts only, so it can neither print what it does per message nor
 * stop after `--limit` messages, and a dry run cannot go through it. (It does serve FIFO queues
 * now, and the local SQS implements it.)
 *
 * A crash between the send and the delete leaves the message in both queues, and the next run
 * sends it again. On a FIFO source that second send is dropped by SQS within its five-minute
 * deduplication window, because the deduplication id is the dead-letter message's own MessageId
 * (the same on every receive of that message); on a standard queue the message is delivered
 * twice, which SQS's at-least-once delivery already allows and the consumers absorb (lookupArai
 * does no second fetch for a fresh ARAI). The original deduplication id is not reused: SQS replaced
 * it when it moved the message to the dead-letter queue, and, reused inside the window, it would
 * drop the redriven message as a duplicate of the one that failed.
 */
import {
  DeleteMessageCommand,
  type Message,
  type MessageAttributeValue,
  SendMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { PARKED_ATTRIBUTES, PARKED_BY_ATTRIBUTE } from "../../workers/shared/runtime/deadLetters";
import type { PlannedQueue } from "../local/wiring";
import { type Handled, type MessageOutcome, readForRedrive } from "./queueReader";

export interface DeadLetterOptions {
  readonly sqs: SQSClient;
  readonly dlq: PlannedQueue;
  readonly dlqUrl: string;
  readonly source: PlannedQueue;
  readonly sourceUrl: string;
  readonly apply: boolean;
  readonly limit?: number;
  readonly waitSeconds: number;
  readonly print: (line: string) => void;
}

/**
 * The message attributes as SendMessage takes them (the value fields that are set), without those
 * a worker added when it parked the message (`parkedBy`, `parkedReason`): back on its source
 * queue, the message is as its producer sent it.
 */
function attributesToSend(message: Message): Record<string, MessageAttributeValue> | undefined {
  const received = Object.entries(message.MessageAttributes ?? {}).filter(([name]) => !PARKED_ATTRIBUTES.includes(name));
  if (received.length === 0) return undefined;
  return Object.fromEntries(
    received.map(([name, value]) => [
      name,
      {
        DataType: value.DataType,
        ...(value.StringValue !== undefined ? { StringValue: value.StringValue } : {}),
        ...(value.BinaryValue !== undefined ? { BinaryValue: value.BinaryValue } : {}),
      },
    ]),
  );
}

/** What a line says about a message: never its body or attribute values, which may hold personal data. */
function describe(message: Message): string {
  const system = message.Attributes ?? {};
  const parkedBy = message.MessageAttributes?.[PARKED_BY_ATTRIBUTE]?.StringValue;
  const parts = [
    system.MessageGroupId ? `group ${system.MessageGroupId}` : undefined,
    `${Buffer.byteLength(message.Body ?? "")} bytes`,
    system.SentTimestamp ? `first sent ${new Date(Number(system.SentTimestamp)).toISOString()}` : undefined,
    system.ApproximateReceiveCount ? `received ${system.ApproximateReceiveCount} times` : undefined,
    // The worker's name only: the reason may quote what the message held.
    parkedBy ? `parked by ${parkedBy}` : undefined,
    message.MessageAttributes && Object.keys(message.MessageAttributes).length > 0
      ? `attributes ${Object.keys(message.MessageAttributes).join(", ")}`
      : undefined,
  ];
  return parts.filter(Boolean).join(", ");
}

/** Moves (or, in a dry run, lists) the dead-letter queue's messages; answers what became of each. */
export async function redriveDeadLetter(options: DeadLetterOptions): Promise<MessageOutcome[]> {
  const { sqs, dlq, source, print } = options;
  const outcomes: MessageOutcome[] = [];
  const handle = async (message: Message): Promise<Handled> => {
    const messageId = message.MessageId!;
    const group = message.Attributes?.MessageGroupId;
    if (source.fifo && !group) {
      const detail = "no message group id, which the FIFO source queue needs: left";
      print(`  ${messageId}: ${detail}`);
      outcomes.push({ messageId, action: "left", detail });
      return "left";
    }
    const detail = describe(message);
    if (!options.apply) {
      print(`  would move ${messageId} (${detail})`);
      outcomes.push({ messageId, action: "would move", detail });
      return "left";
    }
    const traceHeader = message.Attributes?.AWSTraceHeader;
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: options.sourceUrl,
        MessageBody: message.Body!,
        MessageAttributes: attributesToSend(message),
        ...(traceHeader ? { MessageSystemAttributes: { AWSTraceHeader: { DataType: "String", StringValue: traceHeader } } } : {}),
        ...(source.fifo ? { MessageGroupId: group, MessageDeduplicationId: messageId } : {}),
      }),
    );
    // Only now that the source queue has it.
    await sqs.send(new DeleteMessageCommand({ QueueUrl: options.dlqUrl, ReceiptHandle: message.ReceiptHandle! }));
    print(`  moved ${messageId} (${detail})`);
    outcomes.push({ messageId, action: "moved", detail });
    return "done";
  };
  print(`${options.apply ? "Moving" : "Dry run: would move"} the messages of ${dlq.name} back to ${source.name}`);
  await readForRedrive(
    { sqs: sqs, queueUrl: options.dlqUrl, apply: options.apply, waitSeconds: options.waitSeconds, limit: options.limit },
    handle,
  );
  return outcomes;
}
