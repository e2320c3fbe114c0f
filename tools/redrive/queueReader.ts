/**
 * Reading a queue message by message for the redrive: each message is received (hidden from other
 * readers for `visibilitySeconds`), handed to `handle`, and either deleted by it (done) or left.
 * Every message left, and every one received but not handled (the run stopped on an error), is
 * made visible again when the run ends, so nothing stays hidden for the rest of its timeout; a
 * crash leaves them to come back when their visibility timeout passes, as SQS does.
 *
 * The reading stops at the first empty receive. It long-polls (`waitSeconds`), since a short poll
 * of SQS samples only some of its servers and may answer nothing while messages are there.
 * A FIFO queue gives no further messages of a group while some are in flight, so a dry run (which
 * deletes nothing) sees the first batch of each group only.
 */
import { ChangeMessageVisibilityBatchCommand, type Message, ReceiveMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";

export type Handled = "done" | "left";

/** What a redrive did with one message, for its report. */
export interface MessageOutcome {
  readonly messageId: string;
  readonly action: "moved" | "would move" | "redelivered" | "would redeliver" | "left";
  readonly detail: string;
}

/** A redrive's outcomes, and the one way it leaves a message on its queue: said, and recorded. */
export function outcomeLog(print: (line: string) => void) {
  const outcomes: MessageOutcome[] = [];
  const leave = (messageId: string, detail: string): Handled => {
    print(`    left on the queue: ${detail}`);
    outcomes.push({ messageId, action: "left", detail });
    return "left";
  };
  return { outcomes, leave };
}

export interface ReadOptions {
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  /** Messages per receive (1 to 10). */
  readonly batch: number;
  readonly visibilitySeconds: number;
  readonly waitSeconds: number;
  /** Handle at most this many messages. */
  readonly limit?: number;
}

/** Receives and handles messages until the queue answers none or `limit` are handled; answers how many were. */
export async function readEach(options: ReadOptions, handle: (message: Message) => Promise<Handled>): Promise<number> {
  const { sqs, queueUrl } = options;
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const hidden = new Map<string, Message>();
  let handled = 0;
  try {
    while (handled < limit) {
      const { Messages } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: Math.min(options.batch, limit - handled),
          VisibilityTimeout: options.visibilitySeconds,
          WaitTimeSeconds: options.waitSeconds,
          // Every attribute: the message's own, and the system's (group, deduplication id, counts).
          // The local SQS reads the older AttributeNames; SQS takes either.
          MessageAttributeNames: ["All"],
          MessageSystemAttributeNames: ["All"],
          AttributeNames: ["All"],
        }),
      );
      if (!Messages?.length) break;
      for (const message of Messages) hidden.set(message.ReceiptHandle!, message);
      for (const message of Messages) {
        handled += 1;
        if ((await handle(message)) === "done") hidden.delete(message.ReceiptHandle!);
      }
    }
  } finally {
    await release(sqs, queueUrl, [...hidden.values()]);
  }
  return handled;
}

/**
 * Reads a queue ten messages at a time, each hidden for as long as a redrive of it takes (two
 * minutes), or for ten minutes in a dry run, so one pass does not see a message twice.
 */
export function readForRedrive(
  options: Omit<ReadOptions, "batch" | "visibilitySeconds"> & { readonly apply: boolean },
  handle: (message: Message) => Promise<Handled>,
): Promise<number> {
  const { apply, ...read } = options;
  return readEach({ ...read, batch: 10, visibilitySeconds: apply ? 120 : 600 }, handle);
}

/** Makes the messages visible again at once. */
async function release(sqs: SQSClient, queueUrl: string, messages: readonly Message[]): Promise<void> {
  for (let at = 0; at < messages.length; at += 10) {
    await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queueUrl,
        Entries: messages.slice(at, at + 10).map((message, index) => ({
          Id: `m${index}`,
          ReceiptHandle: message.ReceiptHandle!,
          VisibilityTimeout: 0,
        })),
      }),
    );
  }
}
