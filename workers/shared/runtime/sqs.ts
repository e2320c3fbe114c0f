/**
 * Sending to SQS in batches (SendMessageBatch: at most ten messages and 256 KiB a call), with the
 * entries SQS could not take retried with backoff, and a per-message outcome so each failure goes
 * back to the record that produced it.
 */
import {
  type MessageAttributeValue,
  type SendMessageBatchRequestEntry,
  SendMessageBatchCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { backoffDelay, mapConcurrently, sleep } from "./retry";

/** SQS takes at most ten messages per SendMessageBatch. */
export const SQS_BATCH_LIMIT = 10;

/** Attempts per message when the caller gives none: the first and REQ-007's two retries. */
export const SEND_ATTEMPTS = 3;

/**
 * The most a message may weigh, body and attributes, in bytes (256 KiB), and also the most a
 * SendMessageBatch request may carry in all: the limit SQS has long set, kept by every message this
 * program sends so it fits any queue it may be sent to.
 */
export const SQS_MESSAGE_LIMIT_BYTES = 262_144;

export interface OutgoingMessage {
  /** Identifies the message in the outcome (the producing record's id, say). */
  readonly id: string;
  readonly body: string;
  /** FIFO queues: the message group (ordering per group). */
  readonly groupId?: string;
  /** FIFO queues: SQS drops a second message with this id within five minutes. */
  readonly deduplicationId?: string;
  /**
   * Message attributes, by name: a string is a String attribute (the correlation id, say); an
   * attribute in SQS's own shape is sent as it is (a message's attributes passed on unchanged).
   */
  readonly attributes?: Readonly<Record<string, string | MessageAttributeValue>>;
}

export interface SendOptions {
  /** Attempts per message, the first included. @default SEND_ATTEMPTS */
  readonly attempts?: number;
  /** @default 50 */
  readonly baseDelayMs?: number;
  /**
   * Send the batches one after another, so the messages of a FIFO group reach the queue in
   * order; otherwise up to four batches are in flight at once.
   * @default false
   */
  readonly ordered?: boolean;
}

export interface SendOutcome {
  /** Messages SQS did not take, with why. */
  readonly failed: { readonly id: string; readonly reason: string }[];
  /** SendMessageBatch calls made. */
  readonly calls: number;
}

/** Attributes in SQS's shape, strings as String attributes. */
function messageAttributes(
  attributes: Readonly<Record<string, string | MessageAttributeValue>>,
): Record<string, MessageAttributeValue> {
  return Object.fromEntries(
    Object.entries(attributes).map(([name, value]) => [
      name,
      typeof value === "string" ? { DataType: "String", StringValue: value } : value,
    ]),
  );
}

/**
 * What a message weighs as SQS counts it: the UTF-8 bytes of its body, and of each attribute's
 * name, data type and value.
 */
export function messageSize(message: Pick<OutgoingMessage, "body" | "attributes">): number {
  let size = Buffer.byteLength(message.body, "utf8");
  for (const [name, value] of Object.entries(messageAttributes(message.attributes ?? {}))) {
    const bytes = value.BinaryValue ? value.BinaryValue.byteLength : Buffer.byteLength(value.StringValue ?? "", "utf8");
    size += Buffer.byteLength(name, "utf8") + Buffer.byteLength(value.DataType ?? "", "utf8") + bytes;
  }
  return size;
}

/**
 * The messages in batches of at most ten and at most SQS_MESSAGE_LIMIT_BYTES together, in order.
 * A message over the limit on its own goes alone, for SQS to refuse (and the outcome to name).
 */
export function sendBatches(messages: readonly OutgoingMessage[]): OutgoingMessage[][] {
  const batches: OutgoingMessage[][] = [];
  let current: OutgoingMessage[] = [];
  let weight = 0;
  for (const message of messages) {
    const size = messageSize(message);
    if (current.length > 0 && (current.length >= SQS_BATCH_LIMIT || weight + size > SQS_MESSAGE_LIMIT_BYTES)) {
      batches.push(current);
      current = [];
      weight = 0;
    }
    current.push(message);
    weight += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** Sends `messages` to the queue; never throws for a failed message, reports it. */
export async function sendMessages(
  client: SQSClient,
  queueUrl: string,
  messages: readonly OutgoingMessage[],
  options: SendOptions = {},
): Promise<SendOutcome> {
  const attempts = options.attempts ?? SEND_ATTEMPTS;
  const failed: { id: string; reason: string }[] = [];
  let calls = 0;

  const sendBatch = async (batch: readonly OutgoingMessage[]) => {
    let pending = batch.map((message, index) => ({ message, entryId: `m${index}` }));
    for (let attempt = 1; pending.length > 0; attempt++) {
      const entries: SendMessageBatchRequestEntry[] = pending.map(({ message, entryId }) => ({
        Id: entryId,
        MessageBody: message.body,
        MessageGroupId: message.groupId,
        MessageDeduplicationId: message.deduplicationId,
        MessageAttributes: message.attributes && messageAttributes(message.attributes),
      }));
      let retry: typeof pending = [];
      try {
        calls += 1;
        const answer = await client.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
        for (const entry of answer.Failed ?? []) {
          const item = pending.find((candidate) => candidate.entryId === entry.Id);
          if (!item) continue;
          const reason = `SQS refused the message: ${entry.Code}${entry.Message ? `: ${entry.Message}` : ""}`;
          if (entry.SenderFault || attempt >= attempts) failed.push({ id: item.message.id, reason });
          else retry.push(item);
        }
      } catch (error) {
        const reason = `SendMessageBatch to ${queueUrl} failed: ${(error as Error).name}: ${(error as Error).message}`;
        if (attempt >= attempts) failed.push(...pending.map(({ message }) => ({ id: message.id, reason })));
        else retry = pending;
      }
      pending = retry;
      if (pending.length > 0) await sleep(backoffDelay(attempt, options.baseDelayMs ?? 50));
    }
  };

  await mapConcurrently(sendBatches(messages), options.ordered ? 1 : 4, sendBatch);
  return { failed, calls };
}
